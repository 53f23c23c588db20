"""The supervisor with real processes: each test is a session on one instance, read from app.log.

Every process gets GUN_TEST_ROOT in its environment; the `root` fixture finds any process (or
grandchild) still carrying it at teardown, kills its group, and fails the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import psutil
import pytest

from gun import isolation
from gun.agent import contain
from gun.agent.backoff import Backoff
from gun.agent.procrecord import group_alive
from gun.agent.supervisor import ProcessSpec, ProcessState, Supervisor
from gun.errors import Conflict, InvalidParams, NotFound
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

HTTP_SERVER = f"exec {shlex.quote(PYTHON)} -m http.server $PORT --bind 127.0.0.1"
TICKER = 'n=0; while true; do n=$((n+1)); echo "tick $n"; sleep 0.05; done'
FAST = Backoff(initial=0.1, factor=2, cap=1, reset_after=60)


# -- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "instance"
    (root / "releases" / "v1").mkdir(parents=True)
    with no_leaks(root):
        yield root


@pytest.fixture(params=RUN_AS)
def user(request: pytest.FixtureRequest, root: Path) -> Iterator[UnixUser | None]:
    """Whom the processes run as: the agent's own user, and (as root) the instance's user."""
    with run_as(request.param, root) as made:
        yield made


def spec(root: Path, name: str, command: str, **env: str) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        type=name.split(".")[0],
        command=command,
        env={MARK: str(root), **env},
        cwd=root / "releases" / "v1",
        release=1,
    )


def state(sup: Supervisor, name: str) -> ProcessState:
    return {s.name: s for s in sup.states()}[name]


def ticks(root: Path) -> list[int]:
    return [int(t.split()[1]) for t in said(root, "app", "worker.1") if t.startswith("tick ")]


def http_get(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
        return int(r.status)


# -- sessions -----------------------------------------------------------------------------


def test_web_process_boots_answers_on_its_port_and_logs_every_line(
    root: Path, user: UnixUser | None
) -> None:
    async def session() -> None:
        sink: list[tuple[str, str]] = []
        command = f'echo "PORT=$PORT DYNO=$DYNO PS=$PS GREETING=$GREETING"; {HTTP_SERVER}'

        def log(source: str, text: str, _: object) -> None:
            sink.append((source, text))

        async with supervising(root, user=user, log=log) as sup:
            web = spec(root, "web.1", command, GREETING="hello world", PYTHONUNBUFFERED="1")
            started = await sup.start(web)
            assert (started.name, started.type, started.state) == ("web.1", "web", "starting")
            assert (started.release, started.restarts, started.exit_code) == (1, 0, None)
            await asyncio.wait_for(sup.changed(), 10)  # the next change of state: it is up
            up = state(sup, "web.1")
            assert up.state == "up" and (up.pid, up.port) == (started.pid, started.port)
            assert up.port is not None
            assert up.pid is not None and os.getpgid(up.pid) == up.pid  # its own group
            assert runs_as(up.pid, user)
            assert await asyncio.to_thread(http_get, up.port) == 200
            env = psutil.Process(up.pid).environ()
            assert (env["PORT"], env["DYNO"], env["PS"]) == (str(up.port), "web.1", "web.1")
            assert env["GREETING"] == "hello world" and env["PATH"] == os.environ["PATH"]
            assert env["HOME"] == str(root / "releases" / "v1")  # Heroku's HOME is the app's
            await until(lambda: any("GET / HTTP" in t for t in said(root, "app", "web.1")), "GET")
            stopped = await sup.stop("web.1")
            assert (stopped.state, stopped.exit_code, stopped.pid) == ("down", 143, None)
            assert sup.states() == []

        app = said(root, "app", "web.1")
        assert app[0] == f"PORT={up.port} DYNO=web.1 PS=web.1 GREETING=hello world"
        assert f"Serving HTTP on 127.0.0.1 port {up.port}" in app[1]
        assert re.fullmatch(r'127\.0\.0\.1 - - \[.*\] "GET / HTTP/1\.1" 200 -', app[2])
        assert said(root, "heroku", "web.1") == [
            f"Starting process with command `{command}`",
            "State changed from starting to up",
            "State changed from up to stopping",
            "Stopping all processes with SIGTERM",
            "Process exited with status 143",
            "State changed from stopping to down",
        ]
        assert sink == [(f"{s}[{n}]", text) for _, s, n, text in app_log(root)]
        assert list((root / "state" / "procs").iterdir()) == []
        assert list((root / "log" / "procs").iterdir()) == []

    run(session())


def test_missing_command_crashes_with_127_and_restarts_with_backoff(root: Path) -> None:
    async def session() -> None:
        async with supervising(root, backoff=FAST) as sup:
            await sup.start(spec(root, "worker.1", "no-such-command-xyz"))
            await until(lambda: state(sup, "worker.1").restarts >= 5, "five restarts")
            assert state(sup, "worker.1").exit_code == 127

        app = said(root, "app", "worker.1")
        assert app[0].endswith("no-such-command-xyz: command not found")
        heroku = said(root, "heroku", "worker.1")
        assert heroku[:6] == [
            "Starting process with command `no-such-command-xyz`",
            "State changed from starting to up",
            "Process exited with status 127",
            "State changed from up to crashed",
            "Restarting",
            "State changed from crashed to starting",
        ]
        waits = [t for t in heroku if t.startswith("Restarting")]
        assert waits[:4] == [
            "Restarting",
            "Restarting in 0.1 seconds",
            "Restarting in 0.2 seconds",
            "Restarting in 0.4 seconds",
        ]
        starts = [when for when, s, _, t in app_log(root) if t.startswith("Starting process")]
        gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
        assert gaps[0] < 0.1 <= gaps[1] < gaps[2] < gaps[3]
        assert gaps[2] >= 0.2 and gaps[3] >= 0.4

    run(session())


def test_web_process_killed_with_sigkill_is_restarted_and_up_again(root: Path) -> None:
    async def session() -> None:
        async with supervising(root) as sup:
            await sup.start(spec(root, "web.1", HTTP_SERVER))
            await until(lambda: state(sup, "web.1").state == "up", "web.1 up")
            first = state(sup, "web.1")
            assert first.pid is not None
            os.kill(first.pid, signal.SIGKILL)
            await until(lambda: state(sup, "web.1").restarts == 1, "a restart")
            await until(lambda: state(sup, "web.1").state == "up", "web.1 up again")
            again = state(sup, "web.1")
            assert again.pid != first.pid and again.exit_code == 137 and again.port is not None
            assert await asyncio.to_thread(http_get, again.port) == 200

        heroku = said(root, "heroku", "web.1")
        i = heroku.index("Process exited with status 137")
        assert heroku[i : i + 5] == [
            "Process exited with status 137",
            "State changed from up to crashed",
            "Restarting",
            "State changed from crashed to starting",
            f"Starting process with command `{HTTP_SERVER}`",
        ]

    run(session())


def test_a_group_of_only_zombies_counts_as_gone() -> None:
    """A killed leader's killed child is an orphan whose zombie PID 1 reaps when it likes
    (here, sometimes seconds later): stopping must not wait for that."""
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    quick = subprocess.Popen(["true"], start_new_session=True)
    try:
        assert group_alive(sleeper.pid)
        while psutil.Process(quick.pid).status() != psutil.STATUS_ZOMBIE:  # exited, unreaped
            time.sleep(0.01)
        assert not group_alive(quick.pid)
    finally:
        os.killpg(sleeper.pid, signal.SIGKILL)
        sleeper.wait()
        quick.wait()
    assert not group_alive(sleeper.pid)


def test_a_process_that_left_its_group_gets_sigterm_and_goes_with_it(
    root: Path, user: UnixUser | None
) -> None:
    escapee = "trap 'echo escapee got SIGTERM; exit 0' TERM; while true; do sleep 0.1; done"

    async def session() -> None:
        async with supervising(root, user=user) as sup:
            command = f"setsid bash -c {shlex.quote(escapee)} & echo escaped $!; sleep 1000"
            started = await sup.start(spec(root, "worker.1", command))
            assert sup.cgroups is not None, "these machines have a writable cgroup hierarchy"
            await until(lambda: any(said(root, "app", "worker.1")), "the escapee")
            (line,) = said(root, "app", "worker.1")
            escaped = int(line.split()[1])
            assert os.getsid(escaped) == escaped != started.pid  # a session of its own
            assert started.pid is not None and runs_as(started.pid, user) and runs_as(escaped, user)
            await sup.stop("worker.1")
            assert not psutil.pid_exists(escaped) or (
                psutil.Process(escaped).status() == psutil.STATUS_ZOMBIE
            )
            assert not (sup.cgroups.directory / str(started.pid)).exists()

        shown = said(root, "app", "worker.1")  # and maybe bash's "Terminated" for its sleep
        assert shown[0] == f"escaped {escaped}" and "escapee got SIGTERM" in shown
        assert said(root, "heroku", "worker.1")[-3:] == [
            "Stopping all processes with SIGTERM",
            "Process exited with status 143",
            "State changed from stopping to down",
        ]

    run(session())


def test_one_that_left_its_group_and_ignores_sigterm_is_killed_after_the_grace(
    root: Path, user: UnixUser | None
) -> None:
    command = "setsid bash -c \"trap '' TERM; sleep 1000\" & echo escaped $!; sleep 1000"

    async def session() -> None:
        async with supervising(root, user=user) as sup:
            await sup.start(spec(root, "worker.1", command))
            await until(lambda: any(said(root, "app", "worker.1")), "the escapee")
            began = time.monotonic()
            await sup.stop("worker.1", grace=1)
            assert 1 <= time.monotonic() - began < 3
        escaped = int(said(root, "app", "worker.1")[0].split()[1])
        assert said(root, "heroku", "worker.1")[-6:] == [
            "Stopping all processes with SIGTERM",
            "Error R12 (Exit timeout) -> At least one process failed to exit within 1 seconds "
            "of SIGTERM",
            "Stopping all processes with SIGKILL",
            f"Stopping with SIGKILL what had left the process group (pid {escaped})",
            "Process exited with status 143",
            "State changed from stopping to down",
        ]

    run(session())


def test_a_process_is_in_its_cgroup_whatever_path_the_app_sets(
    root: Path, user: UnixUser | None
) -> None:
    async def session() -> None:
        async with supervising(root, user=user) as sup:
            started = await sup.start(spec(root, "worker.1", "exec /bin/sleep 1000", PATH="/none"))
            cgroups, pid = sup.cgroups, started.pid
            assert cgroups is not None and pid is not None
            await until(lambda: cgroups.members(pid) == [pid], "sleep in its cgroup", timeout=3)

    run(session())


def test_a_crash_takes_what_left_the_group_with_it(root: Path, user: UnixUser | None) -> None:
    command = "setsid sleep 1000 & echo escaped $!; sleep 0.3; exit 3"

    async def session() -> None:
        async with supervising(root, backoff=Backoff(initial=60), user=user) as sup:
            await sup.start(spec(root, "worker.1", command))
            await until(lambda: state(sup, "worker.1").state == "crashed", "the crash")
        escaped = int(said(root, "app", "worker.1")[0].split()[1])
        assert not psutil.pid_exists(escaped) or (
            psutil.Process(escaped).status() == psutil.STATUS_ZOMBIE
        )
        assert said(root, "heroku", "worker.1")[:5] == [
            f"Starting process with command `{command}`",
            "State changed from starting to up",
            f"Stopping with SIGKILL what had left the process group (pid {escaped})",
            "Process exited with status 3",
            "State changed from up to crashed",
        ]

    run(session())


@pytest.mark.parametrize(
    ("proc_cgroup", "hierarchy", "path"),
    [
        ("0::/\n", "0", ""),
        ("12:pids:/agents/a1\n0::/agents/a1\n", "0", "agents/a1"),
        ("12:pids:/agents/a1\n0::/other\n", "pids", "agents/a1"),
        ("4:memory:/x\n3:cpu,cpuacct:/y\n", "cpu", "y"),
        ("4:memory:/x\n", "pids", ""),
    ],
)
def test_a_supervisor_nests_its_cgroup_under_the_agents_own(
    proc_cgroup: str, hierarchy: str, path: str
) -> None:
    assert contain.own_path(hierarchy, proc_cgroup) == path


def test_without_a_writable_cgroup_hierarchy_there_is_no_containment(tmp_path: Path) -> None:
    assert contain.hierarchies(tmp_path) == []
    assert contain.Cgroups.open(tmp_path / "instance", mount=tmp_path) is None


def test_process_ignoring_sigterm_is_killed_after_the_grace_period(root: Path) -> None:
    async def session() -> None:
        command = "trap '' TERM; echo ready; while true; do sleep 0.1; done"
        async with supervising(root) as sup:
            await sup.start(spec(root, "worker.1", command))
            await until(lambda: "ready" in said(root, "app", "worker.1"), "the trap")
            began = time.monotonic()
            stopped = await sup.stop("worker.1", grace=1)
            took = time.monotonic() - began
            assert 1 <= took < 3
            assert (stopped.state, stopped.exit_code) == ("down", 137)

        assert said(root, "heroku", "worker.1")[-5:] == [
            "Stopping all processes with SIGTERM",
            "Error R12 (Exit timeout) -> At least one process failed to exit within 1 seconds "
            "of SIGTERM",
            "Stopping all processes with SIGKILL",
            "Process exited with status 137",
            "State changed from stopping to down",
        ]

    run(session())


def test_stop_takes_grandchildren_with_it(root: Path) -> None:
    async def session() -> None:
        async with supervising(root) as sup:
            await sup.start(spec(root, "worker.1", "sleep 1000 & sleep 1000; wait"))
            leader = psutil.Process(state(sup, "worker.1").pid)
            await until(lambda: len(leader.children()) == 2, "two children")
            family = [leader.pid] + [c.pid for c in leader.children()]
            await sup.stop("worker.1")
            for pid in family:  # gone, or a zombie left for PID 1 to reap (orphans are)
                with suppress(psutil.NoSuchProcess):
                    assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    run(session())


def test_web_process_that_never_binds_is_killed_after_the_boot_timeout(root: Path) -> None:
    async def session() -> None:
        async with supervising(root, boot_timeout=1, backoff=Backoff(initial=60)) as sup:
            first = await sup.start(spec(root, "web.1", "sleep 1000"))
            await until(lambda: state(sup, "web.1").restarts == 1, "a crash", timeout=5)
            now = state(sup, "web.1")
            assert now.exit_code == 137 and now.pid != first.pid and now.state == "starting"
            assert first.pid is not None and not psutil.pid_exists(first.pid)

        assert said(root, "heroku", "web.1")[:7] == [
            "Starting process with command `sleep 1000`",
            "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 1 seconds "
            "of launch",
            "Stopping process with SIGKILL",
            "Process exited with status 137",
            "State changed from starting to crashed",
            "Restarting",
            "State changed from crashed to starting",
        ]

    run(session())


def test_a_new_agent_adopts_running_processes_and_loses_no_line(
    root: Path, user: UnixUser | None
) -> None:
    async def session() -> None:
        a = Supervisor(root, user=user)
        await a.start(spec(root, "web.1", HTTP_SERVER))
        await a.start(spec(root, "worker.1", TICKER))
        await until(lambda: state(a, "web.1").state == "up" and len(ticks(root)) >= 3, "ticks")
        before = {s.name: (s.pid, s.port) for s in a.states()}
        await a.shutdown(stop_processes=False)  # the agent goes away; its processes stay
        for pid, _ in before.values():
            assert pid is not None and psutil.pid_exists(pid)
        await asyncio.sleep(0.3)  # output written while no agent is watching

        async with supervising(root, user=user) as b:
            assert await b.adopt() == ["web.1", "worker.1"]
            assert {s.name: (s.pid, s.port) for s in b.states()} == before
            assert all(runs_as(pid, user) for pid, _ in before.values() if pid is not None)
            assert {s.state for s in b.states()} == {"up"}
            seen = len(ticks(root))
            await until(lambda: len(ticks(root)) >= seen + 5, "more ticks")
            port = before["web.1"][1]
            assert port is not None and await asyncio.to_thread(http_get, port) == 200

        assert ticks(root) == list(range(1, len(ticks(root)) + 1))  # each once, none missing
        pid = before["worker.1"][0]
        assert f"Process re-adopted by a new agent (pid {pid})" in said(root, "heroku", "worker.1")
        assert list((root / "state" / "procs").iterdir()) == []

    run(session())


AGENT = """
import asyncio, sys
from pathlib import Path
from gun.agent.supervisor import ProcessSpec, Supervisor

