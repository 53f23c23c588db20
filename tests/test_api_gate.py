"""The gate in front of meta's routes, over real HTTP to `gun server meta`: the token is checked
before any body is read, JSON bodies are capped at 1 MiB as they stream, uploads keep their own
cap."""

from __future__ import annotations

import asyncio
import io
import json
import os
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import psutil
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import event

import gun.dashboard
from gun.api import create_app, gate
from gun.core import Platform
from gun.store import Store
from tests.meta import MetaServer

ADMIN = "gun_test_admin_token"
JSON = {"Content-Type": "application/json"}
MiB = 1024 * 1024
TOO_LARGE = {
    "id": "payload_too_large",
    "message": "the request body is over the limit of 1048576 bytes (1 MiB): send less, or "
    "upload slugs and sources to their own routes",
}
NO_TOKEN = {
    "id": "unauthorized",
    "message": "no API token given: run `gun login` or pass --token",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetaServer]:
    home = tmp_path_factory.mktemp("gate")
    meta = MetaServer(home / "home", f"sqlite:///{home / 'meta.db'}", admin_token=ADMIN)
    meta.start()
    try:
        with meta.http() as c:
            assert c.post("/v1/apps", json={"name": "demo"}).status_code == 201
        yield meta
    finally:
        meta.stop()


def stream(total: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """`total` bytes of a JSON-looking body, made as they are sent (the test holds 256 kB)."""
    block = b" " * chunk
    yield b'{"A": "'
    sent = 7
    while sent < total:
        part = block[: min(chunk, total - sent)]
        sent += len(part)
        yield part


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, NO_TOKEN),
        (
            "gun_no_such_token",
            {"id": "unauthorized", "message": "the API token is unknown or revoked"},
        ),
    ],
    ids=["no-token", "unknown-token"],
)
def test_200MB_bodies_without_a_valid_token_are_refused_unread(
    server: MetaServer, token: str | None, expected: dict[str, str]
) -> None:
    assert server.proc is not None
    before = rss(server.proc.pid)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for _ in range(3):
        began = time.monotonic()
        r = httpx.patch(
            f"{server.url}/v1/apps/demo/config-vars",
            content=stream(200 * 1024 * 1024),
            headers={**headers, "Content-Type": "application/json"},
            timeout=30,
        )
        assert (r.status_code, r.json()) == (401, expected)
        assert time.monotonic() - began < 3  # far less than sending 200 MB takes
    assert rss(server.proc.pid) - before < 20 * 1024 * 1024
    with server.http() as c:  # and meta serves on
        assert c.get("/v1/apps/demo/config-vars").json() == {}


def test_a_json_body_over_1MiB_is_refused_with_413(server: MetaServer) -> None:
    body = json.dumps({"A": "x" * (2 * MiB)})
    with server.http() as c:
        r = c.patch("/v1/apps/demo/config-vars", content=body)
        assert (r.status_code, r.json()) == (413, TOO_LARGE)
        assert r.headers["connection"] == "close"
        assert c.get("/v1/apps/demo/config-vars").json() == {}


def test_a_body_without_a_length_is_counted_as_it_streams(server: MetaServer) -> None:
    with server.http() as c:
        r = c.patch("/v1/apps/demo/config-vars", content=stream(3 * MiB))
        assert "content-length" not in r.request.headers
        assert (r.status_code, r.json()) == (413, TOO_LARGE)
        # one byte over the cap, chunked
        r = c.patch("/v1/apps/demo/config-vars", content=stream(MiB + 1))
        assert (r.status_code, r.json()) == (413, TOO_LARGE)


def exactly_1MiB() -> Iterator[bytes]:
    """`{"A": "xx...x"}`, 1 MiB in all, in pieces."""
    yield b'{"A": "'
    yield b"x" * (MiB - 9)
    yield b'"}'


def test_a_body_of_exactly_1MiB_reaches_the_route(server: MetaServer) -> None:
    with server.http() as c:
        for body in (exactly_1MiB(), b"".join(exactly_1MiB())):
            r = c.patch("/v1/apps/demo/config-vars", content=body, headers=JSON)
            # the route read all of it: the config var is what is too large
            assert (r.status_code, r.json()["message"]) == (
                422,
                f"config vars would total {MiB - 8} bytes, over the limit of 32768 bytes",
            )


