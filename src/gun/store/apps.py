"""Queries for what an app is and wants: its row and generation, layers, config vars and
formation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gun.crypto import Box
from gun.errors import Conflict, NotFound
from gun.layersettings import LayerSettings
from gun.model import App, Layer
from gun.store.queries import Queries
from gun.store.schema import (
    apps,
    config_vars,
    events,
    formation,
    instances,
    layers,
    processes,
    releases,
)
from gun.store.time import now, utc


class Glance(NamedTuple):
    """An app at a glance (`status`, the dashboard's apps page)."""

    app: str
    release: int | None  # the current release: the newest that succeeded
    formation: dict[str, int]
    states: Counter[str]  # its processes by state; those meta is stopping as `stopping`
    instances: int
    last_deploy: datetime | None


class AppQueries(Queries):
    """An app's row. Its generation changes with every change its agents must hear of."""

    def __init__(self, conn: Connection, box: Box) -> None:
        super().__init__(conn, box)
        self.bumped = False  # a generation changed: the store's listeners hear of it at commit

    def insert(self, name: str, repo: str | None) -> App:
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

    def find(self, name: str, *, lock: bool = False) -> App | None:
        q = select(apps.c.id, apps.c.name, apps.c.repo, apps.c.created_at).where(
            apps.c.name == name
        )
        if lock and self.conn.dialect.name != "sqlite":
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        if row is None:
            return None
        return App(row.id, row.name, row.repo, utc(row.created_at))

    def existing(self, name: str, *, lock: bool = False) -> App:
        """The app, or NotFound naming it."""
        app = self.find(name, lock=lock)
        if app is None:
            raise NotFound(f"app {name!r} does not exist")
        return app

    def generation_of(self, name: str) -> tuple[int, int] | None:
        """(id, generation) of an app: the generation changes with every change to the app."""
        # the hottest query meta runs (every config read): plain SQL, no statement building
        mark = "?" if self.conn.dialect.name == "sqlite" else "%s"
        row = self.conn.exec_driver_sql(
            f"SELECT id, generation FROM apps WHERE name = {mark}", (name,)
        ).first()
        return None if row is None else (int(row[0]), int(row[1]))

    def generation(self, app_id: int) -> int:
        return int(
            self.conn.execute(select(apps.c.generation).where(apps.c.id == app_id)).scalar_one()
        )

    def generations(self) -> dict[int, int]:
        """Every app's generation, by app id."""
        rows = self.conn.execute(select(apps.c.id, apps.c.generation))
        return {int(r.id): int(r.generation) for r in rows}

    def all(self, only: str | None = None) -> list[App]:
        """Every app (or the one named `only`), by name, with its newest release's version."""
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

    def glances(self, only: str | None = None) -> list[Glance]:
        """Every app (or the one named `only`) at a glance, by name: one query per part for
        all apps, however many."""
        q = select(apps.c.id, apps.c.name).order_by(apps.c.name)
        if only is not None:
            q = q.where(apps.c.name == only)
        named = [(int(r.id), str(r.name)) for r in self.conn.execute(q)]
        ids = [i for i, _ in named]

        def per_app(query: Any) -> list[Any]:
            return list(self.conn.execute(query.where(query.selected_columns[0].in_(ids))))

        current = per_app(
            select(releases.c.app_id, func.max(releases.c.version))
            .where(releases.c.status == "succeeded")
            .group_by(releases.c.app_id)
        )
        totals: dict[int, dict[str, int]] = {}
        for r in per_app(select(formation.c.app_id, formation.c.type, formation.c.quantity)):
            totals.setdefault(r[0], {})[r[1]] = r[2]
        state = case((processes.c.desired, processes.c.state), else_="stopping")
        states: dict[int, Counter[str]] = {}
        for r in per_app(
            select(processes.c.app_id, state, func.count()).group_by(processes.c.app_id, state)
        ):
            states.setdefault(r[0], Counter())[r[1]] = r[2]
        counted = per_app(select(instances.c.app_id, func.count()).group_by(instances.c.app_id))
        deployed = per_app(
            select(events.c.app_id, func.max(events.c.created_at))
            .where(events.c.action == "release.deploy")
            .group_by(events.c.app_id)
        )
        release, count = dict(current), dict(counted)
        deploys = {a: utc(t) for a, t in deployed}
        return [
            Glance(
                name,
                release.get(i),
                dict(sorted(totals.get(i, {}).items())),
                states.get(i, Counter()),
                count.get(i, 0),
                deploys.get(i),
            )
            for i, name in named
        ]

    def delete(self, app_id: int) -> None:
        self.conn.execute(delete(apps).where(apps.c.id == app_id))

    def bump_generation(self, app_id: int) -> None:
        self.bumped = True
        self.conn.execute(
            update(apps).where(apps.c.id == app_id).values(generation=apps.c.generation + 1)
        )


class LayerQueries(Queries):
    def of(self, app_id: int) -> list[Layer]:
        rows = self.conn.execute(
            select(
                layers.c.name,
                layers.c.types,
                layers.c.setup,
                layers.c.teardown,
                layers.c.provider,
                layers.c.settings,
            )
            .where(layers.c.app_id == app_id)
            .order_by(layers.c.name)
        )
        return [
            Layer(
                r.name,
                None if r.types is None else tuple(r.types),
                setup=r.setup,
                teardown=r.teardown,
                provider=r.provider,
                settings=LayerSettings.from_json(r.settings),
            )
            for r in rows
        ]

    def get(self, app_id: int, name: str) -> Layer | None:
        return next((la for la in self.of(app_id) if la.name == name), None)

    def put(self, app_id: int, layer: Layer) -> None:
        values = {
            "types": None if layer.types is None else list(layer.types),
            "setup": layer.setup,
            "teardown": layer.teardown,
            "provider": layer.provider,
            "settings": layer.settings.to_json() or None,
        }
        done = self.conn.execute(
            update(layers)
            .where(layers.c.app_id == app_id, layers.c.name == layer.name)
            .values(**values)
        )
        if done.rowcount == 0:
            self.conn.execute(insert(layers).values(app_id=app_id, name=layer.name, **values))


class ConfigQueries(Queries):
    """Config vars, sealed at rest."""

    def of(self, app_id: int) -> dict[str, str]:
        rows = self.conn.execute(
            select(config_vars.c.key, config_vars.c.value_sealed)
            .where(config_vars.c.app_id == app_id)
            .order_by(config_vars.c.key)
        )
        return {r.key: self.box.open(r.value_sealed) for r in rows}

    def get(self, app_id: int, key: str) -> str | None:
        """One config var's value (only it is decrypted), if the app has it."""
        sealed = self.conn.execute(
            select(config_vars.c.value_sealed).where(
                config_vars.c.app_id == app_id, config_vars.c.key == key
            )
        ).scalar_one_or_none()
        return None if sealed is None else self.box.open(sealed)

    def replace(
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


class FormationQueries(Queries):
    def of(self, app_id: int) -> dict[str, int]:
        rows = self.conn.execute(
            select(formation.c.type, formation.c.quantity)
            .where(formation.c.app_id == app_id)
            .order_by(formation.c.type)
        )
        return {r.type: r.quantity for r in rows}

    def put(self, app_id: int, totals: dict[str, int]) -> None:
        self.conn.execute(delete(formation).where(formation.c.app_id == app_id))
        if totals:
            self.conn.execute(
                insert(formation),
                [{"app_id": app_id, "type": t, "quantity": n} for t, n in totals.items()],
            )
