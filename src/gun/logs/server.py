"""`gun server drain`: the drain's HTTP side, a bare ASGI app (it must take ~1,500 bodies a
second on one core, so no framework between the socket and the frame reader).

route                                         who
POST /logs/{token}[?resolution=S]             agents, any logplex sender (Heroku drains)
POST /logs[?resolution=S]                     the same, token as the Basic auth password
GET  /metrics                                 Prometheus
GET  /health                                  200, or 503 naming each problem (health.py)
GET  /v1/apps/{app}/logs?n=&ps=&source=&since=&grep=      gun logs (archive), user token
GET  /v1/apps/{app}/logs/tail?ps=&source=&grep=           gun logs -t (chunked, live)
GET  /v1/apps/{app}/metrics?name=&since=                  gun metrics (partial buckets too;
                                                          none: `Gun-Note` says why)
GET  /v1/apps/{app}/series                                the series in whisper (series.py)
GET  /v1/apps/{app}/series/{name}?stat=&from=&until=&source=   one series' points (source=*:
                                                          every source's)
GET  /v1/summaries?apps=A,B&since=S                       requests, errors, p95 of each app the
                                                          token may read (the apps page)

Routes are matched on the path as sent (`raw_path`), and tokens are judged by their form
before meta is asked about them (access.py); meta's answers are cached briefly (meta.py). A
live tail asks again every TAIL_RECHECK seconds whether its token may still read, and ends
when meta says no (while meta cannot be reached, it goes on).

Its two long-lived tasks (upkeep.py: the metrics flush, the archive's upkeep) run from the
lifespan's start to its end, each kept going by `health.supervise`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from gun import isolation
from gun.compiled import compiled
from gun.errors import Forbidden, GunError, InvalidParams, NotFound, Unauthorized, UsageError
from gun.logs import access, series
from gun.logs.archive import Archive
from gun.logs.disk import CannotWrite
from gun.logs.drain import Drain, Tail
from gun.logs.filters import Filter
from gun.logs.frames import FrameError
from gun.logs.health import Health, supervise
from gun.logs.hub import HubClient, metrics_answer
from gun.logs.meta import Meta
from gun.logs.outlets.prometheus import PrometheusOutlet
from gun.logs.remote import remote_archive_from_url
from gun.logs.seen import Seen
from gun.logs.upkeep import PRUNE_EVERY, SHIP_EVERY, Upkeep
from gun.logs.worker import Worker
from gun.model import APP_NAME
from gun.settings import DrainSettings, parse_listen

log = logging.getLogger("gun.drain")
MAX_BODY = 10 * 1024 * 1024
TAIL_BUFFER = 10_000
# seconds between a live tail's checks of its token: through the cache, whose answers are at
# most 0.5 s old, so the check after 0.5 s past a revocation refuses, 0.75 s after it at most
TAIL_RECHECK = 0.25
DISK = "disk"  # the Health problem of a write that failed
MAX_SUMMARIES = 500  # apps in one /v1/summaries request
NO_WHISPER = "this drain writes no whisper files (GUN_WHISPER_DIR=off), so it has no series"

Scope = MutableMapping[str, Any]
Headers = Sequence[tuple[bytes, bytes]]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class DrainApp:
    def __init__(
        self,
        drain: Drain,
        meta: Meta,
        prometheus: PrometheusOutlet | None,
        *,
        hub: HubClient | None = None,
        prune_every: float = PRUNE_EVERY,
        ship_every: float = SHIP_EVERY,
        whisper: Path | None = None,
    ) -> None:
        self.drain, self.meta, self.prometheus = drain, meta, prometheus
        self.whisper = whisper  # the whisper outlet's root, read by any worker (series.py)
        self.hub = hub  # a worker's: metrics and the upkeep are the hub's (hub.py)
        self.health = Health()
        self.upkeep = Upkeep(drain, prune_every, ship_every)
        self._tasks: list[asyncio.Task[None]] = []
        self._kept: series.Summaries | None = None  # the apps page's figures (series.py)

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
                loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                    ("the metrics flush", self.upkeep.flush_loop),
                    ("the archive upkeep", self.upkeep.archive_loop),
                ]
                if self.hub is not None:
                    await self.hub.connect()
                    loops = [("the reports to the hub", self.hub.report_loop)]
                    self._tasks.append(asyncio.create_task(self.hub.listen()))
                self._tasks += [
                    asyncio.create_task(supervise(name, run, self.health)) for name, run in loops
                ]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                if self.hub is not None:
                    await self.hub.close()
                else:
                    self.drain.flush()
                for outlet in self.drain.outlets:
                    outlet.close()
                await self.meta.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        headers = dict(scope["headers"])
        if access.is_ingest_path(raw):
            if method != "POST":
                raise Refused(405, f"{method} is not allowed here: POST logplex frames")
            try:
                token = access.ingest_token(raw, headers.get(b"authorization", b""))
                app = await self.meta.app_of(token)
            except (Forbidden, Unauthorized):
                self.drain.figures.tokens_refused += 1
                raise
            await self._ingest(scope, receive, send, app, headers)
            return
        if method != "GET":
            raise Refused(405, f"{method} is not allowed here")
        if raw == b"/health":
            await self._health(send)
            return
        if raw == b"/metrics" and (self.prometheus is not None or self.hub is not None):
            text = self.prometheus.render() if self.prometheus else await self._ask("prometheus")
            body = (text or "").encode()
            await _respond(send, 200, body, b"text/plain; version=0.0.4; charset=utf-8")
            return
        found = access.series_route(raw)
        if found is not None:
            try:
                await self._series(scope, send, headers, *found)
            except InvalidParams as e:  # a bad name, stat, source or range: as the others, 400
                raise Refused(400, e.message) from None
            return
        if raw == access.SUMMARIES:
            await self._summaries(scope, send, headers)
            return
        route = access.read_route(raw)
        if route is None:
            raise Refused(404, f"{_shown(raw)} is not a route of the drain")
        app, what = route
        user = access.user_token(headers.get(b"authorization", b""))
        await self.meta.may_read(user, app)
        query = _query(scope)
        if what == "logs":
            flt = Filter.parse(query)
            assert self.drain.archive is not None
            lines = await asyncio.to_thread(self.drain.archive.read, app, flt, time.time())
            await _json(send, 200, {"lines": lines})
        elif what == "logs/tail":
            await self._tail(receive, send, app, Filter.parse(query), user)
        else:
            since = _since(query.get("since", "1h"))
            name = query.get("name") or None
            if self.hub is None:
                buckets, why = metrics_answer(self.drain, app, name, since)
            else:
                buckets, why = await self._ask("metrics", app, name, since)
            note = [] if why is None else [(b"gun-note", why.encode())]
            await _json(send, 200, buckets, note)

    def _root(self) -> Path:
        if self.whisper is None:
            raise Refused(404, NO_WHISPER)
        return self.whisper

    async def _series(
        self, scope: Scope, send: Send, headers: dict[bytes, bytes], app: str, name: str | None
    ) -> None:
        user = access.user_token(headers.get(b"authorization", b""))
        await self.meta.may_read(user, app)
        root = self._root()
        if name is None:
            found = await asyncio.to_thread(series.listing, root, app)
            await _json(send, 200, [s.json() for s in found])
            return
        query = _query(scope)
        series.name_parts(name)
        stat = series.check_stat(query.get("stat", ""))
        source = query.get("source") or None
        series.source_part(source)
        span = series.time_range(query.get("from"), query.get("until"), time.time())
        if source == series.ALL:
            every = await asyncio.to_thread(series.read_sources, root, app, name, stat, span)
            step = next(iter(every.values())).step if every else 0
            data = {k: v.json()["points"] for k, v in every.items()}
            await _json(send, 200, {"step": step, "sources": data})
            return
        points = await asyncio.to_thread(series.read, root, app, name, stat, source, span)
        await _json(send, 200, points.json())

    async def _summaries(self, scope: Scope, send: Send, headers: dict[bytes, bytes]) -> None:
        """Each asked app's Summary; apps the token may not read are left out."""
        user = access.user_token(headers.get(b"authorization", b""))
        query = _query(scope)
        apps = [a for a in query.get("apps", "").split(",") if a]
        if len(apps) > MAX_SUMMARIES or not all(APP_NAME.match(a) for a in apps):
            raise Refused(400, f"apps= must be at most {MAX_SUMMARIES} app names, comma-separated")
        since = query.get("since", "3600")
        if not (since.isascii() and since.isdigit() and 60 <= int(since) <= 86400):
            raise Refused(400, f"since={since!r} is not a number of seconds from 60 to 86400")
        root = self._root()
        allowed = await self.meta.readable(user, apps)  # one question to meta, not one an app
        readable = [a for a in apps if a in allowed]
        if self._kept is None or self._kept.root != root:
            self._kept = series.Summaries(root)
        kept, now = self._kept, time.time()

        def read() -> dict[str, object]:
            return {a: kept.of(a, int(since), now).json() for a in readable}

        await _json(send, 200, {"since": int(since), "apps": await asyncio.to_thread(read)})

    async def _ask(self, what: str, *args: Any) -> Any:
        assert self.hub is not None
        try:
            return await self.hub.ask(what, *args)
        except TimeoutError:
            raise Refused(503, "the drain's hub did not answer: try again") from None

    async def _health(self, send: Send) -> None:
        problems = self.health.problems()
        failing = self.upkeep.steps.failing()
        if self.hub is not None:  # the flush and the upkeep are the hub's
            try:
                theirs, their_failing = await self.hub.ask("health")
            except TimeoutError:
                theirs, their_failing = ["the drain's hub does not answer"], {}
            problems, failing = problems + theirs, {**failing, **their_failing}
        data: dict[str, object] = {
            "status": "unavailable" if problems else "ok",
            "compiled": compiled(),
        }
        if problems:
            data["problems"] = problems
        if failing:
            data["failing"] = failing
        await _json(send, 503 if problems else 200, data)

    async def _ingest(
        self, scope: Scope, receive: Receive, send: Send, app: str, headers: dict[bytes, bytes]
    ) -> None:
        query = _query(scope)
        resolution = None
        if "resolution" in query:
            raw = query["resolution"]
            if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 3600):
                raise Refused(400, f"resolution={raw!r} is not a number of seconds from 1 to 3600")
            resolution = int(raw)
        body = await _body(scope, receive)
        frame_id = headers.get(b"logplex-frame-id", b"").decode("latin-1") or None
        try:
            got = self.drain.accept(app, body, frame_id, resolution)
        except FrameError as e:
            raise Refused(400, e.message) from None
        except CannotWrite as e:
            if DISK not in self.health:
                log.error("%s", e.message)
            self.health.set(DISK, e.message)
            raise
        if got.lines and DISK in self.health:
            self.health.clear(DISK)
            log.info("the drain writes to its disk again")
        await _json(
            send,
            200,
            {"lines": got.lines, "bad_frames": len(got.bad), "problems": got.bad[:10]},
        )

    async def _tail(self, receive: Receive, send: Send, app: str, flt: Filter, user: str) -> None:
        """Stream the app's new lines until the follower goes away, or meta says the token may
        no longer read them (asked every TAIL_RECHECK seconds, through the cache)."""
        queue: asyncio.Queue[str] = asyncio.Queue(TAIL_BUFFER)

        def put(text: str) -> None:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(text + "\n")

        stop = self.drain.follow(Tail(app, flt, put))
        gone = asyncio.ensure_future(_disconnect(receive))  # a send to it would do nothing
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            checked = time.monotonic()
            while not gone.done():
                wait = checked + TAIL_RECHECK - time.monotonic()
                texts = []
                with contextlib.suppress(TimeoutError):
                    texts.append(await asyncio.wait_for(queue.get(), max(wait, 0.0)))
                while not queue.empty():
                    texts.append(queue.get_nowait())
                if texts:
                    body = "".join(texts).encode()
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                if time.monotonic() - checked >= TAIL_RECHECK:
                    checked = time.monotonic()
                    try:
                        await self.meta.may_read(user, app)
                    except (Unauthorized, Forbidden, NotFound):
                        break  # the follower asks again, and hears why
                    except GunError:
                        pass  # meta cannot say: go on, and ask again
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the follower went away
        finally:
            stop()
            gone.cancel()