async def main() -> None:
    root = Path(sys.argv[1])
    env = {"GUN_TEST_ROOT": str(root)}
    sup = Supervisor(root)
    await sup.start(ProcessSpec("worker.1", "worker", sys.argv[2], env, root / "releases/v1", 1))
    print("started", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_processes_outlive_an_agent_killed_with_sigkill(root: Path) -> None:
    async def session() -> None:
        agent = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(AGENT), str(root), TICKER],
            stdout=subprocess.PIPE,
        )
        try:
            assert agent.stdout is not None
            assert await asyncio.to_thread(agent.stdout.readline) == b"started\n"
            await until(lambda: len(ticks(root)) >= 3, "ticks")
            agent.kill()
            agent.wait()
            pid = json.loads((root / "state/procs/worker.1.json").read_text())["pid"]
            await asyncio.sleep(0.3)
            assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE

            async with supervising(root) as b:
                assert await b.adopt() == ["worker.1"]
                assert state(b, "worker.1").pid == pid
                seen = len(ticks(root))
                await until(lambda: len(ticks(root)) >= seen + 5, "more ticks")
                stopped = await b.stop("worker.1")
                assert stopped.exit_code is None  # its parent was the dead agent
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
            if agent.stdout is not None:
                agent.stdout.close()
        # every line once, in order; the lines copied in the instant of the SIGKILL (app.log
        # written, the record's offset not yet) come again, once, as one run: delivery is at
        # least once
        got = ticks(root)
        assert list(dict.fromkeys(got)) == list(range(1, max(got) + 1))
        again = len(got) - len(set(got))
        at = next((i for i in range(1, len(got)) if got[i] <= got[i - 1]), len(got))
        if again:
            assert got[at : at + again] == list(range(got[at], got[at] + again)), got
        assert got[:at] + got[at + again :] == sorted(set(got)), got
        assert said(root, "heroku", "worker.1")[-2:] == [
            "Process exited with an unknown status: an earlier agent started it",
            "State changed from stopping to down",
        ]

    run(session())


