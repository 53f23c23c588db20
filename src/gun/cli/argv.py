"""Turn the seed syntax into plain flags (pure).

`gun app:groupme instances.create:app count=3` and
`gun instances.create app --count 3 -a groupme` mean the same: this module rewrites the
first into the second, so one click command definition serves both.

`-h`/`--help` asks for the help of the command it comes with (`gun metrics --help`,
`gun app:demo metrics --help`), and for the top-level help only when no command is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gun.errors import UsageError

GLOBAL_VALUE_FLAGS = ("--api", "--token")
APP_FLAGS = ("-a", "--app")
HELP_FLAGS = ("-h", "--help")
COLON_FLAGS = {("run", "detached"): "--detached"}  # COMMAND:WORD that is a flag, not an argument


@dataclass
class Parsed:
    globals: list[str] = field(default_factory=list)
    app: str | None = None
    command: str | None = None
    rest: list[str] = field(default_factory=list)
    help: bool = False


def split_globals(argv: Sequence[str]) -> Parsed:
    """Pull `--json`, `--api X`, `--token X`, `app:NAME`, `-a NAME`, `--help` out from
    anywhere (before a `--`)."""
    out = Parsed()
    words = list(argv)
    i = 0
    while i < len(words):
        w = words[i]
        if w == "--":
            out.rest.extend(words[i:])
            break
        name, eq, value = w.partition("=")
        if w in HELP_FLAGS:
            out.help = True
        elif w in ("--json", "--version"):
            out.globals.append(w)
        elif name in GLOBAL_VALUE_FLAGS or name in APP_FLAGS:
            if not eq:
                if i + 1 >= len(words):
                    raise UsageError(f"{name} needs a value")
                value = words[i + 1]
                i += 1
            if name in APP_FLAGS:
                out.app = _app(value, out.app)
            else:
                out.globals += [name, value]
        elif w.startswith("app:") and out.command is None:
            out.app = _app(w[4:], out.app)
        elif out.command is None and not w.startswith("-"):
            command, colon, arg = w.partition(":")
            out.command = command
            if colon:
                if not arg:
                    raise UsageError(f"{w!r} has an empty argument after ':'")
                out.rest.append(COLON_FLAGS.get((command, arg), arg))
        else:
            out.rest.append(w)
        i += 1
    return out


def _app(value: str, before: str | None) -> str:
    if not value:
        raise UsageError("the app name is empty: write app:NAME or -a NAME")
    if before is not None and before != value:
        raise UsageError(f"two different apps given: {before!r} and {value!r}")
    return value


def options_to_flags(rest: Sequence[str], options: set[str]) -> list[str]:
    """`count=3` -> `--count=3` where `count` is one of the command's options.

    Other `key=value` words (config vars, formation) stay as they are.
    """
    out: list[str] = []
    for i, w in enumerate(rest):
        if w == "--":
            out.extend(rest[i:])
            break
        key, eq, value = w.partition("=")
        flag = key.replace("_", "-")
        if eq and not w.startswith("-") and flag in options:
            out.append(f"--{flag}={value}")
        else:
            out.append(w)
    return out


def normalise(argv: Sequence[str], options_of: Callable[[str], set[str] | None]) -> list[str]:
    """The argv click sees: globals, command, `--app NAME` if it takes one, arguments, and
    `--help` last (so a subcommand's own help shows: `gun server meta --help`)."""
    p = split_globals(argv)
    asks = ["--help"] if p.help else []
    if p.command is None:
        return [*p.globals, *asks, *p.rest]
    options = options_of(p.command)
    if options is None:  # unknown command: let click name it and suggest one
        return [*p.globals, p.command, *p.rest, *asks]
    args = options_to_flags(p.rest, options)
    if p.app is not None and "app" in options:
        args = ["--app", p.app, *args]
    elif p.app is not None and not p.help:  # with --help the app does not matter
        raise UsageError(f"command {p.command!r} does not act on an app; drop app:{p.app}")
    return [*p.globals, p.command, *args, *asks]
