"""Runs: who owns which test hosts, so that two runs on one machine never collide and what a
dead run left behind can be swept without touching a live run's.

A run is one `Fleet`. It claims, under a machine-wide lock, a name prefix `gt<4 hex>` that no
other run and no namespace or link uses, and the first /24 of 10.200.0.0/16 that no route on
the machine overlaps (its own addresses included) and no other run holds; it records both with
its owner (PID and the owner's start time, so that a reused PID is not mistaken for it) and its
temp dir in STATE/<prefix>.json before it makes anything. Every namespace and link it makes is
named `<prefix>-…`; its guard route is `unreachable <subnet> proto 222`.

`sweep()` holds the same lock, reads the records, then removes everything of the harness's
family (names `gt<4 hex>-…`, guard routes in 10.200.0.0/16) that no live run holds: namespaces
(after SIGKILL of every process in them), root-namespace links, guard routes, then dead runs'
temp dirs and records. A run claims under the lock, so the sweeper never sees a live run's
names before its record.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil

from tests.hosts import ip
from tests.hosts.machine import HostsError

STATE = Path("/run/gun-test-hosts")
SUBNETS = ipaddress.IPv4Network("10.200.0.0/16")
FAMILY = re.compile(r"^(gt[0-9a-f]{4})-")  # every name a run makes; group 1 is its prefix


@dataclass(frozen=True)
class Run:
    prefix: str  # gt1a2b
    subnet: ipaddress.IPv4Network
    pid: int
    started: float  # the owner's start time (psutil's create_time)
    dir: Path  # the run's temp dir: gun-hosts-<prefix>-…

    def alive(self) -> bool:
        """Its owner is still running: the same PID, started at the same time, not a zombie."""
        try:
            owner = psutil.Process(self.pid)
            same = abs(owner.create_time() - self.started) < 0.5
            return same and owner.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def record(self) -> Path:
        return STATE / f"{self.prefix}.json"


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One claimer or sweeper at a time on this machine (released when its process dies)."""
    STATE.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(STATE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def claim() -> Run:
    """A prefix, a subnet and a temp dir of this process's own, recorded before it makes
    anything else on the machine."""
    with locked():
        known = records()
        taken = {r.prefix for r in known} | prefixes(ip.namespaces() + ip.links())
        prefix = new_prefix(taken)
        held = {r.subnet for r in known}
        subnet = free_subnet([r.network for r in ip.routes()], held)
        me = psutil.Process()
        where = Path(tempfile.mkdtemp(prefix=f"gun-hosts-{prefix}-"))
        run = Run(prefix, subnet, me.pid, me.create_time(), where)
        write(run)
        return run


def new_prefix(taken: set[str]) -> str:
    for _ in range(1000):
        if (prefix := f"gt{secrets.token_hex(2)}") not in taken:
            return prefix
    raise HostsError(f"no free name prefix: {len(taken)} are taken")


def free_subnet(
    routed: list[ipaddress.IPv4Network], held: set[ipaddress.IPv4Network]
) -> ipaddress.IPv4Network:
    """The first /24 of SUBNETS that no route overlaps and no run holds. A route that covers
    it from further out (10.0.0.0/8 via a VPN) counts too: test hosts never shadow a network
    the machine really reaches."""
    for subnet in SUBNETS.subnets(new_prefix=24):
        if subnet not in held and not any(subnet.overlaps(net) for net in routed):
            return subnet
    raise HostsError(f"no free /24 left in {SUBNETS}: every one is routed or held by a run")


def forget(run: Run) -> None:
    """The last step of a run: its temp dir and its record."""
    if run.dir.name.startswith(f"gun-hosts-{run.prefix}-"):
        shutil.rmtree(run.dir, ignore_errors=True)
    run.record().unlink(missing_ok=True)


def write(run: Run) -> None:
    text = json.dumps(
        {
            "prefix": run.prefix,
            "subnet": str(run.subnet),
            "pid": run.pid,
            "started": run.started,
            "dir": str(run.dir),
        }
    )
    unfinished = run.record().with_suffix(".partial")
    unfinished.write_text(text)
    unfinished.replace(run.record())


def records() -> list[Run]:
    """Every run's record; one that cannot be read is removed (its names then belong to no
    run and are swept)."""
    found = []
    for path in sorted(STATE.glob("gt*.json")):
        try:
            data = json.loads(path.read_text())
            found.append(
                Run(
                    data["prefix"],
                    ipaddress.IPv4Network(data["subnet"]),
                    int(data["pid"]),
                    float(data["started"]),
                    Path(data["dir"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
    return found


def prefixes(names: list[str]) -> set[str]:
    return {m.group(1) for name in names if (m := FAMILY.match(name))}


def sweep() -> list[str]:
    """Remove what runs whose owner is dead left on this machine; one line per thing removed
    (or that could not be)."""
    removed: list[str] = []
    with locked():
        known = records()
        live = [r for r in known if r.alive()]
        live_prefixes = {r.prefix for r in live}
        for ns in ip.namespaces():
            if (m := FAMILY.match(ns)) and m.group(1) not in live_prefixes:
                removed.append(attempt(f"namespace {ns}", partial(ip.remove_namespace, ns)))
        for link in ip.links():
            if (m := FAMILY.match(link)) and m.group(1) not in live_prefixes:
                removed.append(attempt(f"link {link}", partial(ip.remove_link, link)))
        live_subnets = {r.subnet for r in live}
        for route in ip.routes():
            inside = route.network.subnet_of(SUBNETS)
            if route.is_guard() and inside and route.network not in live_subnets:
                what = f"route unreachable {route.network}"
                removed.append(attempt(what, partial(ip.remove_guard, route.network)))
        for run in known:
            if run not in live:
                forget(run)
                removed.append(f"run {run.prefix} of dead PID {run.pid}: {run.dir}")
    return removed


def attempt(what: str, action: Callable[[], None]) -> str:
    try:
        action()
        return what
    except HostsError as e:
        return f"{what}: could not: {e}"
