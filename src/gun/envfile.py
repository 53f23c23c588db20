"""Env files (pure): `KEY=value` lines as python-dotenv reads them; exact round trips."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping

from dotenv.parser import parse_stream

from gun.errors import InvalidParams
from gun.model import CONFIG_KEY

_BARE = re.compile(r"[A-Za-z0-9_./:@%+,=-]*")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class EnvFileError(InvalidParams):
    """An env file line that does not parse; the message starts with `FILE:LINE:`."""


def parse(text: str, path: str = ".env") -> dict[str, str]:
    out: dict[str, str] = {}
    for b in parse_stream(io.StringIO(text)):
        line = b.original.line
        shown = b.original.string.strip()
        if b.error:
            raise EnvFileError(f"{path}:{line}: {_show(shown)} is not KEY=value")
        if b.key is None:
            continue
        if not CONFIG_KEY.match(b.key):
            raise EnvFileError(
                f"{path}:{line}: key {_show(b.key)} may only use letters, digits and _, "
                "not starting with a digit"
            )
        if b.value is None:
            raise EnvFileError(f"{path}:{line}: {_show(shown)} has no '='")
        out[b.key] = b.value
    return out


def quote(value: str) -> str:
    if _BARE.fullmatch(value):
        return value
    return '"' + "".join(_ESCAPES.get(c, c) for c in value) + '"'


def format(env: Mapping[str, str]) -> str:  # noqa: A001 - the module's verb
    """KEY=value lines that `parse` reads back exactly."""
    for key in env:
        if not CONFIG_KEY.match(key):
            raise InvalidParams(f"key {key!r} cannot be written to an env file")
    return "".join(f"{k}={quote(v)}\n" for k, v in env.items())


def _show(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
