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

import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import StrictBool, StrictInt, StrictStr

from gun.api import auth
from gun.api.auth import Gun, Who
from gun.api.drainread import DrainReader, stream, streaming
from gun.api.heroku import log_sessions as ls
from gun.api.heroku.apps import Lenient
from gun.api.heroku.common import find_app, paged
from gun.errors import NotFound
from gun.heroku_ids import app_uuid
from gun.logs import sse
from gun.model import App, Drain

router = APIRouter()
Key = Callable[[dict[str, Any]], int | str]
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
    events = "text/event-stream" in request.headers.get("accept", "")
    last = sse.parse_last_id(request.headers.get("last-event-id"))
    forbidden = (
        f"the token that asked for this log session may no longer read the logs of app "
        f"{session.app!r}: ask for a new one with a token that may"
    )
    query = session.ask.query()
    drain = DrainReader(
        gun, session.app, session.token, query, what="the log session", refused=forbidden
    )
    lines, tail = await drain.open(last, session.ask.tail)
    _remember(key)
    return streaming(stream(drain, lines, tail, last, events, lambda: _remember(key)), events)


def _remember(key: str) -> None:
    now = time.time()
    for k in [k for k, t in _streamed.items() if now - t > ls.RECONNECT_SECONDS]:
        del _streamed[k]
    _streamed[key] = now


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
