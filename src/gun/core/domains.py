"""Domains: the hostnames the router sends to an app. Every app has its default one,
APP.<router domain>; users add their own (gun.domains says what a hostname may be).

A hostname belongs to one app on the whole platform; a user told that one is taken is not told
by which app (they may not be allowed to see it). Names under the router domain are apps'
default names: nobody adds one, and an app's own default one cannot be removed.
"""

from __future__ import annotations

from dataclasses import dataclass

from gun.core.access import authorize
from gun.core.certs import Taken, taken_json, uncover
from gun.domains import check_hostname, default_hostname, is_under
from gun.errors import Conflict, InvalidParams, NotFound
from gun.model import CertInfo, Domain, Principal
from gun.store import Store
from gun.store.domains import taken


@dataclass(frozen=True)
class Served:
    """One of an app's hostnames and the certificate served for it, if one is."""

    domain: Domain
    cert: CertInfo | None


class Domains:
    def __init__(self, store: Store, router_domain: str) -> None:
        self.store = store
        self.router_domain = router_domain

    def default(self, app: str) -> str:
        return default_hostname(app, self.router_domain)

    def all(self, who: Principal, name: str) -> list[Served]:
        """The app's default hostname, then its custom ones by name, each with its cert."""
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            app = tx.apps.existing(name)
            found = [Domain(self.default(name), "default", None), *tx.domains.of(app.id)]
            certs = tx.certs.of(app.id)
        by_host = {h: c for c in certs for h in c.hostnames}
        return [Served(d, by_host.get(d.hostname)) for d in found]

    def add(self, who: Principal, name: str, hostname: str) -> Domain:
        authorize(who, "developer", name)
        host = check_hostname(hostname)
        if is_under(host, self.router_domain):
            raise InvalidParams(
                f"hostname {host} is under the router domain {self.router_domain}, whose names "
                f"are apps' default hostnames (this app's is {self.default(name)}): add a name "
                "of a domain of your own"
            )
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            owner = tx.domains.owner(host)
            if owner == app.id:
                raise Conflict(f"app {name!r} has domain {host} already")
            if owner is not None:
                raise taken(host)
            domain = tx.domains.insert(app.id, host)
            tx.apps.bump_generation(app.id)  # the store's listeners (the router) hear of it
            tx.events.record(app, who.name, "domain.add", {"hostname": host})
        return domain

    def remove(self, who: Principal, name: str, hostname: str) -> list[Taken]:
        """Stop sending `hostname` to the app; its certificate stops serving it (and is
        removed if it served nothing else): what was taken so is returned."""
        authorize(who, "developer", name)
        host = check_hostname(hostname)
        if host == self.default(name):
            raise InvalidParams(
                f"{host} is app {name}'s default hostname: it cannot be removed "
                "(the app is reached there as long as it exists)"
            )
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            if not tx.domains.delete(app.id, host):
                raise NotFound(f"app {name!r} has no domain {host}")
            dropped = uncover(tx, app.id, {host})
            tx.apps.bump_generation(app.id)
            detail: dict[str, object] = {"hostname": host, "certs": taken_json(dropped)}
            tx.events.record(app, who.name, "domain.remove", detail)
        return dropped