def test_a_stale_record_is_cleaned_up_and_its_group_killed(root: Path) -> None:
    async def session() -> None:
        a = Supervisor(root)
        await a.start(spec(root, "worker.1", "echo hi; sleep 1000 & sleep 1000; wait"))
        leader = psutil.Process(state(a, "worker.1").pid)
        await until(lambda: len(leader.children()) == 2, "two children")
        survivors = leader.children()
        await a.shutdown(stop_processes=False)
        leader.kill()  # the leader dies while no agent watches; its children live on
        leader.wait(timeout=5)

        async with supervising(root) as b:
            assert await b.adopt() == []
            assert b.states() == []
            psutil.wait_procs(survivors, timeout=5)
            assert not any(p.is_running() for p in survivors)
        assert said(root, "app", "worker.1") == ["hi"]
        assert said(root, "heroku", "worker.1")[-1] == (
            f"Process (pid {leader.pid}) exited while no agent watched"
        )
        assert list((root / "state" / "procs").iterdir()) == []

    run(session())


def test_long_lines_are_split_at_10000_bytes(root: Path) -> None:
    async def session() -> None:
        command = "head -c 25000 /dev/zero | tr '\\0' x; echo; echo done; sleep 1000"
        async with supervising(root) as sup:
            await sup.start(spec(root, "worker.1", command))
            await until(lambda: "done" in said(root, "app", "worker.1"), "done")
        assert [len(t) for t in said(root, "app", "worker.1")] == [10_000, 10_000, 5_000, 4]

    run(session())


