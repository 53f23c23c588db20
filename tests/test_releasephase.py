"""The release phase with real processes: a command in, its lines, exit code and error out.

Every command gets GUN_TEST_ROOT in its environment; the `app` fixture finds any process (or
grandchild) still carrying it at teardown, kills its group, and fails the test.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from gun import isolation
from gun.agent import releasephase
from gun.isolation import UnixUser
from tests.supervising import MARK, RUN_AS, no_leaks, run_as


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Path]:
    """An unpacked release of an instance to run the command in."""
    app = tmp_path / "instance" / "releases" / "v1"
    app.mkdir(parents=True)
    with no_leaks(app):
        yield app


@pytest.fixture(params=RUN_AS)
def user(request: pytest.FixtureRequest, app: Path) -> Iterator[UnixUser | None]:
    """Whom the command runs as: the agent's own user, and (as root) the instance's user."""
    with run_as(request.param, app.parent.parent) as made:
        yield made


def release(
    app: Path, command: str, timeout: float = 20, user: UnixUser | None = None, **env: str
) -> tuple[int | None, str | None, list[str], float]:
    """Run the release command; (exit code, error, the lines it emitted, seconds it took)."""
    lines: list[str] = []
    began = time.monotonic()
    code, error = asyncio.run(
        releasephase.run(app, command, {MARK: str(app), **env}, timeout, lines.append, user)
    )
    return code, error, lines, time.monotonic() - began


def killed(pid: int) -> bool:
    """Whether pid is gone (or a zombie nobody reaped yet), after waiting a little for it."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_a_release_command_that_succeeds_streams_its_lines_in_order(
    app: Path, user: UnixUser | None
) -> None:
    (app / ".profile.d").mkdir()
    (app / ".profile.d" / "python.sh").write_text('export GREETING="from profile.d"\n')
    if user is not None:
        isolation.hand_over(user, app)
    command = 'echo "FOO=$FOO"; echo "DYNO=$DYNO PS=$PS"; pwd; echo "$GREETING"; echo oops >&2'
    command += "; id -u; echo HOME=$HOME"
    code, error, lines, _ = release(app, command, user=user, FOO="a b  c")
    assert (code, error) == (0, None)
    assert lines == [
        "FOO=a b  c",
        "DYNO=release.1 PS=release.1",
        str(app),
        "from profile.d",
        "oops",
        str(os.getuid() if user is None else user.uid),
        f"HOME={app}",
    ]


def test_lines_reach_emit_as_they_come_not_at_the_end(app: Path) -> None:
    seen: list[tuple[float, str]] = []

    async def session() -> tuple[int | None, str | None]:
        loop = asyncio.get_running_loop()
        env = {MARK: str(app)}
        command = "echo first; sleep 1; echo second"
        return await releasephase.run(
            app, command, env, 20, lambda line: seen.append((loop.time(), line))
        )

    assert asyncio.run(session()) == (0, None)
    assert [line for _, line in seen] == ["first", "second"]
    assert seen[1][0] - seen[0][0] >= 0.9


def test_a_failing_release_command_gives_its_exit_code_and_no_error(app: Path) -> None:
    code, error, lines, _ = release(app, "echo migrating; exit 3")
    assert (code, error, lines) == (3, None, ["migrating"])


def test_a_release_command_killed_by_a_signal_exits_with_128_plus_the_signal(app: Path) -> None:
    code, error, _, _ = release(app, "kill -9 $$")
    assert (code, error) == (137, None)


def test_a_release_command_that_times_out_is_killed_with_its_children(
    app: Path, user: UnixUser | None
) -> None:
    command = "echo started; sleep 300 & echo $! > child.pid; sleep 30"
    code, error, lines, took = release(app, command, timeout=0.5, user=user)
    assert (code, error) == (None, "the release command timed out after 0.5 seconds")
    assert lines == ["started"]
    assert 0.5 <= took < 3
    assert killed(int((app / "child.pid").read_text()))


def test_a_child_holding_the_output_open_after_the_command_exits_does_not_hang_it(
    app: Path, user: UnixUser | None
) -> None:
    command = "(sleep 30 & echo $! > child.pid); echo done"
    code, error, lines, took = release(app, command, timeout=20, user=user)
    assert (code, error, lines) == (0, None, ["done"])
    assert took < 5
    assert killed(int((app / "child.pid").read_text()))


def test_a_very_long_line_comes_out_in_pieces_and_the_next_lines_still_arrive(app: Path) -> None:
    command = "head -c 200000 /dev/zero | tr '\\0' x; echo; echo after; echo end"
    code, error, lines, _ = release(app, command)
    assert (code, error) == (0, None)
    assert lines[-2:] == ["after", "end"]
    assert "".join(lines[:-2]) == "x" * 200_000
    assert max(len(line) for line in lines) <= 10_000


def test_output_without_a_final_newline_is_not_lost(app: Path) -> None:
    code, error, lines, _ = release(app, "echo one; printf 'two'")
    assert (code, error, lines) == (0, None, ["one", "two"])
