"""Aggregates one app's measurements into buckets, one per series and resolution interval
with l2met's statistics, and hands each bucket out once its interval has closed; no I/O.

- A series is (name, source, unit, type); its bucket for a measurement is the interval
  [t - t mod resolution, + resolution) of the measurement's time (the line's TIMESTAMP), not of
  the time it arrived. Resolution: whole seconds from 1 to 3600 (default 60, a drain's
  `?resolution=`); anything else is InvalidParams.
- count: `sum` of the values (`count` stays None: a counter's value is its sum, and a second
  number named count next to it would read as the counter).
- sample: `last`, the value with the latest measurement time (on a tie, the one added last).
- unique: `unique`, the number of distinct texts.
- measure: `count`, `sum` (math.fsum, so the order values arrived in does not matter), `min`,
  `max`, `mean` = sum / count, and l2met's percentiles: sort all n values and take the one at
  index floor(n * q), clamped to n - 1, computed in integers (n * 95 // 100), so `median` is
  the value at n // 2 (the upper one of an even count), `p95` at n * 95 // 100, `p99` at
  n * 99 // 100.

`add(measurement, now)` takes a Measurement; `add_rows(rows, now)` takes parse.Row
tuples, the drain's hot path. `flush(now)` returns, in order of interval, type, name, source
and unit, the buckets of every interval that has closed (start + resolution <= now) and forgets
them. A measurement is late, dropped and counted in `late`, when its time is more than two
resolutions behind the `now` given to `add` (time < now - 2 * resolution), or when its interval
was already closed by an earlier flush: emitting an interval twice would make an outlet such as
whisper overwrite the full bucket with a partial one. So the caller chooses how long lines may
trail behind: flushing with `flush(clock() - grace)` keeps each interval open for `grace` more
seconds. A time that is not a finite epoch before the year 10000 counts as late too. The
aggregator measures nothing else about itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from gun.errors import InvalidParams
from gun.logs.model import Bucket, Key, Measurement, MetricType
from gun.logs.parse import Row

_LATEST = 253402300799.0  # 9999-12-31T23:59:59Z: later times have no TIMESTAMP

_Series = tuple[str, str | None, str]  # name, source, unit


class _Interval:
    """The open state of one resolution interval, a dict per metric type."""

    __slots__ = ("counts", "measures", "samples", "uniques")

    def __init__(self) -> None:
        self.measures: dict[_Series, list[float]] = {}
        self.counts: dict[_Series, float] = {}
        self.samples: dict[_Series, tuple[float, float]] = {}  # (time, value)
        self.uniques: dict[_Series, set[str]] = {}


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
    """The open buckets of one app at one resolution."""

    def __init__(self, app: str, resolution: int | str = 60) -> None:
        self.app = app
        self.resolution = check_resolution(resolution)
        self.late = 0  # measurements dropped because they came too late
        self._open: dict[int, _Interval] = {}
        self._closed = -math.inf  # intervals ending at or before this were flushed

    def add(self, m: Measurement, now: float) -> None:
        """Count one measurement into its bucket, or as late (see the module docstring)."""
        res = self.resolution
        t = m.time
        if not now - 2 * res <= t <= _LATEST:
            self.late += 1
            return
        start = int(t // res) * res
        if start + res <= self._closed:
            self.late += 1
            return
        interval = self._open.get(start)
        if interval is None:
            interval = self._open[start] = _Interval()
        series = (m.name, m.source, m.unit)
        kind = m.type
        if kind == "measure":
            values = interval.measures.get(series)
            if values is None:
                interval.measures[series] = [m.value]
            else:
                values.append(m.value)
        elif kind == "count":
            interval.counts[series] = interval.counts.get(series, 0.0) + m.value
        elif kind == "sample":
            last = interval.samples.get(series)
            if last is None or t >= last[0]:
                interval.samples[series] = (t, m.value)
        else:
            interval.uniques.setdefault(series, set()).add(m.text or "")

    def add_rows(self, rows: Iterable[Row], now: float) -> None:
        """`add` for rows (parse.Row, a Measurement's fields as a tuple), the drain's hot loop:
        the same steps as `add`, inlined, with the interval of the previous row kept at hand (a
        body's lines mostly share one)."""
        res = self.resolution
        earliest = now - 2 * res
        closed = self._closed
        opened = self._open
        late = 0
        lo = hi = 0.0  # the interval at hand: [lo, hi), none yet
        straddles = False  # the interval at hand begins before `earliest`
        measures: dict[_Series, list[float]] = {}
        counts: dict[_Series, float] = {}
        samples: dict[_Series, tuple[float, float]] = {}
        uniques: dict[_Series, set[str]] = {}
        for name, source, unit, kind, value, t, text in rows:
            if not lo <= t < hi:
                if not earliest <= t <= _LATEST:
                    late += 1
                    continue
                start = int(t // res) * res
                if start + res <= closed:
                    late += 1
                    continue
                interval = opened.get(start)
                if interval is None:
                    interval = opened[start] = _Interval()
                lo, hi = start, start + res
                straddles = lo < earliest
                measures, counts = interval.measures, interval.counts
                samples, uniques = interval.samples, interval.uniques
            elif straddles and t < earliest:
                late += 1
                continue
            series = (name, source, unit)
            if kind == "measure":
                values = measures.get(series)
                if values is None:
                    measures[series] = [value]
                else:
                    values.append(value)
            elif kind == "count":
                counts[series] = counts.get(series, 0.0) + value
            elif kind == "sample":
                last = samples.get(series)
                if last is None or t >= last[0]:
                    samples[series] = (t, value)
            else:
                texts = uniques.get(series)
                if texts is None:
                    uniques[series] = {text or ""}
                else:
                    texts.add(text or "")
        self.late += late

    def flush(self, now: float) -> list[Bucket]:
        """The buckets of every interval closed at `now`, which from now on take no data."""
        res = self.resolution
        self._closed = max(self._closed, now)
        closed = sorted(start for start in self._open if start + res <= now)
        buckets: list[Bucket] = []
        for start in closed:
            buckets.extend(self._buckets(start, self._open.pop(start)))
        return buckets

    def _buckets(self, start: int, interval: _Interval) -> list[Bucket]:
        app, res = self.app, self.resolution

        def key(series: _Series, kind: MetricType) -> Key:
            name, source, unit = series
            return Key(app, name, source, unit, kind, start, res)

        out: list[Bucket] = []
        for series, total in interval.counts.items():
            out.append(Bucket(key(series, "count"), sum=total))
        for series, values in interval.measures.items():
            values.sort()
            n = len(values)
            s = math.fsum(values)
            out.append(
                Bucket(
                    key(series, "measure"),
                    count=n,
                    sum=s,
                    min=values[0],
                    max=values[-1],
                    mean=s / n,
                    median=values[n // 2],
                    p95=values[min(n * 95 // 100, n - 1)],
                    p99=values[min(n * 99 // 100, n - 1)],
                )
            )
        for series, (_, value) in interval.samples.items():
            out.append(Bucket(key(series, "sample"), last=value))
        for series, texts in interval.uniques.items():
            out.append(Bucket(key(series, "unique"), unique=len(texts)))
        out.sort(key=lambda b: (b.key.type, b.key.name, b.key.source or "", b.key.unit))
        return out