def test_mistakes_are_refused_with_a_clear_message(root: Path) -> None:
    async def session() -> None:
        async with supervising(root) as sup:
            with pytest.raises(NotFound, match="process 'web.9' is not running on this instance"):
                await sup.stop("web.9")
            await sup.start(spec(root, "worker.1", "sleep 1000"))
            with pytest.raises(Conflict, match="process worker.1 is already running here"):
                await sup.start(spec(root, "worker.1", "sleep 1000"))

    run(session())


# What the system refuses at spawn time: (setup of the release directory, env, why in app.log)
SPAWN_FAILURES = [
    (
        "vanished-release-dir",
        lambda cwd: cwd.rmdir(),
        {},
        "its release directory {cwd} is gone",
    ),
    (
        "nul-in-env",
        lambda cwd: None,
        {"SECRET": "a\0b"},
        "its environment holds a NUL byte, which no process can be given",
    ),
    (
        "env-too-big-for-the-kernel",
        lambda cwd: None,
        {"BIG": "x" * 200_000},  # one string over MAX_ARG_STRLEN (128 KiB): E2BIG
        "its environment and command are too large for the system (E2BIG)",
    ),
    (
        "cwd-is-a-file",
        lambda cwd: (cwd.rmdir(), cwd.write_text("")),
        {},
        "its release directory {cwd} is not a directory",
    ),
]


