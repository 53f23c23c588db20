"""Store and Tx: SQLAlchemy Core queries over the schema, one transaction at a time."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gun.crypto import Box
from gun.errors import Conflict, NotFound
from gun.model import App, Event, Layer, Release, ReleaseBuild
from gun.store import migrate
from gun.store.builds import BuildQueries
from gun.store.drains import DrainQueries
from gun.store.engine import WRITE, make_engine
from gun.store.fleet import FleetQueries
from gun.store.schema import (
    apps,
    config_vars,
    events,
    formation,
    instances,
    layers,
    releases,
)
from gun.store.time import now, utc
from gun.store.tokens import TokenQueries


class Store:
    def __init__(self, engine: Engine, box: Box) -> None:
        self.engine = engine
        self.box = box
        self._sqlite_writer = threading.Lock()
        # called (in the writing thread) after a commit that changed an app's generation
        self.listeners: list[Callable[[], None]] = []

    @classmethod
    def open(cls, url: str, box: Box, migrate_hint: str = "gun server migrate") -> Store:
        engine = make_engine(url)
        try:
            migrate.ensure(engine, migrate_hint)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, box)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """Reads. On PostgreSQL each statement runs on its own (READ COMMITTED gives a
        transaction no more than that), saving the BEGIN and COMMIT round trips."""
        if self.dialect == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                yield Tx(conn, self.box)
        else:
            with self.engine.connect() as conn, conn.begin():
                yield Tx(conn, self.box)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction; SQLite takes its write lock at BEGIN, PostgreSQL locks rows.

        SQLite writers of this process also queue on a lock first: its busy handler sleeps
        up to 100 ms between retries and lets newcomers overtake, which made the slowest
        writes seconds long under load.
        """
        lock = self._sqlite_writer if self.dialect == "sqlite" else contextlib.nullcontext()
        options = {WRITE: True}
        with lock, self.engine.connect().execution_options(**options) as conn:
            with conn.begin():
                tx = Tx(conn, self.box)
                yield tx
            if tx.bumped:
                for listener in self.listeners:
                    listener()


