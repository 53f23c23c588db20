"""Processes: where placement put each one and what its agent last said; restarts."""

from __future__ import annotations

from gun.core.access import authorize
from gun.errors import NotFound
from gun.model import Principal, Process
from gun.store import Store


class Processes:
    def __init__(self, store: Store) -> None:
        self.store = store

    def all(self, who: Principal, name: str) -> list[Process]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.processes.of(tx.apps.existing(name).id)

    def restart(self, who: Principal, name: str, target: str | None) -> list[str]:
        """Ask agents to restart processes (all, a type, or one name); returns the names."""
        authorize(who, "developer", name)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            procs = [p for p in tx.processes.of(app.id) if p.desired]
            chosen = [p for p in procs if target is None or target in (p.name, p.type)]
            if not chosen:
                raise NotFound(
                    f"app {name!r} has no process or process type {target!r} running"
                    if target
                    else f"app {name!r} has no processes running"
                )
            for p in chosen:
                tx.processes.bump_nonce(app.id, p.name)
            tx.apps.bump_generation(app.id)
            tx.events.record(app, who.name, "ps.restart", {"target": target})
            return sorted(p.name for p in chosen)
