"""The drain's core: what happens to a body of logplex frames once its app is known.

Frames are read strictly; a retried body (same `Logplex-Frame-Id`) is taken once; lines go to
the archive and to live tails; measurements (l2met conventions) go to an aggregator per app
and resolution, whose buckets `flush` hands to the outlets `grace` seconds after their interval
ends (again, whole, when late measurements changed them) and keeps for `metrics`, which also
shows the open intervals as partial buckets. The drain counts what it did and reports it
through the same outlets as app `gun-drain`.
Everything runs on one thread (the server's event loop); no I/O but the archive's and the
outlets'.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gun.logs import frames as framing
from gun.logs.aggregate import GRACE, Aggregator, Intervals, check_resolution
from gun.logs.archive import Archive
from gun.logs.disk import cannot_write
from gun.logs.filters import Filter, format_line, stamp
from gun.logs.model import Bucket, Key, Line
from gun.logs.outlets import Outlet
from gun.logs.parse import parse_lines
from gun.logs.seen import Seen

SELF = "gun-drain"  # the app name the drain's own figures are reported under
RECENT = 20_000  # buckets kept per app for `gun metrics`
SELF_RESOLUTION = 10
FUTURE = 86400.0  # seconds a line may be dated after its arrival


@dataclass(slots=True)
class Accepted:
    lines: int
    bad: list[str]


@dataclass(slots=True)
class Tail:
    """A live follower of one app's lines: `send` gets each matching line, formatted."""

    app: str
    filter: Filter
    send: Callable[[str], None]


@dataclass(slots=True)
class Report:
    """What a worker took since its last report (Drain.report, Drain.absorb)."""

    shares: dict[tuple[str, int], Intervals]  # (app, resolution) -> intervals
    figures: dict[str, int]  # growth of each counted figure
    lines: dict[str, int]  # lines taken per app
    dropped: int  # measurements too old to merge


@dataclass
class Figures:
    lines_in: int = 0
    bad_frames: int = 0
    duplicates: int = 0
    invalid_metrics: int = 0
    future: int = 0  # lines dated over FUTURE ahead, kept at their arrival
    tokens_refused: int = 0  # bodies refused for a missing or invalid ingest token (server)
    flush_lag: float = 0.0  # seconds the last flush ran behind its interval


_COUNTED = ("lines_in", "bad_frames", "duplicates", "invalid_metrics", "future", "tokens_refused")


