"""Queries for instances and processes: the part of the store agents feed."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, and_, bindparam, delete, func, insert, select, update

from gun.model import (
    SETUP_STATES,
    Instance,
    Process,
    check_instance_state,
    check_process_state,
)
from gun.store.queries import Queries
from gun.store.schema import apps, hosts, instances, processes, tokens
from gun.store.time import now, utc


def _instance(r: Row[Any]) -> Instance:
    return Instance(
        id=r.id,
        app=r.app,
        layer=r.layer,
        provider=r.provider,
        state=check_instance_state(r.id, r.state),
        instance_type=r.instance_type,
        availability_zone=r.availability_zone,
        address=r.address,
        last_heartbeat=utc(r.last_heartbeat) if r.last_heartbeat else None,
        created_at=utc(r.created_at),
        problem=r.problem,
        host=r.host,
        setup=r.setup,
        setup_state=next((s for s in SETUP_STATES if s == r.setup_state), None),
        setup_output=r.setup_output,
        cloud_id=r.cloud_id,
        cloud_state=r.cloud_state,
    )


def _process(r: Row[Any]) -> Process:
    return Process(
        app=r.app,
        name=r.name,
        type=r.type,
        instance=r.instance_id,
        desired=r.desired,
        state=check_process_state(r.name, r.state),
        release=r.release,
        port=r.port,
        pid=r.pid,
        restarts=r.restarts,
        exit_code=r.exit_code,
        since=utc(r.since) if r.since else None,
    )


class ProcessReport(NamedTuple):
    """What an agent says of one of its processes (a row of `ProcessQueries.report_many`)."""

    app: int
    name: str
    instance: str
    state: str
    release: int | None
    port: int | None
    pid: int | None
    restarts: int
    exit_code: int | None
    since: datetime | None


_INSTANCE_COLS = [
    instances.c.id,
    apps.c.name.label("app"),
    instances.c.layer,
    instances.c.provider,
    instances.c.state,
    instances.c.instance_type,
    instances.c.availability_zone,
    instances.c.address,
    instances.c.last_heartbeat,
    instances.c.created_at,
    instances.c.problem,
    instances.c.host,
    instances.c.setup,
    instances.c.setup_state,
    instances.c.setup_output,
    instances.c.cloud_id,
    instances.c.cloud_state,
]
_PROCESS_COLS = [
    apps.c.name.label("app"),
    processes.c.name,
    processes.c.type,
    processes.c.instance_id,
    processes.c.desired,
    processes.c.state,
    processes.c.release,
    processes.c.port,
    processes.c.pid,
    processes.c.restarts,
    processes.c.exit_code,
    processes.c.since,
]


class InstanceQueries(Queries):
    def insert(
        self,
        *,
        id: str,
        app_id: int,
        layer: str,
        provider: str,
        instance_type: str | None,
        availability_zone: str | None,
        token_id: int,
        host: str | None = None,
        setup: str | None = None,
        state: str = "pending",
    ) -> None:
        self.conn.execute(
            insert(instances).values(
                id=id,
                setup=setup,
                app_id=app_id,
                layer=layer,
                provider=provider,
                instance_type=instance_type,
                availability_zone=availability_zone,
                state=state,
                token_id=token_id,
                created_at=now(),
                host=host,
            )
        )

    def of(self, app_id: int | None = None) -> list[Instance]:
        q = select(*_INSTANCE_COLS).join(apps, apps.c.id == instances.c.app_id)
        if app_id is not None:
            q = q.where(instances.c.app_id == app_id)
        return [_instance(r) for r in self.conn.execute(q.order_by(instances.c.id))]

    def get(self, instance_id: str) -> Instance | None:
        row = self.conn.execute(
            select(*_INSTANCE_COLS)
            .join(apps, apps.c.id == instances.c.app_id)
            .where(instances.c.id == instance_id)
        ).first()
        return _instance(row) if row else None

    def get_many(self, ids: Collection[str]) -> dict[str, Instance]:
        """These instances (those that exist), by id: one query."""
        if not ids:
            return {}
        rows = self.conn.execute(
            select(*_INSTANCE_COLS)
            .join(apps, apps.c.id == instances.c.app_id)
            .where(instances.c.id.in_(list(ids)))
        )
        return {r.id: _instance(r) for r in rows}

    def update(self, instance_id: str, **values: Any) -> None:
        self.conn.execute(update(instances).where(instances.c.id == instance_id).values(**values))

    def beat(self, beats: Sequence[tuple[str, str, datetime, str | None]]) -> None:
        """Heartbeats heard: (instance id, state, when, problem) each, in one statement."""
        if not beats:
            return
        self.conn.execute(
            update(instances)
            .where(instances.c.id == bindparam("b_id"))
            .values(
                state=bindparam("b_state"),
                last_heartbeat=bindparam("b_at"),
                problem=bindparam("b_problem"),
            ),
            [{"b_id": i, "b_state": st, "b_at": at, "b_problem": pr} for i, st, at, pr in beats],
        )

    def delete(self, instance_id: str) -> None:
        token_id = self.conn.execute(
            select(instances.c.token_id).where(instances.c.id == instance_id)
        ).scalar_one_or_none()
        self.conn.execute(delete(instances).where(instances.c.id == instance_id))
        if token_id is not None:
            self.conn.execute(delete(tokens).where(tokens.c.id == token_id))

    def stale(self, before: datetime) -> list[tuple[int, str]]:
        """(app id, instance id) of online instances whose last heartbeat is older than `before`."""
        rows = self.conn.execute(
            select(instances.c.app_id, instances.c.id).where(
                instances.c.state == "online", instances.c.last_heartbeat < before
            )
        )
        return [(r.app_id, r.id) for r in rows]

    def counts(self, app_id: int) -> dict[str, int]:
        """How many instances each of the app's layers has."""
        rows = self.conn.execute(
            select(instances.c.layer, func.count())
            .where(instances.c.app_id == app_id)
            .group_by(instances.c.layer)
        )
        return {r[0]: r[1] for r in rows}


