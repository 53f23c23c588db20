"""A revoked token is refused within a second by every route of every meta on the database:
two real meta replicas on one store (SQLite file or PostgreSQL), a token both have cached,
revoked through one; then every route of both, polled until each refuses it.

What is timed is when each request was *sent*: no request sent more than a second after the
revoke may be taken. (When its answer arrives depends on how busy the machine is, which the
guarantee does not.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.meta import MetaServer

ADMIN = "gun_test_admin_token"
UNAUTHENTICATED = {
    "/health",
    "/v1/health",
    "/openapi.json",
    # the Heroku API's URLs whose path is their key (no bearer token): a log session, a
    # source's upload and download, a build's output (tests/test_api_gate.py lists them)
    "/log-sessions/{token}",
    "/sources/{token}",
    "/build-output/{build_id}/{token}",
}
REVOKED = {"id": "unauthorized", "message": "the API token is unknown or revoked"}


@pytest.fixture
def replicas(database_url: str, tmp_path: Path) -> Iterator[list[MetaServer]]:
    key = Fernet.generate_key().decode()
    servers = [MetaServer(tmp_path / f"meta{n}", database_url, ADMIN) for n in (1, 2)]
    try:
        for s in servers:
            s.extra_env = {"GUN_SECRET_KEY": key, "GUN_DRAIN_URL": "http://127.0.0.1:9"}
            s.start()
        yield servers
    finally:
        for s in servers:
            s.stop()


def every_route(meta: MetaServer) -> list[tuple[str, str]]:
    """(method, path) of every authenticated route, path parameters filled in."""
    paths = httpx.get(f"{meta.url}/openapi.json", timeout=10).json()["paths"]
    fill = {"{app}": "shop", "{version}": "1", "{layer}": "default", "{name:path}": "x"}
    out = []
    for path, ops in paths.items():
        if path in UNAUTHENTICATED:
            continue
        for k, v in fill.items():
            path = path.replace(k, v)
        while "{" in path:
            path = path[: path.index("{")] + "1" + path[path.index("}") + 1 :]
        out += [(method.upper(), path) for method in ops]
    return out


async def refusals(
    replicas: list[MetaServer], token: str, routes: list[tuple[str, str]], since: float
) -> tuple[dict[tuple[str, str, str], float], float]:
    """Poll every route of every replica until each refuses `token` (401). Returns, per
    route, when (seconds after `since`) the first refused request was sent, and when the
    last request that was still taken was sent. Stops after 3 s."""
    first: dict[tuple[str, str, str], float] = {}
    last_taken = 0.0
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=5) as http:

        async def poll(meta: MetaServer, method: str, path: str) -> None:
            nonlocal last_taken
            while time.monotonic() - since < 3:
                sent = time.monotonic() - since
                r = await http.request(method, meta.url + path, params={"after": 0})
                if r.status_code == 401:
                    assert r.json() == REVOKED, (method, path, r.text)
                    first[(meta.url, method, path)] = sent
                    return
                assert r.status_code in (200, 400, 403, 404, 405, 422), (method, path, r.text)
                last_taken = max(last_taken, sent)
                await asyncio.sleep(0.02)

        await asyncio.gather(*(poll(m, meth, p) for m in replicas for meth, p in routes))
    return first, last_taken


def test_a_revoked_token_is_refused_by_every_route_of_every_replica_within_a_second(
    replicas: list[MetaServer],
) -> None:
    one, two = replicas
    assert one.gun("apps.create", "shop").code == 0
    # a viewer of one app: while still taken, every route that changes something refuses it
    token = one.gun("tokens.create", "watcher", "role=viewer", "app=shop").out.strip()
    for meta in replicas:  # both cache it
        with meta.http(token) as http:
            assert http.get("/v1/apps/shop/status").status_code == 200
    routes = every_route(one)
    assert len(routes) > 30
    r = two.gun("tokens.revoke:watcher")
    assert r.code == 0, r.err
    revoked = time.monotonic()
    first, last_taken = asyncio.run(refusals(replicas, token, routes, revoked))
    missing = [(m, p) for m in (one.url, two.url) for p in routes if (m, *p) not in first]
    assert missing == []
    assert last_taken <= 1.0, f"a request sent {last_taken:.2f}s after the revoke was taken"
