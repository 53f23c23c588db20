"""`gun server drain`: the drain's HTTP side, a bare ASGI app (it must take ~1,500 bodies a
second on one core, so no framework between the socket and the frame reader).

route                                         who
POST /logs/{token}[?resolution=S]             agents, any logplex sender (Heroku drains)
POST /logs[?resolution=S]                     the same, token as the Basic auth password
GET  /metrics                                 Prometheus
GET  /health
GET  /v1/apps/{app}/logs?n=&ps=&source=&since=&grep=      gun logs (archive), user token
GET  /v1/apps/{app}/logs/tail?ps=&source=&grep=           gun logs -t (chunked, live)
GET  /v1/apps/{app}/metrics?name=&since=                  gun metrics

Ingest tokens are checked with meta (`/v1/drain/ingest-tokens/TOKEN`, the drain's admin
token), user tokens by asking meta for the app's log session with them; answers are cached.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import httpx

from gun import isolation
from gun.errors import GunError, UsageError
from gun.logs.archive import Archive
from gun.logs.drain import Drain, Tail
from gun.logs.filters import Filter
from gun.logs.frames import FrameError
from gun.logs.outlets.prometheus import PrometheusOutlet
from gun.logs.remote import remote_archive_from_url
from gun.settings import DrainSettings, parse_listen

log = logging.getLogger("gun.drain")
MAX_BODY = 10 * 1024 * 1024
FLUSH_EVERY = 1.0
PRUNE_EVERY = 3600.0  # seconds between deletions of archive hours past the retention
SHIP_EVERY = 60.0  # seconds between sendings of finished hours to the remote archive
TOKEN_TTL = 60.0
USER_TTL = 10.0
TAIL_BUFFER = 10_000
_APP_PATH = re.compile(r"^/v1/apps/([a-z][a-z0-9-]{1,29})/(logs|logs/tail|metrics)\Z")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Meta:
    """What the drain asks meta, cached: which app an ingest token is, and may a user read."""

    def __init__(self, url: str, token: str) -> None:
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        self._apps: dict[str, tuple[float, str | None]] = {}
        self._users: dict[tuple[str, str], tuple[float, int]] = {}

    async def app_of(self, token: str) -> str:
        hit = self._apps.get(token)
        if hit is None or hit[0] < time.monotonic():
            r = await self._get(f"/v1/drain/ingest-tokens/{token}")
            app = r.json()["app"] if r.status_code == 200 else None
            if r.status_code not in (200, 404):
                raise Refused(503, f"meta answered {r.status_code} checking the token")
            hit = self._apps[token] = (time.monotonic() + TOKEN_TTL, app)
        if hit[1] is None:
            raise Refused(403, "this drain token belongs to no app: `gun drains.ingest` shows it")
        return hit[1]

    async def may_read(self, user_token: str, app: str) -> None:
        hit = self._users.get((user_token, app))
        if hit is None or hit[0] < time.monotonic():
            r = await self._get(
                f"/v1/apps/{app}/log-session",
                headers={"Authorization": f"Bearer {user_token}"},
            )
            hit = self._users[(user_token, app)] = (time.monotonic() + USER_TTL, r.status_code)
        if hit[1] == 401:
            raise Refused(401, "the token is missing or unknown: `gun login` gets one")
        if hit[1] in (403, 404):
            raise Refused(hit[1], f"this token may not read the logs of app {app!r}")
        if hit[1] != 200:
            raise Refused(503, f"meta answered {hit[1]} checking the token")

    async def _get(self, path: str, **kw: Any) -> httpx.Response:
        try:
            return await self._http.get(path, **kw)
        except httpx.HTTPError as e:
            raise Refused(503, f"cannot reach meta to check the token ({type(e).__name__})") from e

    async def close(self) -> None:
        await self._http.aclose()


class DrainApp:
    def __init__(self, drain: Drain, meta: Meta, prometheus: PrometheusOutlet | None) -> None:
        self.drain, self.meta, self.prometheus = drain, meta, prometheus
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            await self._route(scope, receive, send)
        except Refused as e:
            await _json(send, e.status, {"id": _ID.get(e.status, "error"), "message": e.message})
        except GunError as e:
            status = 400 if isinstance(e, UsageError) else e.status
            await _json(send, status, {"id": e.id, "message": e.message})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._flusher = asyncio.create_task(self._flush_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._flusher is not None:
                    self._flusher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._flusher
                self.drain.flush()
                for outlet in self.drain.outlets:
                    outlet.close()
                await self.meta.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _flush_loop(self) -> None:
        pruned = shipped = 0.0
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            archive = self.drain.archive
            if archive is not None and time.monotonic() - pruned > PRUNE_EVERY:
                pruned = time.monotonic()
                try:
                    await asyncio.to_thread(archive.prune, time.time())
                except Exception:  # a disk or the bucket: try again next time
                    log.exception("pruning the log archive failed")
            if archive is not None and archive.remote and time.monotonic() - shipped > SHIP_EVERY:
                shipped = time.monotonic()
                try:
                    sent = await asyncio.to_thread(archive.ship, time.time())
                    if sent:
                        log.info("sent %d archive hours to the remote archive", len(sent))
                except Exception:  # what was not sent stays here and goes next time
                    log.exception("sending archive hours to the remote archive failed")
            try:
                buckets = self.drain.collect()
                await asyncio.to_thread(self.drain.emit, buckets)
            except Exception:  # an outlet's bug must not stop the others next time
                log.exception("flushing metrics failed")

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if path == "/logs" or path.startswith("/logs/"):
            if method != "POST":
                raise Refused(405, f"{method} {path} is not allowed: POST logplex frames here")
            await self._ingest(scope, receive, send, path.removeprefix("/logs").strip("/"), query)
            return
        if method != "GET":
            raise Refused(405, f"{method} {path} is not allowed")
        if path == "/health":
            await _json(send, 200, {"status": "ok"})
            return
        if path == "/metrics" and self.prometheus is not None:
            body = self.prometheus.render().encode()
            await _respond(send, 200, body, b"text/plain; version=0.0.4; charset=utf-8")
            return
        m = _APP_PATH.match(path)
        if m is None:
            raise Refused(404, f"{path} is not a route of the drain")
        app, what = m.groups()
        user = _bearer(scope)
        if user is None:
            raise Refused(401, "no token: send the one `gun login` saved as a Bearer token")
        await self.meta.may_read(user, app)
        if what == "logs":
            flt = Filter.parse(query)
            assert self.drain.archive is not None
            lines = await asyncio.to_thread(self.drain.archive.read, app, flt, time.time())
            await _json(send, 200, {"lines": lines})
        elif what == "logs/tail":
            await self._tail(send, app, Filter.parse(query))
        else:
            since = _since(query.get("since", "1h"))
            buckets = self.drain.metrics(app, query.get("name") or None, since)
            await _json(send, 200, [b.json() for b in buckets])

    async def _ingest(
        self, scope: Scope, receive: Receive, send: Send, token: str, query: dict[str, str]
    ) -> None:
        token = token or _basic_password(scope) or ""
        if not token:
            raise Refused(401, "no drain token: POST to the URL `gun drains.ingest` prints")
        app = await self.meta.app_of(token)
        resolution = None
        if "resolution" in query:
            raw = query["resolution"]
            if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 3600):
                raise Refused(400, f"resolution={raw!r} is not a number of seconds from 1 to 3600")
            resolution = int(raw)
        body = await _body(scope, receive)
        headers = dict(scope["headers"])
        frame_id = headers.get(b"logplex-frame-id", b"").decode("latin-1") or None
        try:
            got = self.drain.accept(app, body, frame_id, resolution)
        except FrameError as e:
            raise Refused(400, e.message) from None
        await _json(
            send,
            200,
            {"lines": got.lines, "bad_frames": len(got.bad), "problems": got.bad[:10]},
        )

    async def _tail(self, send: Send, app: str, flt: Filter) -> None:
        queue: asyncio.Queue[str] = asyncio.Queue(TAIL_BUFFER)

        def put(text: str) -> None:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(text + "\n")

        stop = self.drain.follow(Tail(app, flt, put))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            while True:
                texts = [await queue.get()]
                while not queue.empty():
                    texts.append(queue.get_nowait())
                body = "".join(texts).encode()
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except OSError:
            pass  # the follower went away
        finally:
            stop()


_ID = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found"}
_ID |= {405: "method_not_allowed", 413: "payload_too_large", 503: "unavailable"}


async def _body(scope: Scope, receive: Receive) -> bytes:
    declared = dict(scope["headers"]).get(b"content-length", b"")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise Refused(413, f"the body is over the limit of {MAX_BODY} bytes")
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise Refused(413, f"the body is over the limit of {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _bearer(scope: Scope) -> str | None:
    value = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _basic_password(scope: Scope) -> str | None:
    value = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[2] or None
    except (binascii.Error, UnicodeDecodeError):
        return None


def _since(raw: str) -> float:
    return Filter.parse({"since": raw}).since or 0.0


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, data: Any) -> None:
    await _respond(send, status, json.dumps(data).encode(), b"application/json")


def make_app(settings: DrainSettings) -> DrainApp:
    from gun.logs.outlets import Outlet
    from gun.logs.outlets.statsd import StatsdOutlet
    from gun.logs.outlets.whisper import WhisperOutlet

    if not settings.meta_token:
        raise UsageError(
            "the drain needs an admin token to check ingest tokens with meta: "
            "set GUN_DRAIN_META_TOKEN"
        )
    isolation.make_dir(settings.archive, isolation.PRIVATE_DIR)
    prometheus = PrometheusOutlet()
    outlets: list[Outlet] = [prometheus]
    if settings.whisper is not None:
        outlets.append(WhisperOutlet(settings.whisper))
    if settings.statsd is not None:
        outlets.append(StatsdOutlet(*settings.statsd))
    drain = Drain(
        Archive(
            settings.archive,
            settings.retention_days,
            remote_archive_from_url(settings.archive_s3),
        ),
        outlets,
        prefix=settings.prefix,
        default_resolution=settings.resolution,
        seen_file=settings.archive / ".frame-ids",
    )
    return DrainApp(drain, Meta(settings.meta_url, settings.meta_token), prometheus)


def run(settings: DrainSettings) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines hold tokens
    host, port = parse_listen(settings.listen)
    app = make_app(settings)
    scheme = "https" if settings.tls_cert else "http"
    print(f"drain listening on {scheme}://{host}:{port}", flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http="httptools",
        timeout_graceful_shutdown=2,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