async def _disconnect(receive: Receive) -> None:
    """Returns when the client of a request (its body read) has gone away."""
    while (await receive())["type"] != "http.disconnect":
        pass


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


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"")
    return dict(parse_qsl(raw.decode("latin-1"))) if raw else {}


def _shown(raw: bytes) -> str:
    """A path as a sentence may quote it: at most 100 characters, escaped."""
    text = raw.decode("latin-1")
    return repr(text if len(text) <= 100 else text[:100] + "...")


def _since(raw: str) -> float:
    return Filter.parse({"since": raw}).since or 0.0


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, extra: Headers = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, data: Any, extra: Headers = ()) -> None:
    await _respond(send, status, json.dumps(data).encode(), b"application/json", extra)


def make_drain(
    settings: DrainSettings, *, outlets: bool = True, seen: Seen | None = None
) -> tuple[Drain, PrometheusOutlet | None]:
    """The drain of `settings` (its Prometheus outlet apart, for /metrics): with the outlets
    (one process, or a hub) or without (a worker)."""
    from gun.logs.outlets import Outlet
    from gun.logs.outlets.statsd import StatsdOutlet
    from gun.logs.outlets.whisper import WhisperOutlet

    if not settings.meta_token:
        raise UsageError(
            "the drain needs a drain token (`gun tokens.create NAME role=drain`) to check ingest "
            "tokens with meta: "
            "set GUN_DRAIN_META_TOKEN"
        )
    isolation.make_dir(settings.archive, isolation.PRIVATE_DIR)
    prometheus = PrometheusOutlet() if outlets else None
    chosen: list[Outlet] = [prometheus] if prometheus else []
    if outlets and settings.whisper is not None:
        chosen.append(WhisperOutlet(settings.whisper))
    if outlets and settings.statsd is not None:
        chosen.append(StatsdOutlet(*settings.statsd))
    remote = remote_archive_from_url(settings.archive_s3) if outlets else None
    drain = Drain(
        Archive(settings.archive, settings.retention_days, remote, settings.archive_max_bytes),
        chosen,
        prefix=settings.prefix,
        default_resolution=settings.resolution,
        grace=settings.grace,
        seen=seen,
    )
    return drain, prometheus


