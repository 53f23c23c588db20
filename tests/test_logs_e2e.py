"""Logs as a user sees them: `gun up` (meta, the drain, 2 local instances per app), an app that
prints what it is asked to, `gun logs`, `gun logs -t`, `gun metrics`, and a Heroku-style
logplex sender draining into `drains.ingest`."""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import pytest

from gun.logs.access import INVALID_INGEST, NO_INGEST
from gun.logs.frames import frame
from tests.meta import GUN
from tests.up import Up, running

SAYER = """
import http.server, os, sys, urllib.parse
NAME = os.environ.get("DYNO", "web")

class Say(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        said = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("say", [""])[0]
        if said:
            print(said, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\\n")

    def log_message(self, *args):
        pass

print(f"{NAME} listening", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Say).serve_forever()
"""
COUNTER = """
import itertools, time
for n in itertools.count(1):
    print(f"seq {n}", flush=True)
    time.sleep(0.02)
"""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running(
        tmp_path_factory.mktemp("logs"),
        instances=2,
        GUN_METRICS_RESOLUTION="1",
        GUN_RUNTIME_METRICS_INTERVAL="1",
    ) as platform:
        yield platform


@pytest.fixture(scope="module")
def sayer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = tmp_path_factory.mktemp("sayer")
    (app / "web.py").write_text(SAYER)
    (app / "counter.py").write_text(COUNTER)
    (app / "Procfile").write_text("web: python3 web.py\ncounter: python3 counter.py\n")
    return app


def deploy(up: Up, name: str, sayer: Path, web: int = 2) -> dict[str, int]:
    up.ok("apps.create", name)
    up.ok(f"app:{name}", "deploy", f"dir={sayer}")
    up.ok(f"app:{name}", "scale", f"web={web}")
    return {p["name"]: p["port"] for p in up.processes(name) if p["type"] == "web"}


def say(port: int, text: str) -> None:
    httpx.get(f"http://127.0.0.1:{port}/?say={quote(text)}", timeout=5).raise_for_status()


def logs(up: Up, app: str, *words: str) -> list[str]:
    return up.ok(f"app:{app}", "logs", *words).splitlines()


def test_logs_tail_shows_a_line_from_another_instance_within_a_second(up: Up, sayer: Path) -> None:
    ports = deploy(up, "tailed", sayer)
    hosts = {p["name"]: p["instance"] for p in up.processes("tailed")}
    assert hosts["web.1"] != hosts["web.2"]
    tail = subprocess.Popen(
        [*GUN, "app:tailed", "logs", "-t", "-n", "1", "ps=web"],
        env=up.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(ln) for ln in tail.stdout or ()])
    reader.start()
    try:
        lines.get(timeout=20)  # the archive's last line: the tail is connected next
        time.sleep(0.5)
        for name, port in sorted(ports.items()):
            marker = f"hello-{name}-{uuid.uuid4().hex[:8]}"
            sent = time.monotonic()
            say(port, marker)
            while True:
                line = lines.get(timeout=5)
                if marker in line:
                    break
            assert time.monotonic() - sent < 1.0, f"{name}'s line took too long"
            assert f"app[{name}]: {marker}" in line
    finally:
        os.killpg(tail.pid, signal.SIGTERM)
        tail.wait(10)
        reader.join(10)


