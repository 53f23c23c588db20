"""Store and Tx: SQLAlchemy Core queries over the schema, one transaction at a time."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from gun.crypto import Box
from gun.store import migrate
from gun.store.apps import AppQueries, ConfigQueries, FormationQueries, LayerQueries
from gun.store.builds import BuildQueries
from gun.store.domains import CertQueries, DomainQueries
from gun.store.drains import DrainQueries
from gun.store.engine import WRITE, make_engine
from gun.store.events import EventQueries
from gun.store.fleet import InstanceQueries, ProcessQueries
from gun.store.hosts import HostQueries
from gun.store.releases import ReleaseQueries
from gun.store.runs import RunQueries
from gun.store.slugs import SlugQueries
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


class Tx:
    """Queries inside one transaction, in groups by what they are about (`tx.apps`,
    `tx.releases`, `tx.processes`, ...), each sharing the transaction's connection. Values come
    back as model objects, secrets decrypted."""

    def __init__(self, conn: Connection, box: Box) -> None:
        self.conn = conn
        self.apps = AppQueries(conn, box)
        self.layers = LayerQueries(conn, box)
        self.config = ConfigQueries(conn, box)
        self.formation = FormationQueries(conn, box)
        self.releases = ReleaseQueries(conn, box)
        self.events = EventQueries(conn, box)
        self.instances = InstanceQueries(conn, box)
        self.processes = ProcessQueries(conn, box)
        self.slugs = SlugQueries(conn, box)
        self.builds = BuildQueries(conn, box)
        self.drains = DrainQueries(conn, box)
        self.tokens = TokenQueries(conn, box)
        self.hosts = HostQueries(conn, box)
        self.domains = DomainQueries(conn, box)
        self.certs = CertQueries(conn, box)
        self.runs = RunQueries(conn, box)

    @property
    def bumped(self) -> bool:
        """An app's generation changed: the store's listeners hear of it after the commit."""
        return self.apps.bumped
