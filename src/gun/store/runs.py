"""Queries for one-off processes (`run.N`): made by `gun run`, found by their client's secret
at the rendezvous, put in their instance's slice until they end."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update

from gun.model import Run
from gun.store.queries import Queries
from gun.store.schema import apps, runs
from gun.store.time import utc

_COLS = (apps.c.name.label("app_name"), *runs.c)


def _run(r: Any) -> Run:
    return Run(
        app=r.app_name,
        number=r.number,
        instance=r.instance_id,
        release=r.release,
        command=r.command,
        owner=r.owner,
        attached=r.attached,
        tty=r.tty,
        framing=r.framing,
        term=r.term,
        size=(r.cols, r.lines) if r.cols is not None and r.lines is not None else None,
        ttl=r.ttl,
        state=r.state,
        exit_code=r.exit_code,
        created_at=utc(r.created_at),
        ended_at=utc(r.ended_at) if r.ended_at is not None else None,
    )


def _select() -> Any:
    return select(*_COLS).join(apps, apps.c.id == runs.c.app_id)


class RunQueries(Queries):
    def insert(self, app_id: int, run: Run, secret_hash: str | None) -> Run:
        """Store a new run as run.(highest so far + 1): numbers are never reused."""
        number = (
            self.conn.execute(
                select(func.max(runs.c.number)).where(runs.c.app_id == app_id)
            ).scalar_one_or_none()
            or 0
        ) + 1
        size = run.size or (None, None)
        self.conn.execute(
            insert(runs).values(
                app_id=app_id,
                number=number,
                instance_id=run.instance,
                release=run.release,
                command=run.command,
                owner=run.owner,
                attached=run.attached,
                tty=run.tty,
                framing=run.framing,
                term=run.term,
                cols=size[0],
                lines=size[1],
                ttl=run.ttl,
                secret_hash=secret_hash,
                state=run.state,
                created_at=run.created_at,
            )
        )
        return self.get(app_id, number) or run

    def get(self, app_id: int, number: int) -> Run | None:
        row = self.conn.execute(
            _select().where(runs.c.app_id == app_id, runs.c.number == number)
        ).first()
        return _run(row) if row else None

    def by_secret(self, secret_hash: str) -> tuple[int, Run] | None:
        """The run a client's secret is for, with its app's id, if it is still unused."""
        row = self.conn.execute(_select().where(runs.c.secret_hash == secret_hash)).first()
        return (row.app_id, _run(row)) if row else None

    def active(self, app_id: int) -> list[Run]:
        """The app's runs that have not ended, by number."""
        rows = self.conn.execute(
            _select()
            .where(runs.c.app_id == app_id, runs.c.state != "complete")
            .order_by(runs.c.number)
        )
        return [_run(r) for r in rows]

    def set(self, app_id: int, number: int, **values: Any) -> None:
        """Write some of a run's columns (state, exit_code, ended_at, secret_hash)."""
        self.conn.execute(
            update(runs).where(runs.c.app_id == app_id, runs.c.number == number).values(**values)
        )

    def started(self, app_id: int, number: int) -> None:
        """Its agent says it runs: `up`, unless it is up or ended already."""
        self.conn.execute(
            update(runs)
            .where(runs.c.app_id == app_id, runs.c.number == number, runs.c.state == "starting")
            .values(state="up")
        )
