"""Prometheus outlet: keeps the latest bucket of every series and renders them in Prometheus
text exposition format (version 0.0.4) for `GET /metrics`.

A series is (app, name, source, unit, type). Metric names are `gun_` + the name with every
character outside `[a-zA-Z0-9_]` turned into `_` (`db.query` -> `gun_db_query`); labels are
`app`, `source` and `unit`, each left out when empty. No timestamps: Prometheus stamps a
scrape itself.

    count#signup=1         gun_signup_total{app="demo"} 7            counter: sum of every
                                                                     bucket received
    sample#memory_rss=21MB gun_memory_rss{app="demo",unit="MB"} 21  gauge: latest bucket
    unique#user=ann        gun_user{app="demo"} 4                    gauge: latest bucket
    measure#db.query=12ms  gun_db_query{...,quantile="0.5"} 12       summary: median, p95 and
                           gun_db_query_sum{...} 240                 p99 of the latest bucket;
                           gun_db_query_count{...} 20                _sum and _count of every
                           gun_db_query_min{...} 3                   bucket received; min and
                           gun_db_query_max{...} 40                  max gauges: latest bucket

Two series whose names collide after sanitising (`db.query` and `db_query` with the same
labels, or `sample#x` and `measure#x`) cannot both be shown: the first in sorted order is,
and each other is named in a `# gun:` comment line at the end instead of vanishing silently.
Series are kept for the life of the outlet (a drain's series are few: names times sources).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from gun.logs.model import Bucket, MetricType

SeriesId = tuple[str, str, str, str, MetricType]  # app, name, source ("" if none), unit, type
Labels = tuple[tuple[str, str], ...]

_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(prefix: str, name: str) -> str:
    """`gun_` + name with characters outside [a-zA-Z0-9_] as `_`."""
    return _UNSAFE.sub("_", f"{prefix}_{name}")


def number(value: float) -> str:
    """A sample value as Prometheus reads it: `12`, `0.25`, `NaN`, `+Inf`."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _sample_line(name: str, labels: Labels, value: float) -> str:
    inner = ",".join(f'{k}="{_label_value(v)}"' for k, v in labels)
    return f"{name}{{{inner}}} {number(value)}" if inner else f"{name} {number(value)}"


@dataclass
class _Family:
    name: str
    type: str
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)


class PrometheusOutlet:
    """Latest bucket per series, rendered on demand; safe to emit and render from two threads."""

    def __init__(self, prefix: str = "gun") -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self._latest: dict[SeriesId, Bucket] = {}
        self._count: dict[SeriesId, float] = {}  # accumulated: counts, measures' count
        self._sum: dict[SeriesId, float] = {}  # accumulated: measures' sum

    def emit(self, buckets: Sequence[Bucket]) -> None:
        with self._lock:
            for bucket in buckets:
                k = bucket.key
                sid: SeriesId = (k.app, k.name, k.source or "", k.unit, k.type)
                was = bucket.previous  # handed out before: add only what it grew by
                if k.type == "count":
                    grew = (bucket.sum or 0.0) - (was.sum or 0.0 if was else 0.0)
                    self._count[sid] = self._count.get(sid, 0.0) + grew
                elif k.type == "measure":
                    grew = (bucket.count or 0) - (was.count or 0 if was else 0)
                    self._count[sid] = self._count.get(sid, 0.0) + grew
                    grew = (bucket.sum or 0.0) - (was.sum or 0.0 if was else 0.0)
                    self._sum[sid] = self._sum.get(sid, 0.0) + grew
                latest = self._latest.get(sid)
                if latest is None or k.time >= latest.key.time:
                    self._latest[sid] = bucket

    def close(self) -> None:
        pass

    def _families(self, sid: SeriesId, bucket: Bucket) -> list[_Family]:
        """The families (each with this series' samples only) that show one series."""
        app, name, source, unit, type_ = sid
        labels: Labels = tuple(
            (k, v) for k, v in (("app", app), ("source", source), ("unit", unit)) if v
        )
        base = metric_name(self.prefix, name)
        if type_ == "count":
            help_ = f"count#{name}: sum of the values counted"
            return [
                _Family(
                    f"{base}_total", "counter", help_, [(f"{base}_total", labels, self._count[sid])]
                )
            ]
        if type_ in ("sample", "unique"):
            value = bucket.last if type_ == "sample" else bucket.unique
            if value is None:
                return []
            what = "last value" if type_ == "sample" else "number of distinct values"
            help_ = f"{type_}#{name}: {what} in the latest bucket"
            return [_Family(base, "gauge", help_, [(base, labels, float(value))])]
        summary = _Family(
            base,
            "summary",
            f"measure#{name}: quantiles of the latest bucket; _sum and _count of all buckets",
        )
        for q, value in (("0.5", bucket.median), ("0.95", bucket.p95), ("0.99", bucket.p99)):
            if value is not None:
                summary.samples.append((base, (*labels, ("quantile", q)), value))
        summary.samples.append((f"{base}_sum", labels, self._sum[sid]))
        summary.samples.append((f"{base}_count", labels, self._count[sid]))
        found = [summary]
        for stat, value in (("min", bucket.min), ("max", bucket.max)):
            if value is not None:
                help_ = f"measure#{name}: {'minimum' if stat == 'min' else 'maximum'} in the "
                help_ += "latest bucket"
                found.append(
                    _Family(f"{base}_{stat}", "gauge", help_, [(f"{base}_{stat}", labels, value)])
                )
        return found

    def render(self) -> str:
        """The text exposition of every series: HELP and TYPE, then samples, per family."""
        families: dict[str, _Family] = {}
        owner: dict[str, str] = {}  # sample name -> family name
        seen: set[tuple[str, Labels]] = set()
        skipped: list[str] = []
        with self._lock:
            shown = [(sid, self._families(sid, b)) for sid, b in sorted(self._latest.items())]
        for sid, parts in shown:
            if not _fits(parts, families, owner, seen):
                app, name, source, unit, type_ = sid
                fields = (("app", app), ("source", source), ("unit", unit))
                skipped.append(" ".join([f"{type_}#{name}"] + [f"{k}={v}" for k, v in fields if v]))
                continue
            for part in parts:
                family = families.setdefault(part.name, _Family(part.name, part.type, part.help))
                for sample in part.samples:
                    family.samples.append(sample)
                    owner[sample[0]] = part.name
                    seen.add((sample[0], sample[1]))
        out: list[str] = []
        for fname in sorted(families):
            family = families[fname]
            out.append(f"# HELP {fname} {_help_text(family.help)}")
            out.append(f"# TYPE {fname} {family.type}")
            out.extend(_sample_line(n, labels, v) for n, labels, v in family.samples)
        out.extend(
            f"# gun: {_help_text(s)} not shown: its metric name collides with another series"
            for s in skipped
        )
        return "".join(f"{line}\n" for line in out)


def _fits(
    parts: list[_Family],
    families: dict[str, _Family],
    owner: dict[str, str],
    seen: set[tuple[str, Labels]],
) -> bool:
    """Whether these families can join the exposition without clashing with what is there."""
    for part in parts:
        family = families.get(part.name)
        if family is not None and family.type != part.type:
            return False
        if owner.get(part.name, part.name) != part.name:
            return False
        for name, labels, _ in part.samples:
            if owner.get(name, part.name) != part.name or (name, labels) in seen:
                return False
    return True
