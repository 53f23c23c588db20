"""The routing table: what meta tells the router (pure).

Every app's hostnames (its default `APP.<router domain>` first, then its custom domains), the
`host:port` of each of its web processes the router may send requests to (wanted, up, on an
online instance), and where its router lines go (its drains, the platform's first). The table
is named by a digest of its contents: the router long-polls `GET /v1/router/routes?after=DIGEST`
and is answered when the table is another.

`to_json(table)` gives the JSON object; `read_table(json.loads(...))` reads it back strictly
(gun.jsonread: every field required, one sentence naming the field by its path otherwise), so
that `read_table(json.loads(json.dumps(to_json(t)))) == t`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from gun.errors import ProtocolError
from gun.jsonread import Object, array, expected, matching, text, whole
from gun.model import APP_NAME, PROCESS_NAME

# a hostname as the router matches it: lowercase labels (a `*.` wildcard first at most). A
# label may end with a dash: an app's name may (`shop-`), and so its default hostname.
HOSTNAME = re.compile(r"^(?:\*\.)?(?:[a-z0-9][a-z0-9-]{0,62}\.)*[a-z0-9][a-z0-9-]{0,62}\Z")
ADDRESS = re.compile(r"^[A-Za-z0-9.:-]{1,253}\Z")  # an IPv4/IPv6 address or a host name
FINGERPRINT = re.compile(r"^[0-9a-f]{64}\Z")
PEM_MAX = 256 * 1024
ROUTES_MAX = 100_000
BACKENDS_MAX = 100_000


@dataclass(frozen=True, slots=True)
class Backend:
    """One web process the router may send requests to."""

    name: str  # web.1: the `dyno` of its router lines
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Route:
    app: str
    hostnames: tuple[str, ...]  # the default one first
    backends: tuple[Backend, ...]  # sorted by name
    drains: tuple[str, ...] = field(repr=False)  # logplex URLs for its router lines
    https_only: bool = (
        False  # plain HTTP requests are redirected to HTTPS (config ROUTER_HTTPS_ONLY)
    )


@dataclass(frozen=True, slots=True)
class Certificate:
    """A TLS certificate the router serves by SNI for its hostnames."""

    app: str
    hostnames: tuple[str, ...]
    fingerprint: str  # sha256 of the leaf, hex
    pem: str = field(repr=False)  # the chain, leaf first, then the private key


@dataclass(frozen=True, slots=True)
class Table:
    routes: tuple[Route, ...]  # sorted by app
    certs: tuple[Certificate, ...] = ()  # sorted by app, then as the app added them

    @property
    def digest(self) -> str:
        """Names this table's contents: equal tables, equal digests."""
        text_ = json.dumps(_routes_json(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text_.encode()).hexdigest()[:32]

    def route(self, app: str) -> Route | None:
        return next((r for r in self.routes if r.app == app), None)


def _routes_json(table: Table) -> dict[str, Any]:
    routes = [
        {
            "app": r.app,
            "hostnames": list(r.hostnames),
            "backends": [{"name": b.name, "host": b.host, "port": b.port} for b in r.backends],
            "drains": list(r.drains),
            "https_only": r.https_only,
        }
        for r in table.routes
    ]
    certs = [
        {"app": c.app, "hostnames": list(c.hostnames), "fingerprint": c.fingerprint, "pem": c.pem}
        for c in table.certs
    ]
    return {"routes": routes, "certs": certs}


def to_json(table: Table) -> dict[str, Any]:
    return {"digest": table.digest, **_routes_json(table)}


def read_table(data: object) -> Table:
    """The table from meta's answer, every field checked; ProtocolError names the bad one."""
    o = Object(data, "routes")
    routes = array(o.get("routes")[0], "routes.routes", _route, limit=ROUTES_MAX)
    certs = array(o.get("certs")[0], "routes.certs", _certificate, limit=ROUTES_MAX)
    table = Table(routes, certs)
    digest = text(*o.get("digest"))
    if digest != table.digest:
        raise ProtocolError("routes.digest: does not match the routes (the answer was altered)")
    return table


def _route(value: object, at: str) -> Route:
    o = Object(value, at)
    hostnames = array(*o.get("hostnames"), _hostname, limit=1000)
    backends = array(*o.get("backends"), _backend, limit=BACKENDS_MAX)
    names = [b.name for b in backends]
    if len(set(names)) != len(names):
        raise ProtocolError(f"{at}.backends: a process is named twice")
    return Route(
        app=matching(*o.get("app"), APP_NAME, "an app name"),
        hostnames=hostnames,
        backends=backends,
        drains=array(*o.get("drains"), lambda v, a: text(v, a, limit=2000), limit=100),
        https_only=flag(*o.get("https_only")),
    )


def flag(value: object, at: str) -> bool:
    if not isinstance(value, bool):
        raise expected(at, "true or false", value)
    return value


def _certificate(value: object, at: str) -> Certificate:
    o = Object(value, at)
    return Certificate(
        app=matching(*o.get("app"), APP_NAME, "an app name"),
        hostnames=array(*o.get("hostnames"), _hostname, limit=1000),
        fingerprint=matching(*o.get("fingerprint"), FINGERPRINT, "a sha256 in hex"),
        pem=text(*o.get("pem"), limit=PEM_MAX),
    )


def _hostname(value: object, at: str) -> str:
    name = matching(value, at, HOSTNAME, "a lowercase hostname")
    if len(name) > 253:
        raise ProtocolError(f"{at}: a hostname has at most 253 characters")
    return name


def _backend(value: object, at: str) -> Backend:
    o = Object(value, at)
    name = matching(*o.get("name"), PROCESS_NAME, "a process name (web.1)")
    return Backend(
        name=name,
        host=matching(*o.get("host"), ADDRESS, "an address"),
        port=whole(*o.get("port"), lo=1, hi=65535),
    )
