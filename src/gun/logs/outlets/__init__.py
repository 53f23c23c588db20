"""Outlets: where the drain sends closed buckets — whisper files in Graphite's layout, a statsd
server over UDP, Prometheus text — plus an in-memory fake for tests.

Every outlet takes a batch of buckets with `emit` and releases what it holds with `close`.
The real outlets count their failures in `errors` (and log them) instead of raising, so one
broken destination never stops the drain or the other outlets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gun.logs.model import Bucket
from gun.logs.outlets.memory import MemoryOutlet
from gun.logs.outlets.prometheus import PrometheusOutlet
from gun.logs.outlets.statsd import StatsdOutlet
from gun.logs.outlets.whisper import WhisperOutlet


class Outlet(Protocol):
    """A destination for closed buckets."""

    def emit(self, buckets: Sequence[Bucket]) -> None:
        """Send or store these buckets; a destination's failure is counted, not raised."""
        ...

    def close(self) -> None:
        """Release sockets and files; emit is not called afterwards."""
        ...


__all__ = ["MemoryOutlet", "Outlet", "PrometheusOutlet", "StatsdOutlet", "WhisperOutlet"]
