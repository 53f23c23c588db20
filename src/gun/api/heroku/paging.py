"""Heroku's `Range` paging (pure): `FIELD [START]..[END]; max=N, order=desc`, as the stock
clients send it (`id ..; max=1000;`, `version ..; max=10, order=desc`, heroku3's
`version ..; ;`). Missing parts take their defaults; a part given but unreadable is refused
in one sentence. Lists are ascending unless `order=desc`. A page answers 206 with
`Next-Range: FIELD ]LAST..; max=N[, order=desc]` only when more remain (a client loops on
Next-Range), never on the last one.

The key a list is ordered by must be unique among its items (an id, a name, a version): a page
starts after the last key of the one before, so items sharing a key across a page's edge would
be skipped. A start value may hold dots (a timestamp's fraction), even end with one: it runs to
the last `..` before the `;` (gun reads no end value; the clients send none).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gun.errors import BadRequest

T = TypeVar("T")
T2 = TypeVar("T2", int, str)
DEFAULT_MAX = 200
MOST = 1000
# `FIELD [START]` before the `..`; `]` (exclusive: after START) before START, or leniently
# before FIELD.
_HEAD = re.compile(r"\s*(?P<excl1>\])?\s*(?P<field>[a-z_]+)\s*(?P<excl2>\])?\s*(?P<start>\S*)\s*")


@dataclass(frozen=True)
class Range:
    field: str
    start: str | None = None  # list from (or, exclusive, after) the item with this value
    exclusive: bool = False
    max: int = DEFAULT_MAX
    desc: bool = False

    def header(self, start: str) -> str:
        order = ", order=desc" if self.desc else ""
        return f"{self.field} ]{start}..; max={self.max}{order}"


def parse_range(header: str | None, fields: Sequence[str]) -> Range:
    """The Range of a list whose items may be ordered by `fields` (the first is the default)."""
    if header is None or not header.strip():
        return Range(fields[0])
    head, _, options = header.partition(";")
    before, dots, _end = head.rpartition("..")
    m = _HEAD.fullmatch(before) if dots else None
    field, start, exclusive = fields[0], None, False
    if m is not None and m.group("field") in fields:  # a start of another field's: ignored
        field = m.group("field")
        start = m.group("start") or None
        exclusive = m.group("excl1") is not None or m.group("excl2") is not None
    most, desc = DEFAULT_MAX, False
    for part in re.split(r"[;,]", options):
        key, eq, value = part.strip().partition("=")
        key, value = key.strip(), value.strip()
        if not key:
            continue
        if key == "max" and eq:
            if not value.isdigit() or not 1 <= int(value) <= MOST:
                raise BadRequest(f"Range header: max={value!r} is not a number from 1 to {MOST}")
            most = int(value)
        elif key == "order" and eq:
            if value not in ("asc", "desc"):
                raise BadRequest(f"Range header: order={value!r} is not asc or desc")
            desc = value == "desc"
    return Range(field, start, exclusive, most, desc)


def page(items: Sequence[T], r: Range, key: Callable[[T], int | str]) -> tuple[list[T], str | None]:
    """The page `r` asks for of `items`, and the Next-Range header if more remain."""
    ordered = sorted(items, key=key, reverse=r.desc)
    if r.start is not None:
        ordered = [i for i in ordered if _past(key(i), r.start, r)]
    got = ordered[: r.max]
    more = len(ordered) > r.max
    return got, (r.header(str(key(got[-1]))) if more and got else None)


def _past(k: int | str, start: str, r: Range) -> bool:
    """Whether an item of key `k` comes at or after `start` in the page's order."""
    if isinstance(k, int):
        if not start.lstrip("-").isdigit():
            return True  # a start of another kind than the keys: from the first
        return _after(k, int(start), r)
    return _after(k, start, r)


def _after(k: T2, s: T2, r: Range) -> bool:
    if r.desc:
        return k < s if r.exclusive else k <= s
    return k > s if r.exclusive else k >= s
