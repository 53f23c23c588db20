"""Helpers for tests that run real processes (the supervisor, preboot, the release phase).

Every process such a test starts gets MARK=<its directory> in its environment; `no_leaks`
finds any process (or grandchild) still carrying it at the end, kills its group, and fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from gun import isolation
from gun.agent import contain, files
from gun.agent.procrecord import same_process
from gun.agent.supervisor import Supervisor
from gun.isolation import UnixUser

MARK = "GUN_TEST_ROOT"
LINE = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00) (app|heroku)\[([a-z]+\.\d+)\]: (.*)\Z"
)


def ours(marked: Path) -> list[psutil.Process]:
    """Running (not zombie) processes whose MARK is `marked`."""
    found = []
    for proc in psutil.process_iter():
        with suppress(psutil.Error):
            if proc.environ().get(MARK) == str(marked) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


@contextmanager
def no_leaks(marked: Path) -> Iterator[None]:
    """At the end: no process marked `marked`, none that its process records (if it is a
    supervisor's root) name, no cgroup of its supervisor and no Unix user of its instance; what
    is left is killed (and removed)."""
    try:
        yield
    finally:
        leaked = ours(marked)
        for rec in (marked / "state" / "procs").glob("**/*.json"):
            pid = json.loads(rec.read_text())["pid"]
            if pid is not None and same_process(pid, None):
                leaked.append(psutil.Process(pid))
        for proc in leaked:
            with suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(proc.pid) != os.getpgrp():
                    os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
                proc.kill()
        user = isolation.instance_user_name(marked)
        if isolation.lookup(user) is not None:
            isolation.remove(user)
            leaked_user = True
        else:
            leaked_user = False
        assert not leaked, f"processes left running: {[p.pid for p in leaked]}"
        assert not [d for d in contain.candidates(marked) if d.exists()], "a cgroup was left"
        assert not leaked_user, f"the user {user} was left"


def _python() -> str:
    """An interpreter every user can run: this one, else the system's (this one may live
    under a home that others cannot enter, like /root/.pyenv)."""
    other = UnixUser("others", -1, -1)
    mine = Path(sys.executable).resolve()
    if isolation.blocked(mine.parent, other) is None and mine.stat().st_mode & 0o001:
        return sys.executable
    return "/usr/bin/python3"


PYTHON = _python()
RUN_AS = ["agent's user"] + (["app's user"] if isolation.can_switch() else [])


@contextmanager
def run_as(who: str, root: Path) -> Iterator[UnixUser | None]:
    """None for "agent's user"; for "app's user" the instance's user, made for root (its
    releases handed to it, its layout locked down as the agent does) and removed at the end."""
    if who == "agent's user":
        yield None
        return
    files.lock_down(root)
    user = isolation.ensure(isolation.instance_user_name(root), f"gun app test at {root}")
    try:
        for release in (root / "releases").iterdir():
            isolation.hand_over(user, release)
        yield user
    finally:
        isolation.remove(user.name)


def runs_as(pid: int, user: UnixUser | None) -> bool:
    """Whether process pid runs as user (its group, no other, no way to gain privileges) or,
    for None, as this test does."""
    proc = psutil.Process(pid)
    if user is None:
        return proc.uids().real == os.getuid()
    status = dict(
        line.partition(":")[::2] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (
        set(proc.uids()) == {user.uid}
        and set(proc.gids()) == {user.gid}
        and status["Groups"].split() == []
        and status["NoNewPrivs"].strip() == "1"
    )


def app_log(root: Path) -> list[tuple[datetime, str, str, str]]:
    """(time, app|heroku, process, text) of every line, each checked against the exact format."""
    lines = []
    for line in (root / "log" / "app.log").read_text().splitlines():
        m = LINE.match(line)
        assert m, f"app.log line is not `TIME app[web.1]: text`: {line!r}"
        lines.append((datetime.fromisoformat(m[1]), m[2], m[3], m[4]))
    return lines


def said(root: Path, source: str, name: str) -> list[str]:
    return [text for _, s, n, text in app_log(root) if (s, n) == (source, name)]


def run(session: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(session, 40))


@asynccontextmanager
async def supervising(root: Path, **options: Any) -> AsyncIterator[Supervisor]:
    sup = Supervisor(root, **options)
    try:
        yield sup
    finally:
        await sup.shutdown(stop_processes=True)


async def until(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