class Tx(FleetQueries, BuildQueries, DrainQueries, TokenQueries):
    """Queries inside one transaction. Values come back as model objects, secrets decrypted."""

    def __init__(self, conn: Connection, box: Box) -> None:
        self.conn = conn
        self.box = box
        self.bumped = False  # an app's generation changed: listeners hear of it after commit

    # apps -----------------------------------------------------------------------------------

    def insert_app(self, name: str, repo: str | None) -> App:
        created = now()
        try:
            with self.conn.begin_nested():
                app_id = self.conn.execute(
                    insert(apps)
                    .values(name=name, repo=repo, generation=0, created_at=created)
                    .returning(apps.c.id)
                ).scalar_one()
        except IntegrityError:
            raise Conflict(f"app {name!r} already exists") from None
        return App(id=app_id, name=name, repo=repo, created_at=created)

    def app(self, name: str, *, lock: bool = False) -> App | None:
        q = select(apps.c.id, apps.c.name, apps.c.repo, apps.c.created_at).where(
            apps.c.name == name
        )
        if lock and self.conn.dialect.name != "sqlite":
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        if row is None:
            return None
        return App(row.id, row.name, row.repo, utc(row.created_at))

    def existing_app(self, name: str, *, lock: bool = False) -> App:
        """The app, or NotFound naming it."""
        app = self.app(name, lock=lock)
        if app is None:
            raise NotFound(f"app {name!r} does not exist")
        return app

    def app_generation(self, name: str) -> tuple[int, int] | None:
        """(id, generation) of an app: the generation changes with every change to the app."""
        # the hottest query meta runs (every config read): plain SQL, no statement building
        mark = "?" if self.conn.dialect.name == "sqlite" else "%s"
        row = self.conn.exec_driver_sql(
            f"SELECT id, generation FROM apps WHERE name = {mark}", (name,)
        ).first()
        return None if row is None else (int(row[0]), int(row[1]))

    def list_apps(self, only: str | None = None) -> list[App]:
        current = (
            select(releases.c.app_id, func.max(releases.c.version).label("version"))
            .group_by(releases.c.app_id)
            .subquery()
        )
        q = (
            select(apps.c.id, apps.c.name, apps.c.repo, apps.c.created_at, current.c.version)
            .outerjoin(current, current.c.app_id == apps.c.id)
            .order_by(apps.c.name)
        )
        if only is not None:
            q = q.where(apps.c.name == only)
        return [
            App(r.id, r.name, r.repo, utc(r.created_at), release=r.version)
            for r in self.conn.execute(q)
        ]

    def delete_app(self, app_id: int) -> None:
        self.conn.execute(delete(apps).where(apps.c.id == app_id))

    def bump_generation(self, app_id: int) -> None:
        self.bumped = True
        self.conn.execute(
            update(apps).where(apps.c.id == app_id).values(generation=apps.c.generation + 1)
        )

    # layers ---------------------------------------------------------------------------------

    def layers(self, app_id: int) -> list[Layer]:
        rows = self.conn.execute(
            select(layers.c.name, layers.c.types)
            .where(layers.c.app_id == app_id)
            .order_by(layers.c.name)
        )
        return [Layer(r.name, None if r.types is None else tuple(r.types)) for r in rows]

    def put_layer(self, app_id: int, layer: Layer) -> None:
        types = None if layer.types is None else list(layer.types)
        done = self.conn.execute(
            update(layers)
            .where(layers.c.app_id == app_id, layers.c.name == layer.name)
            .values(types=types)
        )
        if done.rowcount == 0:
            self.conn.execute(insert(layers).values(app_id=app_id, name=layer.name, types=types))

    # config vars ----------------------------------------------------------------------------

    def config(self, app_id: int) -> dict[str, str]:
        rows = self.conn.execute(
            select(config_vars.c.key, config_vars.c.value_sealed)
            .where(config_vars.c.app_id == app_id)
            .order_by(config_vars.c.key)
        )
        return {r.key: self.box.open(r.value_sealed) for r in rows}

    def replace_config(
        self, app_id: int, config: dict[str, str], only: Iterable[str] | None = None
    ) -> None:
        """Store `config` as the app's config vars; with `only`, just those keys change."""
        q = delete(config_vars).where(config_vars.c.app_id == app_id)
        keys = list(config) if only is None else [k for k in only if k in config]
        if only is not None:
            q = q.where(config_vars.c.key.in_(list(only)))
        self.conn.execute(q)
        if keys:
            self.conn.execute(
                insert(config_vars),
                [
                    {"app_id": app_id, "key": k, "value_sealed": self.box.seal(config[k])}
                    for k in keys
                ],
            )

    # formation ------------------------------------------------------------------------------

    def formation(self, app_id: int) -> dict[str, int]:
        rows = self.conn.execute(
            select(formation.c.type, formation.c.quantity)
            .where(formation.c.app_id == app_id)
            .order_by(formation.c.type)
        )
        return {r.type: r.quantity for r in rows}

    def set_formation(self, app_id: int, totals: dict[str, int]) -> None:
        self.conn.execute(delete(formation).where(formation.c.app_id == app_id))
        if totals:
            self.conn.execute(
                insert(formation),
                [{"app_id": app_id, "type": t, "quantity": n} for t, n in totals.items()],
            )

    # releases -------------------------------------------------------------------------------

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

    def releases(self, app: App, limit: int, before: int | None = None) -> list[Release]:
        current = self.current_version(app.id)
        q = select(releases).where(releases.c.app_id == app.id)
        if before is not None:
            q = q.where(releases.c.version < before)
        rows = self.conn.execute(q.order_by(releases.c.version.desc()).limit(limit))
        return [self._release(app, r, current) for r in rows]

    def release(self, app: App, version: int) -> Release | None:
        row = self.conn.execute(
            select(releases).where(releases.c.app_id == app.id, releases.c.version == version)
        ).first()
        return None if row is None else self._release(app, row, self.current_version(app.id))

    def insert_release(
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
        self.add_releases(app, [release])
        return release

    def add_releases(self, app: App, new: Sequence[Release]) -> None:
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

    def release_build(self, app_id: int, version: int) -> ReleaseBuild | None:
        """What a release runs (not its config, which is not decrypted)."""
        row = self.conn.execute(
            select(releases.c.process_types, releases.c.slug_id, releases.c.commit).where(
                releases.c.app_id == app_id, releases.c.version == version
            )
        ).first()
        return None if row is None else ReleaseBuild(row.process_types, row.slug_id, row.commit)

    def set_release_status(self, app_id: int, version: int, status: str) -> None:
        self.conn.execute(
            update(releases)
            .where(releases.c.app_id == app_id, releases.c.version == version)
            .values(status=status)
        )

    def pending_release(self, app_id: int) -> int | None:
        """The newest release if it is waiting for its release phase (and newer than current)."""
        row = self.conn.execute(
            select(releases.c.version, releases.c.status)
            .where(releases.c.app_id == app_id)
            .order_by(releases.c.version.desc())
            .limit(1)
        ).first()
        return row.version if row is not None and row.status == "pending" else None

    # processes and instances (reported by agents) -------------------------------------------

    def instance_counts(self, app_id: int) -> dict[str, int]:
        rows = self.conn.execute(
            select(instances.c.layer, func.count())
            .where(instances.c.app_id == app_id)
            .group_by(instances.c.layer)
        )
        return {r[0]: r[1] for r in rows}

    # events ---------------------------------------------------------------------------------

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

    def events(self, app_name: str | None, limit: int) -> list[Event]:
        q = select(events).order_by(events.c.id.desc()).limit(limit)
        if app_name is not None:
            q = q.where(events.c.app_name == app_name)
        return [
            Event(r.id, r.app_name, r.actor, r.action, dict(r.detail), utc(r.created_at))
            for r in self.conn.execute(q)
        ]
