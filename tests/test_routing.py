"""The routing table meta serves (gun.core.routing), on both stores: what it holds, who may read
it, and the platform's router app `gun-router`, which only admins of the whole platform touch."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from gun import formation
from gun.core import Platform
from gun.core.routing import AppRouting, backend_of, build_table
from gun.errors import Forbidden, InvalidParams
from gun.model import Principal
from gun.router.table import Backend
from gun.store.fleet import Routable
from tests.meta import MetaServer
from tests.tlsmaker import self_signed


def test_the_table_holds_every_app_with_its_names_processes_and_keys(
    platform: Platform, admin: Principal
) -> None:
    gun = platform
    gun.apps.create(admin, "shop")
    gun.apps.create(admin, "blog")
    gun.domains.add(admin, "shop", "www.shop.test")
    chain, key = self_signed(["www.shop.test"])
    gun.certs.add(admin, "shop", chain, key)
    gun.config.change(admin, "shop", {"ROUTER_HTTPS_ONLY": "true"})
    table = gun.routing.table(admin)
    assert [(r.app, r.hostnames, r.backends, r.https_only) for r in table.routes] == [
        ("blog", ("blog.localhost",), (), False),
        ("shop", ("shop.localhost", "www.shop.test"), (), True),
    ]
    assert [(c.app, c.hostnames) for c in table.certs] == [("shop", ("www.shop.test",))]
    assert "-----BEGIN PRIVATE KEY-----" in table.certs[0].pem  # the router serves it: its key too
    reads = gun.routing.app_reads
    assert gun.routing.table(admin) == table
    assert gun.routing.app_reads == reads  # nothing changed: each app read once per generation
    gun.domains.remove(admin, "shop", "www.shop.test")
    assert gun.routing.table(admin).routes[1].hostnames == ("shop.localhost",)
    assert gun.routing.app_reads == reads + 1


def test_a_local_web_process_is_reached_on_loopback() -> None:
    table = build_table(
        {"shop": AppRouting(("shop.localhost",), (), ())},
        [Routable("shop", "web.1", 5001, "local", None)],
    )
    assert table.routes[0].backends == (Backend("web.1", "127.0.0.1", 5001),)


@pytest.mark.parametrize(
    ("process", "backend"),
    [
        (Routable("shop", "web.1", 5001, "local", None, "10.0.0.7"), ("127.0.0.1", 5001)),
        (Routable("shop", "web.1", 5001, "local", None, None), ("127.0.0.1", 5001)),
        (Routable("shop", "web.2", 5002, "ssh", "edge1.example.com", "10.0.0.8"),
         ("edge1.example.com", 5002)),  # the host as registered, not what its agent says
        (Routable("shop", "web.2", 5002, "ssh", None, "10.0.0.8"), None),
        (Routable("shop", "web.3", 5003, "ec2", None, "172.31.5.9"), ("172.31.5.9", 5003)),
        (Routable("shop", "web.3", 5003, "ec2", None, "2001:db8::9"), ("2001:db8::9", 5003)),
        (Routable("shop", "web.3", 5003, "ec2", None, None), None),  # an agent before ip
        (Routable("shop", "web.4", 5004, "cloud9", None, "192.0.2.4"), ("192.0.2.4", 5004)),
    ],
)  # fmt: skip
def test_where_the_router_reaches_a_web_process(
    process: Routable, backend: tuple[str, int] | None
) -> None:
    got = backend_of(process)
    assert (got and (got.host, got.port)) == backend
    assert got is None or got.name == process.name


@pytest.mark.parametrize("role", ["viewer", "developer"])
def test_only_a_platform_admin_reads_the_table(
    platform: Platform, admin: Principal, role: str
) -> None:
    gun = platform
    gun.apps.create(admin, "shop")
    _, who = gun.tokens.create(admin, f"a-{role}", role, None)
    with pytest.raises(Forbidden):
        gun.routing.table(who)
    _, scoped = gun.tokens.create(admin, "shop-admin", "admin", "shop")
    with pytest.raises(Forbidden) as e:
        gun.routing.table(scoped)
    assert "scoped to app 'shop'" in e.value.message


def test_the_router_app_is_for_platform_admins_only(platform: Platform, admin: Principal) -> None:
    gun = platform
    _, developer = gun.tokens.create(admin, "dev", "developer", None)
    with pytest.raises(InvalidParams):
        gun.apps.create(developer, "gun-drain")  # the platform's prefix
    with pytest.raises(Forbidden):
        gun.apps.create(developer, "gun-router")
    gun.apps.create(admin, "gun-router")
    for action in (
        lambda: gun.config.change(developer, "gun-router", {"ROUTER_PORT": "8080"}),
        lambda: gun.config.get(developer, "gun-router"),
        lambda: gun.formation.scale(developer, "gun-router", formation.parse("web=1")),
    ):
        with pytest.raises(Forbidden) as e:
            action()
        assert e.value.message == "token 'dev' has role developer; this needs role admin"
    with pytest.raises(InvalidParams) as bad:
        gun.config.change(admin, "gun-router", {"ROUTER_PORT": "99999"})
    assert bad.value.message == "config var ROUTER_PORT is '99999': give a port from 1 to 65535"
    gun.config.change(admin, "gun-router", {"ROUTER_PORT": "8080", "ROUTER_TIMEOUT": "5"})
    assert [r.app for r in gun.routing.table(admin).routes] == []  # not routed itself


def test_a_routers_long_poll_ends_when_its_token_is_revoked(meta: MetaServer) -> None:
    admin = {"Authorization": f"Bearer {meta.admin_token}"}
    made = httpx.post(
        f"{meta.url}/v1/tokens", json={"name": "edge", "role": "admin"}, headers=admin
    )
    assert made.status_code == 201, made.text
    mine = {"Authorization": f"Bearer {made.json()['token']}"}
    first = httpx.get(f"{meta.url}/v1/router/routes", headers=mine, timeout=10)
    assert first.status_code == 200 and first.json()["routes"] == []
    answer: list[tuple[int, float]] = []

    def wait() -> None:
        sent = time.monotonic()
        r = httpx.get(
            f"{meta.url}/v1/router/routes",
            params={"after": first.json()["digest"], "wait": 20},
            headers=mine,
            timeout=30,
        )
        answer.append((r.status_code, time.monotonic() - sent))

    waiting = threading.Thread(target=wait)
    waiting.start()
    time.sleep(1)
    assert httpx.delete(f"{meta.url}/v1/tokens/edge", headers=admin).status_code == 200
    waiting.join(30)
    status, took = answer[0]
    assert status == 401  # no table for a token revoked while it waited
    assert took < 5
