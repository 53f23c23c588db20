"""Reading decoded JSON (what `json.loads` returns) strictly, each value at its path, for
gun.protocol's readers (pure).

Each function takes a value and its path (`slice.processes[2].command`) and returns the value
as its type, or raises ProtocolError with one sentence: the path, what was expected and what
came, as JSON (`slice.processes[2].command: expected a string, got 3`). Nothing is coerced:
a whole number is a JSON integer (not 2.0, not true), text is a JSON string.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from gun.errors import ProtocolError

T = TypeVar("T")


class Object:
    """A JSON object being read at path `at`; `get` gives a field's value and path (every
    field is required; fields nobody asks for are ignored)."""

    def __init__(self, data: object, at: str) -> None:
        if not isinstance(data, dict):
            raise expected(at, "an object", data)
        self.data: Mapping[str, object] = data
        self.at = at

    def get(self, name: str) -> tuple[object, str]:
        at = f"{self.at}.{name}"
        if name not in self.data:
            raise ProtocolError(f"{at}: missing")
        return self.data[name], at

    def added(self, name: str) -> tuple[object, str]:
        """A field added within a protocol version, which older writers do not send: absent
        reads as null (the only fields that may be absent)."""
        return self.data.get(name), f"{self.at}.{name}"


def maybe(read: Callable[..., T], value: object, at: str, *args: Any, **kw: Any) -> T | None:
    """null, or what `read` reads."""
    return None if value is None else read(value, at, *args, **kw)


def array(
    value: object, at: str, read: Callable[[object, str], T], *, limit: int | None = None
) -> tuple[T, ...]:
    """An array of at most `limit` items, each read by `read` at `at[i]`."""
    if not isinstance(value, list):
        raise expected(at, "an array", value)
    if limit is not None and len(value) > limit:
        raise ProtocolError(f"{at}: expected at most {limit} items, got {len(value)}")
    return tuple(read(v, f"{at}[{i}]") for i, v in enumerate(value))


def text(value: object, at: str, *, limit: int | None = None) -> str:
    """A string of UTF-8 text without NUL (no environment, argv, file name or PostgreSQL text
    holds one), of at most `limit` characters."""
    if not isinstance(value, str):
        raise expected(at, "a string", value)
    if "\x00" in value:
        raise expected(at, "text without NUL", value)
    try:
        value.encode()
    except UnicodeEncodeError:
        raise expected(at, "UTF-8 text", value) from None
    if limit is not None and len(value) > limit:
        raise ProtocolError(f"{at}: expected at most {limit} characters, got {len(value)}")
    return value


def matching(value: object, at: str, pattern: re.Pattern[str], what: str) -> str:
    """Text that `pattern` matches (from its start), `what` saying what that is."""
    found = text(value, at)
    if not pattern.match(found):
        raise expected(at, what, value)
    return found


def whole(value: object, at: str, *, lo: int, hi: int) -> int:
    """A JSON integer from `lo` to `hi`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise expected(at, "a whole number", value)
    if value < lo:
        raise expected(at, f"a whole number of at least {lo}", value)
    if value > hi:
        raise expected(at, f"a whole number of at most {hi}", value)
    return value


def boolean(value: object, at: str) -> bool:
    """true or false (not 0 or 1)."""
    if not isinstance(value, bool):
        raise expected(at, "true or false", value)
    return value


def seconds(value: object, at: str) -> float:
    """A finite number of at least 0."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise expected(at, "a number of seconds", value)
    if value < 0:
        raise expected(at, "a number of seconds of at least 0", value)
    return float(value)


def moment(value: object, at: str) -> datetime:
    """ISO 8601 text with a UTC offset (a time without one means nothing on another host)."""
    found = text(value, at, limit=64)
    try:
        when = datetime.fromisoformat(found)
    except ValueError:
        when = None
    if when is None or when.utcoffset() is None:
        raise expected(at, "an ISO 8601 time with a UTC offset", value)
    return when


def expected(at: str, what: str, got: object) -> ProtocolError:
    return ProtocolError(f"{at}: expected {what}, got {show(got)}")


def show(value: object, limit: int = 60) -> str:
    """A value as JSON, cut to `limit` characters (escaped where it cannot be UTF-8)."""
    out = json.dumps(value, ensure_ascii=False, default=repr)
    try:
        out.encode()
    except UnicodeEncodeError:
        out = json.dumps(value, default=repr)
    return out if len(out) <= limit else out[: limit - 3] + "..."
