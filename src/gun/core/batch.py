"""Group commit: concurrent calls for one key (an app) run together in one transaction.

The first caller for a key starts a drain: it runs every call queued for the key as one batch,
hands each caller its own result, and goes on with whatever queued meanwhile. Writes to one app
are serialised anyway (one release version at a time); batching them turns N transactions,
each waiting for the app's lock, into one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

P = TypeVar("P")
R = TypeVar("R")


class Batcher(Generic[P, R]):
    """Callers on the event loop wait on futures; only the batch itself runs in a worker
    thread, so N concurrent calls cost one thread hop, not N threads taking turns at the GIL
    and at the app's lock."""

    def __init__(self, most: int | None = None) -> None:
        self.most = most  # calls in one batch at most (None: all that queued)
        self._queued: dict[str, list[tuple[P, asyncio.Future[R]]]] = {}
        self._draining: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(
        self,
        key: str,
        payload: P,
        apply: Callable[[Sequence[P]], Sequence[R | BaseException]],
    ) -> R:
        """`apply` gets the batch's payloads in arrival order and returns, for each, its
        result or the exception to raise to its caller."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queued.setdefault(key, []).append((payload, future))
        if key not in self._draining:
            self._draining.add(key)
            task = asyncio.create_task(self._drain(key, apply))
            self._tasks.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._tasks.discard)
        return await future

    def _take(self, key: str) -> list[tuple[P, asyncio.Future[R]]] | None:
        queued = self._queued.get(key)
        if not queued:
            self._queued.pop(key, None)
            return None
        cut = len(queued) if self.most is None else self.most
        batch, rest = queued[:cut], queued[cut:]
        if rest:
            self._queued[key] = rest
        else:
            del self._queued[key]
        return batch

    async def _drain(
        self, key: str, apply: Callable[[Sequence[P]], Sequence[R | BaseException]]
    ) -> None:
        try:
            while batch := self._take(key):
                try:
                    results = await asyncio.to_thread(apply, [p for p, _ in batch])
                except BaseException as e:  # the whole batch failed: every caller hears why
                    results = [e] * len(batch)
                for (_, future), r in zip(batch, results, strict=True):
                    if future.done():  # its caller went away
                        continue
                    if isinstance(r, BaseException):
                        future.set_exception(r)
                    else:
                        future.set_result(r)
        finally:
            self._draining.discard(key)
