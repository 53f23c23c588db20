"""Placement: spread the formation's processes over the healthy instances that run them (pure).

`place` turns totals (`web=10 worker=4`) into `{process name: instance id}`. Per type, the
processes `type.1` ... `type.N` go on the healthy instances of every layer that runs the type,
so that counts per instance differ by at most 1. Existing assignments are kept where that
evenness allows (web.1 stays where it is); when it does not, the fewest processes move, the
highest-numbered first. New processes go to the instance with the fewest of that type, then the
least total load, then the lowest id, so the same input always gives the same output.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gun.model import Layer


@dataclass(frozen=True)
class Instance:
    """What placement needs to know about an instance (a view of `gun.model.Instance`)."""

    id: str  # i-0a1b2c3d
    layer: str
    healthy: bool


def process_names(ptype: str, total: int) -> list[str]:
    """`("web", 3)` -> `["web.1", "web.2", "web.3"]`."""
    return [f"{ptype}.{n}" for n in range(1, max(0, total) + 1)]


def split_name(name: str) -> tuple[str, int] | None:
    """`"web.12"` -> `("web", 12)`; None for a name that is not `type.N` with N >= 1."""
    ptype, dot, number = name.rpartition(".")
    if not dot or not ptype or not number.isascii() or not number.isdigit():
        return None
    n = int(number)
    return (ptype, n) if n >= 1 else None


def eligible(ptype: str, layers: Sequence[Layer], instances: Sequence[Instance]) -> list[str]:
    """Ids (sorted) of the healthy instances whose layer runs `ptype`."""
    running = {la.name for la in layers if la.runs(ptype)}
    return sorted({i.id for i in instances if i.healthy and i.layer in running})


def unplaceable(
    totals: Mapping[str, int], layers: Sequence[Layer], instances: Sequence[Instance]
) -> dict[str, str]:
    """Why each type with processes to run cannot be placed, e.g.

    `{"clock": "no layer runs process type 'clock' (layers: app, jobs)"}` or
    `{"web": "layer app has no healthy instance (unhealthy: i-1)"}`. Placeable types are absent.
    """
    reasons: dict[str, str] = {}
    names = sorted({la.name for la in layers})
    for ptype in sorted(totals):
        if totals[ptype] <= 0 or eligible(ptype, layers, instances):
            continue
        running = sorted({la.name for la in layers if la.runs(ptype)})
        if not running:
            known = f"layers: {', '.join(names)}" if names else "the app has no layers"
            reasons[ptype] = f"no layer runs process type {ptype!r} ({known})"
            continue
        members = sorted({i.id for i in instances if i.layer in running})
        subject = (
            f"layers {', '.join(running)} have" if len(running) > 1 else f"layer {running[0]} has"
        )
        detail = f"unhealthy: {', '.join(members)}" if members else "no instances"
        reasons[ptype] = f"{subject} no healthy instance ({detail})"
    return reasons


def place(
    totals: Mapping[str, int],
    layers: Sequence[Layer],
    instances: Sequence[Instance],
    current: Mapping[str, str],
) -> dict[str, str]:
    """Returns {process name: instance id}, e.g. {"web.1": "i-0a1b2c3d", ...}.

    Types that cannot be placed (see `unplaceable`) are left out. Names in `current` that are
    not processes of `totals` (scaled down, one-off `run.N`, unknown types) are dropped.
    """
    types = [t for t in sorted(totals) if totals[t] > 0]
    pools = {t: eligible(t, layers, instances) for t in types}
    kept: dict[str, dict[str, str]] = {}
    for ptype in types:
        if pools[ptype]:
            kept[ptype] = _keep(ptype, totals[ptype], pools[ptype], current)
    # Load counts every kept process first, so new ones fill the emptiest instances overall.
    load: Counter[str] = Counter(i for assigned in kept.values() for i in assigned.values())
    result: dict[str, str] = {}
    for ptype, assigned in kept.items():
        counts: Counter[str] = Counter(assigned.values())
        # the emptiest first: only the one taken changes, so a heap gives what a `min` over
        # the pool for each new process gave (1,000 new on 1,000 instances: 1,000,000 keys)
        emptiest = [(counts[i], load[i], i) for i in pools[ptype]]
        heapq.heapify(emptiest)
        for name in process_names(ptype, totals[ptype]):
            if name not in assigned:
                count, held, target = heapq.heappop(emptiest)
                heapq.heappush(emptiest, (count + 1, held + 1, target))
                assigned[name] = target
                load[target] += 1
            result[name] = assigned[name]
    return result


def _keep(
    ptype: str, total: int, pool: Sequence[str], current: Mapping[str, str]
) -> dict[str, str]:
    """The current assignments of `ptype` that stay: on an eligible instance, and leaving room
    for an even spread (each instance ends with `total // len(pool)` or one more, and only
    `total % len(pool)` instances get the one more)."""
    allowed = set(pool)
    held: dict[str, list[int]] = {i: [] for i in pool}
    for name, instance in current.items():
        parsed = split_name(name)
        if parsed and parsed[0] == ptype and parsed[1] <= total and instance in allowed:
            held[instance].append(parsed[1])
    base, extra = divmod(total, len(pool))
    for numbers in held.values():
        numbers.sort()
        del numbers[base + 1 :]  # never more than the most any instance may hold
    # Too many instances at base + 1: trim the ones holding the highest numbers down to base.
    full = [i for i in pool if len(held[i]) > base]
    full.sort(key=lambda i: (held[i][-1], i), reverse=True)
    for instance in full[: max(0, len(full) - extra)]:
        held[instance].pop()
    return {f"{ptype}.{n}": i for i in pool for n in held[i]}
