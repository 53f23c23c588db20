"""Queries for slugs: content-addressed by sha256, one row per app and slug."""

from __future__ import annotations

from sqlalchemy import insert, select

from gun.store.queries import Queries
from gun.store.schema import releases, slugs
from gun.store.time import now


class SlugQueries(Queries):
    def insert(
        self,
        app_id: int,
        sha256: str,
        size: int,
        process_types: dict[str, str],
        commit: str | None,
        commit_description: str | None,
    ) -> int:
        return int(
            self.conn.execute(
                insert(slugs)
                .values(
                    app_id=app_id,
                    sha256=sha256,
                    size=size,
                    process_types=process_types,
                    commit=commit,
                    commit_description=commit_description,
                    created_at=now(),
                )
                .returning(slugs.c.id)
            ).scalar_one()
        )

    def get(self, slug_id: int) -> tuple[str, int, dict[str, str]] | None:
        row = self.conn.execute(
            select(slugs.c.sha256, slugs.c.size, slugs.c.process_types).where(slugs.c.id == slug_id)
        ).first()
        return (row.sha256, row.size, dict(row.process_types)) if row else None

    def in_use(self, app_id: int, keep: int) -> set[str]:
        """sha256 of the slugs of the app's newest `keep` releases that have one."""
        rows = self.conn.execute(
            select(slugs.c.sha256)
            .select_from(releases.join(slugs, releases.c.slug_id == slugs.c.id))
            .where(releases.c.app_id == app_id)
            .order_by(releases.c.version.desc())
            .limit(keep)
        )
        return {r.sha256 for r in rows}

    def by_sha(self, app_id: int, sha256: str) -> int | None:
        return self.conn.execute(
            select(slugs.c.id).where(slugs.c.app_id == app_id, slugs.c.sha256 == sha256).limit(1)
        ).scalar_one_or_none()
