"""Queries for releases: numbered, immutable, their config sealed at rest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, insert, select, update

from gun.model import App, Release, ReleaseBuild
from gun.store.queries import Queries
from gun.store.schema import releases
from gun.store.time import now, utc


class ReleaseQueries(Queries):
    """The current release is the newest that succeeded; a newer one may be `pending` (its
    release phase runs) or `failed`."""

    def _release(self, app: App, row: Row[Any], current: int | None) -> Release:
        return Release(
            app=app.name,
            version=row.version,
            description=row.description,
            status=row.status,
            created_at=utc(row.created_at),
            config=json.loads(self.box.open(row.config_sealed)),
            process_types=row.process_types,
            slug_id=row.slug_id,
            commit=row.commit,
            actor=row.actor,
            current=row.version == current,
        )

    def current_version(self, app_id: int) -> int | None:
        return self.conn.execute(
            select(func.max(releases.c.version)).where(
                releases.c.app_id == app_id, releases.c.status == "succeeded"
            )
        ).scalar_one_or_none()

    def next_version(self, app_id: int) -> int:
        top = self.conn.execute(
            select(func.max(releases.c.version)).where(releases.c.app_id == app_id)
        ).scalar_one_or_none()
        return (top or 0) + 1

    def of(self, app: App, limit: int, before: int | None = None) -> list[Release]:
        """The app's releases, newest first (those before version `before`, if given)."""
        current = self.current_version(app.id)
        q = select(releases).where(releases.c.app_id == app.id)
        if before is not None:
            q = q.where(releases.c.version < before)
        rows = self.conn.execute(q.order_by(releases.c.version.desc()).limit(limit))
        return [self._release(app, r, current) for r in rows]

    def get(self, app: App, version: int) -> Release | None:
        row = self.conn.execute(
            select(releases).where(releases.c.app_id == app.id, releases.c.version == version)
        ).first()
        return None if row is None else self._release(app, row, self.current_version(app.id))

    def insert(
        self,
        app: App,
        *,
        description: str,
        config: dict[str, str],
        process_types: dict[str, str] | None,
        slug_id: int | None,
        commit: str | None,
        actor: str,
        status: str = "succeeded",
    ) -> Release:
        release = Release(
            app=app.name,
            version=self.next_version(app.id),
            description=description,
            status=status,  # type: ignore[arg-type]
            created_at=now(),
            config=dict(config),
            process_types=process_types,
            slug_id=slug_id,
            commit=commit,
            actor=actor,
            current=status == "succeeded",
        )
        self.add(app, [release])
        return release

    def add(self, app: App, new: Sequence[Release]) -> None:
        """Releases built by the caller (versions from `next_version` on), in one statement."""
        self.conn.execute(
            insert(releases),
            [
                {
                    "app_id": app.id,
                    "version": r.version,
                    "description": r.description,
                    "status": r.status,
                    "slug_id": r.slug_id,
                    "process_types": r.process_types,
                    "commit": r.commit,
                    "config_sealed": self.box.seal(json.dumps(r.config)),
                    "actor": r.actor,
                    "created_at": r.created_at,
                }
                for r in new
            ],
        )

    def build_of(self, app_id: int, version: int) -> ReleaseBuild | None:
        """What a release runs (not its config, which is not decrypted)."""
        row = self.conn.execute(
            select(releases.c.process_types, releases.c.slug_id, releases.c.commit).where(
                releases.c.app_id == app_id, releases.c.version == version
            )
        ).first()
        return None if row is None else ReleaseBuild(row.process_types, row.slug_id, row.commit)

    def set_status(self, app_id: int, version: int, status: str) -> None:
        self.conn.execute(
            update(releases)
            .where(releases.c.app_id == app_id, releases.c.version == version)
            .values(status=status)
        )

    def newest(self, app_id: int) -> tuple[int, str] | None:
        """(version, status) of the app's newest release, None before the first."""
        row = self.conn.execute(
            select(releases.c.version, releases.c.status)
            .where(releases.c.app_id == app_id)
            .order_by(releases.c.version.desc())
            .limit(1)
        ).first()
        return None if row is None else (int(row.version), str(row.status))

    def pending(self, app_id: int) -> int | None:
        """The newest release if it is waiting for its release phase (and newer than current)."""
        newest = self.newest(app_id)
        return newest[0] if newest is not None and newest[1] == "pending" else None
