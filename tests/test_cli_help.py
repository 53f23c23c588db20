"""`gun COMMAND --help` shows that command's own help, in both forms, for every command."""

from __future__ import annotations

import subprocess

import click
import pytest

from gun.cli.main import cli, run
from tests.meta import GUN


def every_command() -> list[tuple[str, click.Command]]:
    """Each command line the CLI answers (a group's commands too, as `server meta`)."""
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(cli.commands.items()):
        found.append((name, command))
        if isinstance(command, click.Group):
            found += [(f"{name} {n}", c) for n, c in sorted(command.commands.items())]
    return found


COMMANDS = every_command()
NAMES = [name for name, _ in COMMANDS]


def test_the_table_covers_the_commands_users_know() -> None:
    for name in ("apps.create", "config.set", "scale", "deploy", "logs", "metrics", "server meta"):
        assert name in NAMES


def usage_of(name: str) -> str:
    return f"Usage: gun {name} [OPTIONS]"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=NAMES)
@pytest.mark.parametrize("form", ["plain", "app-first", "flag-first", "short"])
def test_help_is_the_commands_own(
    name: str, command: click.Command, form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    words = name.split()
    argv = {
        "plain": [*words, "--help"],
        "app-first": ["app:demo", *words, "--help"],
        "flag-first": ["--help", *words],
        "short": [*words, "-h"],
    }[form]
    assert run(argv) == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out.startswith(usage_of(name)), out.out
    first = (command.help or "").strip().splitlines()[0]
    assert first.split()[0] in out.out  # its own description
    assert "Options:" in out.out and "--help" in out.out
    for other in NAMES:
        if other != name:
            assert usage_of(other) not in out.out, other
    assert "Both forms work" not in out.out  # not the top-level help


def test_help_without_a_command_is_the_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["-h"], ["app:demo", "--help"], []):
        assert run(argv) == 0
        out = capsys.readouterr().out
        assert out.startswith("Usage: gun [OPTIONS] COMMAND [ARGS]..."), argv
        assert "Both forms work" in out


def test_help_of_an_unknown_command_says_it_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["metrcs", "--help"]) == 2
    assert capsys.readouterr().err == "gun: unknown command 'metrcs': did you mean 'metrics'?\n"


@pytest.mark.parametrize(
    "argv", [["metrics", "--help"], ["app:demo", "metrics", "--help"], ["metrics", "-a", "x", "-h"]]
)
def test_the_real_gun_prints_a_commands_help(argv: list[str]) -> None:
    done = subprocess.run([*GUN, *argv], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("Usage: gun metrics [OPTIONS]")
    assert "--since" in done.stdout and "Both forms work" not in done.stdout
