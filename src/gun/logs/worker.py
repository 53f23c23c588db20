"""Who a worker of the drain is, as its parent tells it in the environment (workers.py):
`GUN_DRAIN_WORKER=INDEX/COUNT/FD/HUB`, the listening socket's file descriptor inherited and
the hub's Unix socket path."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

ENV = "GUN_DRAIN_WORKER"


@dataclass(frozen=True, slots=True)
class Worker:
    index: int  # 0 .. count - 1
    count: int
    fd: int  # the listening socket, inherited
    hub: str  # the hub's Unix socket

    @classmethod
    def from_env(cls) -> Worker | None:
        raw = os.environ.get(ENV)
        if not raw:
            return None
        index, count, fd, hub = raw.split("/", 3)
        return cls(int(index), int(count), int(fd), hub)

    def env(self) -> dict[str, str]:
        return {ENV: f"{self.index}/{self.count}/{self.fd}/{self.hub}"}

    def socket(self) -> socket.socket:
        return socket.socket(fileno=self.fd)
