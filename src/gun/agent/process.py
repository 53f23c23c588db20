"""The supervisor's view of one process: what `gun ps` shows of it (ProcessState), what the
supervisor keeps while it runs it (Proc), and the platform's sentences about its life (Heroku's
R10 and R12, its exits, why a spawn failed)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from gun.agent.procrecord import ProcessSpec, State
from gun.loops import why

RETIRING = "retiring"  # ROOT/state/procs/retiring/, ROOT/log/procs/retiring/
R10 = (
    "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within {:g} seconds of launch"
)
R12 = (
    "Error R12 (Exit timeout) -> At least one process failed to exit within {:g} seconds of SIGTERM"
)

# What a failed spawn raises: the kernel refusing the exec, the cwd or the environment (OSError),
# or Python refusing the environment before asking (ValueError: an embedded NUL byte).
SPAWN_ERRORS = (OSError, ValueError, subprocess.SubprocessError)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ProcessState:
    """What `gun ps` reports about one process."""

    name: str
    type: str
    state: State
    pid: int | None
    port: int | None
    release: int
    restarts: int  # crash restarts
    exit_code: int | None  # how the last run ended; None if none has ended
    since: datetime  # when the state last changed


@dataclass(eq=False)
class Proc:
    """The supervisor's changing view of one process; the first ten fields are its record."""

    spec: ProcessSpec
    state: State = "starting"
    pid: int | None = None
    pgid: int | None = None
    create_time: float | None = None
    port: int | None = None
    restarts: int = 0
    offset: int = 0  # bytes of its output file already copied to app.log
    started: datetime = field(default_factory=now)  # when the current leader was spawned
    since: datetime = field(default_factory=now)  # when the state last changed
    started_at: float = 0.0  # the spawn, on the loop's clock
    streak: int = 0  # crashes in a row, for the backoff
    exit_code: int | None = None
    out_fd: int | None = None
    request: Literal["run", "stop", "detach"] = "run"
    grace: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # set with a new request
    task: asyncio.Task[None] | None = None
    final: ProcessState | None = None
    retiring: bool = False  # replaced by a prebooted copy; stops after the drain
    spawn_failed: str | None = None  # why the last spawn failed: a crash, through the backoff

    @property
    def key(self) -> str:
        """Where its record and output file live: a retiring copy's are set aside."""
        return f"{RETIRING}/{self.spec.name}" if self.retiring else self.spec.name

    def view(self) -> ProcessState:
        s = self.spec
        return ProcessState(
            s.name, s.type, self.state, self.pid, self.port, s.release, self.restarts,
            self.exit_code, self.since,
        )  # fmt: skip


def free_port(taken: set[int | None]) -> int:
    """A port of 127.0.0.1 free now and not among `taken` (the supervisor's processes')."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port


async def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def spawn_error(e: BaseException, spec: ProcessSpec) -> str:
    """Why a spawn failed, in words that name what to fix."""
    if isinstance(e, OSError) and not spec.cwd.is_dir():
        what = "is not a directory" if spec.cwd.exists() else "is gone"
        return f"its release directory {spec.cwd} {what}"
    if isinstance(e, ValueError) and "null byte" in str(e):
        return "its environment holds a NUL byte, which no process can be given"
    if isinstance(e, OSError) and e.errno == errno.E2BIG:
        return "its environment and command are too large for the system (E2BIG)"
    return why(e)


def exit_line(code: int | None) -> str:
    if code is None:
        return "Process exited with an unknown status: an earlier agent started it"
    return f"Process exited with status {code}"
