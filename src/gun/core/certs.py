"""TLS certificates the router serves, by SNI, for an app's hostnames.

One certificate per hostname: a new certificate that covers a hostname takes it from the
app's certificate that covered it; a certificate left covering none of the app's hostnames is
removed (both said in the result and in the event). Removing a domain takes it from its
certificate the same way, so no certificate goes on being served for a hostname the app no
longer has. A certificate covers the app's hostnames it names when it is added: a domain added
later is not served by it until it is added again.

Viewers see certificates' hostnames, dates, fingerprints, issuers and subjects; nobody gets a
private key back through the user API (`tx.certs.all()` gives it to the router in meta).
"""

from __future__ import annotations

from dataclasses import dataclass

from gun.core.access import authorize
from gun.domains import check_hostname, default_hostname
from gun.errors import InvalidParams, NotFound
from gun.model import App, CertInfo, Principal
from gun.store import Store, Tx
from gun.store.time import now
from gun.tlscerts import covered, listing, parse


@dataclass(frozen=True)
class Taken:
    """Hostnames an older certificate of the app no longer serves; `removed`: it served
    nothing else, and is gone."""

    fingerprint: str
    hostnames: tuple[str, ...]
    removed: bool


@dataclass(frozen=True)
class Added:
    cert: CertInfo
    replaced: tuple[Taken, ...]


def hostnames_of(tx: Tx, app: App, router_domain: str) -> list[str]:
    """The app's hostnames: its default one, then its custom ones by name."""
    return [default_hostname(app.name, router_domain)] + [d.hostname for d in tx.domains.of(app.id)]


def uncover(tx: Tx, app_id: int, hostnames: set[str]) -> list[Taken]:
    """Take `hostnames` from the app's certificates; remove those left with none."""
    taken = []
    for c in tx.certs.of(app_id):
        lost = tuple(h for h in c.hostnames if h in hostnames)
        if not lost:
            continue
        kept = tuple(h for h in c.hostnames if h not in hostnames)
        if kept:
            tx.certs.set_hostnames(c.id, kept)
        else:
            tx.certs.delete(c.id)
        taken.append(Taken(c.fingerprint, lost, not kept))
    return taken


def taken_json(taken: list[Taken] | tuple[Taken, ...]) -> list[dict[str, object]]:
    return [
        {"fingerprint": t.fingerprint, "hostnames": list(t.hostnames), "removed": t.removed}
        for t in taken
    ]


class Certs:
    def __init__(self, store: Store, router_domain: str) -> None:
        self.store = store
        self.router_domain = router_domain

    def all(self, who: Principal, name: str) -> list[CertInfo]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.certs.of(tx.apps.existing(name).id)

    def add(self, who: Principal, name: str, chain_pem: str, key_pem: str) -> Added:
        """Serve the certificate (PEM chain, leaf first) with its key for the app's hostnames
        it covers; refused, with nothing changed, unless it and its key are as
        gun.tlscerts says and it covers at least one of them."""
        authorize(who, "developer", name)
        parsed = parse(chain_pem, key_pem, now())
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            mine = hostnames_of(tx, app, self.router_domain)
            hosts = tuple(covered(parsed.names, mine))
            if not hosts:
                raise InvalidParams(
                    f"the certificate covers {listing(parsed.names)}, none of app {name}'s "
                    f"domains ({listing(mine)})"
                )
            replaced = tuple(uncover(tx, app.id, set(hosts)))
            cert = tx.certs.insert(app.id, parsed, hosts)
            tx.apps.bump_generation(app.id)  # the store's listeners (the router) hear of it
            tx.events.record(
                app,
                who.name,
                "cert.add",
                {
                    "fingerprint": cert.fingerprint,
                    "hostnames": list(hosts),
                    "not_after": cert.not_after.isoformat(),
                    "replaced": taken_json(replaced),
                },
            )
        return Added(cert, replaced)

    def remove(self, who: Principal, name: str, hostname: str) -> CertInfo:
        """Stop serving the certificate that covers `hostname` (for all its hostnames)."""
        authorize(who, "developer", name)
        host = check_hostname(hostname)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            found = [c for c in tx.certs.of(app.id) if host in c.hostnames]
            if not found:
                raise NotFound(f"no certificate of app {name!r} covers {host}")
            cert = found[0]
            tx.certs.delete(cert.id)
            tx.apps.bump_generation(app.id)
            tx.events.record(
                app,
                who.name,
                "cert.remove",
                {"fingerprint": cert.fingerprint, "hostnames": list(cert.hostnames)},
            )
        return cert
