"""Domains and TLS certificates in meta, on both stores: what users add, what is refused (one
sentence, nothing changed), who may, the keys sealed at rest, and what the router reads."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from gun.core import Platform
from gun.errors import Conflict, Forbidden, InvalidParams, NotFound
from gun.model import Principal
from gun.store import Store
from gun.store.schema import certs, domains
from tests.tlsmaker import chained, self_signed


def hosts(gun: Platform, who: Principal, app: str) -> list[tuple[str, str, str | None]]:
    return [
        (s.domain.hostname, s.domain.kind, s.cert.fingerprint if s.cert else None)
        for s in gun.domains.all(who, app)
    ]


def actions(gun: Platform, who: Principal, app: str) -> list[str]:
    return [e.action for e in gun.apps.events(who, app)]


def test_domains_are_added_listed_and_removed(platform: Platform, admin: Principal) -> None:
    gun = platform
    gun.apps.create(admin, "shop")
    assert hosts(gun, admin, "shop") == [("shop.localhost", "default", None)]
    added = gun.domains.add(admin, "shop", "WWW.Example.com")
    assert (added.hostname, added.kind) == ("www.example.com", "custom")
    gun.domains.add(admin, "shop", "*.example.com")
    assert hosts(gun, admin, "shop") == [
        ("shop.localhost", "default", None),
        ("*.example.com", "custom", None),
        ("www.example.com", "custom", None),
    ]
    with gun.store.read() as tx:
        assert tx.domains.all() == [("shop", "*.example.com"), ("shop", "www.example.com")]
    assert gun.domains.remove(admin, "shop", "www.example.com") == []
    assert [h for h, _, _ in hosts(gun, admin, "shop")] == ["shop.localhost", "*.example.com"]
    assert actions(gun, admin, "shop")[:3] == ["domain.remove", "domain.add", "domain.add"]


def test_the_router_domain_comes_from_the_platform(store: Store) -> None:
    gun = Platform(store, router_domain="apps.example.net")
    token = gun.tokens.bootstrap_admin(None)
    assert token is not None
    admin = gun.tokens.authenticate(token)
    gun.apps.create(admin, "shop")
    assert hosts(gun, admin, "shop") == [("shop.apps.example.net", "default", None)]
    with pytest.raises(InvalidParams) as e:
        gun.domains.add(admin, "shop", "blog.apps.example.net")
    assert e.value.message.startswith(
        "hostname blog.apps.example.net is under the router domain apps.example.net"
    )
    gun.domains.add(admin, "shop", "shop.localhost")  # not under this platform's domain


@pytest.mark.parametrize(
    ("verb", "hostname", "error", "message"),
    [
        (
            "add",
            "bad_name.example.com",
            InvalidParams,
            "hostname 'bad_name.example.com' is invalid: use labels of 1-63 letters, digits "
            "and dashes (not starting or ending with a dash), separated by dots, at least two "
            "of them, 253 characters at most",
        ),
        (
            "add",
            "www.shop.localhost",
            InvalidParams,
            "hostname www.shop.localhost is under the router domain localhost, whose names are "
            "apps' default hostnames (this app's is shop.localhost): add a name of a domain of "
            "your own",
        ),
        ("add", "blog.example.com", Conflict, "domain blog.example.com belongs to another app"),
        ("add", "WWW.example.com", Conflict, "app 'shop' has domain www.example.com already"),
        ("remove", "api.example.com", NotFound, "app 'shop' has no domain api.example.com"),
        ("remove", "blog.example.com", NotFound, "app 'shop' has no domain blog.example.com"),
        (
            "remove",
            "shop.localhost",
            InvalidParams,
            "shop.localhost is app shop's default hostname: it cannot be removed (the app is "
            "reached there as long as it exists)",
        ),
    ],
)
def test_bad_domains_are_refused_and_nothing_changes(
    platform: Platform,
    admin: Principal,
    verb: str,
    hostname: str,
    error: type[Exception],
    message: str,
) -> None:
    gun = platform
    gun.apps.create(admin, "shop")
    gun.apps.create(admin, "blog")
    gun.domains.add(admin, "shop", "www.example.com")
    gun.domains.add(admin, "blog", "blog.example.com")
    with gun.store.read() as tx:
        before = tx.domains.all()
    events = actions(gun, admin, "shop")
    with pytest.raises(error) as e:
        getattr(gun.domains, verb)(admin, "shop", hostname)
    assert e.value.message == message  # type: ignore[attr-defined]
    assert "blog'" not in message.replace("blog.", "")  # the other app is not named
    with gun.store.read() as tx:
        assert tx.domains.all() == before
    assert actions(gun, admin, "shop") == events


def test_roles_and_app_scoped_tokens(platform: Platform, admin: Principal) -> None:
    gun = platform
    gun.apps.create(admin, "shop")
    gun.apps.create(admin, "blog")
    _, viewer = gun.tokens.create(admin, "eyes", "viewer", None)
    _, dev = gun.tokens.create(admin, "dev", "developer", "shop")
    gun.domains.add(dev, "shop", "www.example.com")
    chain, key = self_signed(["www.example.com"])
    gun.certs.add(dev, "shop", chain, key)
    assert [h for h, _, _ in hosts(gun, viewer, "shop")] == ["shop.localhost", "www.example.com"]
    assert [c.hostnames for c in gun.certs.all(viewer, "shop")] == [("www.example.com",)]
    for call in (
        lambda: gun.domains.add(viewer, "shop", "api.example.com"),
        lambda: gun.domains.remove(viewer, "shop", "www.example.com"),
        lambda: gun.certs.add(viewer, "shop", chain, key),
        lambda: gun.certs.remove(viewer, "shop", "www.example.com"),
    ):
        with pytest.raises(Forbidden) as e:
            call()
        assert e.value.message == "token 'eyes' has role viewer; this needs role developer"
    for call in (
        lambda: gun.domains.all(dev, "blog"),
        lambda: gun.domains.add(dev, "blog", "api.example.com"),
        lambda: gun.certs.all(dev, "blog"),
        lambda: gun.certs.add(dev, "blog", chain, key),
    ):
        with pytest.raises(Forbidden) as e:
            call()
        assert e.value.message == "token 'dev' is scoped to app 'shop' and cannot reach app 'blog'"
    with gun.store.read() as tx:
        assert tx.domains.all() == [("shop", "www.example.com")]
        assert len(tx.certs.all()) == 1


def test_a_certificate_is_served_for_the_hostnames_it_covers(
    platform: Platform, admin: Principal
) -> None:
    gun = platform
    gun.apps.create(admin, "shop")
    gun.domains.add(admin, "shop", "www.example.com")
    gun.domains.add(admin, "shop", "api.example.com")
    chain, key, _ = chained(["*.example.com", "shop.localhost", "www.other.com"])
    added = gun.certs.add(admin, "shop", chain, key)
    assert added.replaced == ()
    assert added.cert.hostnames == ("shop.localhost", "api.example.com", "www.example.com")
    assert added.cert.issuer == "Test Intermediate" and added.cert.subject == "*.example.com"
    fp = added.cert.fingerprint
    assert hosts(gun, admin, "shop") == [
        ("shop.localhost", "default", fp),
        ("api.example.com", "custom", fp),
        ("www.example.com", "custom", fp),
    ]
    with gun.store.read() as tx:
        (cert,) = tx.certs.all()
    assert (cert.app, cert.hostnames, cert.fingerprint) == ("shop", added.cert.hostnames, fp)
    assert cert.chain_pem == chain and cert.key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert cert.not_after == added.cert.not_after
    assert actions(gun, admin, "shop")[0] == "cert.add"


def test_the_key_is_sealed_at_rest(platform: Platform, admin: Principal) -> None:
    gun = platform
    gun.apps.create(admin, "shop")
    chain, key = self_signed(["shop.localhost"])
    gun.certs.add(admin, "shop", chain, key)
    with gun.store.read() as tx:
        (served,) = tx.certs.all()
        raw = tx.conn.execute(select(certs)).one()
        dump = " ".join(str(v) for v in raw)
    body = "".join(served.key_pem.splitlines()[1:-1])
    assert "PRIVATE KEY" not in dump
    assert body[:40] not in dump.replace("\n", "")
    assert raw.key_sealed and raw.chain_pem == chain


def test_a_new_certificate_replaces_the_old_one_hostname_by_hostname(
    platform: Platform, admin: Principal
) -> None:
    gun = platform
    gun.apps.create(admin, "shop")
    gun.domains.add(admin, "shop", "www.example.com")
    gun.domains.add(admin, "shop", "api.example.com")
    first = gun.certs.add(admin, "shop", *self_signed(["www.example.com", "api.example.com"]))
    second = gun.certs.add(admin, "shop", *self_signed(["www.example.com"]))
    old = first.cert.fingerprint
    assert [(t.fingerprint, t.hostnames, t.removed) for t in second.replaced] == [
        (old, ("www.example.com",), False)
    ]
    assert {c.fingerprint: c.hostnames for c in gun.certs.all(admin, "shop")} == {
        old: ("api.example.com",),
        second.cert.fingerprint: ("www.example.com",),
    }
    third = gun.certs.add(admin, "shop", *self_signed(["api.example.com", "www.example.com"]))
    assert {(t.fingerprint, t.removed) for t in third.replaced} == {
        (old, True),
        (second.cert.fingerprint, True),
    }
    assert [c.fingerprint for c in gun.certs.all(admin, "shop")] == [third.cert.fingerprint]
    (event,) = [e for e in gun.apps.events(admin, "shop") if e.action == "cert.add"][:1]
    assert event.detail["replaced"] == [
        {"fingerprint": old, "hostnames": ["api.example.com"], "removed": True},
        {"fingerprint": second.cert.fingerprint, "hostnames": ["www.example.com"], "removed": True},
    ]
    # removing a domain takes it from its certificate; the last one takes the certificate
    gone = gun.domains.remove(admin, "shop", "api.example.com")
    assert [(t.hostnames, t.removed) for t in gone] == [(("api.example.com",), False)]
    gone = gun.domains.remove(admin, "shop", "www.example.com")
    assert [(t.hostnames, t.removed) for t in gone] == [(("www.example.com",), True)]
    assert gun.certs.all(admin, "shop") == []


def test_certificates_are_removed_by_a_hostname_they_cover(
    platform: Platform, admin: Principal
) -> None:
    gun = platform
    gun.apps.create(admin, "shop")
    gun.domains.add(admin, "shop", "www.example.com")
    added = gun.certs.add(admin, "shop", *self_signed(["www.example.com", "shop.localhost"]))
    with pytest.raises(NotFound) as e:
        gun.certs.remove(admin, "shop", "api.example.com")
    assert e.value.message == "no certificate of app 'shop' covers api.example.com"
    removed = gun.certs.remove(admin, "shop", "WWW.example.com")
    assert removed.fingerprint == added.cert.fingerprint
    assert removed.hostnames == ("shop.localhost", "www.example.com")
    assert gun.certs.all(admin, "shop") == []
    assert actions(gun, admin, "shop")[0] == "cert.remove"


def test_bad_certificates_are_refused_and_nothing_changes(
    platform: Platform, admin: Principal
) -> None:
    gun = platform
    gun.apps.create(admin, "shop")
    gun.domains.add(admin, "shop", "www.example.com")
    kept = gun.certs.add(admin, "shop", *self_signed(["www.example.com"]))
    events = actions(gun, admin, "shop")
    chain, key = self_signed(["www.other.com", "other.com"])
    _, wrong = self_signed(["www.example.com"])
    cases = [
        (
            (chain, key),
            "the certificate covers www.other.com, other.com, none of app shop's domains "
            "(shop.localhost, www.example.com)",
        ),
        ((self_signed(["www.example.com"])[0], wrong), "the key does not match the certificate"),
        (self_signed(["www.example.com"], days=(-9, -1)), "the certificate expired on "),
        (self_signed(["www.example.com"], days=(1, 9)), "the certificate is not valid until "),
        (("garbage", key), "the certificate is not a PEM certificate"),
        (self_signed(["example.com"]), "the certificate covers example.com, none of"),
    ]
    for (c, k), message in cases:
        with pytest.raises(InvalidParams) as e:
            gun.certs.add(admin, "shop", c, k)
        assert e.value.message.startswith(message)
    assert [c.fingerprint for c in gun.certs.all(admin, "shop")] == [kept.cert.fingerprint]
    assert actions(gun, admin, "shop") == events


def test_destroying_an_app_removes_its_domains_and_certificates(
    platform: Platform, admin: Principal
) -> None:
    gun = platform
    gun.apps.create(admin, "shop")
    gun.apps.create(admin, "blog")
    gun.domains.add(admin, "shop", "www.example.com")
    gun.domains.add(admin, "blog", "blog.example.com")
    gun.certs.add(admin, "shop", *self_signed(["www.example.com"]))
    gun.certs.add(admin, "blog", *self_signed(["blog.example.com"]))
    gun.apps.destroy(admin, "shop")
    with gun.store.read() as tx:
        assert tx.domains.all() == [("blog", "blog.example.com")]
        assert [c.app for c in tx.certs.all()] == ["blog"]
        rows = tx.conn.execute(select(domains.c.hostname)).scalars().all()
        assert rows == ["blog.example.com"]
        assert tx.conn.execute(text("SELECT count(*) FROM certs")).scalar() == 1
    gun.apps.create(admin, "shop")  # the hostname is free again
    gun.domains.add(admin, "shop", "www.example.com")