def slug(size: int) -> bytes:
    """A slug with a Procfile and `size` bytes that do not compress."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in (("app/Procfile", b"web: serve\n"), ("app/blob", os.urandom(size))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def test_upload_routes_take_bodies_over_1MiB(server: MetaServer) -> None:
    body = slug(3 * MiB)
    assert len(body) > 3 * MiB
    with server.http() as c:
        r = c.post("/v1/apps/demo/slugs", content=body)
        assert r.status_code == 201, r.text
        assert r.json()["size"] == len(body)
        # unauthenticated, an upload is refused before its body is read too
        r = httpx.post(f"{server.url}/v1/apps/demo/slugs", content=stream(50 * MiB), timeout=30)
        assert (r.status_code, r.json()) == (401, NO_TOKEN)


def test_routes_without_a_token_are_only_these(server: MetaServer) -> None:
    """Every route of meta's app takes a token, but health, the OpenAPI document and the
    Heroku API's tokened URLs; the upload routes stream their own bodies. A router included
    without the gate knowing it would show here as public."""
    app = create_app(cast(Platform, None))  # only its routes are looked at
    (middleware,) = [m for m in app.user_middleware if m.cls is gate.Gate]
    doors = gate.Doors.of(middleware.kwargs["routers"])
    public, uploads = set(), set()
    for path, ops in app.openapi()["paths"].items():
        concrete = path.replace("{", "").replace("}", "")  # any value will do for a parameter
        for method in ops:
            door = doors.find(method.upper(), concrete)
            if not door.token:
                public.add(f"{method.upper()} {path}")
            if door.upload:
                uploads.add(f"{method.upper()} {path}")
    # the Heroku API's URLs that are their own key (a token in the path): sources, build
    # output, a log session (api/heroku/log_sessions.py)
    tokened = {
        "PUT /sources/{token}",
        "GET /sources/{token}",
        "GET /build-output/{build_id}/{token}",
        "GET /log-sessions/{token}",
    }
    assert public == {"GET /health", "GET /v1/health", *tokened}
    # the dashboard's pages and forms (gun/dashboard/pages.py, logs_pages.py,
    # metrics_pages.py), left out of the OpenAPI document: their own cookie session and CSRF
    # token, no bearer token (a browser sends none)
    dashboard = {
        f"{method} {r.path}"
        for r in [*gun.dashboard.router.routes, *gun.dashboard.logs_router.routes]
        if isinstance(r, APIRoute)
        for method in sorted(r.methods)
        if not doors.find(method, r.path.replace("{app}", "demo")).token
    }
    assert dashboard == {
        "GET /dash/",
        "GET /dash/apps",
        "GET /dash/login",
        "POST /dash/login",
        "POST /dash/logout",
        "GET /dash/apps/{app}",
        "GET /dash/apps/{app}/processes",
        "GET /dash/apps/{app}/rollback",
        "POST /dash/apps/{app}/scale",
        "POST /dash/apps/{app}/rollback",
        "GET /dash/apps/{app}/logs",
        "GET /dash/apps/{app}/logs/stream",
        "GET /dash/apps/{app}/metrics",  # dashboard/metrics_pages.py
        "GET /dash/apps/{app}/metrics/charts",
    }
    assert not any(p.startswith("/dash") for p in app.openapi()["paths"])
    assert uploads == {
        "POST /v1/apps/{app}/slugs",
        "POST /v1/apps/{app}/builds",
        "PUT /sources/{token}",
    }
    for path in ("/openapi.json", "/health", "/v1/health"):
        assert httpx.get(f"{server.url}{path}", timeout=10).status_code == 200


def test_the_route_does_not_look_the_token_up_again(store: Store, tmp_path: Path) -> None:
    """The gate's principal is the route's: one lookup of who the token is per request (the
    token cache is off here, so each lookup would be a query, after one of the live tokens)."""
    platform = Platform(store, token_cache_seconds=0)
    token = platform.tokens.bootstrap_admin(None)
    lookups: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM tokens" in statement:
            lookups.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        transport = httpx.ASGITransport(app=create_app(platform))
        with_token = {"Authorization": f"Bearer {token}"}

        async def whoami() -> httpx.Response:
            async with httpx.AsyncClient(transport=transport, base_url="http://meta") as c:
                return await c.get("/v1/whoami", headers=with_token)

        r = asyncio.run(whoami())
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert r.json() == {"name": "admin", "role": "admin", "app": None}
    assert len([q for q in lookups if "JOIN" in q]) == 1, lookups


def test_a_token_that_needs_the_store_is_looked_up_off_the_event_loop(
    store: Store, tmp_path: Path
) -> None:
    """A query on the event loop would stop every other request meanwhile; a cached token
    needs none."""
    platform = Platform(store)
    token = platform.tokens.bootstrap_admin(None)
    threads: list[int] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM tokens" in statement:
            threads.append(threading.get_ident())

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        transport = httpx.ASGITransport(app=create_app(platform))
        with_token = {"Authorization": f"Bearer {token}"}

        async def whoami_twice() -> int:
            async with httpx.AsyncClient(transport=transport, base_url="http://meta") as c:
                for _ in range(2):
                    assert (await c.get("/v1/whoami", headers=with_token)).status_code == 200
            return threading.get_ident()

        loop_thread = asyncio.run(whoami_twice())
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert len(threads) == 2  # the live tokens, and who this one is; the second was cached
    assert loop_thread not in threads
