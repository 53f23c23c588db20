"""An agent killed with SIGKILL loses no line: `gun up` with a tiny app.log (rotated every 10 KiB,
three kept), an app printing a numbered line every 20 ms, and a drain of the test's that goes
down. The agent is killed while lines wait for that drain, meta starts a new one, and the new
agent ships what app.log (and its rotated files) hold: the test's drain gets every line once,
and the platform's drain (`gun logs`) every line, a few of them twice at most."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

from tests.test_logship import drain
from tests.up import running

COUNTER = """
import itertools, time
for n in itertools.count(1):
    print(f"seq {n}", flush=True)
    time.sleep(0.02)
"""
SEQ = re.compile(rb" app counter\.1 - seq (\d+)\Z")


def test_a_killed_agent_ships_what_it_had_not_across_a_rotation(tmp_path: Path) -> None:
    app = tmp_path / "counter"
    app.mkdir()
    (app / "counter.py").write_text(COUNTER)
    (app / "Procfile").write_text("counter: python3 counter.py\n")
    settings = {"GUN_APP_LOG_MAX_MB": "0.01", "GUN_APP_LOG_KEEP": "3"}
    with drain() as receiver, running(tmp_path, instances=1, **settings) as up:

        def seqs() -> list[int]:
            return [int(m[1]) for msg in receiver.delivered() if (m := SEQ.search(msg))]

        up.ok("apps.create", "steady")
        up.ok("app:steady", f"drains.add:{receiver.url}")
        up.ok("app:steady", "deploy", f"dir={app}")
        up.ok("app:steady", "scale", "counter=1")
        up.until(lambda: len(seqs()) >= 50, 30, "lines at the test's drain")
        (instance,) = {i["id"] for i in up.json("app:steady", "instances")}
        root = up.home / "instances" / instance

        with receiver.lock:
            receiver.plan[:] = [503] * 1_000_000  # down: nothing is delivered
        time.sleep(0.5)
        missing = max(seqs()) + 1  # the first line the drain has not had
        time.sleep(3)
        old = up.agent_pid(instance)
        os.kill(old, signal.SIGKILL)
        up.until(lambda: up.agent_pid(instance) not in (None, old), 15, "a new agent")
        held = {p.name: p.read_bytes() for p in (root / "log").glob("app.log*")}
        where = [name for name, data in held.items() if f": seq {missing}\n".encode() in data]
        assert where and where[0] != "app.log", where  # what the new agent ships was rotated
        written = max(int(n) for data in held.values() for n in re.findall(rb": seq (\d+)\n", data))
        time.sleep(1)
        with receiver.lock:
            receiver.plan.clear()  # up again
        up.until(lambda: max(seqs()) >= written + 100, 60, "the test's drain to catch up")
        up.until(lambda: (root / "log" / "app.log.4").exists() is False
                 and (root / "log" / "app.log.3").exists(), 60, "three rotated files")  # fmt: skip
        up.ok("app:steady", "scale", "counter=0")
        time.sleep(2)

        got = seqs()
        twice = {n: c for n, c in Counter(got).items() if c > 1}
        assert sorted(set(got)) == list(range(1, max(got) + 1))  # not one line lost
        assert twice == {}  # and none twice: it was down, so nothing was delivered after the save
        logs = up.ok("app:steady", "logs", "ps=counter", "source=app", "-n", "10000")
        platform = [int(line.rsplit(" ", 1)[1]) for line in logs.splitlines()]
        repeated = len(platform) - len(set(platform))
        print(
            f"{max(got)} lines; the agent was killed with {written - missing + 1} lines unshipped"
            f" to the test's drain; the platform's drain got {repeated} twice"
        )
        assert sorted(set(platform)) == list(range(1, max(platform) + 1))
        assert repeated <= 100  # at most what it delivered in the second before the kill
        log_files = sorted(p.name for p in (root / "log").glob("app.log*"))
        assert log_files == ["app.log", "app.log.1", "app.log.2", "app.log.3"]
        sizes = [(root / "log" / name).stat().st_size for name in log_files[1:]]
        assert all(10 * 1024 <= size < 10 * 1024 + 2048 for size in sizes), sizes
