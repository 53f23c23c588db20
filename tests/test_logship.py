"""The log shipper against a real HTTP drain on 127.0.0.1, and runtime metrics of real processes.

The drain here is a stdlib ThreadingHTTPServer that records every request and answers what the
test tells it to (503, 429, 400, a slow answer); its bodies are read by a strict octet-counting
reader of the test's own.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from gun.agent.applog import AppLog, Position, Span
from gun.agent.drainurl import drain_key, replaces, target
from gun.agent.logship import LogShipper
from gun.agent.runtime_metrics import CpuSeen, sample_lines
from gun.agent.supervisor import ProcessState
from gun.errors import InvalidParams
from gun.logs.frames import safe_frames as frames
from tests.meta import free_port

T0 = datetime(2022, 6, 13, 14, 52, 23, 622778, tzinfo=UTC)
MSG = re.compile(rb"<(\d+)>1 (\S+) host (\S+) (\S+) - (.*)\Z", re.DOTALL)
FAST: dict[str, Any] = {"interval": 0.05, "backoff": 0.05, "backoff_cap": 0.2, "timeout": 2.0}


# -- a drain -----------------------------------------------------------------------------------


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int = 0  # how it was answered


Answer = int | Callable[[], int]  # a status, or a function that returns one (may sleep first)


class Drain:
    """Records requests; answers the statuses in `plan` in turn, then 200."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Request] = []
        self.plan: list[Answer] = []
        self.lock = threading.Lock()
        drain = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real drain
            timeout = 10

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = Request(self.path, dict(self.headers), body, time.monotonic())
                with drain.lock:
                    drain.requests.append(request)
                    answer = drain.plan.pop(0) if drain.plan else 200
                status = request.status = answer() if callable(answer) else answer
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and went away

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/logs"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def messages(self) -> list[bytes]:
        with self.lock:
            return [m for r in self.requests for m in read_frames(r.body)]

    def delivered(self) -> list[bytes]:
        """The messages of the requests it answered with a 2xx."""
        with self.lock:
            taken = [r for r in self.requests if 200 <= r.status < 300]
        return [m for r in taken for m in read_frames(r.body)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def drain(port: int = 0) -> Iterator[Drain]:
    d = Drain(port)
    try:
        yield d
    finally:
        d.close()


@contextmanager
def shipper(*urls: str, **kw: Any) -> Iterator[LogShipper]:
    s = LogShipper("demo", list(urls), **{**FAST, **kw})
    try:
        yield s
    finally:
        s.close(2.0)
    assert not logship_threads()


def read_frames(body: bytes) -> list[bytes]:
    """The messages of a logplex body, strictly: `LEN SP MSG` with MSG ending in its LF."""
    out, pos = [], 0
    while pos < len(body):
        space = body.index(b" ", pos)
        digits = body[pos:space]
        assert digits.isdigit() and not digits.startswith(b"0"), body[pos : pos + 20]
        end = space + 1 + int(digits)
        assert end <= len(body), "a frame runs past the body"
        msg = body[space + 1 : end]
        assert msg.endswith(b"\n") and b"\n" not in msg[:-1], msg[:80]
        out.append(msg[:-1])
        pos = end
    return out


def text_of(msg: bytes) -> bytes:
    m = MSG.match(msg)
    assert m, msg
    return m.group(5)


def logship_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("logship ")]


def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


# -- the wire format ---------------------------------------------------------------------------


def test_one_line_is_framed_exactly_as_logplex_frames_it() -> None:
    # REFERENCE.md's example line; its LEN there (83) is not the message's length: 89 is
    assert frames(190, T0, "app", "web.1", "measure#db.query=12ms count#x=1") == [
        b"89 <190>1 2022-06-13T14:52:23.622778+00:00 host app web.1 - "
        b"measure#db.query=12ms count#x=1\n"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", [b""]),
        ("a\nb", [b"a", b"b"]),
        ("crlf\r\n", [b"crlf"]),
        ("x" * 25_000, [b"x" * 10_000, b"x" * 10_000, b"x" * 5_000]),
        ("é" * 6_000, ["é" * 5_000, "é" * 1_000]),  # 12,000 bytes, cut between characters
    ],
)
def test_lines_are_split_on_newlines_and_at_10000_bytes(text: str, expected: list[Any]) -> None:
    out = [text_of(m) for f in frames(190, T0, "app", "web.1", text) for m in read_frames(f)]
    assert out == [e.encode() if isinstance(e, str) else e for e in expected]
    assert all(len(m) <= 10_000 for m in out)


