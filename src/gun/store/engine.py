"""Engines for SQLite (WAL, busy timeout, write transactions that lock at BEGIN) and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gun import isolation
from gun.errors import UsageError

WRITE = "gun_write"  # execution option: this transaction will write
# as many pooled connections as the API's worker threads (anyio's default 40), so a busy
# meta does not open and close overflow connections on every request
POOL_SIZE = 40


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3; anything else but SQLite is refused."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    try:
        u = make_url(normalise_url(url))
    except ArgumentError:
        raise UsageError(
            f"database URL {url!r} is not a URL: use sqlite:///PATH or postgresql://..."
        ) from None
    if u.get_backend_name() == "sqlite":
        return _sqlite(u.render_as_string(hide_password=False), u.database)
    if u.get_backend_name() == "postgresql":
        # no pre-ping (a round trip per checkout); connections are recycled instead
        return create_engine(u, pool_size=POOL_SIZE, max_overflow=10, pool_recycle=300)
    raise UsageError(f"database URL {url!r} is neither sqlite:/// nor postgresql://")


def _sqlite(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        path = Path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
        # made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the same mode
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, isolation.PRIVATE_FILE))
        for made in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            isolation.private_file(made)
    engine = create_engine(
        url,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=POOL_SIZE,
        max_overflow=10,
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
