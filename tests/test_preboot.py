"""Preboot with real processes: a web process replaced by a new release without a gap.

Each test is a session on one instance, read from app.log. The web process is a tiny server
(`server.py` in each release) that waits $BOOT seconds, then answers every connection on $PORT
with its release's name and closes it. Every process gets GUN_TEST_ROOT in its environment; the
`root` fixture finds any process (or grandchild) still carrying it at teardown, kills its group,
and fails the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import textwrap
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from gun.agent.backoff import Backoff
from gun.agent.procrecord import same_process
from gun.agent.supervisor import ProcessSpec, ProcessState, Supervisor
from gun.isolation import UnixUser
from tests.supervising import (
    MARK,
    PYTHON,
    RUN_AS,
    app_log,
    no_leaks,
    run,
    run_as,
    runs_as,
    said,
    supervising,
    until,
)

SERVER = textwrap.dedent(
    """
    import os, socket, time
    time.sleep(float(os.environ["BOOT"]))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(os.environ["PORT"])))
    s.listen(128)
    print(os.environ["RELEASE"], "listening on", os.environ["PORT"], flush=True)
    while True:
        conn, _ = s.accept()
        try:
            conn.sendall(os.environ["RELEASE"].encode())
        except OSError:
            pass
        conn.close()
    """
)
SERVE = f"exec {shlex.quote(PYTHON)} server.py"


# -- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "instance"
    for release in ("v1", "v2"):
        (root / "releases" / release).mkdir(parents=True)
        (root / "releases" / release / "server.py").write_text(SERVER)
    with no_leaks(root):
        yield root


@pytest.fixture(params=RUN_AS)
def user(request: pytest.FixtureRequest, root: Path) -> Iterator[UnixUser | None]:
    """Whom the processes run as: the agent's own user, and (as root) the instance's user."""
    with run_as(request.param, root) as made:
        yield made


def web(root: Path, release: int, boot: float = 0, command: str = SERVE) -> ProcessSpec:
    """web.1 of release N: the server, answering `vN` once it has waited `boot` seconds."""
    env = {MARK: str(root), "RELEASE": f"v{release}", "BOOT": str(boot)}
    return ProcessSpec("web.1", "web", command, env, root / "releases" / f"v{release}", release)


def state(sup: Supervisor) -> ProcessState:
    [only] = sup.states()
    return only


async def up(sup: Supervisor, spec: ProcessSpec) -> ProcessState:
    await sup.start(spec)
    await until(lambda: state(sup).state == "up", f"{spec.name} up")
    return state(sup)


async def fetch(port: int | None) -> str:
    """Connect to the server on port and read its answer: the release it runs."""
    assert port is not None
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    try:
        return (await asyncio.wait_for(reader.read(), 2)).decode()
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


def when(root: Path, text: str, nth: int = 0) -> datetime:
    """When the nth platform line `text` of web.1 was written."""
    return [t for t, s, n, x in app_log(root) if (s, n, x) == ("heroku", "web.1", text)][nth]


def retiring(root: Path) -> list[str]:
    """The records and output files set aside for copies being replaced."""
    return sorted(
        str(path.relative_to(root))
        for d in ("state/procs/retiring", "log/procs/retiring")
        if (root / d).is_dir()
        for path in (root / d).iterdir()
    )


# -- sessions -----------------------------------------------------------------------------


def test_the_old_copy_serves_until_the_new_one_is_up_and_stops_after_the_drain(
    root: Path, user: UnixUser | None
) -> None:
    async def session() -> None:
        async with supervising(root, user=user) as sup:
            old = await up(sup, web(root, 1))
            preboot = asyncio.create_task(sup.preboot(web(root, 2, boot=1), drain=0.5))
            await until(lambda: state(sup).release == 2, "the new copy")
            new = state(sup)
            assert new.state == "starting" and new.pid != old.pid and new.port != old.port
            assert retiring(root) == [
                "log/procs/retiring/web.1.out",
                "state/procs/retiring/web.1.json",
            ]
            aside = json.loads((root / "state/procs/retiring/web.1.json").read_text())
            assert (aside["pid"], aside["port"], aside["release"]) == (old.pid, old.port, 1)

            answered = 0
            while state(sup).state == "starting":  # the new copy sleeps 1 s before it binds
                assert sup.serving() == [old]
                assert await fetch(old.port) == "v1"
                answered += 1
                await asyncio.sleep(0.1)
            # at least once: a busy machine may take most of the new copy's 1 s boot to answer
            # one request (2 in CI once); the boot's length is checked from the log below
            assert answered >= 1

            done = await preboot
            assert (done.state, done.pid, done.port, done.release) == ("up", new.pid, new.port, 2)
            assert done.pid is not None and runs_as(done.pid, user)
            assert sup.states() == sup.serving() == [done]
            assert await fetch(done.port) == "v2"
            assert old.pid is not None and not psutil.pid_exists(old.pid)
            assert retiring(root) == []

        assert said(root, "app", "web.1") == [
            f"v1 listening on {old.port}",
            f"v2 listening on {new.port}",
        ]
        assert said(root, "heroku", "web.1")[:9] == [
            f"Starting process with command `{SERVE}`",
            "State changed from starting to up",
            f"Starting process with command `{SERVE}`",
            "State changed from starting to up",
            f"Stopping the process it replaced (pid {old.pid})",
            "State changed from up to stopping",
            "Stopping all processes with SIGTERM",
            "Process exited with status 143",
            "State changed from stopping to down",
        ]
        started = when(root, f"Starting process with command `{SERVE}`", 1)
        new_up = when(root, "State changed from starting to up", 1)
        sigterm = when(root, "Stopping all processes with SIGTERM")
        assert (new_up - started).total_seconds() >= 1  # its boot
        assert (sigterm - new_up).total_seconds() >= 0.5  # the drain

    run(session())


def test_a_client_following_serving_sees_no_failed_connection_across_a_preboot(
    root: Path, user: UnixUser | None
) -> None:
    async def session() -> None:
        async with supervising(root, user=user) as sup:
            await up(sup, web(root, 1))
            answers: list[str] = []
            failures: list[str] = []
            done = asyncio.Event()

            async def client() -> None:  # a router: it re-reads where web.1 is every 50 ms
                loop = asyncio.get_running_loop()
                port, read_at = None, -1.0
                while not done.is_set():
                    if loop.time() - read_at >= 0.05:
                        [serving] = sup.serving()
                        port, read_at = serving.port, loop.time()
                    try:
                        answers.append(await fetch(port))
                    except (OSError, TimeoutError) as e:
                        failures.append(f"port {port}: {e!r}")
                    await asyncio.sleep(0.005)

            hammer = asyncio.create_task(client())
            await asyncio.sleep(0.3)
            await sup.preboot(web(root, 2, boot=0.5), drain=0.5)
            await asyncio.sleep(0.3)
            done.set()
            await hammer

        assert failures == []
        assert len(answers) >= 50 and set(answers) == {"v1", "v2"}
        flips = sum(a != b for a, b in zip(answers, answers[1:], strict=False))
        assert (answers[0], answers[-1], flips) == ("v1", "v2", 1)  # never back to the old one

    run(session())


def test_a_new_copy_that_crashes_at_once_takes_over_anyway_and_restarts_with_backoff(
    root: Path,
) -> None:
    async def session() -> None:
        async with supervising(root, backoff=Backoff(initial=60)) as sup:
            old = await up(sup, web(root, 1))
            broken = web(root, 2, command="echo broken; exit 3")
            began = time.monotonic()
            await sup.preboot(broken, drain=0.5)
            assert time.monotonic() - began < 5
            assert old.pid is not None and not psutil.pid_exists(old.pid)
            # the first restart is immediate and crashes too; the next waits 60 s
            await until(lambda: state(sup).restarts == 2, "a second crash")
            now = state(sup)
            assert (now.state, now.pid, now.exit_code, now.release) == ("crashed", None, 3, 2)
            assert sup.serving() == sup.states()
            assert retiring(root) == []

        assert said(root, "app", "web.1") == [f"v1 listening on {old.port}", "broken", "broken"]
        heroku = said(root, "heroku", "web.1")
        assert heroku[:6] == [
            f"Starting process with command `{SERVE}`",
            "State changed from starting to up",
            "Starting process with command `echo broken; exit 3`",
            "Process exited with status 3",
            "State changed from starting to crashed",
            "Restarting",
        ]
        stopping_old = heroku.index(f"Stopping the process it replaced (pid {old.pid})")
        assert stopping_old > heroku.index("Process exited with status 3")
        assert heroku.count("Process exited with status 143") == 1  # the old copy, once
        assert heroku.count("Process exited with status 3") == 2
        assert "Restarting in 60 seconds" in heroku

    run(session())


def test_preboot_of_a_worker_is_stop_then_start(root: Path) -> None:
    async def session() -> None:
        async with supervising(root) as sup:
            v1 = ProcessSpec(
                "worker.1", "worker", "sleep 1000", {MARK: str(root)}, root / "releases/v1", 1
            )
            v2 = ProcessSpec(
                "worker.1", "worker", "sleep 2000", {MARK: str(root)}, root / "releases/v2", 2
            )
            first = await sup.start(v1)
            began = time.monotonic()
            again = await sup.preboot(v2, drain=5)
            assert time.monotonic() - began < 4  # no drain
            assert (again.state, again.release) == ("up", 2) and again.pid != first.pid
            assert first.pid is not None and not psutil.pid_exists(first.pid)
            assert sup.states() == sup.serving() == [again]
            assert not (root / "state/procs/retiring").exists()

        assert said(root, "heroku", "worker.1")[:8] == [
            "Starting process with command `sleep 1000`",
            "State changed from starting to up",
            "State changed from up to stopping",
            "Stopping all processes with SIGTERM",
            "Process exited with status 143",
            "State changed from stopping to down",
            "Starting process with command `sleep 2000`",
            "State changed from starting to up",
        ]

    run(session())


def test_preboot_of_a_web_process_that_is_not_up_yet_is_stop_then_start(root: Path) -> None:
    async def session() -> None:
        async with supervising(root) as sup:
            first = await sup.start(web(root, 1, boot=1000))  # never binds
            again = await sup.preboot(web(root, 2), drain=5)
            assert (again.state, again.release) == ("starting", 2)
            assert first.pid is not None and not psutil.pid_exists(first.pid)
            assert not (root / "state/procs/retiring").exists()
            await until(lambda: state(sup).state == "up", "the new copy up")
            assert await fetch(state(sup).port) == "v2"

        assert said(root, "heroku", "web.1")[:6] == [
            f"Starting process with command `{SERVE}`",
            "State changed from starting to stopping",
            "Stopping all processes with SIGTERM",
            "Process exited with status 143",
            "State changed from stopping to down",
            f"Starting process with command `{SERVE}`",
        ]

    run(session())


def test_a_new_agent_kills_the_copy_an_agent_that_died_mid_preboot_was_replacing(
    root: Path,
) -> None:
    async def session() -> None:
        a = Supervisor(root)
        old = await up(a, web(root, 1))
        preboot = asyncio.create_task(a.preboot(web(root, 2), drain=60))
        await until(lambda: state(a).release == 2 and state(a).state == "up", "the new copy up")
        new = state(a)
        preboot.cancel()  # the agent dies during the drain; its processes stay
        with suppress(asyncio.CancelledError):
            await preboot
        await a.shutdown(stop_processes=False)
        assert old.pid is not None and same_process(old.pid, None)
        assert new.pid is not None and same_process(new.pid, None)
        assert retiring(root) == ["log/procs/retiring/web.1.out", "state/procs/retiring/web.1.json"]

        async with supervising(root) as b:
            assert await b.adopt() == ["web.1"]
            assert b.states() == b.serving()
            now = state(b)
            assert (now.state, now.pid, now.port, now.release) == ("up", new.pid, new.port, 2)
            assert await fetch(now.port) == "v2"
            # the old copy's parent is this test (it was the agent): reap it to see how it ended
            _, status = await asyncio.to_thread(os.waitpid, old.pid, 0)
            assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL
            assert retiring(root) == []

        assert said(root, "heroku", "web.1") == [
            f"Starting process with command `{SERVE}`",
            "State changed from starting to up",
            f"Starting process with command `{SERVE}`",
            "State changed from starting to up",
            f"Process being replaced (pid {old.pid}) was killed",
            f"Process re-adopted by a new agent (pid {new.pid})",
            "State changed from up to stopping",  # b's shutdown
            "Stopping all processes with SIGTERM",
            "Process exited with status 143",
            "State changed from stopping to down",
        ]

    run(session())


def test_a_copy_being_replaced_that_exits_during_the_drain_is_not_restarted(root: Path) -> None:
    async def session() -> None:
        async with supervising(root) as sup:
            old = await up(sup, web(root, 1))
            preboot = asyncio.create_task(sup.preboot(web(root, 2), drain=1.5))
            await until(lambda: state(sup).release == 2 and state(sup).state == "up", "new up")
            assert old.pid is not None
            os.kill(old.pid, signal.SIGKILL)  # it dies by itself while it drains
            exited = "Process exited with status 137"
            await until(lambda: exited in said(root, "heroku", "web.1"), "the old copy's exit")
            assert retiring(root) == []
            assert not preboot.done()
            await asyncio.sleep(0.5)  # time enough to restart it, if anything did
            new = await preboot
            assert sup.states() == sup.serving() == [new]
            assert (new.state, new.release, new.restarts) == ("up", 2, 0)
            assert not psutil.pid_exists(old.pid)

        heroku = said(root, "heroku", "web.1")
        assert heroku[:8] == [
            f"Starting process with command `{SERVE}`",
            "State changed from starting to up",
            f"Starting process with command `{SERVE}`",
            "State changed from starting to up",
            "State changed from up to stopping",
            "Stopping all processes with SIGTERM",
            exited,
            "State changed from stopping to down",
        ]
        assert heroku.count(f"Starting process with command `{SERVE}`") == 2
        assert not any(line.startswith("Stopping the process it replaced") for line in heroku)

    run(session())
