"""Small in-process caches for meta's hottest reads (auth and config vars).

Tokens are cached for half a second (a token revoked on one meta replica works at most that
long on another that saw it; the replica that revoked it drops it at once); config vars are
cached per app and generation, so a change is seen at once by every replica, at the cost of one
cheap query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(
        self, seconds: float, max_items: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.max_items = max_items
        self.clock = clock
        self._items: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        hit = self._items.get(key)
        if hit is None or hit[0] < self.clock():
            return None
        return hit[1]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if len(self._items) >= self.max_items:
                self._items.clear()
            self._items[key] = (self.clock() + self.seconds, value)

    def drop(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class VersionedCache(Generic[K, V]):
    """Values valid for one version of their key (an app's generation)."""

    def __init__(self, max_items: int = 10_000) -> None:
        self.max_items = max_items
        self._items: dict[K, tuple[int, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, version: int) -> V | None:
        hit = self._items.get(key)
        return hit[1] if hit is not None and hit[0] == version else None

    def put(self, key: K, version: int, value: V) -> None:
        with self._lock:
            if len(self._items) >= self.max_items:
                self._items.clear()
            self._items[key] = (version, value)
