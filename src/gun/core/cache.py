"""A small in-process cache for one of meta's hottest reads: config vars, cached per app and
generation, so a change is seen at once by every replica, at the cost of one cheap query.
(Tokens have their own: core/tokens.py.)"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


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
