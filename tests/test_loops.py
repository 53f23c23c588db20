"""Loops that must not die (gun.loops): a failing pass is retried with a backoff and said until
one succeeds; a task that ends is started again; and what a failure is called, as a table."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from gun.agent.backoff import Backoff
from gun.errors import InvalidParams, disk_full
from gun.loops import Loops, why

QUICK = Backoff(initial=0.1, factor=2.0, cap=0.4, reset_after=0.0)
log = logging.getLogger("test")


async def until(check: Callable[[], object], what: str, timeout: float = 5) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_a_failing_pass_is_retried_with_backoff_and_said_until_one_succeeds() -> None:
    failures: list[BaseException] = [
        OSError(errno.ENOSPC, "No space left on device", "/i/etc/env"),
        OSError(errno.ENOSPC, "No space left on device", "/i/etc/env"),
        ValueError("a bug"),
        OSError(errno.ENOSPC, "No space left on device", "/i/state/desired.json"),
    ]
    seen: list[dict[str, str]] = []
    times: list[float] = []

    async def session() -> None:
        loops = Loops(log, QUICK)

        async def one_pass() -> None:
            times.append(asyncio.get_running_loop().time())
            seen.append(loops.down())
            if failures:
                raise failures.pop(0)
            await asyncio.sleep(0.05)

        loops.start("converge", one_pass)
        await until(lambda: len(times) >= 6, "six passes")
        assert loops.down() == {}
        await loops.stop()
        assert loops.running() == []

    asyncio.run(session())
    assert seen[:6] == [
        {},
        {"converge": "no space left on device writing /i/etc/env"},
        {"converge": "no space left on device writing /i/etc/env"},
        {"converge": "ValueError: a bug"},
        {"converge": "no space left on device writing /i/state/desired.json"},
        {},
    ]
    gaps = [round(b - a, 2) for a, b in zip(times, times[1:], strict=False)]
    assert gaps[0] < 0.1  # the first retry is at once
    assert 0.1 <= gaps[1] < 0.2 and 0.2 <= gaps[2] < 0.3 and 0.4 <= gaps[3] < 0.5  # capped


def test_a_loop_whose_task_is_cancelled_is_started_again_and_said_meanwhile() -> None:
    async def session() -> None:
        loops = Loops(log, QUICK)
        passes = 0

        async def one_pass() -> None:
            nonlocal passes
            passes += 1
            await asyncio.sleep(0.02)

        loops.start("report", one_pass)
        await until(lambda: passes >= 2, "two passes")
        [task] = [t for t in asyncio.all_tasks() if t.get_name() == "report"]
        task.cancel()
        await until(lambda: "report" in loops.down(), "the loop said to be down")
        assert loops.down() == {
            "report": "the report loop ended (its task was cancelled) and is being started again"
        }
        assert loops.running() == []
        before = passes
        await until(lambda: passes > before + 1, "passes again", timeout=3)
        assert loops.running() == ["report"] and loops.down() == {}
        await loops.stop()

    asyncio.run(session())


def test_a_loop_until_done_ends_after_its_first_pass_that_succeeds() -> None:
    async def session() -> None:
        loops = Loops(log, QUICK)
        tries: list[int] = []

        async def register() -> None:
            tries.append(1)
            if len(tries) < 3:
                raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

        loops.start("register", register, until_done=True)
        await until(lambda: loops.running() == [], "the loop to end")
        assert len(tries) == 3 and loops.down() == {}

    asyncio.run(session())


def test_two_loops_of_one_name_are_refused() -> None:
    async def session() -> None:
        loops = Loops(log)
        loops.start("poll", lambda: asyncio.sleep(1))
        with pytest.raises(ValueError, match="loop 'poll' is running already"):
            loops.start("poll", lambda: asyncio.sleep(1))
        await loops.stop()

    asyncio.run(session())


def _sqlite_full(tmp: Path) -> OperationalError:
    """SQLite's own SQLITE_FULL, from a database capped at a few pages."""
    engine = create_engine(f"sqlite:///{tmp / 'small.db'}")
    try:
        with engine.begin() as c:
            c.execute(text("PRAGMA max_page_count = 3"))
            c.execute(text("CREATE TABLE t (x TEXT)"))
            for _ in range(100):
                c.execute(text("INSERT INTO t VALUES (:x)"), {"x": "x" * 1000})
    except OperationalError as e:
        return e
    finally:
        engine.dispose()
    raise AssertionError("the capped database took every row")


def test_what_a_failure_is_called(tmp_path: Path) -> None:
    full = _sqlite_full(tmp_path)
    assert isinstance(full.orig, sqlite3.OperationalError)
    cases: list[tuple[BaseException, str | None, str]] = [
        (
            OSError(errno.ENOSPC, "No space left on device", "/r/etc/env"),
            "no space left on device writing /r/etc/env",
            "no space left on device writing /r/etc/env",
        ),
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on device", ""),
        (
            OSError(errno.EDQUOT, "Disk quota exceeded", "/r/x"),
            "no space left on device writing /r/x",
            "",
        ),
        (full, "no space left on device writing the database", ""),
        (
            psycopg.errors.DiskFull("could not extend file"),
            "no space left on the PostgreSQL server's disk",
            "",
        ),
        (
            OSError(errno.EIO, "Input/output error", "/r/x"),
            None,
            "OSError: [Errno 5] Input/output error: '/r/x'",
        ),
        (InvalidParams("release v3 refused: bad slug"), None, "release v3 refused: bad slug"),
        (ValueError("a bug"), None, "ValueError: a bug"),
        (RuntimeError(), None, "RuntimeError"),
    ]
    for error, sentence, called in cases:
        assert disk_full(error) == sentence, error
        assert why(error) == (called or sentence), error
    assert disk_full(full, "/home/meta.db") == (
        "no space left on device writing the database /home/meta.db"
    )
