"""The agent's lease on its processes: when fenced processes may run (pure; docs/fleet.md).

meta marks an instance lost, and places its processes elsewhere, once it has heard no heartbeat
from it for `timeout` seconds (by its own clock). The agent cannot see meta's clock, but it
knows when it sent each heartbeat meta acknowledged: meta heard that one after it was sent, so
meta cannot mark the instance lost before `sent + timeout`. Hence the rules, with every time on
the agent's own clock (CLOCK_BOOTTIME: it counts a suspended host's sleep; only its rate, not
its offset from other hosts' clocks, matters):

- **Held.** The lease is held at `now` while `now < renewed + keep`, where `renewed` is when the
  latest acknowledged heartbeat was sent and `keep = timeout - grace - margin`. At
  `renewed + keep` the agent starts stopping its fenced processes (SIGTERM, SIGKILL `grace`
  later): they are gone `margin` seconds before meta may place them elsewhere.
- **Fenced.** A lease that lapsed, or was never held (a new agent), fences the instance: what
  the cached slice says may no longer be so (meta may have moved processes away). Renewing
  the lease does not end that. Only a slice asked for after the renewing heartbeat was
  acknowledged does, and only while the lease has been held without a gap since that
  acknowledgement: such a slice was read after meta heard the heartbeat, so it shows every
  move meta made while the instance was silent, and none can happen while the lease is held.
- **May run.** Fenced processes run while the lease is held and the instance is not fenced.

`Lease` is a value: every event (`renew`, `sliced`, `check`) returns the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gun.protocol import Lease as Terms


@dataclass(frozen=True)
class Lease:
    renewed: float | None = None  # when the latest acknowledged heartbeat was sent
    since: float | None = None  # held without a gap since then (an acknowledgement's arrival)
    fenced: bool = True  # until a slice asked for at or after `since` arrives

    def held(self, terms: Terms, now: float) -> bool:
        return self.renewed is not None and now < self.renewed + terms.keep

    def lapses_at(self, terms: Terms) -> float | None:
        """When the lease lapses unless renewed (None: it is not held)."""
        return None if self.renewed is None else self.renewed + terms.keep

    def may_run(self, terms: Terms, now: float) -> bool:
        return not self.fenced and self.held(terms, now)

    def check(self, terms: Terms, now: float) -> Lease:
        """The lease as of `now`: fenced once it is not held."""
        if self.held(terms, now):
            return self
        return replace(self, since=None, fenced=True)

    def renew(self, terms: Terms, sent: float, acked: float) -> Lease:
        """meta acknowledged, at `acked`, a heartbeat sent at `sent`."""
        was = self.check(terms, acked)
        if was.renewed is not None and sent <= was.renewed:
            return was  # an older heartbeat answered late: it renews nothing
        renewed = replace(was, renewed=sent)
        if not renewed.held(terms, acked):
            return renewed  # it took too long: the lease is not held now either
        return renewed if was.since is not None else replace(renewed, since=acked)

    def sliced(self, terms: Terms, asked: float, now: float) -> Lease:
        """A slice from meta arrived at `now`, asked for at `asked`."""
        lease = self.check(terms, now)
        if lease.fenced and lease.since is not None and asked >= lease.since:
            return replace(lease, fenced=False)
        return lease
