"""The gate every request passes before routing: the token checked before any body is read,
and bodies capped as they stream.

Rules, for each HTTP request, in order:
1. A route that takes a token (its endpoint depends on `auth.principal`) answers 401 at once
   when the token is missing, unknown or revoked: nothing of the body is read. The principal
   found goes on in the request's state, where `auth.principal` takes it (one lookup, and
   `platform.tokens.authenticate` caches it). A lookup that needs the store runs in a worker
   thread: on the event loop it would stop every request, long-polls' wake-ups included, for
   the query (with 1,000 agents, each heartbeat's token is past the cache; bench/fleet.py).
2. Upload routes (marked with `upload`: a slug, a build's source) stream to disk under their
   own cap (GUN_SLUG_MAX_BYTES) and pass on as they are.
3. Every other body is capped at JSON_MAX_BYTES: a Content-Length over it answers 413 at
   once; a body without one is counted as it streams and answers 413 the moment it passes
   the cap. A body within it is read here and handed to the route whole.

Routes that take no token (`/health`, `/v1/health`, `/openapi.json`) and paths that no route
matches (their 404 or 405 comes from the router) get rule 3 only. A refusal that leaves a body
unread closes the connection, so its rest is not read either.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from re import Pattern
from typing import Any, TypeVar

from anyio import to_thread
from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gun.api import auth
from gun.api.errors import error
from gun.errors import GunError, PayloadTooLarge

JSON_MAX_BYTES = 1024 * 1024
F = TypeVar("F", bound=Callable[..., Any])


def upload(endpoint: F) -> F:
    """Mark a route whose body is an upload that the route streams and caps itself."""
    endpoint.gun_upload = True  # type: ignore[attr-defined]
    return endpoint


@dataclass(frozen=True)
class Door:
    """What the gate needs to know of the route a request goes to."""

    token: bool  # it takes a token: check it before the body
    upload: bool  # it streams and caps its own body


OPEN = Door(token=False, upload=False)  # no route matches, or one that takes no token


def _dependencies(d: Dependant) -> Iterator[Dependant]:
    for sub in d.dependencies:
        yield sub
        yield from _dependencies(sub)


def door_of(route: APIRoute) -> Door:
    callers = (auth.principal, auth.drain_principal)
    token = any(d.call in callers for d in _dependencies(route.dependant))
    return Door(token=token, upload=bool(getattr(route.endpoint, "gun_upload", False)))


@dataclass(frozen=True)
class Doors:
    """The routes of some routers, each with its door, matched by method and path as the
    router matches them."""

    routes: list[tuple[Pattern[str], frozenset[str], Door]]

    @classmethod
    def of(cls, routers: Iterable[APIRouter]) -> Doors:
        return cls(
            [
                (r.path_regex, frozenset(r.methods or ()), door_of(r))
                for router in routers
                for r in router.routes
                if isinstance(r, APIRoute)
            ]
        )

    def find(self, method: str, path: str) -> Door:
        method = "GET" if method == "HEAD" else method
        for regex, methods, door in self.routes:
            if method in methods and regex.match(path):
                return door
        return OPEN


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is over the limit of {limit} bytes ({limit / 1024 / 1024:g} MiB): "
        "send less, or upload slugs and sources to their own routes"
    )


class Gate:
    """Pure ASGI middleware in front of the routes of `routers` (no body is read on its way
    in unless rule 3 says so)."""

    def __init__(
        self, app: ASGIApp, routers: Iterable[APIRouter], limit: int = JSON_MAX_BYTES
    ) -> None:
        self.app = app
        self.routers = list(routers)
        self.limit = limit
        self._find: Callable[[str, str], Door] | None = None

    def door(self, scope: Scope) -> Door:
        if self._find is None:  # the routers are complete by the first request
            # a path is matched against every route's pattern once; 4,096 kept (an app's
            # paths repeat, and a flood of others only pushes out other misses)
            self._find = functools.lru_cache(maxsize=4096)(Doors.of(self.routers).find)
        return self._find(scope["method"], scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        door = self.door(scope)
        if door.token:
            headers = dict(scope["headers"])
            token = auth.token_of(headers.get(b"authorization", b"").decode("latin-1"))
            tokens = scope["app"].state.platform.tokens
            try:
                who = tokens.cached(token)
                if who is None:  # a query: in a worker thread, never on the event loop
                    who = await to_thread.run_sync(tokens.authenticate, token)
            except GunError as e:
                await refuse(e, scope, receive, send)
                return
            scope.setdefault("state", {})[auth.PRINCIPAL] = who
        if door.upload:
            await self.app(scope, receive, send)
            return
        body = await self.read(scope, receive, send)
        if body is None:
            return
        await self.app(scope, replay(body, receive), send)

    async def read(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None when it was refused (answered) or the client went away."""
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await refuse(too_large(self.limit), scope, receive, send)
            return None
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > self.limit:
                await refuse(too_large(self.limit), scope, receive, send)
                return None
            if not message.get("more_body", False):
                return bytes(body)


def replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the route: the body read already, then the client's own messages (a
    disconnect, which streaming responses listen for)."""
    given = False

    async def again() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def refuse(e: GunError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with gun's error body and close the connection: the rest of the request body,
    if any, is never read."""
    response = error(e.status, e.id, e.message)
    response.headers["connection"] = "close"
    await response(scope, receive, send)
