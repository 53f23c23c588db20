"""The values that flow through the drain: a log line, a measurement taken from it, and a
bucket of measurements aggregated over one resolution interval. No I/O."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

MetricType = Literal["count", "sample", "measure", "unique"]


@dataclass(slots=True)
class Line:
    """One syslog message of a logplex frame: `<PRI>1 TIMESTAMP host APPNAME PROCID - MSG`.
    Not frozen: a drain makes one per line, and a frozen dataclass costs 0.4 us more each."""

    time: float  # epoch seconds, from TIMESTAMP
    timestamp: str  # TIMESTAMP as written (RFC 3339); a line the drain re-dates gets both anew
    appname: str  # "app" (process output) or "heroku" (router, runtime metrics, platform)
    procid: str  # web.1, router, run.7, ...
    msg: str


@dataclass(frozen=True, slots=True)
class Measurement:
    """One value for one series, e.g. measure#db.query=12ms from web.1."""

    name: str  # db.query, router.service, memory_rss ...
    source: str | None  # source=X, else None
    unit: str  # ms, MB, "" ...
    type: MetricType
    value: float  # for unique: unused (0.0)
    time: float  # epoch seconds
    text: str | None = None  # for unique: the value counted as distinct


@dataclass(frozen=True, slots=True)
class Key:
    """What a bucket is keyed by (l2met's bucket.Id)."""

    app: str
    name: str
    source: str | None
    unit: str
    type: MetricType
    time: int  # start of the interval, epoch seconds, a multiple of resolution
    resolution: int  # seconds


@dataclass(frozen=True, slots=True)
class Bucket:
    """A closed interval of one series with its statistics; None where one does not apply
    (count -> sum; sample -> last; unique -> unique; measure -> count, sum, min, max, mean,
    median, p95, p99). The shape of `gun metrics --json`. `partial`: the interval is still
    open (shown, never sent to outlets). `previous`: the bucket of this key handed out before,
    when late measurements made this one (not compared, not shown)."""

    key: Key
    count: int | None = None
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    median: float | None = None
    p95: float | None = None
    p99: float | None = None
    last: float | None = None
    unique: int | None = None
    partial: bool = False
    previous: Bucket | None = field(default=None, compare=False, repr=False)

    def with_previous(self, previous: Bucket | None) -> Bucket:
        return dataclasses.replace(self, previous=previous)

    def json(self) -> dict[str, object]:
        k = self.key
        return {
            "name": k.name,
            "source": k.source,
            "unit": k.unit,
            "type": k.type,
            "time": k.time,
            "count": self.count,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "median": self.median,
            "p95": self.p95,
            "p99": self.p99,
            "last": self.last,
            "unique": self.unique,
            "partial": self.partial,
        }
