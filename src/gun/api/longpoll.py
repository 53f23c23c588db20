"""The long-poll's wait: an agent's `GET desired?after=GEN` waits here until its app's
generation is past GEN, or its time is up.

One read of the store serves every waiting long-poll. Meta reads the generation of every app,
in one query, when one of its own writes bumped a generation (the store's listener calls
`changed`), and, while any long-poll waits, every POLL_INTERVAL, for the changes other meta
replicas commit. A waiting long-poll compares its app's generation in memory. (Each waiting
long-poll used to read its app's generation from the store every POLL_INTERVAL: 1,000 idle
agents cost meta 1,000 transactions a second; bench/fleet.py.)

No change is missed: a long-poll reads its app's generation from the store before it waits
here, and a commit after that read is either this meta's, which sets `changed` and so brings
another read after it, or another replica's, which the periodic read finds while the long-poll
waits. `watch` is one pass of a meta loop (gun.loops): a read that fails is retried, and meta's
/health says so meanwhile; the long-polls then answer at their time, as the store allows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

from anyio import to_thread

POLL_INTERVAL = 1.0  # seconds between reads while a long-poll waits: other replicas' changes


class Generations:
    """The apps' generations as last read, and the long-polls waiting on them."""

    def __init__(self, read: Callable[[], Mapping[int, int]], every: float = POLL_INTERVAL):
        self._read = read  # every app's generation, by app id (run in a worker thread)
        self.every = every
        self.known: dict[int, int] = {}
        self.reads = 0
        self._waiting = 0
        self._changed = asyncio.Event()  # this meta committed a new generation
        self._moved = asyncio.Event()  # set, and replaced, when a read finds one moved

    def changed(self) -> None:
        """A write of this meta bumped a generation (call on the event loop)."""
        self._changed.set()

    async def wait_past(self, app_id: int, after: int, timeout: float) -> None:
        """Return once the app's generation, as last read, is past `after`, or in `timeout` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiting += 1
        try:
            while self.known.get(app_id, -1) <= after:
                left = deadline - loop.time()
                if left <= 0:
                    return
                moved = self._moved
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(moved.wait(), left)
        finally:
            self._waiting -= 1

    async def watch(self) -> None:
        """One pass: after a change of this meta's, or every `every` s while a long-poll waits,
        read every app's generation and wake the long-polls if one moved."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), self.every)
        if not self._changed.is_set() and not self._waiting:
            return
        self._changed.clear()  # before reading: a commit during the read brings another
        read = await to_thread.run_sync(self._read)
        self.reads += 1
        if any(self.known.get(k) != v for k, v in read.items()):
            self.known = dict(read)
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()
