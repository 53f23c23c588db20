"""Routing: the table the router serves (gun.router.table), from placement and what agents
report.

An app's hostnames are `APP.<router domain>` (GUN_ROUTER_DOMAIN, `localhost` under gun up)
and its custom domains; its backends are its web processes that are wanted (a scale down
takes one out at once, before its agent stops it), up (a prebooting copy joins once it
accepts connections; its agent reports the copy that still serves until then) and on an
online instance. Only a platform admin's token (not scoped to an app) reads the table: it
names every app's drains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gun.core.access import authorize
from gun.core.shipping import Shipping
from gun.domains import default_hostname
from gun.model import Principal
from gun.router.table import Backend, Route, Table
from gun.store import Store
from gun.store.fleet import Routable

LOOPBACK = "127.0.0.1"  # where a local instance's processes listen (gun up: the same machine)


def backend_of(p: Routable) -> Backend | None:
    """Where the router reaches a web process (pure): a local instance's on loopback, an ssh
    instance's at its host's address; None where gun does not know it yet (ec2)."""
    if p.provider == "local":
        return Backend(p.name, LOOPBACK, p.port)
    if p.provider == "ssh" and p.host_address:
        return Backend(p.name, p.host_address, p.port)
    return None


def build_table(
    apps: Sequence[str],
    processes: Sequence[Routable],
    domains: Sequence[tuple[str, str]],
    drains: Mapping[str, Sequence[str]],
    router_domain: str,
) -> Table:
    """The table (pure): every app, its hostnames, backends and drains."""
    backends: dict[str, list[Backend]] = {}
    for p in processes:
        b = backend_of(p)
        if b is not None:
            backends.setdefault(p.app, []).append(b)
    custom: dict[str, list[str]] = {}
    for app, hostname in domains:
        custom.setdefault(app, []).append(hostname)
    routes = tuple(
        Route(
            app=app,
            hostnames=(default_hostname(app, router_domain), *sorted(custom.get(app, ()))),
            backends=tuple(sorted(backends.get(app, ()), key=lambda b: b.name)),
            drains=tuple(drains.get(app, ())),
        )
        for app in sorted(apps)
    )
    return Table(routes)


class Routing:
    def __init__(self, store: Store, shipping: Shipping, router_domain: str = "localhost"):
        self.store = store
        self.shipping = shipping
        self.router_domain = router_domain

    @staticmethod
    def check(who: Principal) -> None:
        """Only a platform admin's token reads the table (it names every app's drains)."""
        authorize(who, "admin")

    def table(self, who: Principal) -> Table:
        self.check(who)
        with self.store.read() as tx:
            apps = tx.apps.all()
            processes = tx.processes.routable()
            domains = tx.domains.all()
            drains = {a.name: self.shipping.urls(tx, a.id) for a in apps}
        return build_table([a.name for a in apps], processes, domains, drains, self.router_domain)
