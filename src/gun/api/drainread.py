"""meta reading the platform's drain as a user's token, and streaming what it reads: the
Heroku API's log sessions (api/heroku/logs.py) and the dashboard's logs page
(dashboard/logs_pages.py) both read through here.

`DrainReader` asks the drain (`GUN_DRAIN_URL`, meta's CA pinned when meta has one) with the
user's own token, so the drain's checks hold: it asks meta whether that token may read the
app's logs, and a live tail ends within a second of the token's revocation. `open` starts a
stream's two parts in the order that loses no line: the live tail first, then the backlog
from the archive. `stream` sends the backlog, then the tail's lines (those the backlog already
had skipped), as Server-Sent Events (logs/sse.py) or plain lines; a quiet tail gets a
KEEPALIVE comment every KEEPALIVE_SECONDS; it ends when the drain ends the tail or the client
goes away, and closes the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from urllib.parse import quote

import httpx
from fastapi.responses import StreamingResponse

from gun.core import Platform
from gun.errors import Forbidden, GunError, NotFound, Unavailable
from gun.logs import sse
from gun.logs.filters import MAX_LINES

KEEPALIVE_SECONDS = 15.0  # a `: keepalive` comment this often while a tail has nothing to say
TAIL_BUFFER = 10_000  # lines a slow client may fall behind before the drain's tail waits
TAIL_OPTIONS = ("ps", "source", "grep")  # what a tail takes of a read's options


def http_to_drain(
    base: str, token: str, ca: str | None, timeout: float | httpx.Timeout
) -> httpx.AsyncClient:
    """A client of the drain at `base` as `token`, the team's CA pinned when meta has one
    (meta's reads of the drain: log sessions, the dashboard's logs and metrics)."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cadata=ca) if ca else True
    return httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        verify=verify,
    )


class DrainReader:
    """App `app`'s lines on the platform's drain, read as `token` with the drain's options
    `query` (n, ps, source, since, until, grep). `what` names the reading in errors (`the log
    session`); `refused` is the sentence for a token the drain refuses."""

    def __init__(
        self,
        gun: Platform,
        app: str,
        token: str,
        query: Mapping[str, str],
        *,
        what: str,
        refused: str,
    ) -> None:
        self.app, self.query, self.what, self.refused = app, dict(query), what, refused
        self.path = f"/v1/apps/{quote(app, safe='')}"
        # a tail may be quiet for long: no read timeout
        timeout = httpx.Timeout(10.0, read=None)
        self.http = http_to_drain(gun.shipping.drain_base(), token, gun.instances.meta_ca, timeout)
        self.tailing: httpx.Response | None = None

    async def open(
        self, last: sse.EventId | None, follow: bool
    ) -> tuple[list[str], httpx.Response | None]:
        """The backlog (`backlog(last)`) and, with `follow`, the live tail opened before it;
        on any failure the reader is closed and the error raised."""
        try:
            tail = await self.tail() if follow else None
            return await self.backlog(last), tail
        except BaseException:
            await self.close()
            raise

    async def tail(self) -> httpx.Response:
        """The drain's live tail, following from now on (before the backlog is read, so no
        line falls between them)."""
        query = {k: v for k, v in self.query.items() if k in TAIL_OPTIONS}
        request = self.http.build_request("GET", f"{self.path}/logs/tail", params=query)
        self.tailing = await self._send(request, stream=True)
        return self.tailing

    async def backlog(self, last: sse.EventId | None) -> list[str]:
        """The query's lines, or every matching line from `last` on (a reconnection)."""
        if last is None:
            return await self.read(self.query)
        return await self.read(
            self.query | {"n": str(MAX_LINES), "since": sse.since_of(last.micros)}
        )

    async def read(self, query: Mapping[str, str]) -> list[str]:
        """The archive's lines for the drain's options `query`, oldest first."""
        request = self.http.build_request("GET", f"{self.path}/logs", params=dict(query))
        r = await self._send(request)
        try:
            lines = r.json().get("lines")
        except (ValueError, AttributeError):
            lines = None
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise Unavailable(f"the drain answered the read of {self.what} with no lines")
        return lines

    async def _send(self, request: httpx.Request, stream: bool = False) -> httpx.Response:
        try:
            r = await self.http.send(request, stream=stream)
        except httpx.HTTPError as e:
            raise Unavailable(
                f"cannot reach the drain at {self.http.base_url} to read {self.what} "
                f"({type(e).__name__}): try again"
            ) from None
        if r.status_code != 200:
            await r.aread()
            await r.aclose()
            raise self._refusal(r.status_code, r)
        return r

    def _refusal(self, status: int, r: httpx.Response) -> GunError:
        if status in (401, 403):
            return Forbidden(self.refused)
        if status == 404:
            return NotFound(f"app {self.app!r} does not exist any more, or its logs cannot be read")
        if status == 400:  # options meta let through and the drain did not (another version)
            with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
                why = str(r.json()["message"])
                return Unavailable(f"the drain refused the read of {self.what}: {why}")
        return Unavailable(f"the drain answered HTTP {status} to the read of {self.what}")

    async def close(self) -> None:
        if self.tailing is not None:
            await self.tailing.aclose()
        await self.http.aclose()


async def stream(
    drain: DrainReader,
    lines: list[str],
    tail: httpx.Response | None,
    last: sse.EventId | None,
    events: bool,
    alive: Callable[[], None] = lambda: None,
) -> AsyncIterator[bytes]:
    """`lines` after `last` (all without it), then, with `tail`, its lines as they come, as
    Server-Sent Events (`events`) or plain lines; `alive` is called whenever the stream is
    found alive (a keepalive) and when it ends. Closes `drain` at the end."""
    ids = sse.Ids()
    pump: asyncio.Task[None] | None = None
    try:
        for line in lines:
            eid = ids.next(line)
            if last is None or eid.after(last):
                yield sse.event(eid, line) if events else (line + "\n").encode()
        if tail is None:
            return
        if events:
            yield sse.KEEPALIVE  # the backlog is all there: what follows is live
        queue: asyncio.Queue[str | None] = asyncio.Queue(TAIL_BUFFER)
        pump = asyncio.create_task(_pump(tail, queue))
        seen = Counter(lines)  # lines the tail also brings: it was following as they were read
        while True:
            try:
                got = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                alive()
                if events:
                    yield sse.KEEPALIVE
                continue
            if got is None:
                return  # the drain ended the tail (the token may no longer read): reconnect
            if seen[got]:
                seen[got] -= 1
                continue
            eid = ids.next(got)
            yield sse.event(eid, got) if events else (got + "\n").encode()
    finally:
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        alive()
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


def streaming(body: AsyncIterator[bytes], events: bool) -> StreamingResponse:
    """The response of a `stream`: Server-Sent Events (never cached nor buffered by a proxy)
    or plain text."""
    if events:
        headers = {"content-type": "text/event-stream", "cache-control": "no-cache"}
        return StreamingResponse(body, headers=headers | {"x-accel-buffering": "no"})
    return StreamingResponse(body, headers={"content-type": "text/plain; charset=utf-8"})