def make_app(settings: DrainSettings) -> DrainApp:
    drain, prometheus = make_drain(settings, seen=Seen(settings.archive))
    return DrainApp(
        drain,
        Meta(settings.meta_url, settings.meta_token or "", ca=settings.meta_ca),
        prometheus,
        whisper=settings.whisper,
    )


def make_worker_app(settings: DrainSettings, worker: Worker) -> DrainApp:
    """A worker's app: no outlets (the hub has them), frame ids shared with the others."""
    drain, _ = make_drain(
        settings, outlets=False, seen=Seen(settings.archive, worker.index, worker.count)
    )
    meta = Meta(settings.meta_url, settings.meta_token or "", ca=settings.meta_ca)
    return DrainApp(drain, meta, None, hub=HubClient(drain, worker.hub), whisper=settings.whisper)


def run(settings: DrainSettings, runs: str = "pure Python") -> None:
    """`gun server drain`: one process, or the parent of GUN_DRAIN_WORKERS workers
    (workers.py), or one of those workers. `runs` says whether it is compiled (compiled.py)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines hold tokens
    worker = Worker.from_env()
    if worker is None:
        log.info("the drain runs %s", runs)
    if worker is not None:
        serve(settings, make_worker_app(settings, worker), worker.socket())
        return
    if settings.workers > 1:
        from gun.logs import workers

        workers.run(settings)
        return
    host, port = parse_listen(settings.listen)
    app = make_app(settings)
    scheme = "https" if settings.tls_cert else "http"
    print(f"drain listening on {scheme}://{host}:{port}", flush=True)
    serve(settings, app, None)


def serve(settings: DrainSettings, app: DrainApp, sock: socket.socket | None) -> None:
    """uvicorn on the listening address, or on a socket already listening (a worker's)."""
    import uvicorn

    host, port = parse_listen(settings.listen)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http="httptools",
        proxy_headers=False,  # X-Forwarded-For means nothing to the drain: not parsed
        timeout_graceful_shutdown=2,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
    )
    uvicorn.Server(config).run(sockets=None if sock is None else [sock])