class Drain:
    def __init__(
        self,
        archive: Archive | None,
        outlets: Sequence[Outlet],
        *,
        prefix: str = "",
        default_resolution: int = 60,
        grace: float = GRACE,
        clock: Callable[[], float] = time.time,
        seen: Seen | None = None,
    ) -> None:
        self.archive = archive
        self.outlets = list(outlets)
        self.prefix = prefix
        self.default_resolution = check_resolution(default_resolution)
        self.grace = grace
        self.clock = clock
        self.figures = Figures()
        self._aggregators: dict[tuple[str, int], Aggregator] = {}
        self.seen = seen or Seen(None)
        self._tails: dict[str, list[Tail]] = {}
        self._recent: dict[str, dict[Key, Bucket]] = {}  # oldest first, at most RECENT
        self._lines: dict[str, int] = {}  # lines taken per app since the start
        self._reported = Figures()  # the figures as of the last report of the drain's own
        self._late_reported = self._dropped_reported = 0
        self._own_at: int | None = None  # the interval last reported
        self._last_flush: float | None = None
        self.dropped_elsewhere = 0  # measurements the workers dropped (a hub's drain)
        # a worker's: what it had taken at its last report to the hub, and where its lines go
        # for the tails at other workers
        self._sent = Figures()
        self._sent_lines: dict[str, int] = {}
        self._sent_dropped = 0
        self.on_lines: Callable[[str, list[Line]], None] | None = None

    # in --------------------------------------------------------------------------------------

    def accept(
        self, app: str, body: bytes, frame_id: str | None = None, resolution: int | None = None
    ) -> Accepted:
        """Take one POSTed body of `app`; raises FrameError when it is not frames at all, and
        CannotWrite when the disk refuses it (see the module docstring)."""
        if frame_id and (app, frame_id) in self.seen:
            self.figures.duplicates += 1
            return Accepted(0, [])
        got = framing.read(body)
        lines = got.lines
        now = self.clock()
        if lines:
            limit = now + FUTURE
            for line in lines:
                if line.time > limit:
                    line.time, line.timestamp = now, stamp(now)
                    self.figures.future += 1
            if self.archive is not None:
                try:
                    self.archive.append(app, lines)
                except OSError as e:
                    raise cannot_write(e, self.archive.root, "the log archive") from None
        self.figures.lines_in += len(lines)
        self._lines[app] = self._lines.get(app, 0) + len(lines)
        self.figures.bad_frames += len(got.bad)
        unsaved = self.seen.remember(app, frame_id) if frame_id else None
        self.deliver(app, lines)
        if self.on_lines is not None and lines:
            self.on_lines(app, lines)
        self._measure(app, lines, resolution or self.default_resolution, now)
        if unsaved is not None:
            raise unsaved
        return Accepted(len(lines), got.bad)

    def _aggregator(self, app: str, resolution: int) -> Aggregator:
        agg = self._aggregators.get((app, resolution))
        if agg is None:
            agg = self._aggregators[(app, resolution)] = Aggregator(app, resolution, self.grace)
        return agg

    def _measure(self, app: str, lines: list[Line], resolution: int, now: float) -> None:
        got = parse_lines(lines, self.prefix)
        self._aggregator(app, resolution).add_rows(got.rows, now)
        self.figures.invalid_metrics += len(got.invalid)

    # workers ---------------------------------------------------------------------------------

    def report(self) -> Report:
        """What this drain (a worker) took since its last report, handed over: its aggregators'
        shares and the growth of its figures, for the drain that merges all workers'."""
        shares = {key: agg.take() for key, agg in self._aggregators.items()}
        dropped = sum(a.dropped for a in self._aggregators.values())
        f, sent = self.figures, self._sent
        grown = {k: getattr(f, k) - getattr(sent, k) for k in _COUNTED}
        lines = {app: n - self._sent_lines.get(app, 0) for app, n in self._lines.items()}
        report = Report(
            {k: v for k, v in shares.items() if v}, grown, {a: n for a, n in lines.items() if n},
            dropped - self._sent_dropped,
        )  # fmt: skip
        self._sent = dataclasses.replace(f)
        self._sent_lines = dict(self._lines)
        self._sent_dropped = dropped
        return report

    def absorb(self, report: Report, now: float) -> None:
        """Merge a worker's report in, as if its lines had come here at `now`."""
        for (app, resolution), share in report.shares.items():
            self._aggregator(app, resolution).merge(share, now)
        for name, grown in report.figures.items():
            setattr(self.figures, name, getattr(self.figures, name) + grown)
        for app, n in report.lines.items():
            self._lines[app] = self._lines.get(app, 0) + n
        self.dropped_elsewhere += report.dropped

    def deliver(self, app: str, lines: list[Line]) -> None:
        """Lines of `app` (taken here, or by another worker) to the live tails here."""
        tails = self._tails.get(app)
        if tails:
            self._to_tails(tails, lines)

    def followed(self) -> set[str]:
        """The apps live tails here follow."""
        return {app for app, tails in self._tails.items() if tails}

    def _to_tails(self, tails: list[Tail], lines: list[Line]) -> None:
        for line in lines:
            text = None
            for tail in tails:
                if tail.filter.matches(line):
                    text = text or format_line(line)
                    tail.send(text)

    # out -------------------------------------------------------------------------------------

    def flush(self) -> list[Bucket]:
        """`collect`, then `emit` (tests and shutdown; the server emits from a thread)."""
        buckets = self.collect()
        self.emit(buckets)
        return buckets

    def emit(self, buckets: Sequence[Bucket]) -> None:
        """Hand buckets to the outlets (disk and network: not on the event loop)."""
        if buckets:
            for outlet in self.outlets:
                outlet.emit(buckets)

    def collect(self) -> list[Bucket]:
        """Close what is due and keep it for `metrics`, with the drain's own figures."""
        now = self.clock()
        if self._last_flush is not None:
            self.figures.flush_lag = max(0.0, now - self._last_flush - 1.0)
        self._last_flush = now
        buckets: list[Bucket] = []
        for agg in self._aggregators.values():
            buckets += agg.flush(now)
        buckets += self._own_figures(now)
        for b in buckets:
            recent = self._recent.get(b.key.app)
            if recent is None:
                recent = self._recent[b.key.app] = {}
            recent[b.key] = b  # a bucket handed out again keeps its place
            if len(recent) > RECENT:
                del recent[next(iter(recent))]
        return buckets

    def _own_figures(self, now: float) -> list[Bucket]:
        """Every SELF_RESOLUTION seconds, the counts since the last report, and the lag."""
        start = int(now // SELF_RESOLUTION) * SELF_RESOLUTION - SELF_RESOLUTION
        if self._own_at == start:
            return []
        self._own_at = start
        f, r = self.figures, self._reported
        late = sum(a.late for a in self._aggregators.values())
        dropped = sum(a.dropped for a in self._aggregators.values()) + self.dropped_elsewhere
        counts = {
            "lines.in": f.lines_in - r.lines_in,
            "frames.bad": f.bad_frames - r.bad_frames,
            "frames.duplicate": f.duplicates - r.duplicates,
            "metrics.invalid": f.invalid_metrics - r.invalid_metrics,
            "lines.late": late - self._late_reported,
            "lines.dropped": dropped - self._dropped_reported,
            "lines.future": f.future - r.future,
            "tokens.refused": f.tokens_refused - r.tokens_refused,
        }
        self._late_reported, self._dropped_reported = late, dropped
        self._reported = dataclasses.replace(f)
        out = [
            Bucket(Key(SELF, name, None, "", "count", start, SELF_RESOLUTION), sum=float(value))
            for name, value in counts.items()
        ]
        out.append(
            Bucket(
                Key(SELF, "flush.lag", None, "ms", "sample", start, SELF_RESOLUTION),
                last=round(f.flush_lag * 1000, 3),
            )
        )
        return out

    # reading back ----------------------------------------------------------------------------

    def metrics(self, app: str, name: str | None, since: float) -> list[Bucket]:
        """The app's buckets handed out, then those still open (partial), whose interval ends
        after `since`."""
        buckets = list(self._recent.get(app, {}).values())
        for (of, _), agg in self._aggregators.items():
            if of == app:
                buckets += agg.partial()
        return [
            b
            for b in buckets
            if b.key.time + b.key.resolution > since and (name is None or b.key.name == name)
        ]

    def why_no_metrics(self, app: str, name: str | None) -> str:
        """The sentence that says why `metrics` of `app` (and `name`) has nothing to show."""
        seconds = "/".join(str(r) for r in self.resolutions(app))
        when = (
            f"buckets are {seconds} s: one shows as partial as soon as a metric line comes, and"
            f" is complete {self.grace:g} s after its interval ends"
        )
        taken = self.lines_taken(app)
        if name is not None:
            return f"no metric named {name!r} in that time; {when}"
        if not taken:
            return (
                f"the drain has taken no lines of app {app} since it started: metrics come from"
                f" lines with measure#, sample#, count# or unique# and from router lines; {when}"
            )
        return (
            f"none of the {taken} lines of app {app} the drain took since it started in that"
            f" time had a metric (measure#NAME=VALUE, sample#, count#, unique#); {when}"
        )

    def lines_taken(self, app: str) -> int:
        """How many lines of `app` the drain took since it started."""
        return self._lines.get(app, 0)

    def resolutions(self, app: str) -> list[int]:
        """The resolutions `app`'s lines came in at (none yet: the default's)."""
        got = sorted(r for of, r in self._aggregators if of == app)
        return got or [self.default_resolution]

    def following(self, app: str) -> int:
        """How many live tails follow `app`."""
        return len(self._tails.get(app, ()))

    def follow(self, tail: Tail) -> Callable[[], None]:
        """Start sending the app's new lines to `tail`; returns how to stop."""
        self._tails.setdefault(tail.app, []).append(tail)

        def stop() -> None:
            tails = self._tails.get(tail.app, [])
            if tail in tails:
                tails.remove(tail)

        return stop
