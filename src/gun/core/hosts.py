"""Hosts: machines the team already has, reached over ssh, where provider ssh puts instances.

`add` checks the host at once (reachable, the key accepted, python3 3.11 or newer: one sentence
naming the host otherwise, and nothing registered) and pins its host key; `remove` refuses
while instances run there. Hosts are the platform's, not an app's: listing them takes a token
of no one app (viewer or more), adding and removing an admin's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gun.core.access import authorize
from gun.errors import Conflict, NotFound
from gun.model import Host, Principal, check_host_name, check_host_root
from gun.providers.ssh import Facts, Ssh, Target, check, parse_target
from gun.store import Store
from gun.store.time import now


@dataclass(frozen=True)
class NewHost:
    name: str
    target: str  # USER@ADDRESS
    port: int = 22
    root: str = "/var/lib/gun"
    key: str | None = None  # a private key (OpenSSH or PEM text), kept encrypted


Checker = Callable[[Ssh], Facts]


class Hosts:
    def __init__(self, store: Store, checker: Checker = check) -> None:
        self.store = store
        self.checker = checker

    def all(self, who: Principal) -> list[Host]:
        authorize(who, "viewer")
        with self.store.read() as tx:
            return tx.hosts.all()

    def add(self, who: Principal, new: NewHost) -> Host:
        authorize(who, "admin")
        name = check_host_name(new.name)
        target = parse_target(new.target, new.port)
        root = check_host_root(new.root)
        with self.store.read() as tx:
            if tx.hosts.get(name) is not None:
                raise Conflict(f"host {name} is already registered")
        facts = self.checker(Ssh(name, target, key=new.key))  # outside any transaction
        host = Host(
            name=name,
            user=target.user,
            address=target.address,
            port=target.port,
            root=root,
            known_host=facts.known_host,
            python=".".join(map(str, facts.python)),
            created_at=now(),
            has_key=new.key is not None,
        )
        with self.store.write() as tx:
            if tx.hosts.get(name) is not None:
                raise Conflict(f"host {name} is already registered")
            tx.hosts.insert(host, new.key)
            detail = {"name": name, "address": str(target), "root": root}
            tx.events.record(None, who.name, "host.add", dict(detail))
            added = tx.hosts.get(name)
        assert added is not None
        return added

    def remove(self, who: Principal, name: str) -> None:
        authorize(who, "admin")
        with self.store.write() as tx:
            host = tx.hosts.get(name)
            if host is None:
                raise NotFound(f"host {name!r} is not registered")
            if host.instances:
                raise Conflict(
                    f"host {name} runs {host.instances} instance(s): delete them first"
                    " (gun instances.delete:ID -a APP)"
                )
            tx.hosts.delete(name)
            tx.events.record(None, who.name, "host.remove", {"name": name})

    def reach(self, name: str) -> tuple[Ssh, str]:
        """How meta reaches a registered host (its pinned key, its private key if any), and
        the root its agents live in there."""
        with self.store.read() as tx:
            host = tx.hosts.get(name)
            if host is None:
                raise NotFound(f"host {name!r} is not registered")
            key = tx.hosts.key(name)
        target = Target(host.user, host.address, host.port)
        return Ssh(name, target, key=key, known_host=host.known_host), host.root
