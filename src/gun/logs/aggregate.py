"""Aggregates one app's measurements into buckets, one per series and resolution interval
with l2met's statistics, and hands each bucket out soon after its interval ends; no I/O.

- A series is (name, source, unit, type); its bucket for a measurement is the interval
  [t - t mod resolution, + resolution) of the measurement's time (the line's TIMESTAMP), not of
  the time it arrived. Resolution: whole seconds from 1 to 3600 (default 60, a drain's
  `?resolution=`); anything else is InvalidParams.
- count: `sum` of the values (`count` stays None: a counter's value is its sum, and a second
  number named count next to it would read as the counter).
- sample: `last`, the value with the latest measurement time (on a tie, the greater value, so
  that the order lines arrive in, or which worker took them, does not matter).
- unique: `unique`, the number of distinct texts.
- measure: `count`, `sum` (math.fsum, so the order values arrived in does not matter), `min`,
  `max`, `mean` = sum / count, and l2met's percentiles: sort all n values and take the one at
  index floor(n * q), clamped to n - 1, computed in integers (n * 95 // 100), so `median` is
  the value at n // 2 (the upper one of an even count), `p95` at n * 95 // 100, `p99` at
  n * 99 // 100.

When an interval is handed out, and what comes after (`flush(now)` is called about every
second with the clock):

- **open** until `grace` seconds after it ends (GUN_METRICS_GRACE, default 2): `flush` hands
  its buckets out once `start + resolution + grace <= now`. Until then `partial()` shows them,
  marked partial.
- **kept** for one more resolution: a measurement for an interval already handed out is late.
  It is counted in `late`, merged into the kept interval, and the next `flush` hands the whole
  bucket out again, its `previous` the bucket handed out before (outlets that add up, statsd
  and Prometheus, send only the difference; whisper overwrites the point).
- **too old** after that (`start + 2 * resolution + grace <= now` when it arrives): dropped
  and counted in `dropped`. So is a time that is not a finite epoch before the year 10000.

Merging. `take()` hands over everything added since the last `take` as `Intervals` (a worker's
share) and `merge(intervals, now)` adds such a share in, as if each measurement of it had been
added at `now`. Every statistic of a merged bucket equals what one aggregator seeing all the
measurements gives (sums of counts exactly so when the values are whole numbers or short binary
fractions, float addition being exact there), whatever the split: the reason for the tie rule.

`add(measurement, now)` takes a Measurement; `add_rows(rows, now)` takes parse.Row tuples, the
drain's hot path.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

import numpy

from gun.errors import InvalidParams
from gun.logs.model import Bucket, Key, Measurement, MetricType
from gun.logs.parse import Row

GRACE = 2.0  # seconds an interval stays open after it ends, for lines on their way
_LATEST = 253402300799.0  # 9999-12-31T23:59:59Z: later times have no TIMESTAMP

_Series = tuple[str, str | None, str]  # name, source, unit


class _Interval:
    """The state of one resolution interval, a dict per metric type."""

    __slots__ = ("counts", "measures", "n", "samples", "uniques")

    def __init__(self) -> None:
        self.n = 0  # measurements added
        self.measures: dict[_Series, array[float]] = {}  # 8 bytes a value, pickled as bytes
        self.counts: dict[_Series, float] = {}
        self.samples: dict[_Series, tuple[float, float]] = {}  # (time, value)
        self.uniques: dict[_Series, set[str]] = {}

    def merge(self, other: _Interval) -> None:
        """Add `other` in (its lists and sets may become this one's: drop it afterwards)."""
        self.n += other.n
        measures, counts, samples, uniques = self.measures, self.counts, self.samples, self.uniques
        for series, values in other.measures.items():
            mine = measures.get(series)
            if mine is None:
                measures[series] = values
            else:
                mine.extend(values)
        for series, total in other.counts.items():
            counts[series] = counts.get(series, 0.0) + total
        for series, last in other.samples.items():
            mine_last = samples.get(series)
            if mine_last is None or last > mine_last:  # later time; on a tie the greater value
                samples[series] = last
        for series, texts in other.uniques.items():
            mine_texts = uniques.get(series)
            if mine_texts is None:
                uniques[series] = texts
            else:
                mine_texts |= texts


def order_statistics(values: array[float]) -> tuple[float, float, float, float, float]:
    """min, median, p95, p99 and max of `values` (not empty), l2met's way: the values at n // 2,
    n * 95 // 100 and n * 99 // 100 (clamped to n - 1) of them sorted. numpy's partition finds
    them in linear time, without sorting (about 40 ns a value, where sorting Python floats took
    250-300): a minute of a busy drain's values is flushed in a second, not several."""
    n = len(values)
    ranks = [0, n // 2, min(n * 95 // 100, n - 1), min(n * 99 // 100, n - 1), n - 1]
    picked = numpy.partition(numpy.frombuffer(values, dtype=numpy.float64), ranks)
    low, median, p95, p99, high = (float(picked[k]) for k in ranks)
    return low, median, p95, p99, high


Intervals = dict[int, _Interval]
"""One aggregator's share of intervals by their start, as `take` hands them over."""


def check_resolution(value: object) -> int:
    """A resolution in seconds from an int or a decimal string, 1 to 3600; else InvalidParams."""
    seconds: int | None = None
    if isinstance(value, str) and value.isascii() and value.isdecimal():
        seconds = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    if seconds is None or not 1 <= seconds <= 3600:
        raise InvalidParams(
            f"resolution {value!r} must be a whole number of seconds from 1 to 3600"
        )
    return seconds


class Aggregator:
    """The buckets of one app at one resolution (see the module docstring)."""

    def __init__(self, app: str, resolution: int | str = 60, grace: float = GRACE) -> None:
        self.app = app
        self.resolution = check_resolution(resolution)
        self.grace = grace
        self.late = 0  # measurements merged into an interval already handed out
        self.dropped = 0  # measurements too old to merge, or with an impossible time
        self._open: Intervals = {}
        self._kept: dict[int, tuple[_Interval, dict[Key, Bucket]]] = {}  # handed out
        self._dirty: set[int] = set()  # kept intervals that took late measurements
        self._closed = -math.inf  # the last flush's `now`: intervals ending + grace by then

    def add(self, m: Measurement, now: float) -> None:
        """Count one measurement into its bucket (see the module docstring)."""
        self.add_rows([(m.name, m.source, m.unit, m.type, m.value, m.time, m.text)], now)

    def _interval(self, start: int, now: float) -> tuple[_Interval | None, bool]:
        """The interval a measurement of `start` goes in at `now`, and whether it is late;
        (None, False) when it is too old."""
        res = self.resolution
        if start + 2 * res + self.grace <= now:
            return None, False
        interval = self._open.get(start)
        if interval is not None:
            return interval, False
        if start + res + self.grace <= self._closed:  # handed out, or would have been
            kept = self._kept.get(start)
            if kept is None:
                kept = self._kept[start] = (_Interval(), {})
            self._dirty.add(start)
            return kept[0], True
        interval = self._open[start] = _Interval()
        return interval, False

    def add_rows(self, rows: Iterable[Row], now: float) -> None:
        """`add` for rows (parse.Row, a Measurement's fields as a tuple), the drain's hot loop,
        with the interval of the previous row kept at hand (a body's lines mostly share one)."""
        res = self.resolution
        lo = hi = 0.0  # the interval at hand: [lo, hi), none yet
        at_hand = _Interval()  # a stand-in until the first row
        late = dropped = added = 0
        is_late = False
        measures: dict[_Series, array[float]] = {}
        counts: dict[_Series, float] = {}
        samples: dict[_Series, tuple[float, float]] = {}
        uniques: dict[_Series, set[str]] = {}
        for name, source, unit, kind, value, t, text in rows:
            if not lo <= t < hi:
                if not 0.0 <= t <= _LATEST:  # also NaN
                    dropped += 1
                    continue
                start = int(t // res) * res
                interval, late_here = self._interval(start, now)
                if interval is None:
                    dropped += 1
                    continue
                is_late = late_here
                at_hand.n += added
                at_hand, added = interval, 0
                lo, hi = float(start), float(start + res)
                measures, counts = interval.measures, interval.counts
                samples, uniques = interval.samples, interval.uniques
            added += 1
            if is_late:
                late += 1
            series = (name, source, unit)
            if kind == "measure":
                values = measures.get(series)
                if values is None:
                    measures[series] = array("d", (value,))
                else:
                    values.append(value)
            elif kind == "count":
                counts[series] = counts.get(series, 0.0) + value
            elif kind == "sample":
                last = samples.get(series)
                if last is None or (t, value) > last:
                    samples[series] = (t, value)
            else:
                texts = uniques.get(series)
                if texts is None:
                    uniques[series] = {text or ""}
                else:
                    texts.add(text or "")
        at_hand.n += added
        self.late += late
        self.dropped += dropped

    def take(self) -> Intervals:
        """Everything added since the last `take`, handed over and forgotten here: a worker's
        share for the aggregator that merges all of them. Only for an aggregator whose
        intervals are never flushed (all of them stay open here)."""
        taken, self._open = self._open, {}
        return taken

    def merge(self, intervals: Intervals, now: float) -> None:
        """Add a share that another aggregator `take`s, as if its measurements came at `now`."""
        for start, share in intervals.items():
            interval, is_late = self._interval(start, now)
            if interval is None:
                self.dropped += share.n
                continue
            if is_late:
                self.late += share.n
            interval.merge(share)

    def flush(self, now: float) -> list[Bucket]:
        """The buckets of every interval that ended `grace` seconds before `now`, and again
        those of handed-out intervals that took late measurements (module docstring)."""
        res, grace = self.resolution, self.grace
        self._closed = max(self._closed, now)
        buckets: list[Bucket] = []
        for start in sorted(s for s in self._open if s + res + grace <= now):
            interval = self._open.pop(start)
            out = self._buckets(start, interval, False)
            self._kept[start] = (interval, {b.key: b for b in out})
            buckets += out
        for start in sorted(self._dirty):
            interval, handed = self._kept[start]
            again = []
            for b in self._buckets(start, interval, False):
                before = handed.get(b.key)
                if before != b:
                    b = b.with_previous(before)
                    handed[b.key] = b
                    again.append(b)
            buckets += again
        self._dirty.clear()
        for start in [s for s in self._kept if s + 2 * res + grace <= now]:
            del self._kept[start]
        return buckets

    def partial(self) -> list[Bucket]:
        """The buckets of the intervals still open, as they stand, marked partial."""
        out: list[Bucket] = []
        for start in sorted(self._open):
            out += self._buckets(start, self._open[start], True)
        return out

    def _buckets(self, start: int, interval: _Interval, partial: bool) -> list[Bucket]:
        app, res = self.app, self.resolution

        def key(series: _Series, kind: MetricType) -> Key:
            name, source, unit = series
            return Key(app, name, source, unit, kind, start, res)

        out: list[Bucket] = []
        for series, total in interval.counts.items():
            out.append(Bucket(key(series, "count"), sum=total, partial=partial))
        for series, held in interval.measures.items():
            n = len(held)
            s = math.fsum(held)
            low, median, p95, p99, high = order_statistics(held)
            out.append(
                Bucket(
                    key(series, "measure"),
                    count=n,
                    sum=s,
                    min=low,
                    max=high,
                    mean=s / n,
                    median=median,
                    p95=p95,
                    p99=p99,
                    partial=partial,
                )
            )
        for series, (_, value) in interval.samples.items():
            out.append(Bucket(key(series, "sample"), last=value, partial=partial))
        for series, texts in interval.uniques.items():
            out.append(Bucket(key(series, "unique"), unique=len(texts), partial=partial))
        out.sort(key=lambda b: (b.key.type, b.key.name, b.key.source or "", b.key.unit))
        return out
