"""What the metrics page charts, from the drain's series (pure): which series to read for a
range, and the charts they make. metrics_pages.py reads them; templates only lay them out.

Charts, each with the app's deploys (releases made in the range) as vertical lines:
- requests/s by status class: `router.status.Nxx` sums ÷ the step; the router's H-codes
  (`router.error.H*` sums) and the processes' R-codes (`error.R*`, from `heroku[web.1]: Error
  R14 (...)` lines: parse.py) marked where they happened.
- router service time: median, p95, p99 of `router.service` (ms).
- memory per process type: the mean over the type's processes of `memory_rss` (`last`, MB) at
  each point, and the mean of their `memory_quota` when the agent reports one.
- load per process type: the mean over the type's processes of `load_avg_1m`.
- one custom metric (`?metric=NAME`, default the first): median and p95 of a measure, the sum
  of a count, the last sample, the unique count; one line per source when it has sources.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gun.dashboard.charts import Chart, Line, Mark
from gun.errors import InvalidParams
from gun.logs.series import Points, Series
from gun.model import Release

RANGES = {"1h": 3600, "1d": 86400, "1w": 7 * 86400}
DEFAULT_RANGE = "1h"
STATUS = re.compile(r"router\.status\.[1-5]xx\Z")
ERROR_CODE = re.compile(r"router\.error\.(H[0-9]{1,3})\Z|error\.(R[0-9]{1,3})\Z")
SERVICE = (("median", "p50"), ("p95", "p95"), ("p99", "p99"))
PER_TYPE = (
    ("memory_rss", "memory", "Memory (mean RSS per process)", "MB"),
    ("load_avg_1m", "load", "Load (mean 1 min load average per process)", ""),
)
RUNTIME = frozenset(
    (
        "memory_total", "memory_rss", "memory_cache", "memory_swap", "memory_pgpgin",
        "memory_pgpgout", "memory_quota", "load_avg_1m", "load_avg_5m", "load_avg_15m",
        "cpu_percent",
    )
)  # fmt: skip
CUSTOM_STATS: tuple[tuple[str, str], ...] = (("median", "p50"), ("p95", "p95"), ("sum", "sum"))
CUSTOM_STATS += (("last", "last"), ("unique", "unique"))

Key = tuple[str, str]  # (series name, stat)


@dataclass(frozen=True)
class Wanted:
    """The reads a page needs: single series (no source) and per-source series."""

    single: list[Key] = field(default_factory=list)
    per_source: list[Key] = field(default_factory=list)


@dataclass(frozen=True)
class Read:
    """What the drain answered to a page's reads (a series it no longer has: absent)."""

    single: Mapping[Key, Points]
    per_source: Mapping[Key, Mapping[str, Points]]


def range_of(text: str | None) -> str:
    """The range asked for (none: the default); InvalidParams naming the ranges otherwise."""
    if text is None:
        return DEFAULT_RANGE
    if text not in RANGES:
        raise InvalidParams(f"range={text[:40]!r} is not one of {', '.join(RANGES)}")
    return text


def custom_names(listing: Iterable[Series]) -> list[str]:
    """The app's own series names (not the router's, the R-codes or the runtime metrics),
    sorted."""
    return sorted(
        {
            s.name
            for s in listing
            if not s.name.startswith("router.")
            and s.name not in RUNTIME
            and not ERROR_CODE.match(s.name)
        }
    )


def custom_stats(listing: Iterable[Series], name: str) -> list[tuple[str, str]]:
    """(stat, label) to chart for the custom series `name`."""
    stats = {st for s in listing if s.name == name for st in s.stats}
    if "p95" in stats:
        return [(s, label) for s, label in CUSTOM_STATS[:2] if s in stats]
    return [(s, label) for s, label in CUSTOM_STATS[2:] if s in stats][:1]