def test_appname_and_procid_never_break_the_header() -> None:
    (frame,) = frames(45, T0, "heroku", "run 1", "x")
    assert read_frames(frame) == [b"<45>1 2022-06-13T14:52:23.622778+00:00 host heroku run_1 - x"]
    (frame,) = frames(190, datetime(2022, 1, 2, 3, 4, 5), "app", "", "naive is UTC")
    assert read_frames(frame) == [
        b"<190>1 2022-01-02T03:04:05.000000+00:00 host app - - naive is UTC"
    ]


def test_drain_urls_and_tokens() -> None:
    t = target("https://user:s%40cret@logs.example.com:8443/drain?x=1", "demo")
    assert (t.https, t.host, t.port, t.path, t.token) == (
        True,
        "logs.example.com",
        8443,
        "/drain?x=1",
        "s@cret",
    )
    assert t.auth == {"Authorization": "Basic " + base64.b64encode(b"user:s@cret").decode()}
    assert t.display == "https://logs.example.com:8443/drain"
    t = target("http://drain:5000/logs/gdi_abc", "demo")
    assert (t.token, t.auth, t.display) == ("gdi_abc", {}, "http://drain:5000/logs/***")
    t = target("http://drain:5000/logs", "demo")
    assert re.fullmatch(r"d\.[0-9a-f-]{36}", t.token)
    assert t.token == target("http://drain:5000/logs", "demo").token
    assert t.token != target("http://drain:5000/logs", "other").token
    bad_urls = (
        "ftp://drain/logs",
        "drain:5000/logs",
        "http:///logs",
        "http://h:99999/",
        "http://drain/logs/tök",
        "http://drain/logs/a b",
        "http://u:a%0Ab@drain/logs",
    )
    for bad in bad_urls:
        with pytest.raises(InvalidParams):
            target(bad, "demo")


# -- shipping ----------------------------------------------------------------------------------


def test_a_batch_has_logplex_headers_basic_auth_and_exact_frames() -> None:
    with drain() as d:
        url = f"http://user:secret@127.0.0.1:{d.port}/logs"
        with shipper(url, clock=lambda: T0) as s:
            s.sink("app[web.1]", "measure#db.query=12ms count#x=1")
            s.sink("heroku[web.1]", "State changed from starting to up")
            until(lambda: s.stats()[url].sent == 2)
        (r,) = d.requests
    assert r.path == "/logs"
    h = r.headers
    assert h["Content-Type"] == "application/logplex-1"
    assert h["Logplex-Msg-Count"] == "2"
    assert re.fullmatch(r"[0-9A-F]{32}", h["Logplex-Frame-Id"])
    assert h["Logplex-Drain-Token"] == "secret"
    assert h["Authorization"] == "Basic " + base64.b64encode(b"user:secret").decode()
    assert h["User-Agent"] == "gun-logship"
    assert r.body == (
        b"89 <190>1 2022-06-13T14:52:23.622778+00:00 host app web.1 - "
        b"measure#db.query=12ms count#x=1\n"
        b"93 <45>1 2022-06-13T14:52:23.622778+00:00 host heroku web.1 - "
        b"State changed from starting to up\n"
    )


def test_lines_go_in_order_in_batches_of_at_most_batch_each_with_its_own_frame_id() -> None:
    with drain() as d, shipper(d.url, batch=10) as s:
        for i in range(95):
            s.add("app", "web.1", f"line {i}")
        until(lambda: s.stats()[d.url].sent == 95)
        assert s.stats()[d.url].retries == 0
    assert [text_of(m) for m in d.messages()] == [f"line {i}".encode() for i in range(95)]
    counts = [int(r.headers["Logplex-Msg-Count"]) for r in d.requests]
    assert all(c <= 10 for c in counts) and sum(counts) == 95
    assert counts == [len(read_frames(r.body)) for r in d.requests]
    ids = [r.headers["Logplex-Frame-Id"] for r in d.requests]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("plan", [[503, 503], [429], [500, 429, 502]])
