"""Routing: the table the router serves (gun.router.table), from placement and what agents
report.

An app's hostnames are `APP.<router domain>` (GUN_ROUTER_DOMAIN, `localhost` under gun up)
and its custom domains; its backends are its web processes that are wanted (a scale down
takes one out at once, before its agent stops it), up (a prebooting copy joins once it
accepts connections; its agent reports the copy that still serves until then) and on an
online instance. Its certificates are served by SNI; config var ROUTER_HTTPS_ONLY=true has
plain HTTP requests redirected to HTTPS. Only a platform admin's token (not scoped to an app)
reads the table: it names every app's drains and holds its certificates' keys.

What changes only with an app's generation (hostnames, drains, certificates, the redirect:
each change bumps it) is read once per generation and kept; the processes are read each time
(reports do not bump generations), in one query for every app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gun.core.access import authorize
from gun.core.shipping import Shipping
from gun.domains import default_hostname
from gun.errors import InvalidParams
from gun.model import RESERVED_PREFIX, ROUTER_APP, Principal
from gun.router.table import Backend, Certificate, Route, Table
from gun.store import Store, Tx
from gun.store.fleet import Routable

LOOPBACK = "127.0.0.1"  # where a local instance's processes listen (gun up: the same machine)
HTTPS_ONLY = "ROUTER_HTTPS_ONLY"  # the config var the router reads
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


def https_only(value: str | None) -> bool:
    """ROUTER_HTTPS_ONLY's meaning (unset: off)."""
    return value is not None and value.strip().lower() in TRUE


def check_https_only(value: str) -> str:
    """A value config.set accepts for ROUTER_HTTPS_ONLY."""
    if value.strip().lower() not in TRUE + FALSE:
        raise InvalidParams(
            f"config var {HTTPS_ONLY} is {value!r}: use true or false (the router redirects plain"
            " HTTP requests to HTTPS when true)"
        )
    return value


def backend_of(p: Routable) -> Backend | None:
    """Where the router reaches a web process (pure): a local instance's on loopback, an ssh
    instance's at its registered host's address, any other's (ec2) at the ip its agent reported
    (the address its packets toward meta leave from); None while gun does not know that."""
    if p.provider == "local":
        return Backend(p.name, LOOPBACK, p.port)
    if p.provider == "ssh":
        return Backend(p.name, p.host_address, p.port) if p.host_address else None
    return Backend(p.name, p.ip, p.port) if p.ip else None


@dataclass(frozen=True)
class AppRouting:
    """What the router needs of an app that only changes with its generation."""

    hostnames: tuple[str, ...]  # the default one first
    drains: tuple[str, ...]
    certs: tuple[Certificate, ...]
    https_only: bool = False


def build_table(apps: Mapping[str, AppRouting], processes: Sequence[Routable]) -> Table:
    """The table (pure): every app, its hostnames, backends, drains and certificates."""
    backends: dict[str, list[Backend]] = {}
    for p in processes:
        b = backend_of(p)
        if b is not None:
            backends.setdefault(p.app, []).append(b)
    routes = tuple(
        Route(
            app=name,
            hostnames=a.hostnames,
            backends=tuple(sorted(backends.get(name, ()), key=lambda b: b.name)),
            drains=a.drains,
            https_only=a.https_only,
        )
        for name, a in sorted(apps.items())
    )
    certs = tuple(c for _, a in sorted(apps.items()) for c in a.certs)
    return Table(routes, certs)


class Routing:
    def __init__(self, store: Store, shipping: Shipping, router_domain: str = "localhost"):
        self.store = store
        self.shipping = shipping
        self.router_domain = router_domain
        self._apps: dict[int, tuple[int, AppRouting]] = {}  # by app id: (generation, routing)
        self.app_reads = 0

    @staticmethod
    def check(who: Principal) -> None:
        """Only a platform admin's token reads the table (it names every app's drains and holds
        their certificates' keys), or the agent's of an instance of the router app."""
        if who.kind == "instance" and who.app == ROUTER_APP:
            return
        authorize(who, "admin")

    def table(self, who: Principal) -> Table:
        self.check(who)
        with self.store.read() as tx:
            generations = tx.apps.generations()
            apps = {a.id: a.name for a in tx.apps.all() if not a.name.startswith(RESERVED_PREFIX)}
            routed: dict[str, AppRouting] = {}
            for app_id, name in apps.items():
                generation = generations.get(app_id, -1)
                kept = self._apps.get(app_id)
                if kept is None or kept[0] != generation:
                    kept = (generation, self._read_app(tx, app_id, name))
                    self._apps[app_id] = kept
                routed[name] = kept[1]
            processes = tx.processes.routable()
        for gone in set(self._apps) - set(apps):
            del self._apps[gone]
        return build_table(routed, processes)

    def _read_app(self, tx: Tx, app_id: int, name: str) -> AppRouting:
        self.app_reads += 1
        custom = tuple(d.hostname for d in tx.domains.of(app_id))
        certs = tuple(
            Certificate(c.app, c.hostnames, c.fingerprint, c.chain_pem.rstrip() + "\n" + c.key_pem)
            for c in tx.certs.all(app_id)
        )
        return AppRouting(
            hostnames=(default_hostname(name, self.router_domain), *custom),
            drains=tuple(self.shipping.urls(tx, app_id)),
            certs=certs,
            https_only=https_only(tx.config.get(app_id, HTTPS_ONLY)),
        )
