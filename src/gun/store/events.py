"""Queries for the audit log: one event per change, who did it and what."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert, select

from gun.model import App, Event
from gun.store.queries import Queries
from gun.store.schema import events
from gun.store.time import now, utc


class EventQueries(Queries):
    def record(self, app: App | None, actor: str, action: str, detail: dict[str, object]) -> None:
        self.record_all(app, [(actor, action, detail)])

    def record_all(
        self, app: App | None, entries: Iterable[tuple[str, str, dict[str, object]]]
    ) -> None:
        """Events (actor, action, detail) in one statement."""
        created = now()
        self.conn.execute(
            insert(events),
            [
                {
                    "app_id": app.id if app else None,
                    "app_name": app.name if app else None,
                    "actor": actor,
                    "action": action,
                    "detail": detail,
                    "created_at": created,
                }
                for actor, action, detail in entries
            ],
        )

    def of(self, app_name: str | None, limit: int) -> list[Event]:
        """The newest `limit` events, of one app or (None) of all."""
        q = select(events).order_by(events.c.id.desc()).limit(limit)
        if app_name is not None:
            q = q.where(events.c.app_name == app_name)
        return [
            Event(r.id, r.app_name, r.actor, r.action, dict(r.detail), utc(r.created_at))
            for r in self.conn.execute(q)
        ]