@pytest.mark.parametrize(
    ("break_it", "env", "why"), [r[1:] for r in SPAWN_FAILURES], ids=[r[0] for r in SPAWN_FAILURES]
)
def test_a_spawn_that_fails_is_a_crash_with_the_backoff_and_one_line_per_attempt(
    root: Path, break_it: Any, env: dict[str, str], why: str
) -> None:
    cwd = root / "releases" / "v1"
    break_it(cwd)

    async def session() -> None:
        async with supervising(root) as sup:  # the real backoff: at once, then 1 s, 2 s, 4 s
            began = time.monotonic()
            first = await sup.start(spec(root, "worker.1", "echo hello; sleep 1000", **env))
            assert first.pid is None
            await asyncio.sleep(5 - (time.monotonic() - began))
            now = state(sup, "worker.1")
            assert (now.state, now.pid, now.restarts) == ("crashed", None, 4)
            heroku = said(root, "heroku", "worker.1")

        failed = f"Process failed to start: {why.format(cwd=cwd)}"
        assert heroku == [
            "State changed from starting to crashed",
            f"{failed}; restarting",
            f"{failed}; restarting in 1 seconds",
            f"{failed}; restarting in 2 seconds",
            f"{failed}; restarting in 4 seconds",
        ]

    run(session())


