"""Log drains in meta, on both stores: add and remove drains, the ingest URL and its token,
and what agents are told to ship to."""

from __future__ import annotations

import pytest

from gun.core import Platform
from gun.errors import Forbidden, InvalidParams, NotFound
from gun.model import Principal
from gun.store import Store

DRAIN = "http://127.0.0.1:5101"


@pytest.fixture
def gun(store: Store) -> Platform:
    return Platform(store, drain_url=DRAIN)


@pytest.fixture
def admin(gun: Platform) -> Principal:
    token = gun.tokens.bootstrap_admin(None)
    assert token is not None
    return gun.tokens.authenticate(token)


def test_drains_are_added_listed_and_removed(gun: Platform, admin: Principal) -> None:
    gun.apps.create(admin, "shop")
    first = gun.drains.add(admin, "shop", "http://127.0.0.1:9/ingest")
    second = gun.drains.add(admin, "shop", "http://user:secret@127.0.0.1:9999/logs")
    assert first.token.startswith("d.") and first.token != second.token
    assert [d.url for d in gun.drains.all(admin, "shop")] == [
        "http://127.0.0.1:9/ingest",
        "http://user:secret@127.0.0.1:9999/logs",
    ]
    gun.drains.remove(admin, "shop", first.id)
    assert [d.id for d in gun.drains.all(admin, "shop")] == [second.id]
    with pytest.raises(NotFound) as e:
        gun.drains.remove(admin, "shop", first.id)
    assert e.value.message == f"drain {first.id} of app 'shop' does not exist"


@pytest.mark.parametrize(
    "url", ["syslog://logs.example.com:514", "ftp://x/y", "logs.example.com", "http://", ""]
)
def test_a_drain_that_is_not_http_is_refused(gun: Platform, admin: Principal, url: str) -> None:
    gun.apps.create(admin, "shop")
    with pytest.raises(InvalidParams) as e:
        gun.drains.add(admin, "shop", url)
    assert e.value.message == f"drain URL {url!r} is not an http:// or https:// URL"
    assert gun.drains.all(admin, "shop") == []


def test_the_ingest_url_names_the_app_through_its_token(gun: Platform, admin: Principal) -> None:
    gun.apps.create(admin, "shop")
    gun.apps.create(admin, "blog")
    _, drain = gun.tokens.create(admin, "relay", "drain", None)
    url = gun.drains.ingest_url(admin, "shop")
    assert url.startswith(f"{DRAIN}/logs/gdi_")
    assert gun.drains.ingest_url(admin, "shop") == url  # stable
    assert gun.drains.ingest_url(admin, "shop", 10) == url + "?resolution=10"
    token = url.rsplit("/", 1)[1]
    assert gun.drains.app_of_ingest_token(drain, token) == "shop"
    assert gun.drains.ingest_url(admin, "blog") != url
    with pytest.raises(NotFound):
        gun.drains.app_of_ingest_token(drain, token + "x")
    with pytest.raises(InvalidParams) as e:
        gun.drains.ingest_url(admin, "shop", 0)
    assert e.value.message == "resolution 0 is out of range: use 1 to 3600 seconds"


def test_only_a_drain_token_may_look_up_ingest_tokens(gun: Platform, admin: Principal) -> None:
    gun.apps.create(admin, "shop")
    _, dev = gun.tokens.create(admin, "dev", "developer", "shop")
    _, viewer = gun.tokens.create(admin, "eyes", "viewer", None)
    token = gun.drains.ingest_url(dev, "shop").rsplit("/", 1)[1]
    for who in (admin, dev, viewer):
        with pytest.raises(Forbidden) as e:
            gun.drains.app_of_ingest_token(who, token)
        assert e.value.message == (
            f"token {who.name!r} is not a drain token: only a drain token "
            "(`gun tokens.create NAME role=drain`) may look up ingest tokens"
        )


def test_agents_ship_to_the_platform_drain_then_the_apps_own(
    gun: Platform, admin: Principal, store: Store
) -> None:
    gun.apps.create(admin, "shop")
    gun.drains.add(admin, "shop", "http://127.0.0.1:9/ingest")
    with store.read() as tx:
        shipping = gun.shipping.urls(tx, tx.apps.existing("shop").id)
    assert shipping == [gun.drains.ingest_url(admin, "shop"), "http://127.0.0.1:9/ingest"]


def test_without_a_drain_meta_says_how_to_get_one(store: Store) -> None:
    gun = Platform(store)
    token = gun.tokens.bootstrap_admin(None)
    assert token is not None
    admin = gun.tokens.authenticate(token)
    gun.apps.create(admin, "shop")
    with pytest.raises(NotFound) as e:
        gun.drains.ingest_url(admin, "shop")
    assert "start `gun server drain`" in e.value.message
