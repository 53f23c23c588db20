"""The Heroku Platform API's logs: log sessions and log drains (REFERENCE.md §6), from the
Platform's methods. A log session's URL is read from the platform's drain, as `gun logs` reads
it, as the token that asked for it (log_sessions.py says what its token is and grants).

route                                        heroku CLI              heroku3
POST   /apps/{app}/log-sessions              logs -n, logs --tail    app.get_log(), stream_log()
GET    /log-sessions/{token}                 (the session's logplex_url, fetched without auth)
GET    /apps/{app}/log-drains                drains
POST   /apps/{app}/log-drains                drains:add URL
DELETE /apps/{app}/log-drains/{id_or_url}    drains:remove URL
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import StrictBool, StrictInt, StrictStr

from gun.api import auth
from gun.api.auth import Gun, Who
from gun.api.heroku import log_sessions as ls
from gun.api.heroku.apps import Lenient
from gun.api.heroku.common import find_app, paged
from gun.core import Platform
from gun.errors import Forbidden, GunError, NotFound, Unavailable
from gun.heroku_ids import app_uuid
from gun.logs.filters import MAX_LINES
from gun.model import App, Drain

router = APIRouter()
Key = Callable[[dict[str, Any]], int | str]
KEEPALIVE_SECONDS = 15.0  # a `: keepalive` comment this often while a tail has nothing to say
TAIL_BUFFER = 10_000  # lines a slow client may fall behind before the drain's tail waits
_streamed: dict[str, float] = {}  # sha256 of a session token -> when it was last streamed


class LogSessionAsk(Lenient):
    lines: StrictInt | StrictStr | None = None
    tail: StrictBool | StrictStr | None = None
    dyno: StrictStr | None = None
    source: StrictStr | None = None


@router.post("/apps/{app}/log-sessions", status_code=201)
def log_session(
    app: str, body: LogSessionAsk, request: Request, who: Who, gun: Gun
) -> dict[str, Any]:
    """A URL that streams the app's lines, for whoever may read them (viewers too)."""
    a = find_app(gun, who, app)
    ask = ls.ask_of(body.lines, body.tail, body.dyno, body.source)
    gun.drains.log_session(who, a.name)  # may `who` read them, and is there a drain
    token = auth.token_of(request.headers.get("authorization")) or ""
    session = ls.Session(a.name, ask, token, time.time() + ls.SESSION_SECONDS)
    sealed = ls.seal(gun.store.box, session)
    now = datetime.now(UTC).isoformat()
    return {
        "id": str(uuid.uuid4()),
        "logplex_url": f"{str(request.base_url).rstrip('/')}/log-sessions/{sealed}",
        "created_at": now,
        "updated_at": now,
    }


@router.get("/log-sessions/{token}")
async def read_log_session(token: str, request: Request, gun: Gun) -> Response:
    """The session's lines: Server-Sent Events for `Accept: text/event-stream` (the CLI),
    plain lines otherwise (heroku3); the backlog, then, with tail, new lines as they come.
    Takes no API token: the URL's token is the credential."""
    session = ls.open_session(gun.store.box, token)
    key = hashlib.sha256(token.encode()).hexdigest()
    now = time.time()
    gone = ls.expired(session, now)
    if gone is not None and now - _streamed.get(key, 0.0) > ls.RECONNECT_SECONDS:
        raise gone
    sse = "text/event-stream" in request.headers.get("accept", "")
    last = ls.parse_last_id(request.headers.get("last-event-id"))
    drain = DrainReader(gun, session)
    try:
        tail = await drain.tail() if session.ask.tail else None
        lines = await drain.backlog(last)
    except BaseException:
        await drain.close()
        raise
    _remember(key)
    body = _stream(drain, lines, tail, last, sse, key)
    if sse:
        headers = {"content-type": "text/event-stream", "cache-control": "no-cache"}
        return StreamingResponse(body, headers=headers | {"x-accel-buffering": "no"})
    return StreamingResponse(body, headers={"content-type": "text/plain; charset=utf-8"})


def _remember(key: str) -> None:
    now = time.time()
    for k in [k for k, t in _streamed.items() if now - t > ls.RECONNECT_SECONDS]:
        del _streamed[k]
    _streamed[key] = now


async def _stream(
    drain: DrainReader,
    lines: list[str],
    tail: httpx.Response | None,
    last: ls.EventId | None,
    sse: bool,
    key: str,
) -> AsyncIterator[bytes]:
    ids = ls.Ids()
    pump: asyncio.Task[None] | None = None
    try:
        for line in lines:
            eid = ids.next(line)
            if last is None or eid.after(last):
                yield ls.event(eid, line) if sse else (line + "\n").encode()
        if tail is None:
            return
        if sse:
            yield ls.KEEPALIVE  # the backlog is all there: what follows is live
        queue: asyncio.Queue[str | None] = asyncio.Queue(TAIL_BUFFER)
        pump = asyncio.create_task(_pump(tail, queue))
        seen = Counter(lines)  # lines the tail also brings: it was following as they were read
        while True:
            try:
                got = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                _remember(key)
                if sse:
                    yield ls.KEEPALIVE
                continue
            if got is None:
                return  # the drain ended the tail (the token may no longer read): reconnect
            if seen[got]:
                seen[got] -= 1
                continue
            eid = ids.next(got)
            yield ls.event(eid, got) if sse else (got + "\n").encode()
    finally:
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        _remember(key)
        await drain.close()


