"""Queries for builds and their output."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, insert, select, update

from gun.model import ACTIVE_BUILD, App, Build
from gun.store.queries import Queries
from gun.store.schema import builds
from gun.store.time import now, utc

OUTPUT_MAX_CHARS = 4 * 1024 * 1024  # a build's output beyond this is cut, with a note

_FIELDS = [c for c in builds.c if c.name != "output"]


def _build(app: str, r: Row[Any]) -> Build:
    return Build(
        id=r.id,
        app=app,
        status=r.status,
        strategy=r.strategy,
        ref=r.ref,
        commit=r.commit,
        commit_description=r.commit_description,
        release=r.release,
        error=r.error,
        actor=r.actor,
        created_at=utc(r.created_at),
        finished_at=utc(r.finished_at) if r.finished_at else None,
    )


class BuildQueries(Queries):
    def insert(
        self,
        app: App,
        *,
        strategy: str,
        ref: str | None,
        commit: str | None,
        commit_description: str | None,
        actor: str,
    ) -> Build:
        values = dict(
            app_id=app.id,
            status="pending",
            strategy=strategy,
            ref=ref,
            commit=commit,
            commit_description=commit_description,
            output="",
            actor=actor,
            created_at=now(),
        )
        build_id = self.conn.execute(insert(builds).values(**values).returning(builds.c.id))
        row = self.conn.execute(select(*_FIELDS).where(builds.c.id == build_id.scalar_one())).one()
        return _build(app.name, row)

    def get(self, app: App, build_id: int) -> Build | None:
        row = self.conn.execute(
            select(*_FIELDS).where(builds.c.id == build_id, builds.c.app_id == app.id)
        ).first()
        return _build(app.name, row) if row else None

    def of(self, app: App, limit: int) -> list[Build]:
        rows = self.conn.execute(
            select(*_FIELDS)
            .where(builds.c.app_id == app.id)
            .order_by(builds.c.id.desc())
            .limit(limit)
        )
        return [_build(app.name, r) for r in rows]

    def of_release(self, app: App, version: int) -> Build | None:
        row = self.conn.execute(
            select(*_FIELDS).where(builds.c.app_id == app.id, builds.c.release == version)
        ).first()
        return _build(app.name, row) if row else None

    def active(self, app: App) -> Build | None:
        row = self.conn.execute(
            select(*_FIELDS)
            .where(builds.c.app_id == app.id, builds.c.status.in_(ACTIVE_BUILD))
            .order_by(builds.c.id)
            .limit(1)
        ).first()
        return _build(app.name, row) if row else None

    def in_statuses(self, statuses: tuple[str, ...]) -> list[tuple[int, int]]:
        """(app id, build id) of every build in one of `statuses`, any app."""
        rows = self.conn.execute(
            select(builds.c.app_id, builds.c.id).where(builds.c.status.in_(statuses))
        )
        return [(r.app_id, r.id) for r in rows]

    def update(self, build_id: int, **values: Any) -> None:
        if values.get("status") in ("succeeded", "failed"):
            values["finished_at"] = now()
        self.conn.execute(update(builds).where(builds.c.id == build_id).values(**values))

    def append_output(self, build_id: int, text: str) -> None:
        """Add to the output, up to OUTPUT_MAX_CHARS in all."""
        length = func.length(builds.c.output)
        self.conn.execute(
            update(builds)
            .where(builds.c.id == build_id, length < OUTPUT_MAX_CHARS)
            .values(output=builds.c.output + text)
        )

    def output(self, build_id: int, offset: int) -> tuple[str, str]:
        """The output from character `offset` on, and the build's status."""
        row = self.conn.execute(
            select(func.substr(builds.c.output, offset + 1), builds.c.status).where(
                builds.c.id == build_id
            )
        ).one()
        return row[0] or "", row[1]