def test_a_process_whose_release_directory_comes_back_starts_at_the_next_attempt(
    root: Path,
) -> None:
    cwd = root / "releases" / "v1"
    cwd.rmdir()

    async def session() -> None:
        async with supervising(root, backoff=FAST) as sup:
            await sup.start(spec(root, "worker.1", "echo hello; sleep 1000"))
            await until(lambda: state(sup, "worker.1").restarts >= 3, "three attempts")
            cwd.mkdir()
            await until(lambda: state(sup, "worker.1").state == "up", "up", timeout=3)
            await until(lambda: "hello" in said(root, "app", "worker.1"), "its output")
            assert state(sup, "worker.1").pid is not None

    run(session())


# -- tables -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backoff", "waits"),
    [
        (Backoff(), [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]),
        (Backoff(initial=0.1, cap=1), [0, 0.1, 0.2, 0.4, 0.8, 1, 1]),
        (Backoff(initial=5, factor=1), [0, 5, 5, 5]),
        (Backoff(initial=0), [0, 0, 0]),
        (Backoff(initial=3, factor=3, cap=3), [0, 3, 3]),
    ],
)
def test_backoff_waits(backoff: Backoff, waits: list[float]) -> None:
    assert [backoff.delay(n) for n in range(1, len(waits) + 1)] == pytest.approx(waits)
    assert backoff.delay(10_000) == waits[-1]