def test_a_line_with_l2met_metrics_becomes_series(up: Up, sayer: Path) -> None:
    ports = deploy(up, "measured", sayer, web=1)
    (port,) = ports.values()
    say(port, "measure#db.query=12ms count#signup=1")
    say(port, "measure#db.query=30ms count#signup=1 sample#queue=7jobs")
    say(port, "measure#x=abc measure#=3")  # counted as invalid, no series

    def series() -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = up.json("app:measured", "metrics", "since=5m")
        return data

    def settled() -> list[dict[str, Any]] | None:
        got = [b for b in series() if b["name"] in ("db.query", "signup", "queue")]
        names = {b["name"] for b in got}
        total = sum(b["count"] or 0 for b in got if b["name"] == "db.query")
        return got if names == {"db.query", "signup", "queue"} and total == 2 else None

    got = up.until(settled, 15, "the metrics of both lines")
    query = [b for b in got if b["name"] == "db.query"]
    values = sorted(v for b in query for v in (b["min"], b["max"]))
    assert values[0] == 12 and values[-1] == 30
    assert {b["unit"] for b in query} == {"ms"} and {b["type"] for b in query} == {"measure"}
    assert sum(b["sum"] for b in got if b["name"] == "signup") == 2
    (queue_bucket,) = [b for b in got if b["name"] == "queue"]
    assert (queue_bucket["last"], queue_bucket["unit"], queue_bucket["count"]) == (7, "jobs", None)
    assert set(got[0]) == {
        "name", "source", "unit", "type", "time", "count", "sum", "min", "max",
        "mean", "median", "p95", "p99", "last", "unique", "partial",
    }  # fmt: skip
    one = up.json("app:measured", "metrics", "signup", "since=5m")
    assert {b["name"] for b in one} == {"signup"}
    # the lines themselves are in the archive
    shown = logs(up, "measured", "grep=db.query")
    assert [ln.split(": ", 1)[1] for ln in shown] == [
        "measure#db.query=12ms count#signup=1",
        "measure#db.query=30ms count#signup=1 sample#queue=7jobs",
    ]


def ingest(url: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        url,
        content=body,
        headers={"Content-Type": "application/logplex-1", **headers},
        timeout=10,
    )


ROUTER = (
    "at=info method=GET path=/ host=shop.example.com request_id=a1 fwd=1.2.3.4 dyno=web.1 "
    "connect=1ms service=23ms status=200 bytes=512 protocol=https"
)
ROUTER_ERROR = (
    'at=error code=H12 desc="Request timeout" method=GET path="/slow" host=shop.example.com '
    "request_id=a2 fwd=1.2.3.4 dyno=web.1 connect=0ms service=30001ms status=503 bytes=0 "
    "protocol=https"
)


def heroku_body(*lines: tuple[str, str, str]) -> bytes:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
    return b"".join(frame(190, now, appname, procid, msg) for appname, procid, msg in lines)


def test_a_heroku_app_drains_into_the_ingest_url(up: Up) -> None:
    up.ok("apps.create", "migrating")
    url = up.json("app:migrating", "drains.ingest")["url"]
    assert url.startswith(f"{up.drain_url}/logs/gdi_")
    body = heroku_body(
        ("heroku", "router", ROUTER),
        ("heroku", "router", ROUTER_ERROR),
        ("app", "web.1", "Completed 200 OK in 23ms"),
    )
    frame_id = uuid.uuid4().hex.upper()
    r = ingest(url, body, **{"Logplex-Msg-Count": "3", "Logplex-Frame-Id": frame_id})
    assert (r.status_code, r.json()) == (200, {"lines": 3, "bad_frames": 0, "problems": []})
    again = ingest(url, body, **{"Logplex-Msg-Count": "3", "Logplex-Frame-Id": frame_id})
    assert (again.status_code, again.json()["lines"]) == (200, 0)  # a retry: taken once
    # the token as the Basic auth password, as in https://user:TOKEN@host/logs
    base, token = url.rsplit("/", 1)
    basic = "Basic " + base64.b64encode(f"heroku:{token}".encode()).decode()
    one = heroku_body(("app", "web.2", "sent with Basic auth"))
    assert ingest(base, one, Authorization=basic).json()["lines"] == 1

    shown = logs(up, "migrating", "ps=router")
    assert [ln.split(": ", 1)[1] for ln in shown] == [ROUTER, ROUTER_ERROR]
    assert shown[0].split(" ", 1)[1].startswith("heroku[router]: at=info")
    assert len(logs(up, "migrating", "source=app")) == 2

    def router() -> dict[str, float] | None:
        got = up.json("app:migrating", "metrics", "since=5m")
        found = {
            b["name"]: b["sum"] if b["type"] == "count" else b["max"]
            for b in got
            if b["name"].startswith("router.")
        }
        return found if len(found) >= 6 else None

    found = up.until(router, 10, "router metrics")
    assert found["router.service"] == 30001
    assert found["router.connect"] == 1
    assert found["router.bytes"] == 512
    assert found["router.status.2xx"] == 1
    assert found["router.status.5xx"] == 1
    assert found["router.error.H12"] == 1


