"""Placement written: an app's formation placed on its online instances (`gun.placement`, pure)
and the differences written to the store, inside the caller's transaction.

Every change that can move processes calls `write_placement` with the app's row locked: a
scale, a layer's types, a deploy or rollback (another build may have other process types), an
instance added back, lost or deleted. It bumps the app's generation, so the app's agents hear
of it at once.
"""

from __future__ import annotations

from gun import placement
from gun.model import App
from gun.procfile import RELEASE
from gun.store import Tx


def placement_instances(tx: Tx, app_id: int) -> list[placement.Instance]:
    """The app's instances as placement sees them: healthy while online."""
    return [placement.Instance(i.id, i.layer, i.state == "online") for i in tx.instances.of(app_id)]


def write_placement(tx: Tx, app: App) -> None:
    """Place the current release's formation (nothing before the first build; never the
    release type) and write the differences: a process placed anew starts; one no longer
    wanted on an online instance is undesired (its agent stops it, then it is removed); one on
    an instance that is not online is removed at once. Bumps the app's generation."""
    current_version = tx.releases.current_version(app.id)
    release = tx.releases.get(app, current_version) if current_version else None
    totals = tx.formation.of(app.id)
    if release is None or release.process_types is None:
        totals = {}  # nothing to run before the first build
    else:
        totals = {t: n for t, n in totals.items() if t in release.process_types and t != RELEASE}
    layers = tx.layers.of(app.id)
    instances = placement_instances(tx, app.id)
    procs = {p.name: p for p in tx.processes.of(app.id)}
    current = {n: p.instance for n, p in procs.items() if p.desired and p.instance}
    wanted = placement.place(totals, layers, instances, current)
    online = {i.id for i in instances if i.healthy}
    moved = [(n, n.rpartition(".")[0], i) for n, i in wanted.items() if current.get(n) != i]
    tx.processes.place(app.id, moved, known=procs.keys())
    undesired = []
    for name, p in procs.items():
        if name in wanted:
            continue
        if p.instance in online and p.desired:
            undesired.append(name)  # its agent stops it, then it is removed
        elif p.instance not in online:
            tx.processes.delete(app.id, name)
    tx.processes.undesire(app.id, undesired)
    tx.apps.bump_generation(app.id)
