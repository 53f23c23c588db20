"""Group commit: concurrent calls for one key (an app) run together in one transaction.

The first caller for a key leads: it takes every call queued for the key, runs them as one
batch, hands each its own result, and passes the lead to a caller that queued meanwhile.
Writes to one app are serialised anyway (one release version at a time); batching them turns
N transactions, each waiting for the app's lock, into one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P")
R = TypeVar("R")


@dataclass
class _Call(Generic[P, R]):
    payload: P
    wake: threading.Event = field(default_factory=threading.Event)  # finished, or now leads
    lead: bool = False
    finished: bool = False
    result: R | None = None
    error: BaseException | None = None


class Batcher(Generic[P, R]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[str, list[_Call[P, R]]] = {}
        self._leading: set[str] = set()

    def run(
        self,
        key: str,
        payload: P,
        apply: Callable[[Sequence[P]], Sequence[R | BaseException]],
    ) -> R:
        """`apply` gets the batch's payloads in arrival order and returns, for each, its
        result or the exception to raise to its caller."""
        call: _Call[P, R] = _Call(payload)
        with self._lock:
            self._queued.setdefault(key, []).append(call)
            if key not in self._leading:
                self._leading.add(key)
                call.lead = True
        if not call.lead:
            call.wake.wait()
        if not call.finished:  # it leads: its own call is in the batch it takes
            self._lead(key, apply)
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    def _lead(self, key: str, apply: Callable[[Sequence[P]], Sequence[R | BaseException]]) -> None:
        with self._lock:
            batch = self._queued.pop(key, [])
        try:
            results: Sequence[R | BaseException] = apply([c.payload for c in batch])
        except BaseException as e:  # the whole batch failed: every caller hears why
            results = [e] * len(batch)
        with self._lock:
            waiting = self._queued.get(key)
            if waiting:
                waiting[0].lead = True  # it wakes up and runs the next batch
            else:
                self._leading.discard(key)
        for c, r in zip(batch, results, strict=True):
            if isinstance(r, BaseException):
                c.error = r
            else:
                c.result = r
            c.finished = True
            c.wake.set()
        if waiting:
            waiting[0].wake.set()