def test_the_drain_refuses_what_it_cannot_take_and_stores_nothing(up: Up) -> None:
    up.ok("apps.create", "refused")
    url = up.json("app:refused", "drains.ingest")["url"]
    base = url.rsplit("/", 1)[0]
    body = heroku_body(("app", "web.1", "should not be stored"))
    cases = [
        (ingest(base, body), 401, NO_INGEST),
        (ingest(base + "/gdi_wrong", body), 403, INVALID_INGEST),
        (ingest(base + "/gdi_" + "w" * 32, body), 403, INVALID_INGEST),
        (ingest(url, b""), 400, None),
        (ingest(url, b"abc " + body), 400, None),
        (ingest(url, b"x" * (10 * 1024 * 1024 + 1)), 413, None),
        (ingest(url + "?resolution=0", body), 400, None),
    ]
    for r, status, message in cases:
        assert r.status_code == status, r.text
        if message is not None:
            assert r.json()["message"] == message
        assert set(r.json()) == {"id", "message"}
    # a body with one good and one bad frame: the good one is taken, the bad one counted
    mixed = heroku_body(("app", "web.1", "good line")) + b"6 <190>\n"  # no header fields
    r = ingest(url, mixed)
    assert r.status_code == 200
    assert (r.json()["lines"], r.json()["bad_frames"]) == (1, 1)
    shown = logs(up, "refused")
    assert [ln.split(": ", 1)[1] for ln in shown] == ["good line"]


def drain_pid(up: Up) -> int:
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "server drain" in cmd and str(up.drain_port) in cmd:
            return int(p.pid)
    raise AssertionError("no drain process")


def test_the_drain_restarted_mid_stream_loses_and_repeats_nothing(up: Up, sayer: Path) -> None:
    up.ok("apps.create", "steady")
    up.ok("app:steady", "deploy", f"dir={sayer}")
    up.ok("app:steady", "scale", "web=0", "counter=1")
    time.sleep(1.5)
    first = drain_pid(up)
    os.kill(first, signal.SIGKILL)
    up.until(lambda: drain_pid(up) != first if _alive_drain(up) else False, 30, "a new drain")
    time.sleep(3)  # the agent's buffered lines go out once the drain is back
    up.ok("app:steady", "scale", "counter=0")
    time.sleep(1.5)
    seqs = [
        int(ln.rsplit(" ", 1)[1])
        for ln in logs(up, "steady", "ps=counter", "source=app", "-n", "10000")
    ]
    assert len(seqs) > 150
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap, no repeat
    assert seqs[0] == 1


def _alive_drain(up: Up) -> bool:
    try:
        return httpx.get(f"{up.drain_url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_logs_refuses_bad_words_with_exit_code_2(up: Up) -> None:
    up.ok("apps.create", "wordy")
    for words, message in (
        (["since=2x"], "since="),
        (["-n", "0"], "-n '0' is not a number of lines from 1 to 10000"),
        (["source=router"], "source="),
    ):
        r = up.gun("app:wordy", "logs", *words)
        assert r.code == 2, (words, r)
        assert message in r.err and r.err.startswith("gun: ") and r.err.count("\n") == 1
    bad = up.gun("app:wordy", "drains.add:ftp://logs.example.com")
    assert (bad.code, bad.err) == (
        1,
        "gun: drain URL 'ftp://logs.example.com' is not an http:// or https:// URL\n",
    )
    good = up.json("app:wordy", "drains.add:http://127.0.0.1:9/x")  # never leaves this host
    assert up.json("app:wordy", "drains") == [good]
    assert up.ok("app:wordy", "drains.remove:" + str(good["id"])) == (
        f"Drain {good['id']} removed from wordy\n"
    )
    assert json.loads(up.ok("--json", "app:wordy", "drains")) == []
