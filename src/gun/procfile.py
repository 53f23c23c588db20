"""Procfile parsing (pure, strict): `name: command` lines, errors name the file and line."""

from __future__ import annotations

import re

from gun.errors import InvalidParams

_LINE = re.compile(r"^(?P<name>[^:\s]*)\s*:\s?(?P<command>.*)\Z")
_NAME = re.compile(r"^[A-Za-z0-9_-]+\Z")
RELEASE = "release"


class ProcfileError(InvalidParams):
    """A Procfile that does not parse; the message starts with `FILE:LINE:`."""


def parse(data: bytes | str, path: str = "Procfile") -> dict[str, str]:
    """Process types in file order. foreman skips lines it cannot read; gun refuses them."""
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            raise ProcfileError(f"{path}:1: starts with a UTF-8 byte order mark; remove it")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            bad = data[: e.start].count(b"\n") + 1
            raise ProcfileError(f"{path}:{bad}: is not valid UTF-8") from None
    else:
        text = data
        if text.startswith("\ufeff"):
            raise ProcfileError(f"{path}:1: starts with a UTF-8 byte order mark; remove it")
    types: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if "\x00" in raw:  # a command goes to execve, which cannot pass one
            raise ProcfileError(f"{path}:{number}: has a NUL byte; remove it")
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            raise ProcfileError(f"{path}:{number}: {_show(line)} is not `name: command`")
        name, command = m["name"], m["command"].strip()
        if not _NAME.match(name):
            raise ProcfileError(
                f"{path}:{number}: process type {_show(name)} may only use letters, digits, - and _"
            )
        if not command:
            raise ProcfileError(f"{path}:{number}: process type {name!r} has no command")
        if name in types:
            raise ProcfileError(f"{path}:{number}: process type {name!r} is defined twice")
        types[name] = command
    if not types:
        raise ProcfileError(f"{path}:1: the Procfile defines no process types")
    return types


def scalable(types: dict[str, str]) -> list[str]:
    """Process types a formation may name: every one but `release`."""
    return [t for t in types if t != RELEASE]


def _show(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
