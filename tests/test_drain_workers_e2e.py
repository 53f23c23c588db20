"""The drain on every core: `gun server drain` with GUN_DRAIN_WORKERS=2 next to one with a
single process, both real, fed the same frames. Each POST goes over a new connection, so the
kernel hands it to either worker."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from gun.logs.frames import frame
from tests.drain import COMPILED, DRAIN, Site, buckets, lines_with_metrics, site_running
from tests.meta import GUN


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with site_running(tmp_path_factory.mktemp("one"), ("shop",)) as site:
        yield site


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with site_running(tmp_path_factory.mktemp("two"), ("shop",), GUN_DRAIN_WORKERS="2") as site:
        yield site


def workers_of(site: Site) -> list[int]:
    return sorted(p.pid for p in psutil.Process(site.drain.pid).children())


def test_every_bucket_is_the_same_whether_one_worker_or_two_took_the_lines(
    one: Site, two: Site
) -> None:
    frames = lines_with_metrics(random.Random(11), 800, time.time())
    order = list(range(0, len(frames), 20))
    random.Random(12).shuffle(order)  # bodies in another order than the lines' times
    for start in order:
        body = b"".join(frames[start : start + 20])
        frame_id = uuid.uuid4().hex
        for site in (one, two):
            r = site.post(f"/logs/{site.tokens['shop']}", body, **{"Logplex-Frame-Id": frame_id})
            assert (r.status, r.json()["lines"]) == (200, 20)
    archive = two.home / "logs"
    assert (archive / ".frame-ids").exists() and (archive / ".frame-ids.1").exists(), (
        "both workers took bodies"
    )
    expected = buckets(one)
    assert {b["name"] for b in expected} >= {
        "db.query",
        "orders",
        "queue",
        "user",
        "router.service",
    }
    deadline = time.monotonic() + 5
    while buckets(two) != expected and time.monotonic() < deadline:
        time.sleep(0.2)  # the workers report every 0.5 s
    assert buckets(two) == expected


def test_a_burst_of_connections_spreads_over_the_workers(two: Site) -> None:
    """Each worker listens on a socket of its own (SO_REUSEPORT), and the kernel spreads
    connections over them: of sixteen keep-alive connections, each worker holds some."""
    port = int(two.drain.url.rsplit(":", 1)[1])
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(16)]
    try:
        for c in conns:  # one request each, so that every connection has been taken
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in conns:
            assert c.recv(65536).startswith(b"HTTP/1.1 200")
        mine = {c.getsockname() for c in conns}
        taken = {
            pid: sum(
                1
                for k in psutil.Process(pid).net_connections("tcp")
                if k.raddr and (k.raddr.ip, k.raddr.port) in mine
            )
            for pid in workers_of(two)
        }
    finally:
        for c in conns:
            c.close()
    assert sum(taken.values()) == 16 and all(taken.values()), taken


def test_a_retried_body_is_taken_once_whichever_worker_gets_it(two: Site) -> None:
    body = frame(190, time.time(), "app", "web.1", "retried once " + uuid.uuid4().hex)
    frame_id = uuid.uuid4().hex
    taken = [
        two.post(f"/logs/{two.tokens['shop']}", body, **{"Logplex-Frame-Id": frame_id}).json()
        for _ in range(8)
    ]
    assert [t["lines"] for t in taken] == [1, 0, 0, 0, 0, 0, 0, 0]
    marker = body.decode().rsplit(" ", 1)[1].strip()
    assert sum(marker in line for line in two.lines("shop")) == 1


def test_a_live_tail_gets_the_lines_every_worker_takes(two: Site) -> None:
    got: list[str] = []
    done = threading.Event()

    def follow() -> None:
        url = f"{two.drain.url}/v1/apps/shop/logs/tail"
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=None)) as http,
            http.stream("GET", url, headers=two.admin()) as r,
        ):
            for text in r.iter_lines():
                got.append(text)
                if done.is_set() or sum("tail me" in g for g in got) >= 10:
                    return

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    time.sleep(0.5)  # the tail is open, and its worker has told the hub
    sent = [f"tail me {i} {uuid.uuid4().hex[:8]}" for i in range(10)]
    for text in sent:
        r = two.post(f"/logs/{two.tokens['shop']}", frame(190, time.time(), "app", "web.1", text))
        assert r.status == 200
    reader.join(10)
    done.set()
    shown = [g.split(": ", 1)[1] for g in got if "tail me" in g]
    assert sorted(shown) == sorted(sent)


def test_a_worker_killed_is_started_again_and_the_drain_goes_on(two: Site) -> None:
    before = workers_of(two)
    assert len(before) == 2
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = workers_of(two)
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"workers {before} -> {workers_of(two)}: not started again")
    for i in range(4):  # over new connections, to either worker
        body = frame(190, time.time(), "app", "web.1", f"after the kill {i}")
        assert two.post(f"/logs/{two.tokens['shop']}", body).status == 200
    assert "drain worker" in two.drain.said() and "was killed by SIGKILL" in two.drain.said()


def test_the_number_of_workers_must_be_a_whole_number(tmp_path: Path) -> None:
    env = dict(os.environ, GUN_HOME=str(tmp_path), GUN_DRAIN_WORKERS="1.5")
    shown = subprocess.run(
        [*GUN, "server", "drain"], env=env, capture_output=True, text=True, timeout=30
    )
    assert shown.returncode == 2
    assert "GUN_DRAIN_WORKERS='1.5' is not a whole number" in shown.stderr


def test_health_at_a_worker_speaks_for_the_parent_too(two: Site) -> None:
    for _ in range(4):  # new connections: either worker answers
        r = two.http.get(f"{two.drain.url}/health", headers={"Connection": "close"})
        assert (r.status_code, r.json()) == (200, {"status": "ok", "compiled": COMPILED})


def test_workers_on_a_port_that_is_taken_say_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(
            os.environ, GUN_HOME=str(tmp_path), GUN_DRAIN_WORKERS="2", GUN_DRAIN_META_TOKEN=DRAIN
        )
        shown = subprocess.run(
            [*GUN, "server", "drain", "--listen", f"127.0.0.1:{port}"],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert shown.returncode == 2  # after the line that says whether it runs compiled
    assert shown.stderr.splitlines()[-1] == (
        f"gun: the drain cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "Traceback" not in shown.stderr
