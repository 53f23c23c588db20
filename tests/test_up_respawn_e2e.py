"""Processes outlive their control plane: `kill -9` of meta or of the drain under `gun up` stops
nothing; gun up says why it died and starts it again, and everything carries on."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import pytest

from tests.up import HELLO, Up, running

COUNTER = """
import itertools, time
for n in itertools.count(1):
    print(f"seq {n}", flush=True)
    time.sleep(0.02)
"""


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    with running(tmp_path, instances=1) as platform:
        yield platform


def platform_process(up: Up, role: str) -> psutil.Process:
    """gun up's child running `gun server ROLE`."""
    assert up.proc is not None
    for p in psutil.Process(up.proc.pid).children():
        if f"server {role}" in " ".join(p.cmdline()):
            return p
    raise AssertionError(f"no {role} under gun up")


class Prober(threading.Thread):
    """GETs a URL every 20 ms until stopped; counts answers and failures."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.ok, self.failed = url, 0, []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=2) as c:
            while not self.halt.is_set():
                try:
                    c.get(self.url).raise_for_status()
                    self.ok += 1
                except httpx.HTTPError as e:
                    self.failed.append(repr(e))
                self.halt.wait(0.02)

    def __enter__(self) -> Prober:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt.set()
        self.join(5)


def ps_works(up: Up) -> bool:
    return up.gun("app:hello", "ps").code == 0


def test_killing_meta_stops_no_app_and_meta_comes_back(up: Up) -> None:
    up.ok("apps.create", "hello")
    up.ok("app:hello", "deploy", f"dir={HELLO}")
    up.ok("app:hello", "scale", "web=1", "worker=1")
    before = {p["name"]: (p["pid"], p["restarts"], p["state"]) for p in up.processes("hello")}
    assert {state for _, _, state in before.values()} == {"up"}
    (instance,) = {i["id"] for i in up.json("app:hello", "instances")}
    agent = up.agent_pid(instance)
    web = next(p for p in up.processes("hello") if p["name"] == "web.1")

    with Prober(f"http://127.0.0.1:{web['port']}/") as prober:
        meta = platform_process(up, "meta")
        meta.kill()
        killed = time.monotonic()
        up.until(lambda: ps_works(up), 15, "`gun ps` to work again")
        back = time.monotonic() - killed
        assert back < 10, back  # meta starts in ~2.5 s idle, more on a busy machine
        up.until(lambda: b"meta is back on" in up.log.read_bytes(), 5, "gun up to say meta is back")

        # killed again at once: the second restart waits 1 s
        again = platform_process(up, "meta")
        assert again.pid != meta.pid
        again.kill()
        killed = time.monotonic()
        up.until(lambda: ps_works(up), 15, "`gun ps` to work after the second kill")
        second = time.monotonic() - killed
        assert 1.0 <= second < 11, second
        time.sleep(3)  # agents report again; nothing was restarted meanwhile
    print(f"meta back in {back:.2f} s, then in {second:.2f} s; {prober.ok} requests answered")

    assert prober.failed == [] and prober.ok > 100
    after = {p["name"]: (p["pid"], p["restarts"], p["state"]) for p in up.processes("hello")}
    assert after == before
    assert up.agent_pid(instance) == agent
    assert up.proc is not None and up.proc.poll() is None
    said = up.log.read_text()
    assert (
        f"meta (pid {meta.pid}) was killed by SIGKILL: restarting it now; apps and agents" in said
    )
    assert f"meta (pid {again.pid}) was killed by SIGKILL: restarting it in 1 s;" in said
    assert "stopping" not in said


def test_killing_the_drain_loses_no_line_logged_while_it_was_down(up: Up, tmp_path: Path) -> None:
    app = tmp_path / "counter"
    app.mkdir()
    (app / "counter.py").write_text(COUNTER)
    (app / "Procfile").write_text("counter: python3 counter.py\n")
    up.ok("apps.create", "steady")
    up.ok("app:steady", "deploy", f"dir={app}")
    up.ok("app:steady", "scale", "counter=1")
    time.sleep(1.5)

    drain = platform_process(up, "drain")
    drain.send_signal(signal.SIGKILL)
    down_from = datetime.now().astimezone()
    up.until(lambda: b"the drain is back on" in up.log.read_bytes(), 20, "the drain to come back")
    down_until = datetime.now().astimezone()
    time.sleep(4)  # the agent's shipper retries: what it kept goes to the new drain
    up.ok("app:steady", "scale", "counter=0")
    time.sleep(1.5)

    lines = up.ok("app:steady", "logs", "ps=counter", "source=app", "-n", "10000").splitlines()
    seen = [(datetime.fromisoformat(ln.split()[0]), int(ln.rsplit(" ", 1)[1])) for ln in lines]
    seqs = [n for _, n in seen]
    assert seqs == list(range(1, len(seqs) + 1))  # from the first, none missing, none twice
    while_down = [n for when, n in seen if down_from <= when <= down_until]
    print(f"{len(while_down)} lines logged while the drain was down, {len(seqs)} in all")
    assert len(while_down) > 10
    assert up.proc is not None and up.proc.poll() is None
    said = up.log.read_text()
    assert re.search(
        rf"the drain \(pid {drain.pid}\) was killed by SIGKILL: restarting it now", said
    )
