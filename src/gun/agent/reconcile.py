"""Reconcile: the agent's pure diff of the processes meta wants against the ones it observes.

Given the desired processes of this instance and the supervisor's observed ones, `reconcile`
returns the actions that move one towards the other: stop what is no longer wanted, replace
what runs an old release, command or config, start what is missing. Restarting crashed
processes is the supervisor's job (it owns the backoff), not this one's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

Kind = Literal["start", "stop", "replace"]

# States in which a wanted process is on its way up or down: it counts against the rolling
# budget of its type, and is left alone until it settles.
IN_FLIGHT = frozenset({"starting", "stopping"})


@dataclass(frozen=True)
class Desired:
    """A process meta wants on this instance."""

    name: str  # web.1
    type: str
    command: str
    release: int
    env_digest: str  # digest of the env, so a config change restarts


@dataclass(frozen=True)
class Observed:
    """A process the supervisor knows about on this instance."""

    name: str
    type: str
    state: str  # starting|up|crashed|stopping|down
    release: int
    env_digest: str
    command: str | None = None  # compared only when the supervisor reports it


@dataclass(frozen=True)
class Action:
    """One thing for the supervisor to do. `replace` preboots web: the new copy starts and the
    old one stops once the new one is up."""

    kind: Kind
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def natural_key(name: str) -> tuple[str, int, str]:
    """Sort by type then number: web.2 before web.10, and web.* before worker.*."""
    ptype, dot, number = name.rpartition(".")
    if dot and number.isascii() and number.isdigit():
        return (ptype, int(number), "")
    return (name, -1, name)


def outdated(want: Desired, have: Observed) -> bool:
    """Does the observed process run something other than what is wanted?"""
    return (
        want.type != have.type
        or want.release != have.release
        or want.env_digest != have.env_digest
        or (have.command is not None and want.command != have.command)
    )


def reconcile(
    desired: Sequence[Desired], observed: Sequence[Observed], *, max_unavailable: int = 1
) -> list[Action]:
    """The actions that make `observed` match `desired`: stops, then replacements, then starts,
    each in natural order.

    - start: desired and not observed, or observed `down` (stopped, not crashed).
    - stop: observed and not desired, unless already `stopping` or `down`.
    - replace: desired and observed but outdated (release, command or env digest differ).
      Per type, at most `max_unavailable` processes are unavailable at once: processes already
      `starting` or `stopping`, and those `crashed` on what is wanted, use up that budget (so a
      release whose processes crash stops rolling), and `up` ones are replaced in natural order
      within what is left; the rest wait for a later pass. A `crashed` outdated process is
      replaced without using the budget (it is unavailable already, and the new release may be
      what fixes it). An outdated process that is `starting` or `stopping` waits until it settles.
    - nothing: a `crashed` process that is not outdated (the supervisor restarts it with
      backoff), or a wanted process that is `stopping` (it is started once it is gone).

    Starts and stops are never limited.
    """
    if max_unavailable < 1:
        raise ValueError(f"max_unavailable must be at least 1, not {max_unavailable}")
    want = _by_name(desired, "desired")
    have = _by_name(observed, "observed")

    stops = [n for n, o in have.items() if n not in want and o.state not in ("stopping", "down")]
    starts = [n for n in want if n not in have or have[n].state == "down"]

    replaces: list[str] = []
    for ptype in sorted({d.type for d in want.values()}):
        names = sorted((n for n, d in want.items() if d.type == ptype), key=natural_key)
        stale = [n for n in names if n in have and outdated(want[n], have[n])]
        # on its way up or down, or crashed on the new release: a rollout that breaks
        # processes stops there instead of breaking them all
        busy = sum(
            1
            for n in names
            if n in have
            and (have[n].state in IN_FLIGHT or (have[n].state == "crashed" and n not in stale))
        )
        replaces += [n for n in stale if have[n].state == "crashed"]
        rolling = [n for n in stale if have[n].state == "up"]
        replaces += rolling[: max(0, max_unavailable - busy)]

    return (
        [Action("stop", n) for n in sorted(stops, key=natural_key)]
        + [Action("replace", n) for n in sorted(replaces, key=natural_key)]
        + [Action("start", n) for n in sorted(starts, key=natural_key)]
    )


_P = TypeVar("_P", Desired, Observed)


def _by_name(processes: Iterable[_P], what: str) -> dict[str, _P]:
    found: dict[str, _P] = {}
    for p in processes:
        if p.name in found:
            raise ValueError(f"{what} processes name {p.name!r} more than once")
        found[p.name] = p
    return found