def test_a_refused_for_now_batch_is_retried_with_backoff_under_the_same_frame_id(
    plan: list[Answer],
) -> None:
    with drain() as d, shipper(d.url, backoff=0.1, backoff_cap=0.4) as s:
        d.plan = list(plan)
        s.add("app", "web.1", "once")
        until(lambda: s.stats()[d.url].sent == 1)
        stats = s.stats()[d.url]
    assert (stats.retries, stats.dropped, stats.failed, stats.error) == (len(plan), 0, 0, None)
    assert len({r.headers["Logplex-Frame-Id"] for r in d.requests}) == 1
    assert len({r.body for r in d.requests}) == 1
    gaps = [b.at - a.at for a, b in zip(d.requests, d.requests[1:], strict=False)]
    # backoff 0.1, 0.2, 0.4 with jitter down to half
    assert all(gap >= 0.05 * 2**i for i, gap in enumerate(gaps)), gaps
    assert d.messages() == d.messages()[:1] * len(d.requests)


def test_a_timed_out_batch_is_retried_under_the_same_frame_id() -> None:
    def slow() -> int:
        time.sleep(0.8)
        return 200

    with drain() as d, shipper(d.url, timeout=0.3) as s:
        d.plan = [slow]
        s.add("app", "web.1", "slowly")
        until(lambda: s.stats()[d.url].sent == 1)
        assert s.stats()[d.url].retries == 1
    first, second = d.requests  # the drain got it twice: it may deduplicate by Frame-Id
    assert first.headers["Logplex-Frame-Id"] == second.headers["Logplex-Frame-Id"]
    assert first.body == second.body


def test_a_batch_the_drain_refuses_with_400_is_dropped_and_counted() -> None:
    with drain() as d, shipper(d.url) as s:
        d.plan = [400]
        s.add("app", "web.1", "refused")
        until(lambda: s.stats()[d.url].failed == 1)
        assert "400" in (s.stats()[d.url].error or "")
        s.add("app", "web.1", "accepted")
        until(lambda: s.stats()[d.url].sent == 1)
        stats = s.stats()[d.url]
    assert (stats.sent, stats.failed, stats.retries, stats.error) == (1, 1, 0, None)
    assert [text_of(m) for m in d.messages()] == [b"refused", b"accepted"]
    assert d.requests[0].headers["Logplex-Frame-Id"] != d.requests[1].headers["Logplex-Frame-Id"]


def test_a_drain_that_is_down_costs_add_nothing_and_gets_an_L10_line_then_the_newest() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/logs"
    with shipper(url, batch=100, buffer=1000, clock=lambda: T0) as s:
        started = time.perf_counter()
        for i in range(10_000):
            s.add("app", "web.1", f"line {i}")
        assert time.perf_counter() - started < 0.5
        until(lambda: s.stats()[url].dropped == 9000 and s.stats()[url].retries >= 1)
        assert (s.stats()[url].buffered, s.stats()[url].sent) == (1000, 0)
        with drain(port) as d:
            until(lambda: s.stats()[url].sent == 1000)
        stats = s.stats()[url]
    assert (stats.dropped, stats.failed, stats.error) == (9000, 0, None)
    messages = d.messages()
    assert messages[0] == (
        b"<172>1 2022-06-13T14:52:23.622778+00:00 host heroku logplex - "
        b"Error L10 (output buffer overflow): 9000 messages dropped since "
        b"2022-06-13T14:52:23+00:00."
    )
    assert [text_of(m) for m in messages[1:]] == [f"line {i}".encode() for i in range(9000, 10_000)]
    assert d.requests[0].headers["Logplex-Msg-Count"] == "100"  # the L10 line and 99 lines


def test_one_drain_that_hangs_does_not_delay_another() -> None:
    hanging = socket.socket()  # accepts connections (backlog) and never answers
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)
    slow = f"http://127.0.0.1:{hanging.getsockname()[1]}/logs"
    try:
        with drain() as d:
            s = LogShipper("demo", [slow, d.url], **{**FAST, "timeout": 5.0})
            try:
                started = time.monotonic()
                for i in range(50):
                    s.add("app", "web.1", f"line {i}")
                until(lambda: s.stats()[d.url].sent == 50, timeout=1.5)
                assert time.monotonic() - started < 1.5
                assert s.stats()[slow].sent == 0
            finally:
                started = time.monotonic()
                s.close(0.5)  # the hanging request is cut off
                assert time.monotonic() - started < 1.5
            assert not logship_threads()
    finally:
        hanging.close()


