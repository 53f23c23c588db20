"""The layer's setup command as the agent runs it (gun/agent/setup.py): what it prints becomes
text the protocol carries, however the command prints it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gun.agent.setup import LINE_MAX, environment, run_command, tail
from gun.protocol import SETUP_OUTPUT_MAX


def run(command: str, root: Path) -> tuple[int | None, list[str], list[tuple[str, str]]]:
    progress: list[str] = []
    sunk: list[tuple[str, str]] = []
    env = environment(root, "shop", "i-0a1b2c3d")
    code = asyncio.run(
        run_command(command, root, env, "heroku[setup]", lambda s, t: sunk.append((s, t)), progress)
    )
    return code, progress, sunk


def test_lines_and_the_exit_code(tmp_path: Path) -> None:
    code, progress, sunk = run('echo "one $GUN_APP"; echo two >&2; printf three; exit 7', tmp_path)
    assert (code, progress) == (7, ["one shop", "two", "three"])
    assert sunk == [("heroku[setup]", line) for line in progress]


def test_a_nul_byte_and_a_line_without_end_become_protocol_text(tmp_path: Path) -> None:
    code, progress, _ = run(f"printf 'a\\000b\\n'; head -c {LINE_MAX * 2 + 5} /dev/zero", tmp_path)
    assert code == 0
    assert progress[0] == "a\ufffdb"
    assert [len(line) for line in progress[1:]] == [LINE_MAX, LINE_MAX, 5]
    assert all("\x00" not in line for line in progress)


def test_endless_output_keeps_only_its_end(tmp_path: Path) -> None:
    code, progress, _ = run("seq 1 200000", tmp_path)
    assert code == 0
    assert progress[-1] == "200000"
    assert sum(len(line) + 1 for line in progress) <= 2 * SETUP_OUTPUT_MAX + 10
    assert len(tail(progress)) == SETUP_OUTPUT_MAX


def test_killed_by_a_signal_is_no_exit_code(tmp_path: Path) -> None:
    code, _, _ = run("kill -KILL $$", tmp_path)
    assert code is None
