"""The `ip` commands (iproute2) the harness runs, and what it reads back from them.

Every change the harness makes to the machine's network goes through this file: one guard
route in the root namespace, namespaces, and links, addresses and link states *inside*
namespaces. Nothing here makes a link or an address in the root namespace: a veth pair is
created with both ends already in their namespaces (`ip link add … netns A type veth peer …
netns B`), so it never exists outside them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass

from tests.hosts.machine import HostsError, program

# Marks the harness's guard routes, so that the sweeper never removes a route it did not make.
# 222 is unassigned in /etc/iproute2/rt_protos.
GUARD_PROTO = "222"


def ip(*args: str, netns: str = "") -> str:
    """`ip [-n NETNS] ARGS`'s output; HostsError naming the command if it fails."""
    argv = [program("ip"), *(("-n", netns) if netns else ()), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise HostsError(f"{' '.join(argv)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


# the root namespace: read ----------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    network: ipaddress.IPv4Network
    kind: str  # unicast, unreachable, local, broadcast, ...
    proto: str  # kernel, boot, 222, ...

    def is_guard(self) -> bool:
        """One of the harness's guard routes (of any run)."""
        return self.kind == "unreachable" and self.proto == GUARD_PROTO


def routes() -> list[Route]:
    """The root namespace's IPv4 routes in every table (so its own addresses too), without
    its default routes."""
    found = []
    for route in json.loads(ip("-j", "-4", "route", "show", "table", "all") or "[]"):
        if route["dst"] != "default":
            network = ipaddress.IPv4Network(route["dst"], strict=False)
            found.append(Route(network, route.get("type", "unicast"), route.get("protocol", "")))
    return found


def namespaces() -> list[str]:
    return [ns["name"] for ns in json.loads(ip("-j", "netns", "list") or "[]")]


def links(netns: str = "") -> list[str]:
    return [link["ifname"] for link in json.loads(ip("-j", "link", "show", netns=netns) or "[]")]


# the root namespace: change ----------------------------------------------------------------


def add_guard(subnet: ipaddress.IPv4Network) -> None:
    """Packets from the root namespace to `subnet` fail at once ("No route to host") instead of
    going to the default gateway."""
    ip("route", "add", "unreachable", str(subnet), "proto", GUARD_PROTO)


def remove_guard(subnet: ipaddress.IPv4Network) -> None:
    ip("route", "del", "unreachable", str(subnet), "proto", GUARD_PROTO)


def add_namespace(name: str) -> None:
    ip("netns", "add", name)


def namespace_pids(name: str) -> list[int]:
    return [int(pid) for pid in ip("netns", "pids", name).split()]


def remove_namespace(name: str, patience: float = 5.0) -> None:
    """SIGKILL every process in namespace `name` until none is left, then delete it (which
    deletes its links: a veth goes with either end). A namespace that is gone already is fine.
    """
    if name not in namespaces():
        return
    deadline = time.monotonic() + patience
    while pids := namespace_pids(name):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            ip("netns", "delete", name)  # the name at least; the namespace dies with them
            raise HostsError(f"processes {pids} in namespace {name} did not die on SIGKILL")
        time.sleep(0.02)
    ip("netns", "delete", name)


def remove_link(name: str) -> None:
    ip("link", "delete", name)
