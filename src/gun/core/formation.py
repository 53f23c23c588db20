"""Formation: how many processes of each type an app runs, in total; scaling it.

`gun.formation` parses and formats formations (pure); this service checks a scale against the
current release's Procfile, the layers and the per-app limit, writes it and places it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gun import formation as formations
from gun import placement
from gun.core.access import authorize
from gun.core.placing import placement_instances, write_placement
from gun.errors import InvalidParams
from gun.model import Instance, Layer, Principal, check_process_type
from gun.store import Store

MAX_PROCESSES = 100  # per app, across process types (GUN_MAX_PROCESSES)


@dataclass(frozen=True)
class Scaled:
    """A scale's outcome: the formation totals, and {type: one sentence} for each type it
    changed that nothing can run yet (accepted: its processes start once an instance of its
    layer is there)."""

    totals: dict[str, int]
    warnings: dict[str, str]


def scale_warning(
    ptype: str, quantity: int, layers: Sequence[Layer], instances: Sequence[Instance]
) -> str | None:
    """Why no instance can run `quantity` processes of `ptype` (None when one can): the layers
    that run it have no instances, or only lost ones. A pending instance (its agent starting)
    counts as one that can."""
    running = sorted(la.name for la in layers if la.runs(ptype))
    if quantity <= 0 or not running:
        return None
    members = sorted(i.id for i in instances if i.layer in running)
    if any(i.state != "lost" for i in instances if i.layer in running):
        return None
    where = f"layer {running[0]} has" if len(running) == 1 else f"layers {', '.join(running)} have"
    if not members:
        return (
            f"no instance runs {ptype}: {where} no instances, so {ptype}={quantity} waits "
            f"until `gun instances.create:{running[0]}` adds one"
        )
    return (
        f"no instance runs {ptype} now: {where} only lost instances ({', '.join(members)}), so "
        f"{ptype}={quantity} waits until one is back"
    )


class Formation:
    def __init__(self, store: Store, max_processes: int = MAX_PROCESSES) -> None:
        self.store = store
        self.max_processes = max_processes

    def get(self, who: Principal, name: str) -> tuple[dict[str, int], list[Layer]]:
        """The formation's totals, and the layers that share them out."""
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            app = tx.apps.existing(name)
            return tx.formation.of(app.id), tx.layers.of(app.id)

    def shares(self, who: Principal, name: str) -> dict[str, dict[str, int]]:
        """{layer: {type: processes}}: the totals shared out as placement spreads them."""
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            app = tx.apps.existing(name)
            totals, layers = tx.formation.of(app.id), tx.layers.of(app.id)
            weights = tx.instances.counts(app.id)
        return formations.layer_shares(totals, layers, weights or None)

    def unplaceable(self, who: Principal, name: str) -> dict[str, str]:
        """{type: why} for each type with processes that no healthy instance can run now."""
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            app = tx.apps.existing(name)
            instances = placement_instances(tx, app.id)
            return placement.unplaceable(tx.formation.of(app.id), tx.layers.of(app.id), instances)

    def scale(self, who: Principal, name: str, changes: Sequence[formations.Change]) -> Scaled:
        """Set formation totals. Refused: an unknown or unscalable type, a relative change
        below 0, more than `max_processes` in all (unless it is fewer than before). Accepted
        with a warning: a type that no instance can run yet."""
        authorize(who, "developer", name)
        if not changes:
            raise InvalidParams("formation is empty: give at least one TYPE=N, e.g. web=2")
        named = [c.type for c in changes]
        for t in named:
            if named.count(t) > 1:
                raise InvalidParams(f"formation names process type {t!r} more than once")
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            current = tx.releases.current_version(app.id)
            release = tx.releases.get(app, current) if current else None
            known = release.process_types if release else None
            layers = tx.layers.of(app.id)
            totals = tx.formation.of(app.id)
            before = sum(totals.values())
            for change in changes:
                check_process_type(change.type)
                if change.type == "release":
                    raise InvalidParams(
                        "the release process type runs once per release and cannot be scaled"
                    )
                if known is not None and change.type not in known:
                    types = ", ".join(t for t in known if t != "release") or "none"
                    raise InvalidParams(
                        f"process type {change.type!r} is not in the Procfile of v{current} "
                        f"(it has: {types})"
                    )
                quantity = change.apply(totals.get(change.type, 0))
                if quantity > 0 and not any(la.runs(change.type) for la in layers):
                    raise InvalidParams(
                        f"no layer runs process type {change.type!r} (layers: "
                        f"{', '.join(la.name for la in layers) or 'none'}): add it with "
                        f"`gun layers.set:LAYER types=...`"
                    )
                if quantity > formations.MAX_QUANTITY:
                    raise InvalidParams(
                        f"formation {change}: quantity must be at most {formations.MAX_QUANTITY}"
                    )
                totals[change.type] = quantity
            total = sum(totals.values())
            if total > self.max_processes and total > before:
                words = " ".join(f"{t}={n}" for t, n in totals.items() if n)
                raise InvalidParams(
                    f"{words} would run {total} processes of app {name!r}, over the limit of "
                    f"{self.max_processes} per app (GUN_MAX_PROCESSES on meta)"
                )
            tx.formation.put(app.id, totals)
            write_placement(tx, app)
            tx.events.record(
                app, who.name, "formation.scale", {"changes": [str(c) for c in changes]}
            )
            instances = tx.instances.of(app.id)
        warnings = {
            c.type: w
            for c in changes
            if (w := scale_warning(c.type, totals[c.type], layers, instances)) is not None
        }
        return Scaled(totals, warnings)