class Routable(NamedTuple):
    """A web process the router may send requests to, and where its instance is."""

    app: str
    name: str  # web.1
    port: int
    provider: str  # of its instance
    host_address: str | None  # provider ssh: the address of the host it runs on
    ip: str | None = None  # its instance's, as its agent reported (None: not known)


class ProcessQueries(Queries):
    """Where placement put each process (desired or not), and what its agent last said."""

    def of(self, app_id: int) -> list[Process]:
        q = (
            select(*_PROCESS_COLS)
            .join(apps, apps.c.id == processes.c.app_id)
            .where(processes.c.app_id == app_id)
        )
        return [_process(r) for r in self.conn.execute(q)]

    def routable(self) -> list[Routable]:
        """Every app's web processes that are wanted, up, listening on a port, on an online
        instance (one query, for the router's table)."""
        q = (
            select(
                apps.c.name,
                processes.c.name,
                processes.c.port,
                instances.c.provider,
                hosts.c.address,
                instances.c.ip,
            )
            .join(apps, apps.c.id == processes.c.app_id)
            .join(instances, instances.c.id == processes.c.instance_id)
            .outerjoin(hosts, hosts.c.name == instances.c.host)
            .where(
                processes.c.type == "web",
                processes.c.desired.is_(True),
                processes.c.state == "up",
                processes.c.port.is_not(None),
                instances.c.state == "online",
            )
            .order_by(apps.c.name, processes.c.name)
        )
        return [Routable(*r) for r in self.conn.execute(q)]

    def place(
        self, app_id: int, placed: Sequence[tuple[str, str, str]], known: Collection[str]
    ) -> None:
        """Put processes (name, type, instance) (back) into the desired set, each on its
        instance: one statement updates those named in `known` (they had a row), one inserts
        the others, and those of `known` whose row went meanwhile (an agent's report removes a
        stopped one): a scale of 1,000 is a few statements, not 2,000."""
        at = now()
        moved = [{"b_name": n, "b_instance": i} for n, _, i in placed if n in known]
        if moved:
            self.conn.execute(
                update(processes)
                .where(processes.c.app_id == app_id, processes.c.name == bindparam("b_name"))
                .values(
                    instance_id=bindparam("b_instance"),
                    desired=True,
                    state="starting",
                    pid=None,
                    port=None,
                    exit_code=None,
                    since=at,
                ),
                moved,
            )
            names = [m["b_name"] for m in moved]
            there = self.conn.execute(
                select(processes.c.name).where(
                    processes.c.app_id == app_id, processes.c.name.in_(names)
                )
            )
            known = set(known) - (set(names) - {r.name for r in there})
        new = [
            {
                "app_id": app_id,
                "name": n,
                "type": t,
                "instance_id": i,
                "desired": True,
                "nonce": 0,
                "state": "starting",
                "restarts": 0,
                "since": at,
            }
            for n, t, i in placed
            if n not in known
        ]
        if new:
            self.conn.execute(insert(processes), new)

    def undesire(self, app_id: int, names: Collection[str]) -> None:
        """Take processes out of the desired set (their agents stop them), in one statement."""
        if names:
            self.conn.execute(
                update(processes)
                .where(processes.c.app_id == app_id, processes.c.name.in_(sorted(names)))
                .values(desired=False)
            )

    def bump_nonce(self, app_id: int, name: str) -> None:
        self.conn.execute(
            update(processes)
            .where(processes.c.app_id == app_id, processes.c.name == name)
            .values(nonce=processes.c.nonce + 1)
        )

    def nonces(self, app_id: int) -> dict[str, int]:
        """The restart nonces of the app's processes."""
        q = select(processes.c.name, processes.c.nonce).where(processes.c.app_id == app_id)
        return {r.name: r.nonce for r in self.conn.execute(q)}

    def delete(self, app_id: int, name: str) -> None:
        self.conn.execute(
            delete(processes).where(processes.c.app_id == app_id, processes.c.name == name)
        )

    def report(self, app_id: int, instance_id: str, name: str, **values: Any) -> bool:
        """Record an agent's observation of one of its processes; False if it is not its own."""
        done = self.conn.execute(
            update(processes)
            .where(
                and_(
                    processes.c.app_id == app_id,
                    processes.c.name == name,
                    processes.c.instance_id == instance_id,
                )
            )
            .values(reported_at=now(), **values)
        )
        return done.rowcount > 0

    def of_instances(
        self, app_ids: Collection[int], ids: Collection[str]
    ) -> dict[str, list[Process]]:
        """The processes of these apps on these instances, by instance: one query."""
        if not ids:
            return {}
        q = (
            select(*_PROCESS_COLS)
            .join(apps, apps.c.id == processes.c.app_id)
            .where(processes.c.app_id.in_(list(app_ids)), processes.c.instance_id.in_(list(ids)))
        )
        out: dict[str, list[Process]] = {}
        for r in self.conn.execute(q):
            out.setdefault(r.instance_id, []).append(_process(r))
        return out

    def report_many(self, rows: Sequence[ProcessReport]) -> None:
        """Agents' observations of their processes, in one statement (each row changes only
        the process of that app, name and instance)."""
        if not rows:
            return
        at = now()
        self.conn.execute(
            update(processes)
            .where(
                processes.c.app_id == bindparam("b_app"),
                processes.c.name == bindparam("b_name"),
                processes.c.instance_id == bindparam("b_instance"),
            )
            .values(
                reported_at=at,
                state=bindparam("b_state"),
                release=bindparam("b_release"),
                port=bindparam("b_port"),
                pid=bindparam("b_pid"),
                restarts=bindparam("b_restarts"),
                exit_code=bindparam("b_exit_code"),
                since=bindparam("b_since"),
            ),
            [{f"b_{k}": v for k, v in row._asdict().items()} for row in rows],
        )

    def lease_replacement(
        self, app_id: int, instance_id: str, name: str, limit: int, until: datetime
    ) -> bool:
        """Let the instance take its process `name` down to replace it, if fewer than `limit`
        processes of its type hold a lease now (its own counts as held: renewing is fine)."""
        row = self.conn.execute(
            select(processes.c.type, processes.c.replacing_until).where(
                processes.c.app_id == app_id,
                processes.c.name == name,
                processes.c.instance_id == instance_id,
            )
        ).first()
        if row is None:
            return False
        moment = now()
        held = self.conn.execute(
            select(func.count()).where(
                processes.c.app_id == app_id,
                processes.c.type == row.type,
                processes.c.name != name,
                processes.c.replacing_until > moment,
            )
        ).scalar_one()
        if held >= limit:
            return False
        self.conn.execute(
            update(processes)
            .where(processes.c.app_id == app_id, processes.c.name == name)
            .values(replacing_until=until)
        )
        return True

    def leased_on(self, app_ids: Collection[int], ids: Collection[str]) -> dict[str, set[str]]:
        """The processes of each of these instances of these apps that hold a replacement
        lease (lapsed ones included; instances without any left out), in one query."""
        if not ids:
            return {}
        rows = self.conn.execute(
            select(processes.c.instance_id, processes.c.name).where(
                processes.c.app_id.in_(list(app_ids)),
                processes.c.instance_id.in_(list(ids)),
                processes.c.replacing_until.is_not(None),
            )
        )
        out: dict[str, set[str]] = {}
        for r in rows:
            out.setdefault(r.instance_id, set()).add(r.name)
        return out

    def end_lease(self, app_id: int, name: str) -> bool:
        done = self.conn.execute(
            update(processes)
            .where(
                processes.c.app_id == app_id,
                processes.c.name == name,
                processes.c.replacing_until.is_not(None),
            )
            .values(replacing_until=None)
        )
        return done.rowcount > 0
