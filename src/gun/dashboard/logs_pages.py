"""The dashboard's logs page: an app's lines from the drain, live or from one hour of the
archive, read as the session's token (api/drainread.py, as the Heroku API's log sessions
read), so the drain's own checks hold: a viewer may read, a token scoped to another app gets
404 here first, and a revoked token's stream ends within a second (its session with it).

route                                  what
GET  /dash/apps/{app}/logs             the page: ?ps=&source=&grep= filters, ?hour= an hour
                                       of the archive (logs_views.py); without JavaScript the
                                       newest lines (or the hour's), with it tail.js follows
GET  /dash/apps/{app}/logs/stream      Server-Sent Events of new lines (?ps=&source=&grep=,
                                       from ?after=ID or Last-Event-ID on)

Both take the session's cookie, no token in the URL or the script: no session, a redirect to
/login; a bad filter, 400 with the one sentence that says why.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gun.api.drainread import DrainReader, stream, streaming
from gun.dashboard import logs_views
from gun.dashboard import session as sessions
from gun.dashboard.logs_views import LogsAsk
from gun.dashboard.pages import PREFIX, app_path, failed, platform_of, render, to, visible
from gun.dashboard.session import Session
from gun.errors import GunError
from gun.logs import sse

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Page = Callable[[Request, Session], Awaitable[Response]]


def signed_in(page: Page) -> Callable[[Request], Awaitable[Response]]:
    """An async GET: its session (looked up off the event loop), else a redirect to /login;
    gun's errors as pages."""

    async def endpoint(request: Request) -> Response:
        s = await to_thread.run_sync(sessions.current, request)
        if s is None:
            return to("/login")
        try:
            return await page(request, s)
        except GunError as e:
            return failed(e, s)

    endpoint.__name__ = page.__name__
    return endpoint


async def readable(request: Request, s: Session) -> tuple[str, LogsAsk]:
    """The app and the page's ask, once the session's token may read the app's logs (and
    there is a drain): else the error saying why."""
    name = request.path_params["app"]
    visible(s.who, name)
    ask = logs_views.ask_of(request.query_params)
    await to_thread.run_sync(platform_of(request).drains.log_session, s.who, name)
    return name, ask


def reader(request: Request, s: Session, name: str, query: dict[str, str]) -> DrainReader:
    refused = (
        f"token {s.who.name!r} may no longer read the logs of app {name!r}: sign in again "
        "with a token that may"
    )
    return DrainReader(
        platform_of(request), name, s.token, query, what="the logs page", refused=refused
    )


async def logs_page(request: Request, s: Session) -> Response:
    name, ask = await readable(request, s)
    drain = reader(request, s, name, ask.query())
    read_at = time.time()
    try:
        lines = await drain.backlog(None)
    finally:
        await drain.close()
    rows = logs_views.line_rows(lines)
    live = ask.hour is None
    query = ask.filters() | {"after": logs_views.after_of(rows, read_at)}
    return render(
        "logs.html",
        session=s,
        title=f"{name} · logs",
        app=name,
        path=app_path(name),
        ask=ask,
        rows=rows,
        live=live,
        stream=f"{PREFIX}{app_path(name)}/logs/stream" if live else None,
        stream_query=query,
        hour=None if live else logs_views.hour_text(ask.hour or 0.0),
        this_hour=logs_views.hour_now(time.time()),
        clipped=not live and len(rows) >= logs_views.HOUR_LINES,
        most=logs_views.HOUR_LINES if not live else logs_views.PAGE_LINES,
        processes=await to_thread.run_sync(choices, request, s, name),
    )


def choices(request: Request, s: Session, name: str) -> list[str]:
    """What the process filter offers: the formation's types, then the processes."""
    gun = platform_of(request)
    totals, _ = gun.formation.get(s.who, name)
    names = sorted(p.name for p in gun.processes.all(s.who, name))
    return sorted(totals, key=lambda t: (t != "web", t)) + names


async def logs_stream(request: Request, s: Session) -> Response:
    name, ask = await readable(request, s)
    given = request.headers.get("last-event-id") or request.query_params.get("after")
    last = sse.parse_last_id(given)
    drain = reader(request, s, name, ask.filters())
    lines, tail = await drain.open(last, follow=True)
    return streaming(stream(drain, lines, tail, last, events=True), events=True)


router.add_api_route("/apps/{app}/logs", signed_in(logs_page), methods=["GET"])
router.add_api_route("/apps/{app}/logs/stream", signed_in(logs_stream), methods=["GET"])