def test_destinations_change_at_run_time() -> None:
    with drain() as a, drain() as b, shipper(a.url) as s:
        s.add("app", "web.1", "to a")
        until(lambda: s.stats()[a.url].sent == 1)
        s.set_destinations([b.url])
        until(lambda: len(logship_threads()) == 1)
        assert list(s.stats()) == [b.url]
        s.add("app", "web.1", "to b")
        until(lambda: s.stats()[b.url].sent == 1)
        s.set_destinations([b.url, a.url])  # b's sender is kept, with its counts
        s.add("app", "web.1", "to both")
        until(lambda: s.stats()[a.url].sent == 1 and s.stats()[b.url].sent == 2)
        with pytest.raises(InvalidParams):
            s.set_destinations([a.url, "ftp://nowhere/"])
        assert list(s.stats()) == [b.url, a.url]
    assert [text_of(m) for m in a.messages()] == [b"to a", b"to both"]
    assert [text_of(m) for m in b.messages()] == [b"to b", b"to both"]


OLD_TOKEN, NEW_TOKEN = "gdi_" + "a" * 32, "gdi_" + "b" * 32


@pytest.mark.parametrize(
    ("new", "old", "replaces_it"),
    [
        (f"http://d:1/logs/{NEW_TOKEN}", f"http://d:1/logs/{OLD_TOKEN}", True),
        (f"https://u:p@d:1/x/logs/{NEW_TOKEN}", f"https://u:p@d:1/x/logs/{OLD_TOKEN}", True),
        (f"http://d:1/logs/{OLD_TOKEN}", f"http://d:1/logs/{OLD_TOKEN}", False),  # the same
        (f"http://d:2/logs/{NEW_TOKEN}", f"http://d:1/logs/{OLD_TOKEN}", False),  # another drain
        (f"http://d:1/logs/{NEW_TOKEN}", "http://d:1/logs/d.0c2e", False),  # not an ingest URL
        ("http://d:1/logs/other", f"http://d:1/logs/{OLD_TOKEN}", False),
        (f"http://d:1/ingest/{NEW_TOKEN}", f"http://d:1/ingest/{OLD_TOKEN}", False),
    ],
)
def test_which_url_is_a_rotated_ingest_url_of_another(
    new: str, old: str, replaces_it: bool
) -> None:
    assert replaces(new, old) is replaces_it


def test_a_rotated_ingest_url_takes_over_what_the_old_one_had_not_delivered() -> None:
    """`drains.ingest rotate=true`: the agent is told the new URL; lines the old one still
    held (the drain answering 503 meanwhile) go to the new one, in order, none lost."""
    with drain() as d:
        old, new = f"{d.url}/{OLD_TOKEN}", f"{d.url}/{NEW_TOKEN}"
        d.plan = [503] * 10_000
        with shipper(old, batch=5) as s:
            for i in range(20):
                s.add("app", "web.1", f"line {i}")
            until(lambda: s.stats()[old].retries >= 2)
            s.set_destinations([new])
            with d.lock:
                d.plan = []
            for i in range(20, 25):
                s.add("app", "web.1", f"line {i}")
            until(lambda: s.stats()[new].sent == 25)
    delivered = [r for r in d.requests if r.status == 200]
    assert {r.path for r in delivered} == {f"/logs/{NEW_TOKEN}"}
    texts = [text_of(m) for r in delivered for m in read_frames(r.body)]
    assert texts == [f"line {i}".encode() for i in range(25)]


def test_close_flushes_what_it_can_and_leaves_nothing_running() -> None:
    with drain() as d:
        s = LogShipper("demo", [d.url], interval=30.0)  # a batch would wait 30 s for more lines
        s.add("app", "web.1", "last words")
        s.close(2.0)
        assert not logship_threads()
        assert [text_of(m) for m in d.messages()] == [b"last words"]
        s.add("app", "web.1", "after close")  # ignored, and no error
        s.close()
        s.set_destinations([d.url])
        assert not logship_threads()


def test_add_never_raises() -> None:
    with drain() as d, shipper(d.url) as s:
        s.add("app", "web.1", None)  # type: ignore[arg-type]
        s.add("app", "web.1", "\udcff surrogate")
        s.sink("no brackets", "text")
        until(lambda: s.stats()[d.url].sent == 2)
    assert [MSG.match(m).group(4) for m in d.messages()] == [b"web.1", b"-"]  # type: ignore[union-attr]


