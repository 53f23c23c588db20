"""A real drain (`gun server drain`) in its own process group next to a real meta; a recorder
in front of meta that writes down what the drain asked it; requests with a path sent as is."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from gun import compiled
from gun.logs.frames import frame
from tests.meta import GUN, MetaServer, free_port

ADMIN = "gun_test_admin_token_for_the_drain"
DRAIN = "gun_test_drain_token_for_the_drain"  # meta's GUN_DRAIN_TOKEN, the drain's meta token
LOGPLEX = {"Content-Type": "application/logplex-1"}
# Whether the drains here run compiled: scripts/setup builds the venv's compiled build when
# there is a C compiler, and drain_env leaves GUN_DRAIN_COMPILED at auto.
COMPILED = compiled.built(Path(sys.prefix) / "share" / "gun-compiled")


def drain_env(meta_url: str, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
    env.update(GUN_HOME=str(home), GUN_META_URL=meta_url, GUN_DRAIN_META_TOKEN=DRAIN, **extra)
    return env


@dataclass
class RunningDrain:
    url: str
    pid: int
    log: Path

    def said(self) -> str:
        return self.log.read_text()


@contextlib.contextmanager
def drain_running(
    env: dict[str, str], port: int, client: httpx.Client, tmp: Path
) -> Iterator[RunningDrain]:
    """`gun server drain` on 127.0.0.1:port in its own process group, once it answers /health
    through `client`. SIGTERM to the group at the end."""
    scheme = "https" if "GUN_DRAIN_TLS_CERT" in env else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    log = tmp / "drain.log"
    with open(log, "ab") as out:
        drain = subprocess.Popen(
            [*GUN, "server", "drain", "--listen", f"127.0.0.1:{port}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or drain.poll() is not None:
                    raise
            time.sleep(0.1)
        yield RunningDrain(url, drain.pid, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(drain.pid, signal.SIGTERM)
        try:
            drain.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(drain.pid, signal.SIGKILL)
            drain.wait(5)


class Recorder:
    """An HTTP proxy in front of meta on 127.0.0.1 that forwards every request as it came
    (method, path exactly as sent, headers, body) and writes down the method and path: what
    the drain asked meta, and how often."""

    def __init__(self, meta_url: str) -> None:
        target = httpx.URL(meta_url)
        self.seen: list[tuple[str, str]] = []
        lock = threading.Lock()
        seen = self.seen

        class Forward(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                with lock:
                    seen.append((self.command, self.path))
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else None
                keep = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn = http.client.HTTPConnection(target.host, target.port, timeout=10)
                try:
                    conn.request(self.command, self.path, body=body, headers=keep)
                    r = conn.getresponse()
                    data = r.read()
                finally:
                    conn.close()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def count(self) -> int:
        return len(self.seen)


_HOP = {"host", "connection", "content-length", "transfer-encoding", "keep-alive"}


def events(text: str) -> list[tuple[str, str]]:
    """(id, data) of each event of a Server-Sent Events body; comments left out."""
    out = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.split("\n") if line and not line.startswith(":")
        )
        if fields:
            out.append((fields["id"], fields["data"]))
    return out


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send_raw(
    url: str, method: bytes, target: bytes, headers: dict[str, str] | None = None, body: bytes = b""
) -> Answer:
    """One request over a plain socket with `target` sent byte for byte (no client between
    to normalise `..`, decode `%2F` or refuse a NUL)."""
    u = httpx.URL(url)
    head = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for k, v in (headers or {}).items():
        head.append(f"{k}: {v}".encode("latin-1"))
    head.append(b"Content-Length: %d" % len(body))
    with socket.create_connection((u.host, u.port), timeout=10) as s:
        s.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return Answer(int(status_line.split()[1]), payload)


@dataclass
class Site:
    """meta (SQLite) with apps and their ingest tokens, the recorder in front of it, and a
    drain that asks meta through the recorder."""

    meta: MetaServer
    recorder: Recorder
    drain: RunningDrain
    home: Path  # the drain's GUN_HOME: its archive is home/logs
    tokens: dict[str, str]  # app -> ingest token
    http: httpx.Client

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN}"}

    def create_app(self, name: str) -> str:
        """Create app `name`; its ingest token."""
        with self.meta.http() as api:
            api.post("/v1/apps", json={"name": name}).raise_for_status()
            url = api.get(f"/v1/apps/{name}/drains/ingest").json()["url"]
        self.tokens[name] = url.rsplit("/", 1)[1]
        return self.tokens[name]

    def destroy_app(self, name: str) -> None:
        with self.meta.http() as api:
            api.delete(f"/v1/apps/{name}").raise_for_status()

    def say(self, app: str, *lines: tuple[str, str, str], at: float | None = None) -> None:
        """Post lines (appname, procid, message) to the drain as the app's logplex sender,
        dated `at` (default: now)."""
        t = time.time() if at is None else at
        body = b"".join(frame(190, t, a, p, m) for a, p, m in lines)
        assert self.post(f"/logs/{self.tokens[app]}", body).status == 200

    def post(self, target: str | bytes, body: bytes, **headers: str) -> Answer:
        raw = target if isinstance(target, bytes) else target.encode()
        return send_raw(self.drain.url, b"POST", raw, {**LOGPLEX, **headers}, body)

    def lines(self, app: str) -> list[str]:
        r = self.http.get(f"{self.drain.url}/v1/apps/{app}/logs", headers=self.admin())
        r.raise_for_status()
        return [line.split(": ", 1)[1] for line in r.json()["lines"]]

    def metric_names(self, app: str) -> set[str]:
        r = self.http.get(f"{self.drain.url}/v1/apps/{app}/metrics", headers=self.admin())
        r.raise_for_status()
        return {b["name"] for b in r.json()}


@contextlib.contextmanager
def site_running(tmp: Path, apps: tuple[str, ...], **settings: str) -> Iterator[Site]:
    """A Site with `apps` created, the drain run with GUN_* `settings`."""
    port = free_port()
    meta = MetaServer(tmp / "meta", f"sqlite:///{tmp / 'meta.db'}", ADMIN)
    meta.extra_env = {"GUN_DRAIN_URL": f"http://127.0.0.1:{port}", "GUN_DRAIN_TOKEN": DRAIN}
    try:
        meta.start()
        with Recorder(meta.url) as recorder, httpx.Client(timeout=10) as http:
            env = drain_env(recorder.url, tmp / "drain", **settings)
            with drain_running(env, port, http, tmp) as drain:
                site = Site(meta, recorder, drain, tmp / "drain", {}, http)
                for app in apps:
                    site.create_app(app)
                yield site
    finally:
        meta.stop()


def lines_with_metrics(rng: random.Random, count: int, now: float) -> list[bytes]:
    """Frames of app lines and router lines with every metric type. Values are whole numbers or
    halves, so sums are exact in any order; times are distinct microseconds of the last 10 s."""
    frames = []
    for i in range(count):
        t = now - 10 + i * 10 / count
        proc = f"web.{rng.randrange(1, 4)}"
        if i % 4 == 0:
            msg = (
                f"at=info method=GET path=/p/{i} host=x request_id={uuid.uuid4()} fwd=1.2.3.4"
                f" dyno={proc} connect={rng.randrange(5)}ms service={rng.randrange(900)}ms"
                f" status={rng.choice((200, 404, 500))} bytes={rng.randrange(9999)} protocol=https"
            )
            frames.append(frame(190, t, "heroku", "router", msg))
        else:
            msg = (
                f"source={proc} measure#db.query={rng.randrange(400) / 2}ms count#orders="
                f"{rng.randrange(1, 4)} sample#queue={rng.randrange(50)}jobs"
                f" unique#user=u{rng.randrange(30)}"
            )
            frames.append(frame(190, t, "app", proc, msg))
    return frames


def buckets(site: Site) -> list[dict[str, Any]]:
    r = site.http.get(f"{site.drain.url}/v1/apps/shop/metrics?since=1h", headers=site.admin())
    r.raise_for_status()
    got = [{k: v for k, v in b.items() if k != "partial"} for b in r.json()]
    return sorted(
        got, key=lambda b: (b["name"], b["source"] or "", b["unit"], b["type"], b["time"])
    )