async def _pump(tail: httpx.Response, queue: asyncio.Queue[str | None]) -> None:
    try:
        async for line in tail.aiter_lines():
            if line:
                await queue.put(line)
    except httpx.HTTPError:
        pass
    finally:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)


class DrainReader:
    """The platform's drain, read as the token that asked for the session."""

    def __init__(self, gun: Platform, session: ls.Session) -> None:
        self.session = session
        self.path = f"/v1/apps/{quote(session.app, safe='')}"
        ca = gun.instances.meta_ca
        verify: ssl.SSLContext | bool = ssl.create_default_context(cadata=ca) if ca else True
        self.http = httpx.AsyncClient(
            base_url=gun.shipping.drain_base(),
            headers={"Authorization": f"Bearer {session.token}"},
            timeout=httpx.Timeout(10.0, read=None),  # a tail may be quiet for long
            verify=verify,
        )
        self.tailing: httpx.Response | None = None

    async def tail(self) -> httpx.Response:
        """The drain's live tail, following from now on (before the backlog is read, so no
        line falls between them)."""
        query = {k: v for k, v in self.session.ask.query().items() if k != "n"}
        request = self.http.build_request("GET", f"{self.path}/logs/tail", params=query)
        self.tailing = await self._send(request, stream=True)
        return self.tailing

    async def backlog(self, last: ls.EventId | None) -> list[str]:
        """The session's newest lines, or every line from `last` on (a reconnection)."""
        if last is None:
            query = self.session.ask.query()
        else:
            query = self.session.ask.query(MAX_LINES) | {"since": ls.since_of(last.micros)}
        r = await self._send(self.http.build_request("GET", f"{self.path}/logs", params=query))
        try:
            lines = r.json().get("lines")
        except (ValueError, AttributeError):
            lines = None
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise Unavailable("the drain answered the log session's read with no lines")
        return lines

    async def _send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        try:
            r = await self.http.send(request, stream=stream)
        except httpx.HTTPError as e:
            raise Unavailable(
                f"cannot reach the drain at {self.http.base_url} to read the log session "
                f"({type(e).__name__}): try again"
            ) from None
        if r.status_code != 200:
            await r.aread()
            await r.aclose()
            raise self._refusal(r.status_code)
        return r

    def _refusal(self, status: int) -> GunError:
        app = self.session.app
        if status in (401, 403):
            return Forbidden(
                f"the token that asked for this log session may no longer read the logs of "
                f"app {app!r}: ask for a new one with a token that may"
            )
        if status == 404:
            return NotFound(f"app {app!r} does not exist any more, or its logs cannot be read")
        return Unavailable(f"the drain answered HTTP {status} to the log session's read")

    async def close(self) -> None:
        if self.tailing is not None:
            await self.tailing.aclose()
        await self.http.aclose()


# -- log drains ------------------------------------------------------------------------------


class LogDrainCreate(Lenient):
    url: StrictStr


def drain_uuid(app: str, drain_id: int) -> str:
    """`app`: the app's UUID."""
    return str(uuid.uuid5(uuid.UUID(app), f"log-drain/{drain_id}"))


def log_drain_json(a: App, d: Drain) -> dict[str, Any]:
    aid = app_uuid(a.id, a.created_at)
    when = d.created_at.isoformat()
    return {
        "id": drain_uuid(aid, d.id),
        "url": d.url,
        "token": d.token,
        "addon": None,
        "app": {"id": aid, "name": a.name},
        "created_at": when,
        "updated_at": when,
    }


@router.get("/apps/{app}/log-drains")
def log_drains(
    app: str, request: Request, response: Response, who: Who, gun: Gun
) -> list[dict[str, Any]]:
    a = find_app(gun, who, app)
    found = [log_drain_json(a, d) for d in gun.drains.all(who, a.name)]
    keys: dict[str, Key] = {"id": lambda d: str(d["id"]), "url": lambda d: str(d["url"])}
    return paged(request, response, found, list(keys), keys)


@router.post("/apps/{app}/log-drains", status_code=201)
def add_log_drain(app: str, body: LogDrainCreate, who: Who, gun: Gun) -> dict[str, Any]:
    a = find_app(gun, who, app)
    return log_drain_json(a, gun.drains.add(who, a.name, body.url))


@router.delete("/apps/{app}/log-drains/{ref:path}")
def remove_log_drain(app: str, ref: str, who: Who, gun: Gun) -> dict[str, Any]:
    """`ref`: the drain's UUID or its URL (`drains:remove URL`)."""
    a = find_app(gun, who, app)
    aid = app_uuid(a.id, a.created_at)
    for d in gun.drains.all(who, a.name):
        if ref in (d.url, drain_uuid(aid, d.id)):
            gun.drains.remove(who, a.name, d.id)
            return log_drain_json(a, d)
    raise NotFound(f"app {a.name!r} has no log drain {ref!r}: `heroku drains` lists them")
