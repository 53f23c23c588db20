"""Queries for log drains: the app's outbound drains and its ingest token."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from gun.model import App, Drain
from gun.store.queries import Queries
from gun.store.schema import apps, drains
from gun.store.time import now, utc


class DrainQueries(Queries):
    def of(self, app_id: int) -> list[Drain]:
        rows = self.conn.execute(
            select(drains).where(drains.c.app_id == app_id).order_by(drains.c.id)
        )
        return [Drain(r.id, r.url, r.token, utc(r.created_at)) for r in rows]

    def insert(self, app_id: int, url: str, token: str) -> Drain:
        created = now()
        drain_id = self.conn.execute(
            insert(drains)
            .values(app_id=app_id, url=url, token=token, created_at=created)
            .returning(drains.c.id)
        ).scalar_one()
        return Drain(drain_id, url, token, created)

    def delete(self, app_id: int, drain_id: int) -> bool:
        done = self.conn.execute(
            delete(drains).where(drains.c.app_id == app_id, drains.c.id == drain_id)
        )
        return bool(done.rowcount)

    def ingest_token(self, app_id: int) -> str | None:
        sealed = self.conn.execute(
            select(apps.c.ingest_token_sealed).where(apps.c.id == app_id)
        ).scalar_one_or_none()
        return self.box.open(sealed) if sealed else None

    def set_ingest_token(self, app_id: int, token_hash: str, token: str) -> None:
        self.conn.execute(
            update(apps)
            .where(apps.c.id == app_id)
            .values(ingest_token_hash=token_hash, ingest_token_sealed=self.box.seal(token))
        )

    def app_of_ingest_token(self, token_hash: str) -> App | None:
        row = self.conn.execute(
            select(apps.c.id, apps.c.name, apps.c.repo, apps.c.created_at).where(
                apps.c.ingest_token_hash == token_hash
            )
        ).first()
        return App(row.id, row.name, row.repo, utc(row.created_at)) if row else None
