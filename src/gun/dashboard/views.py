"""What the dashboard's pages show, from the Platform's values (pure): the apps table's rows,
processes grouped by instance, the process types one may scale, the releases one may roll
back to. Templates only lay these out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from gun.core.apps import Status
from gun.model import Instance, Layer, Process, Release
from gun.store.time import utc

UNPLACED = ""  # the instance key of processes placement put nowhere yet


@dataclass(frozen=True)
class AppRow:
    name: str
    release: int | None
    formation: str  # web=2 worker=1
    up: int
    total: int
    last_deploy: str  # ISO 8601; empty: never deployed
    deployed_ago: str  # `3h 5m`; empty: never deployed


def formation_text(totals: Mapping[str, int]) -> str:
    """`web=2 worker=1`: every type, web first, then by name; `none` when empty."""
    order = sorted(totals, key=lambda t: (t != "web", t))
    return " ".join(f"{t}={totals[t]}" for t in order) or "none"


def app_row(status: Status, at: datetime) -> AppRow:
    """An app's row: processes up of the formation's total (those meta is stopping are not)."""
    totals = status.formation
    up = status.processes.get("up", 0)
    when = status.last_deploy or ""
    ago = uptime(datetime.fromisoformat(when), at) if when else ""
    return AppRow(
        status.app, status.release, formation_text(totals), up, sum(totals.values()), when, ago
    )


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


@dataclass(frozen=True)
class InstanceRow:
    id: str
    layer: str
    provider: str
    state: str
    where: str  # its ssh host, else its address
    heartbeat: str  # how long since its agent's last heartbeat; empty: never
    problem: str  # why it cannot run the current release, or its setup failed; empty: none


def instance_rows(instances: Sequence[Instance], at: datetime) -> list[InstanceRow]:
    """The app's instances by layer, then id."""
    rows = []
    for i in sorted(instances, key=lambda i: (i.layer, i.id)):
        problem = i.problem or ("setup failed" if i.setup_state == "failed" else "")
        where = i.host or i.address or ""
        ago = uptime(i.last_heartbeat, at)
        rows.append(
            InstanceRow(i.id, i.layer, i.provider, i.state, where, ago and f"{ago} ago", problem)
        )
    return rows


@dataclass(frozen=True)
class LayerRow:
    name: str
    runs: str  # `web worker`, or `every type`
    provider: str
    instances: int


def layer_rows(layers: Sequence[Layer], instances: Sequence[Instance]) -> list[LayerRow]:
    """The app's layers by name, with what they run and how many instances each has."""
    counts: dict[str, int] = {}
    for i in instances:
        counts[i.layer] = counts.get(i.layer, 0) + 1
    return [
        LayerRow(
            layer.name,
            " ".join(layer.types) if layer.types is not None else "every type",
            layer.provider or "local",
            counts.get(layer.name, 0),
        )
        for layer in sorted(layers, key=lambda layer: layer.name)
    ]


@dataclass(frozen=True)
class ConfigRow:
    name: str
    readable: bool  # whether the token's role may read values
    value: str | None  # shown: only when asked for (`?show=NAME`, `?show=*` for all)


def config_rows(config: Mapping[str, str | None], show: str | None) -> list[ConfigRow]:
    """The config vars by name, values only for those asked to be shown (a viewer's are None:
    its role may not read them)."""
    return [
        ConfigRow(
            k,
            v is not None,
            v if v is not None and show is not None and show in (k, "*") else None,
        )
        for k, v in sorted(config.items())
    ]


def memory_text(rss: float | None, quota: float | None) -> str:
    """`41 / 512 MB` (RSS of quota), `41 MB` without a quota, empty when unknown."""
    if rss is None:
        return ""
    return f"{rss:.0f} MB" if quota is None else f"{rss:.0f} / {quota:.0f} MB"