@pytest.mark.parametrize(
    ("crashes", "uptime", "expected"),
    [
        (0, 0.5, (1, 0)),  # the first crash: restart at once
        (1, 0.5, (2, 1)),
        (4, 59.9, (5, 8)),
        (4, 60, (1, 0)),  # stayed up 60 s: start the ladder again
        (20, 3600, (1, 0)),
    ],
)
def test_backoff_after_a_crash(crashes: int, uptime: float, expected: tuple[int, float]) -> None:
    assert Backoff().after_crash(crashes, uptime) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial": -1}, "backoff initial -1 is invalid: use a number of seconds of 0 or more"),
        ({"cap": float("inf")}, "backoff cap inf is invalid: use a number of seconds of 0 or more"),
        ({"factor": 0.5}, "backoff factor 0.5 is invalid: use 1 or more"),
        ({"initial": 10, "cap": 5}, "backoff cap 5 is below its initial wait 10: raise the cap"),
    ],
)
def test_backoff_refuses_nonsense(options: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidParams) as e:
        Backoff(**options)
    assert e.value.message.startswith(message)


@pytest.mark.parametrize(
    ("name", "type_", "command", "message"),
    [
        ("web", "web", "x", "process name 'web' is invalid: write it as TYPE.N, e.g. web.1"),
        ("../x.1", "x", "x", "process name '../x.1' is invalid: write it as TYPE.N, e.g. web.1"),
        ("web.1", "worker", "x", "process name 'web.1' does not match its type 'worker'"),
        ("web.1", "web", " ", "process web.1 has an empty command: give it one to run"),
    ],
)
def test_process_specs_are_checked(name: str, type_: str, command: str, message: str) -> None:
    with pytest.raises(InvalidParams) as e:
        ProcessSpec(name, type_, command, {}, Path("/nonexistent"), 1)
    assert e.value.message.startswith(message)


def test_a_release_with_profile_d_scripts_sources_them_before_the_command(
    root: Path, user: UnixUser | None
) -> None:
    app = root / "releases" / "v1"
    (app / ".profile.d").mkdir(parents=True, exist_ok=True)
    (app / ".profile.d" / "python.sh").write_text('export GREETING="from profile.d in $PWD"\n')
    if user is not None:
        isolation.hand_over(user, app)

    async def session() -> None:
        async with supervising(root, user=user) as sup:
            await sup.start(spec(root, "worker.1", 'echo "$GREETING"; sleep 1000'))
            await until(lambda: bool(said(root, "app", "worker.1")), "the greeting")
            assert said(root, "app", "worker.1") == [f"from profile.d in {app}"]

    run(session())
