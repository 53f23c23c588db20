"""The fake outlet: keeps every bucket it was given, for tests of the drain and the API."""

from __future__ import annotations

from collections.abc import Sequence

from gun.logs.model import Bucket


class MemoryOutlet:
    """Keeps what it got: every bucket in order (`buckets`) and each emit's batch (`batches`)."""

    def __init__(self) -> None:
        self.buckets: list[Bucket] = []
        self.batches: list[list[Bucket]] = []
        self.closed = False
        self.errors = 0

    def emit(self, buckets: Sequence[Bucket]) -> None:
        batch = list(buckets)
        self.batches.append(batch)
        self.buckets.extend(batch)

    def close(self) -> None:
        self.closed = True
