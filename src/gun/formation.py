"""Formation strings (`web=2 worker=4`, `web=2,worker=4`, `web+1`) and per-layer shares (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gun.errors import InvalidParams
from gun.model import Layer

MAX_QUANTITY = 10_000
_WORD = re.compile(r"^(?P<type>[A-Za-z0-9_-]+)(?P<op>=|\+|-)(?P<n>[0-9]+)\Z")


@dataclass(frozen=True)
class Change:
    """One formation change: set (`web=2`) or relative (`web+1`, `web-1`)."""

    type: str
    quantity: int
    relative: bool = False

    def apply(self, current: int) -> int:
        """The new quantity from `current`; a relative change may not go below 0 (foreman's
        clamp to 0 hid a typo such as web-5 for web-1)."""
        if not self.relative:
            return self.quantity
        if current + self.quantity < 0:
            raise InvalidParams(f"{self} would take {self.type} below 0: it has {current}")
        return current + self.quantity

    def __str__(self) -> str:
        if not self.relative:
            return f"{self.type}={self.quantity}"
        return f"{self.type}{'+' if self.quantity >= 0 else '-'}{abs(self.quantity)}"


def parse_word(word: str) -> Change:
    """Parse one formation word; every malformed word raises InvalidParams naming it."""
    m = _WORD.match(word)
    if not m:
        raise InvalidParams(_why(word))
    n = int(m["n"])
    if n > MAX_QUANTITY:
        raise InvalidParams(f"formation {word!r}: quantity must be at most {MAX_QUANTITY}")
    if m["op"] == "=":
        return Change(m["type"], n)
    return Change(m["type"], n if m["op"] == "+" else -n, relative=True)


def _why(word: str) -> str:
    if "=" not in word and "+" not in word and "-" not in word[1:]:
        return f"formation {word!r} has no quantity: write it as TYPE=N, e.g. web=2"
    name, _, rest = word.partition("=")
    if not name:
        return f"formation {word!r} has no process type: write it as TYPE=N, e.g. web=2"
    if "=" in rest:
        return f"formation {word!r} has more than one '=': write it as TYPE=N, e.g. web=2"
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return f"formation {word!r}: process type {name!r} may only use letters, digits, - and _"
    if rest.startswith("-"):
        return f"formation {word!r}: quantity must not be negative"
    return f"formation {word!r}: quantity {rest!r} is not a whole number"


def parse(text: str | Sequence[str]) -> list[Change]:
    """Parse `web=2 worker=4` or `web=2,worker=4` (or a list of words) into changes."""
    words = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    if not words:
        raise InvalidParams("formation is empty: give at least one TYPE=N, e.g. web=2")
    changes = [parse_word(w) for w in words]
    seen: set[str] = set()
    for c in changes:
        if c.type in seen:
            raise InvalidParams(f"formation names process type {c.type!r} more than once")
        seen.add(c.type)
    return changes


def format_counts(counts: Mapping[str, int]) -> str:
    """`{"web": 2, "worker": 0}` -> `web=2,worker=0` (the seed's /etc/app/formation form)."""
    return ",".join(f"{t}={n}" for t, n in counts.items())


def layer_shares(
    totals: Mapping[str, int],
    layers: Iterable[Layer],
    weights: Mapping[str, int] | None = None,
) -> dict[str, dict[str, int]]:
    """Split each type's total over the layers that run it.

    `weights` (instances per layer) decides the split; without instances every layer that runs
    a type weighs the same. Remainders go to the first layers by name, so the result is stable.
    """
    ordered = sorted(layers, key=lambda la: la.name)
    shares: dict[str, dict[str, int]] = {la.name: {} for la in ordered}
    for ptype, total in totals.items():
        runners = [la.name for la in ordered if la.runs(ptype)]
        if not runners:
            continue
        w = [max(1, (weights or {}).get(name, 1)) for name in runners]
        whole = sum(w)
        given = [total * x // whole for x in w]
        for i in range(total - sum(given)):
            given[i % len(given)] += 1
        for name, n in zip(runners, given, strict=True):
            shares[name][ptype] = n
    return shares
