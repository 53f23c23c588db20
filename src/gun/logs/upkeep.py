"""The drain's two long-lived tasks, each a loop of passes that never ends on its own (a step
that fails is logged and tried again on the next pass: health.Steps):

- the metrics flush: every FLUSH_EVERY seconds, closed buckets to the outlets;
- the archive's upkeep: the retention and the per-app cap on this disk every PRUNE_EVERY
  seconds (and at start), the retention in the bucket every PRUNE_REMOTE_EVERY (it lists the
  whole bucket), finished hours to the bucket every SHIP_EVERY. Apart from the flush, so that
  a slow disk or bucket never holds up metrics.

Disk and network work runs in threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from functools import partial

from gun.logs.archive import Archive, Capped
from gun.logs.drain import Drain
from gun.logs.health import Steps

log = logging.getLogger("gun.drain")
FLUSH_EVERY = 1.0
PRUNE_EVERY = 60.0
PRUNE_REMOTE_EVERY = 3600.0
SHIP_EVERY = 60.0
MB = 2**20


class Upkeep:
    def __init__(
        self, drain: Drain, prune_every: float = PRUNE_EVERY, ship_every: float = SHIP_EVERY
    ) -> None:
        self.drain = drain
        self.prune_every, self.ship_every = prune_every, ship_every
        self.steps = Steps()

    async def flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self.steps.run("flushing metrics", self._flush)

    async def _flush(self) -> None:
        buckets = self.drain.collect()
        await asyncio.to_thread(self.drain.emit, buckets)

    async def archive_loop(self) -> None:
        archive = self.drain.archive
        if archive is None:
            await asyncio.Event().wait()  # nothing to keep up: wait to be cancelled
            return
        pruned = pruned_remote = shipped = -math.inf
        while True:
            now = time.monotonic()
            if now - pruned >= self.prune_every:
                pruned = now
                await self.steps.run("pruning the log archive", partial(self._prune, archive))
            if archive.remote and now - pruned_remote >= PRUNE_REMOTE_EVERY:
                pruned_remote = now
                prune = partial(asyncio.to_thread, archive.prune_remote, time.time())
                await self.steps.run("pruning the remote log archive", prune)
            if archive.remote and now - shipped >= self.ship_every:
                shipped = now
                ship = partial(self._ship, archive)
                await self.steps.run("sending hours to the remote archive", ship)
            await asyncio.sleep(min(self.prune_every, self.ship_every, FLUSH_EVERY))

    async def _prune(self, archive: Archive) -> None:
        await asyncio.to_thread(archive.prune_local, time.time())
        for capped in await asyncio.to_thread(archive.cap, time.time()):
            log.warning("%s", capped_sentence(capped, archive.max_bytes or 0))

    async def _ship(self, archive: Archive) -> None:
        sent = await asyncio.to_thread(archive.ship, time.time())
        if sent:
            log.info("sent %d archive hours to the remote archive", len(sent))


def capped_sentence(c: Capped, cap: int) -> str:
    """What the drain's log says of an app's hours deleted for its cap."""
    hours = c.hours[0] if len(c.hours) == 1 else f"{c.hours[0]} to {c.hours[-1]}"
    return (
        f"the archive of app {c.app} held {c.held / MB:.1f} MB, over its cap of {cap / MB:g} MB"
        f" (GUN_LOG_ARCHIVE_MAX_MB): deleted its oldest hours, {hours} UTC"
        f" ({_many(len(c.hours), 'hour')}, {c.freed / MB:.1f} MB)"
    )


def _many(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
