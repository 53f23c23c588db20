"""Graphite names for buckets: which statistics a bucket type has, and the dotted metric path
`PREFIX.APP.NAME[.SOURCE]` shared by the whisper and statsd outlets. Pure.

A path is a list of parts joined by dots (Graphite turns each dot into a directory). The
metric name keeps its dots (`db.query` is two parts, as in Graphite); the app and the source
are one part each (`web.1` becomes `web_1`). In every part, each character outside
`[A-Za-z0-9_-]` becomes `_`, and an empty part becomes `_`, so a part is always a safe file
name and statsd passes it through unchanged.
"""

from __future__ import annotations

import re

from gun.logs.model import Bucket, Key, MetricType

# The statistics each type of bucket carries, in the order outlets write them.
STATS: dict[MetricType, tuple[str, ...]] = {
    "count": ("sum",),
    "sample": ("last",),
    "unique": ("unique",),
    "measure": ("count", "sum", "min", "max", "mean", "median", "p95", "p99"),
}

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def part(text: str) -> str:
    """One path part: characters outside [A-Za-z0-9_-] become `_`; empty becomes `_`."""
    return _UNSAFE.sub("_", text) or "_"


def series_parts(prefix: str, key: Key) -> list[str]:
    """[prefix parts..., app, name parts..., source?] for one series (no statistic)."""
    parts = [part(p) for p in prefix.split(".")] if prefix else []
    parts.append(part(key.app))
    parts.extend(part(p) for p in key.name.split("."))
    if key.source is not None:
        parts.append(part(key.source))
    return parts


def series_path(prefix: str, key: Key) -> str:
    """`gun.demo.db.query` / `gun.demo.memory_rss.web_1`: the dotted path of one series."""
    return ".".join(series_parts(prefix, key))


def stat_values(bucket: Bucket) -> list[tuple[str, float]]:
    """(statistic, value) for each statistic of the bucket's type that has a value."""
    found: list[tuple[str, float]] = []
    for stat in STATS[bucket.key.type]:
        value = getattr(bucket, stat)
        if value is not None:
            found.append((stat, float(value)))
    return found
