"""Queries for hosts: machines the team already has, reached over ssh."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, func, insert, select

from gun.model import Host
from gun.store.queries import Queries
from gun.store.schema import hosts, instances
from gun.store.time import now, utc


class HostQueries(Queries):
    def _host(self, r: Row[Any], count: int) -> Host:
        return Host(
            name=r.name,
            user=r.user,
            address=r.address,
            port=r.port,
            root=r.root,
            known_host=r.known_host,
            python=r.python,
            created_at=utc(r.created_at),
            has_key=r.key_sealed is not None,
            instances=count,
        )

    def _counts(self) -> dict[str, int]:
        q = select(instances.c.host, func.count()).where(instances.c.host.is_not(None))
        return {h: n for h, n in self.conn.execute(q.group_by(instances.c.host))}

    def all(self) -> list[Host]:
        counts = self._counts()
        rows = self.conn.execute(select(hosts).order_by(hosts.c.name))
        return [self._host(r, counts.get(r.name, 0)) for r in rows]

    def get(self, name: str) -> Host | None:
        r = self.conn.execute(select(hosts).where(hosts.c.name == name)).first()
        return self._host(r, self._counts().get(name, 0)) if r else None

    def key(self, name: str) -> str | None:
        """The private key meta reaches the host with, decrypted (None: ssh's own)."""
        sealed = self.conn.execute(select(hosts.c.key_sealed).where(hosts.c.name == name)).scalar()
        return self.box.open(sealed) if sealed else None

    def insert(self, host: Host, key: str | None) -> None:
        self.conn.execute(
            insert(hosts).values(
                name=host.name,
                user=host.user,
                address=host.address,
                port=host.port,
                root=host.root,
                key_sealed=self.box.seal(key) if key else None,
                known_host=host.known_host,
                python=host.python,
                created_at=now(),
            )
        )

    def delete(self, name: str) -> None:
        self.conn.execute(delete(hosts).where(hosts.c.name == name))
