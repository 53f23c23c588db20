"""The address this host's packets toward meta leave from: what a router on this host binds
(agent/routers.py) and what the agent registers as its instance's ip, where routers reach its
web processes (agent/agent.py; core/routing.py backend_of)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


def address_towards(url: str) -> str:
    """The address of this host that its packets to `url`'s host leave from (no packet is
    sent: a UDP socket only asks the routing table)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 443
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        return str(s.getsockname()[0])