def wanted(listing: Sequence[Series], metric: str | None) -> Wanted:
    """The reads the page's charts need, given what the app has."""
    names = {s.name for s in listing}
    sourced = {s.name for s in listing if s.source is not None}
    single: list[Key] = sorted((n, "sum") for n in names if STATUS.match(n) or ERROR_CODE.match(n))
    single += [("router.service", stat) for stat, _ in SERVICE if "router.service" in names]
    runtime: tuple[str, ...] = ("memory_rss", "memory_quota", "load_avg_1m")
    per_source: list[Key] = [(n, "last") for n in runtime if n in sourced]
    if metric is not None and metric in custom_names(listing):
        keys = [(metric, stat) for stat, _ in custom_stats(listing, metric)]
        (per_source if metric in sourced else single).extend(keys)
    return Wanted(single, per_source)


def deploys(releases: Iterable[Release]) -> list[Mark]:
    return [Mark(r.created_at.timestamp(), f"v{r.version} {r.description}") for r in releases]


def charts(
    read: Read,
    span: tuple[int, int],
    releases: Iterable[Release],
    metric: str | None,
    listing: Sequence[Series],
) -> list[Chart]:
    """The page's charts, in order (see the module docstring)."""
    events = deploys(releases)
    found = [
        _requests(read, span, events),
        Chart(
            "service",
            "Router service time",
            "ms",
            span,
            [
                Line(label, read.single[("router.service", stat)].points)
                for stat, label in SERVICE
                if ("router.service", stat) in read.single
            ],
            events=events,
        ),
    ]
    for name, key, title, unit in PER_TYPE:
        lines = per_type(read.per_source.get((name, "last"), {}))
        if name == "memory_rss":
            quota = per_type(read.per_source.get(("memory_quota", "last"), {}))
            lines += [Line(f"{q.label} quota", q.points) for q in quota]
        found.append(Chart(key, title, unit, span, lines, events=events))
    if metric is not None and metric in custom_names(listing):
        lines = []
        for stat, label in custom_stats(listing, metric):
            if (metric, stat) in read.single:
                lines.append(Line(label, read.single[(metric, stat)].points))
            for source, pts in sorted(read.per_source.get((metric, stat), {}).items()):
                lines.append(Line(f"{source} {label}", pts.points))
        found.append(Chart("custom", metric, "", span, lines, events=events))
    return found


def _requests(read: Read, span: tuple[int, int], events: list[Mark]) -> Chart:
    lines = [
        Line(name.rsplit(".", 1)[1], [(t, _rate(v, pts.step)) for t, v in pts.points])
        for (name, _), pts in sorted(read.single.items())
        if STATUS.match(name)
    ]
    markers = [
        Mark(t, f"{m[1] or m[2]} ×{v:g}")
        for (name, _), pts in sorted(read.single.items())
        if (m := ERROR_CODE.match(name))
        for t, v in pts.points
        if v
    ]
    return Chart("requests", "Requests per second", "/s", span, lines, markers, events)


def _rate(v: float | None, step: int) -> float | None:
    return None if v is None or step <= 0 else v / step


def process_type(source: str) -> str:
    """`web.1` -> `web`."""
    return source.rpartition(".")[0] or source


def per_type(sources: Mapping[str, Points]) -> list[Line]:
    """One line per process type: at each time, the mean of its processes' values there."""
    groups: dict[str, dict[int, list[float]]] = {}
    for source, pts in sources.items():
        at = groups.setdefault(process_type(source), {})
        for t, v in pts.points:
            values = at.setdefault(t, [])
            if v is not None:
                values.append(v)
    order = sorted(groups, key=lambda t: (t != "web", t))
    return [
        Line(
            kind, [(t, sum(vs) / len(vs) if vs else None) for t, vs in sorted(groups[kind].items())]
        )
        for kind in order
    ]


@dataclass(frozen=True)
class AppFigures:
    """The apps page's figures of one app over the last hour."""

    error_rate: str  # `1.2%`, `–` when unknown or no requests
    p95: str  # `45 ms`, `–`


UNKNOWN = "–"


def app_figures(requests: float, errors: float, p95: float | None) -> AppFigures:
    rate = f"{100 * errors / requests:.1f}%" if requests > 0 else UNKNOWN
    return AppFigures(rate, UNKNOWN if p95 is None else f"{p95:.0f} ms")
