"""Fencing on an instance: the agent's lease (gun.agent.lease) as time passes, kept in
ROOT/state/lease.json so that an agent started again on the same boot carries it on.

The agent tells it of every heartbeat meta acknowledged (`renewed`) and every slice that
arrived (`sliced`); it says whether the slice's processes may run now (`may_run`), and when a
fresh slice is needed at once (`repoll`: the lease is held again, but the instance is fenced
until a slice asked for since arrives). Its loop (`guard`) stops every process once the lease
lapses. `heartbeat` says how often to send heartbeats. A slice without `lease` is not fenced:
everything here then answers as if the lease were held.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from gun import atomic
from gun.agent.lease import Lease
from gun.agent.supervisor import Supervisor
from gun.protocol import Lease as Terms

log = logging.getLogger("gun.agent")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def clock() -> float:
    """Seconds on this host's boot clock: monotonic, and counting a suspended host's sleep."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def heartbeat(
    terms: Terms | None,
    interval: float,
    news: bool = True,
    draw: Callable[[], float] = random.random,
) -> tuple[float, float | None]:
    """Seconds until the next heartbeat, and how long one may take (None: the client's own).
    A lease gets at least three heartbeats, each no longer than the lease; when the last one
    meta acknowledged said all there is to say (`news` false), that is all it gets: 1,000
    agents heartbeating every `interval` (2 s) were more than meta could answer
    (bench/fleet.py). Those are drawn from the last quarter before a third of the lease, so
    that agents that heard of one change together do not beat together ever after. Without a
    lease, every `interval`."""
    if terms is None:
        return interval, None
    every = terms.keep / 3
    if not news:
        return every * (1 - draw() / 4), min(10.0, terms.keep)
    return min(interval, every), min(10.0, terms.keep)


class Fence:
    def __init__(self, root: Path) -> None:
        self.path = root / "state" / "lease.json"
        self.lease = self._load()
        self.repoll = asyncio.Event()  # a fresh slice is needed now
        self._said_fenced = False

    def _load(self) -> Lease:
        """The lease the last agent saved, if it ran on this boot (its clock is ours)."""
        try:
            saved = json.loads(self.path.read_text())
            if saved.pop("boot") == boot_id() != "":
                return Lease(**saved)
        except (OSError, ValueError, TypeError, KeyError):
            pass
        return Lease()

    def _set(self, lease: Lease) -> None:
        if lease == self.lease:
            return
        if lease.fenced and not self.lease.fenced:
            log.warning("lease lapsed: fenced processes stop until meta is heard again")
        elif self.lease.fenced and not lease.fenced:
            log.info("lease held and a fresh slice from meta: fenced processes may run")
        self.lease = lease
        try:
            atomic.write(self.path, json.dumps({"boot": boot_id(), **asdict(lease)}), sync=False)
        except OSError as e:  # the next agent starts fenced: safe
            log.warning("cannot save the lease: %s", e)

    def renewed(self, terms: Terms | None, sent: float) -> None:
        """meta acknowledged a heartbeat (or the registration) sent at `sent`."""
        if terms is None:
            return
        self._set(self.lease.renew(terms, sent, clock()))
        if self.lease.fenced and self.lease.since is not None:
            self.repoll.set()

    def sliced(self, terms: Terms | None, asked: float) -> None:
        """A slice arrived, asked for at `asked`."""
        if terms is not None:
            self._set(self.lease.sliced(terms, asked, clock()))

    def needs_slice(self, terms: Terms | None) -> bool:
        """Held, but fenced: a slice is to be asked for at once (not long-polled)."""
        if terms is None:
            return False
        lease = self.lease.check(terms, clock())
        return lease.fenced and lease.since is not None

    def may_run(self, terms: Terms | None) -> bool:
        if terms is None:
            return True
        self._set(self.lease.check(terms, clock()))
        return self.lease.may_run(terms, clock())

    def wake_at(self, terms: Terms | None) -> float | None:
        """When `may_run` turns false unless the lease is renewed (None: not before a change)."""
        if terms is None or self.lease.fenced:
            return None
        return self.lease.lapses_at(terms)

    async def guard(self, terms: Terms | None, supervisor: Supervisor) -> None:
        """One pass of the fence loop: have every process stopped (SIGTERM, SIGKILL after the
        lease's grace) if they may not run; then wait until the lease may lapse, a process
        changes, or a second passes."""
        if terms is not None and not self.may_run(terms):
            told = supervisor.stop_all(terms.grace)
            if told:
                log.warning("lease lapsed: stopping %s", ", ".join(told))
        wait = 1.0
        lapse = self.wake_at(terms)
        if lapse is not None:
            wait = max(0.0, min(wait, lapse - clock()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(supervisor.changed(), wait)