# -- runtime metrics ---------------------------------------------------------------------------

ALLOC = "b = b'x' * (20 * 1024 * 1024)"
GROUP = f"""
import subprocess, sys, time
{ALLOC}
child = subprocess.Popen([sys.executable, "-c", "{ALLOC}; import time; time.sleep(60)"])
time.sleep(0.5)
print("ready", flush=True)
while True:
    pass
"""
LOAD = re.compile(
    r"source=web\.1 dyno=heroku\.demo\.i-1 sample#load_avg_1m=\d+\.\d\d "
    r"sample#load_avg_5m=\d+\.\d\d sample#load_avg_15m=\d+\.\d\d "
    r"sample#cpu_percent=(\d+\.\d\d)\Z"
)
MEMORY = re.compile(
    r"source=web\.1 dyno=heroku\.demo\.i-1 sample#memory_total=(\d+\.\d\d)MB "
    r"sample#memory_rss=(\d+\.\d\d)MB sample#memory_cache=0\.00MB "
    r"sample#memory_swap=\d+\.\d\dMB sample#memory_pgpgin=0pages sample#memory_pgpgout=0pages "
    r"sample#memory_quota=512\.00MB\Z"
)


def _state(name: str, pid: int | None, state: str = "up") -> ProcessState:
    return ProcessState(name, "web", state, pid, None, 1, 0, None, datetime.now(UTC))  # type: ignore[arg-type]


def test_runtime_metric_lines_sum_a_process_group() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", GROUP], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        states = [_state("web.1", proc.pid), _state("web.2", None, "crashed")]
        seen: CpuSeen = {}  # as the agent keeps it between samples
        first = sample_lines(states, app="demo", instance="i-1", cpu_seen=seen)
        assert list(seen) == [("web.1", proc.pid, psutil.Process(proc.pid).create_time())]
        time.sleep(0.3)
        second = sample_lines(states, app="demo", instance="i-1", cpu_seen=seen)
        for lines in (first, second):
            assert [procid for procid, _ in lines] == ["web.1", "web.1"]
            load, memory = (LOAD.match(lines[0][1]), MEMORY.match(lines[1][1]))
            assert load and memory, lines
            total, rss = float(memory.group(1)), float(memory.group(2))
            assert 40 <= rss < 200 and total >= rss  # two processes of 20 MiB and more
        cpu = float(LOAD.match(second[0][1]).group(1))  # type: ignore[union-attr]
        assert cpu > 5  # the leader spins
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert sample_lines([_state("web.1", proc.pid)], app="demo", instance="i-1") == []


# -- how far shipping got, for the next agent ---------------------------------------------------


def test_each_drain_resumes_from_its_oldest_line_not_yet_delivered(tmp_path: Path) -> None:
    with drain() as fine, drain() as down:
        down.plan = [503] * 10_000
        s = LogShipper("demo", [fine.url, down.url], **FAST)
        log = AppLog(tmp_path / "app.log", s.sink)
        try:
            log.write("app", "web.1", [f"n={i}" for i in range(5)])
            first = log.position()
            assert first is not None
            until(lambda: s.stats()[fine.url].sent == 5 and s.stats()[down.url].retries >= 2)
            begin = Position(first.ino, first.head, 0)
            assert s.resume_points() == {drain_key(fine.url): first, drain_key(down.url): begin}
            with down.lock:
                down.plan.clear()
            until(lambda: s.stats()[down.url].sent == 5)
            assert s.resume_points() == {drain_key(fine.url): first, drain_key(down.url): first}
            down.plan = [503] * 10_000
            log.write("app", "web.1", ["n=5"])
            until(lambda: s.stats()[fine.url].sent == 6)
        finally:
            s.close(0.5)  # the down drain keeps its line: the next agent ships it
            log.close()
        end = log.position()
        assert s.resume_points() == {drain_key(fine.url): end, drain_key(down.url): first}


def test_a_line_not_in_app_log_resumes_from_the_last_one_that_is(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/logs"
    with shipper(url) as s:
        s.resume_from(Position(1, "ab", 10))
        s.sink("app[web.1]", "not written: the disk is full")
        assert s.resume_points() == {drain_key(url): Position(1, "ab", 10)}
        span = Span(1, "ab", 10, 60)
        s.sink("app[web.1]", "written", span)
        assert s.resume_points() == {drain_key(url): Position(1, "ab", 10)}
