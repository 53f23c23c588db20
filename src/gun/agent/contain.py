"""Containment: a cgroup per process, so that what escapes its process group (a `setsid`, a
double fork into a new session) still goes with it.

Each supervisor gets one cgroup directory of its own, `gun-<hash of its root>`, under the
agent's own cgroup in the first hierarchy it can write: pure cgroup v2, the v2 hierarchy of a
hybrid setup (`unified`), or v1's `pids`. A process's `bash -c` first makes `DIR/$$` and moves
itself in (`command_prefix`), so everything it ever starts is inside before it runs a line of
the app; bash then execs the command as before. When the process's group is gone, `sweep`
kills whatever is left in that cgroup (`cgroup.kill` where the kernel has it, else SIGKILL to
each pid) and removes it. Where no hierarchy is writable (not root, no cgroups), processes run
as before, contained by their process group only, and the agent says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from pathlib import Path

from gun import isolation

MOUNT = Path("/sys/fs/cgroup")
SWEEP_TIMEOUT = 5.0  # seconds to wait for killed members to leave a cgroup


def hierarchies(mount: Path = MOUNT) -> list[tuple[Path, str]]:
    """(mount point, hierarchy id in /proc/self/cgroup) of each usable hierarchy, best first."""
    found = []
    if (mount / "cgroup.controllers").is_file():
        found.append((mount, "0"))  # pure v2
    if (mount / "unified" / "cgroup.procs").is_file():
        found.append((mount / "unified", "0"))  # hybrid: v2 without controllers
    if (mount / "pids" / "cgroup.procs").is_file():
        found.append((mount / "pids", "pids"))
    return found


def own_path(hierarchy: str, proc_cgroup: str) -> str:
    """This process's cgroup in a hierarchy, from the text of /proc/self/cgroup ("" if none)."""
    for line in proc_cgroup.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if (hierarchy == "0" and number == "0") or hierarchy in controllers.split(","):
            return path.strip("/")
    return ""


def name_for(root: Path) -> str:
    """The cgroup directory name of the supervisor of `root` (the name of its user too)."""
    return isolation.instance_user_name(root)


def candidates(root: Path, mount: Path = MOUNT) -> list[Path]:
    """Where the cgroup directory of the supervisor of `root` would be, best first."""
    try:
        mine = Path("/proc/self/cgroup").read_text()
    except OSError:
        return []
    return [base / own_path(h, mine) / name_for(root) for base, h in hierarchies(mount)]


class Cgroups:
    """The cgroup directory of one supervisor; None from `open` where none can be made."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def open(cls, root: Path, mount: Path = MOUNT) -> Cgroups | None:
        for directory in candidates(root, mount):
            try:
                directory.mkdir(exist_ok=True)
            except OSError:
                continue
            if os.access(directory / "cgroup.procs", os.W_OK):
                return cls(directory)
            with contextlib.suppress(OSError):
                directory.rmdir()
        return None

    def command_prefix(self) -> str:
        """Shell text that moves `bash -c` itself into the cgroup `DIR/$$` before the command;
        if that cannot be done the command runs anyway, uncontained."""
        d = shlex.quote(str(self.directory))
        # command -p: mkdir from the default PATH, whatever PATH the app sets
        make = f"command -p mkdir -p {d}/$$ 2>/dev/null"
        return f"{make} && echo $$ >{d}/$$/cgroup.procs 2>/dev/null; "

    def members(self, pid: int) -> list[int]:
        """The pids in the cgroup of the process that was `pid` (none if there is no such)."""
        try:
            text = (self.directory / str(pid) / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(n) for n in text.split()]

    def send(self, pid: int, sig: signal.Signals) -> None:
        """Send sig to every process in the cgroup of the process that was `pid`."""
        for n in self.members(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(n, sig)

    async def emptied(self, pid: int, deadline: float) -> bool:
        """Wait until the cgroup of the process that was `pid` is empty; False if the event
        loop's clock passes `deadline` first."""
        loop = asyncio.get_running_loop()
        while self.members(pid):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def sweep(self, pid: int) -> list[int]:
        """Kill what is left in the cgroup of the process that was `pid` (the leader of
        process group `pid`), then remove the cgroup; returns the pids it killed that had
        left that process group."""
        path = self.directory / str(pid)
        killed: list[int] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SWEEP_TIMEOUT
        while left := self.members(pid):
            killed += [n for n in left if n not in killed and _pgid(n) not in (pid, None)]
            try:
                (path / "cgroup.kill").write_text("1")
            except OSError:  # cgroup v1, or a kernel before 5.14
                for n in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(n, signal.SIGKILL)
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.01)
        with contextlib.suppress(OSError):
            path.rmdir()
        return killed

    def close(self) -> None:
        """Remove the supervisor's directory if no process cgroup is left in it."""
        with contextlib.suppress(OSError):
            self.directory.rmdir()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def remove(root: Path, timeout: float = 5.0) -> None:
    """Kill everything in the cgroups of the supervisor of `root` and remove them: cleanup
    after an agent that was killed (tests, or an instance being deleted)."""
    for directory in candidates(root):
        if not directory.is_dir():
            continue
        deadline = time.monotonic() + timeout
        cgroups = Cgroups(directory)
        while True:
            for child in [d for d in directory.iterdir() if d.is_dir()]:
                for pid in cgroups.members(int(child.name)) if child.name.isdigit() else []:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    child.rmdir()
            with contextlib.suppress(OSError):
                directory.rmdir()
            if not directory.exists() or time.monotonic() > deadline:
                break
            time.sleep(0.02)
