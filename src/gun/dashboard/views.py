"""What the dashboard's pages show, from the Platform's values (pure): the apps table's rows,
processes grouped by instance, the process types one may scale, the releases one may roll
back to. Templates only lay these out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from gun.core.apps import Status
from gun.model import Process, Release
from gun.store.time import utc

UNPLACED = ""  # the instance key of processes placement put nowhere yet


@dataclass(frozen=True)
class AppRow:
    name: str
    release: int | None
    formation: str  # web=2 worker=1
    up: int
    total: int


def formation_text(totals: Mapping[str, int]) -> str:
    """`web=2 worker=1`: every type, web first, then by name; `none` when empty."""
    order = sorted(totals, key=lambda t: (t != "web", t))
    return " ".join(f"{t}={totals[t]}" for t in order) or "none"


def app_row(status: Status) -> AppRow:
    """An app's row: processes up of the formation's total (those meta is stopping are not)."""
    totals = status.formation
    up = status.processes.get("up", 0)
    return AppRow(status.app, status.release, formation_text(totals), up, sum(totals.values()))


def uptime(since: datetime | None, at: datetime) -> str:
    """`45s`, `12m`, `3h 5m`, `2d 4h` since `since`; empty when unknown."""
    if since is None:
        return ""
    seconds = max(0, int((at - utc(since)).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes}m"
    if days < 1:
        return f"{hours}h {minutes % 60}m"
    return f"{days}d {hours % 24}h"


@dataclass(frozen=True)
class ProcessRow:
    name: str
    state: str
    release: int | None
    restarts: int
    uptime: str  # how long in its state (up: its uptime)


def _number(name: str) -> tuple[str, int]:
    kind, _, n = name.partition(".")
    return kind, int(n) if n.isdigit() else 0


def by_instance(processes: Sequence[Process], at: datetime) -> list[tuple[str, list[ProcessRow]]]:
    """[(instance, rows)], instances by name, processes by type then number (web.2 before
    web.10); processes not placed yet under UNPLACED, last. A process meta is stopping shows
    as `stopping` whatever its agent last said."""
    groups: dict[str, list[Process]] = {}
    for p in processes:
        groups.setdefault(p.instance or UNPLACED, []).append(p)
    order = sorted(groups, key=lambda i: (i == UNPLACED, i))
    return [
        (
            instance,
            [
                ProcessRow(
                    p.name,
                    p.state if p.desired else "stopping",
                    p.release,
                    p.restarts,
                    uptime(p.since, at),
                )
                for p in sorted(groups[instance], key=lambda p: _number(p.name))
            ],
        )
        for instance in order
    ]


def scalable(totals: Mapping[str, int], current: Release | None) -> list[tuple[str, int]]:
    """[(type, quantity)]: the current release's Procfile types and the formation's, web first;
    `release` runs once per release and is never scaled."""
    types = set(totals) | set((current.process_types or {}) if current else {})
    types.discard("release")
    return [(t, totals.get(t, 0)) for t in sorted(types, key=lambda t: (t != "web", t))]


def may_roll_back_to(release: Release, current: int | None) -> bool:
    """A release other than the current one that did not fail (the Platform judges the rest:
    a slug no longer kept, a release without a build)."""
    return release.version != current and release.status != "failed"


def memory_text(rss: float | None, quota: float | None) -> str:
    """`41 / 512 MB` (RSS of quota), `41 MB` without a quota, empty when unknown."""
    if rss is None:
        return ""
    return f"{rss:.0f} MB" if quota is None else f"{rss:.0f} / {quota:.0f} MB"
