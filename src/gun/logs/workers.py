"""`gun server drain` with GUN_DRAIN_WORKERS=N > 1: a parent process that

- checks the port is free (a port that is taken is said once), then gives each of N workers
  (`gun server drain` again, told who they are by worker.py's variable) a listening socket of
  its own on that port, all with SO_REUSEPORT: the kernel spreads new connections over the
  workers by a hash of their addresses, so a burst of connections does not all land on
  whichever worker woke first (one accept loop would take them all), and a worker that is
  down has no socket, so no connection waits for it;
- runs the hub (hub.py) on a Unix socket in a private directory, with the drain that merges
  the workers' reports, the outlets, the metrics flush and the archive's upkeep (upkeep.py);
- starts a worker that dies again at once the first time, then after 1 s doubling to 30 s
  (back to at once after 60 s up), saying how it ended;
- on SIGTERM or SIGINT, stops the workers (SIGTERM, then SIGKILL after STOP_GRACE), takes
  their last reports and flushes.

The workers are in the parent's process group: stopping the group stops them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from gun import isolation
from gun.errors import UsageError
from gun.logs.health import Health, supervise
from gun.logs.hub import Hub
from gun.logs.server import make_drain
from gun.logs.upkeep import Upkeep
from gun.logs.worker import Worker
from gun.respawn import BACKOFF, ended
from gun.settings import DrainSettings, parse_listen

log = logging.getLogger("gun.drain")
STOP_GRACE = 10.0
WATCH_EVERY = 0.2


def free_address(settings: DrainSettings) -> tuple[str, int]:
    """The address to listen on, checked free by binding it without SO_REUSEPORT (which no
    other socket on it allows); a port of 0 becomes the one the system picked."""
    host, port = parse_listen(settings.listen)
    with _socket(host) as probe:
        try:
            probe.bind((host, port))
        except OSError as e:
            raise UsageError(f"the drain cannot listen on {host}:{port}: {e.strerror}") from None
        return host, int(probe.getsockname()[1])


def _socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def listening(address: tuple[str, int]) -> socket.socket:
    """One worker's listening socket: SO_REUSEPORT, inheritable."""
    sock = _socket(address[0])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        where = f"{address[0]}:{address[1]}"
        raise UsageError(f"the drain cannot listen on {where}: {e.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _Child:
    """One worker process, its listening socket while it runs, and its backoff."""

    def __init__(self, index: int, count: int, address: tuple[str, int], hub: str) -> None:
        self.index, self.count, self.address, self.hub = index, count, address, hub
        self.sock: socket.socket | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.deaths = 0
        self.due = 0.0  # when to start it again

    def start(self) -> None:
        self.sock = listening(self.address)
        worker = Worker(self.index, self.count, self.sock.fileno(), self.hub)
        env = dict(os.environ, **worker.env())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gun.cli", "server", "drain"], env=env, pass_fds=[worker.fd]
        )
        self.started = time.monotonic()

    def close(self) -> None:
        """Its socket goes with it: the kernel sends new connections to the others (those
        queued on it, not yet taken, are reset: their senders retry)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def check(self, now: float) -> None:
        """Start it again when it has died and its backoff is over."""
        if self.process is None:
            if now >= self.due:
                try:
                    self.start()
                except UsageError as e:  # its port was taken while no worker held it
                    self.deaths, wait = BACKOFF.after_crash(self.deaths, 0.0)
                    log.error("drain worker %d: %s; trying again in %.0f s", self.index, e, wait)
                    self.due = now + wait
            return
        code = self.process.poll()
        if code is None:
            return
        up = now - self.started
        self.deaths, wait = BACKOFF.after_crash(self.deaths, up)
        log.error(
            "drain worker %d %s after %.1f s up; starting it again in %.0f s",
            self.index, ended(code), up, wait,
        )  # fmt: skip
        self.close()
        self.process, self.due = None, now + wait

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def wait(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.close()


def run(settings: DrainSettings) -> None:
    """The parent of settings.workers workers, until SIGTERM or SIGINT."""
    drain, prometheus = make_drain(settings)  # the hub's: outlets, the archive's upkeep
    host, port = address = free_address(settings)
    path = hub_path(settings.home)
    children = [_Child(i, settings.workers, address, path) for i in range(settings.workers)]
    scheme = "https" if settings.tls_cert else "http"
    print(f"drain listening on {scheme}://{host}:{port}: {settings.workers} workers", flush=True)
    try:
        health, upkeep = Health(), Upkeep(drain)
        hub = Hub(drain, prometheus, health, upkeep.steps)
        asyncio.run(_parent(hub, upkeep, path, children))
    finally:
        for child in children:
            child.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
            if Path(path).parent.name.startswith("gun-drain-hub-"):
                Path(path).parent.rmdir()


def hub_path(home: Path) -> str:
    """Where the hub's socket goes: GUN_HOME/run (0700), or a new private directory in the
    temporary one when that path is too long for a Unix socket. A socket left by a drain that
    was killed is removed."""
    run_dir = home / "run"
    isolation.make_dir(run_dir, isolation.PRIVATE_DIR)
    for old in run_dir.glob("drain-hub-*.sock"):
        pid = old.name.removeprefix("drain-hub-").removesuffix(".sock")
        if pid.isdecimal() and not psutil.pid_exists(int(pid)):
            old.unlink(missing_ok=True)
    path = run_dir / f"drain-hub-{os.getpid()}.sock"
    if len(str(path)) < 100:
        return str(path)
    return str(Path(tempfile.mkdtemp(prefix="gun-drain-hub-")) / "hub.sock")


async def _parent(hub: Hub, upkeep: Upkeep, path: str, children: list[_Child]) -> None:
    drain = hub.drain
    await hub.start(path)
    tasks = [
        asyncio.create_task(supervise(name, loop, hub.health))
        for name, loop in (
            ("the metrics flush", upkeep.flush_loop),
            ("the archive upkeep", upkeep.archive_loop),
        )
    ]
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    for child in children:
        child.start()
    while not stopping.is_set():
        now = time.monotonic()
        for child in children:
            child.check(now)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), WATCH_EVERY)
    for child in children:
        child.stop()
    deadline = time.monotonic() + STOP_GRACE
    await asyncio.gather(*(asyncio.to_thread(c.wait, deadline) for c in children))
    await asyncio.sleep(0.1)  # the last reports, read by the hub
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await hub.close()
    drain.flush()
    for outlet in drain.outlets:
        outlet.close()
