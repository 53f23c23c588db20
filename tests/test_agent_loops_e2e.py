"""An agent whose loops fail, for real: a real meta, a real agent process (`python -m gun.agent`)
running examples/hello, faults made through the files it writes, and a full disk (a small tmpfs
as the instance's root, as root). While a loop fails, `gun instances` shows why; the processes
keep running and are shown as they are; once the fault is gone the agent converges."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from gun import isolation
from gun.build.slug import pack
from tests.disk import fill, tmpfs
from tests.meta import MetaServer
from tests.supervising import MARK, no_leaks
from tests.test_agent_protocol import add_instances
from tests.test_logship import Drain, drain
from tests.up import HELLO

ADMIN = "gun_test_admin_token"


@dataclass
class World:
    meta: MetaServer
    root: Path  # the instance's
    instance: str
    agent: subprocess.Popen[bytes]

    def problem(self) -> str | None:
        [row] = json.loads(self.ok("--json", "app:demo", "instances"))
        assert row["id"] == self.instance
        problem: str | None = row["problem"]
        return problem

    def processes(self) -> list[dict[str, Any]]:
        with self.meta.http() as c:
            procs: list[dict[str, Any]] = c.get("/v1/apps/demo/processes").json()["processes"]
        return procs

    def ok(self, *args: str) -> str:
        r = self.meta.gun(*args)
        assert r.code == 0, r
        return r.out

    def settled_on(self, release: int) -> bool:
        procs = self.processes()
        return len(procs) == 2 and all(
            p["state"] == "up" and p["release"] == release for p in procs
        )


def until(check: Callable[[], object], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def world_at(tmp: Path, root: Path, **settings: str) -> Iterator[World]:
    with drain() as receiver, _world_at(tmp, root, receiver, settings) as w:
        yield w


@contextmanager
def _world_at(tmp: Path, root: Path, receiver: Drain, settings: dict[str, str]) -> Iterator[World]:
    """meta (with these GUN_* settings) with app demo (examples/hello, web=1 worker=1) and one
    instance whose agent runs as a process of its own with its root at `root`; everything is
    stopped afterwards."""
    meta = MetaServer(tmp / "home", f"sqlite:///{tmp / 'home' / 'meta.db'}", ADMIN)
    meta.extra_env.update(settings)
    agent = None
    with no_leaks(root):
        try:
            meta.start()
            assert meta.gun("apps.create", "demo").code == 0
            assert meta.gun("app:demo", "config.set", f"{MARK}={root}").code == 0
            # a drain of the test's: log shipping has somewhere to get to, and saves how far
            assert meta.gun("app:demo", f"drains.add:{receiver.url}").code == 0
            slug = pack(HELLO, tmp / "hello.tar.gz")
            with meta.http() as c:
                made = c.post("/v1/apps/demo/slugs", content=slug.path.read_bytes()).json()
                c.post("/v1/apps/demo/releases", json={"slug": made["id"]}).raise_for_status()
            [creds] = add_instances(meta, "demo", 1)
            env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
            env["GUN_AGENT_TOKEN"] = creds.token
            with open(tmp / "agent.log", "ab") as log:
                agent = subprocess.Popen(
                    [sys.executable, "-m", "gun.agent", "--root", str(root), "--meta", meta.url,
                     "--instance", creds.id],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            w = World(meta, root, creds.id, agent)
            until(lambda: "online" in w.ok("app:demo", "instances"), "the instance online")
            w.ok("app:demo", "scale", "web=1", "worker=1")
            until(lambda: w.settled_on(3), "web.1 and worker.1 up on v3")
            yield w
        finally:
            if agent is not None:
                with _suppress():
                    os.killpg(agent.pid, signal.SIGTERM)
                try:
                    agent.wait(40)
                except subprocess.TimeoutExpired:
                    os.killpg(agent.pid, signal.SIGKILL)
                    agent.wait()
            remove_user_left_idle(root)
            meta.stop()


def remove_user_left_idle(root: Path) -> None:
    """Remove the Unix user the agent made for the instance, as a provider's delete does, once
    nothing runs as it (a process left running is no_leaks' to report, with the user)."""
    user = isolation.lookup(isolation.instance_user_name(root))
    if user is None:
        return
    for p in psutil.process_iter(["uids", "status"]):
        uids = p.info["uids"]
        if uids is not None and user.uid in uids and p.info["status"] != psutil.STATUS_ZOMBIE:
            return
    isolation.remove(user.name)


class _suppress:
    def __enter__(self) -> None:
        pass

    def __exit__(self, kind: object, *_: object) -> bool:
        return kind is ProcessLookupError


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with world_at(tmp_path, tmp_path / "instance") as w:
        yield w


def shown_up_are_alive(w: World) -> None:
    """Every process meta shows as up runs, with the pid it shows."""
    for p in w.processes():
        if p["state"] == "up":
            assert psutil.pid_exists(p["pid"]), p


def block(path: Path) -> None:
    """Put a non-empty directory where the agent writes the file `path`."""
    path.unlink(missing_ok=True)
    (path / "in-the-way").mkdir(parents=True)


@pytest.mark.parametrize(
    ("where", "loop_words"),
    [
        ("etc/env", "the agent's converge loop failed (IsADirectoryError: [Errno 21]"),
        ("state/desired.json", "the agent's poll loop failed (IsADirectoryError: [Errno 21]"),
        ("state/started.json", "the agent's converge loop failed (IsADirectoryError: [Errno 21]"),
        ("state/logship.json", "the agent's logship loop failed (IsADirectoryError: [Errno 21]"),
        ("state/procs/worker.1.json", "IsADirectoryError: [Errno 21] Is a directory:"),
    ],
)
def test_a_loop_that_fails_is_the_instances_problem_until_it_works_again(
    world: World, where: str, loop_words: str
) -> None:
    w = world
    path = w.root / where
    block(path)
    w.ok("app:demo", "config.set", "ROUND=2")  # v4: every loop has something to write
    problem = until(w.problem, f"a problem about {where}")
    assert problem.startswith(loop_words) and str(path) in problem, problem
    shown_up_are_alive(w)
    time.sleep(2)
    assert w.agent.poll() is None and w.problem() == problem  # retried, still said
    shutil.rmtree(path)
    until(lambda: w.problem() is None, "the problem to clear")
    until(lambda: w.settled_on(4), "both processes up on v4")
    shown_up_are_alive(w)


def test_a_full_disk_is_said_and_once_there_is_room_the_agent_converges(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "instance", "32m") as root, world_at(tmp_path, root) as w:
        if True:
            filler = fill(root)
            w.ok("app:demo", "config.set", "ROUND=2")
            began = time.monotonic()
            problem = until(w.problem, "the instance's problem")
            print(f"problem shown after {time.monotonic() - began:.1f} s: {problem}")
            assert problem.startswith(f"no space left on device writing {root}/"), problem
            time.sleep(3)
            shown_up_are_alive(w)
            assert all(p["release"] == 3 for p in w.processes())  # v4 could not be made
            assert w.agent.poll() is None

            filler.unlink()
            freed = time.monotonic()
            until(lambda: w.settled_on(4), "both processes up on v4", timeout=45)
            until(lambda: w.problem() is None, "the problem to clear")
            print(f"converged {time.monotonic() - freed:.1f} s after the space came back")
            shown_up_are_alive(w)


def test_a_process_its_agent_stops_reporting_is_shown_down_not_as_it_last_was(
    meta: MetaServer,
) -> None:
    assert meta.gun("apps.create", "quiet").code == 0
    [agent] = add_instances(meta, "quiet", 1)
    assert agent.register().json()["state"] == "online"
    assert meta.gun("app:quiet", "deploy", f"dir={HELLO}", "wait=false").code == 0
    assert agent.report().status_code == 204  # a heartbeat: the instance is online
    assert meta.gun("app:quiet", "scale", "web=1", "worker=1", "--wait", "false").code == 0

    def ps() -> list[tuple[str, str]]:
        shown = json.loads(meta.gun("--json", "app:quiet", "ps").out)
        return [(p["name"], p["state"]) for p in shown]

    assert ps() == [("web.1", "starting"), ("worker.1", "starting")]  # placed, not yet reported
    web = {"name": "web.1", "type": "web", "release": 2, "state": "up", "pid": 4242}
    worker = {"name": "worker.1", "type": "worker", "release": 2, "state": "up", "pid": 4343}
    assert agent.report(web).status_code == 204
    assert ps() == [("web.1", "up"), ("worker.1", "starting")]  # not reported yet: as placed
    assert agent.report(web, worker).status_code == 204
    assert ps() == [("web.1", "up"), ("worker.1", "up")]
    assert agent.report(web).status_code == 204  # the agent no longer runs worker.1
    assert ps() == [("web.1", "up"), ("worker.1", "down")]
    assert agent.report(web, {**worker, "state": "starting"}).status_code == 204
    assert ps() == [("web.1", "up"), ("worker.1", "starting")]
