"""The system side of a one-off process: starting it on a pty or on pipes, reading and writing
its ends without blocking the event loop, and signalling its whole session.

A one-off process leads a session of its own (so its group too). Under a pty the session's
terminal is the pty and an interactive shell in it moves each job into a group of its own, so
stopping a run signals every process of the session, not only the leader's group.

Why `setsid --ctty` (util-linux) and not `os.login_tty` in a preexec_fn: no Python runs
between fork and exec (a preexec_fn can deadlock when the agent has threads, as asyncio's
executor does). Popen's child is not a group leader, so setsid makes it one without forking:
the pid Popen returns is the session's leader, whose controlling terminal is its stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import shutil
import signal
import struct
import subprocess
import termios
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gun import isolation
from gun.agent import procrecord
from gun.isolation import UnixUser

_WINSIZE = struct.Struct("HHHH")  # rows, cols, x pixels, y pixels


@dataclass
class Ends:
    """The agent's ends of a one-off process: a pty's master (all three), or three pipes."""

    pid: int
    stdin: int | None  # the master or the pipe to its stdin; None once closed
    stdout: int  # the master, or the pipe from its stdout
    stderr: int | None  # the pipe from its stderr; None under a pty
    tty: bool

    def close(self) -> None:
        for fd in {self.stdin, self.stdout, self.stderr} - {None}:
            assert fd is not None
            with contextlib.suppress(OSError):
                os.close(fd)
        self.stdin = self.stderr = None

    def end_input(self) -> None:
        """End of input: the terminal's EOF character under a pty, else the pipe closed."""
        if self.tty:
            if self.stdin is not None:
                eof = termios.tcgetattr(self.stdin)[6][termios.VEOF]
                write_now(self.stdin, eof if isinstance(eof, bytes) else bytes([eof]))
        elif self.stdin is not None:
            os.close(self.stdin)
            self.stdin = None

    def resize(self, cols: int, rows: int) -> None:
        """Set the pty's window size; the kernel sends SIGWINCH to its foreground group."""
        if self.tty:
            set_size(self.stdout, cols, rows)


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, _WINSIZE.pack(rows, cols, 0, 0))


def spawn(
    command: str,
    cwd: Path,
    env: Mapping[str, str],
    *,
    tty: bool,
    size: tuple[int, int] | None,
    user: UnixUser | None,
    prefix: str,
) -> Ends:
    """Start `bash -c PREFIX COMMAND` in cwd, leading a new session, on a pty or on pipes."""
    mine: list[int] = []  # the agent's ends
    theirs: list[int] = []  # the child's, closed here once it has them
    try:
        if tty:
            master, slave = os.openpty()
            mine.append(master)
            theirs.append(slave)
            if size is not None:
                set_size(master, *size)
            if user is not None:  # as sshd does: programs that open ttyname() may
                os.fchown(slave, user.uid, -1)
                os.fchmod(slave, 0o600)
            child = (slave, slave, slave)
        else:
            pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
            mine += [pipes[0][1], pipes[1][0], pipes[2][0]]
            theirs += [pipes[0][0], pipes[1][1], pipes[2][1]]
            child = (pipes[0][0], pipes[1][1], pipes[2][1])
        for fd in mine:
            os.set_blocking(fd, False)
        bash = shutil.which("bash") or "/bin/bash"
        with isolation.launch(bash, command, env, user, prefix, keep_stdin=True) as how:
            argv = how.argv
            if tty:
                setsid = shutil.which("setsid", path=isolation.ROOT_ENV["PATH"])
                if setsid is None:
                    raise FileNotFoundError("cannot give a one-off process a terminal: setsid "
                                            "(util-linux) is missing")  # fmt: skip
                argv = [setsid, "--ctty", *argv]
            popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=how.env,
                stdin=child[0],
                stdout=child[1],
                stderr=child[2],
                pass_fds=how.pass_fds,
                start_new_session=not tty,
            )
        popen.returncode = 0  # not a status: keeps Popen from reaping it (procrecord.reaped does)
    except BaseException:
        for fd in mine:
            os.close(fd)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    if tty:
        return Ends(popen.pid, mine[0], mine[0], None, True)
    return Ends(popen.pid, mine[0], mine[1], mine[2], False)


async def _ready(fd: int, write: bool) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, wake)
    try:
        await ready
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


async def read(fd: int, size: int) -> bytes:
    """Up to size bytes of a non-blocking descriptor, as many as are there now (a pty gives
    them a few kB a read); b"" at its end (a pty master says EIO once every slave descriptor
    is closed)."""
    while True:
        try:
            data = os.read(fd, size)
            break
        except BlockingIOError:
            await _ready(fd, write=False)
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise
    if not data or len(data) == size:
        return data
    chunks = [data]
    got = len(data)
    with contextlib.suppress(OSError):  # EAGAIN: that was all; EIO: the end, said next read
        while got < size and (more := os.read(fd, size - got)):
            chunks.append(more)
            got += len(more)
    return b"".join(chunks)


def write_now(fd: int, data: bytes) -> int:
    """Write what the descriptor takes now; how much. A reader that is gone takes it all
    (its input is dropped, as a closed terminal's would be)."""
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
    except OSError as e:
        if e.errno in (errno.EPIPE, errno.EIO, errno.EBADF):
            return len(data)
        raise


async def write(fd: int, data: bytes) -> None:
    """Write all of data to a non-blocking descriptor, waiting while it is full."""
    view = memoryview(data)
    while view:
        view = view[write_now(fd, bytes(view)) :]
        if view:
            await _ready(fd, write=True)


# -- the session ----------------------------------------------------------------------------


def members(sid: int) -> list[int]:
    """Live (not zombie) processes whose session or process group is sid."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2 :].split()
        if fields[0] != b"Z" and sid in (int(fields[2]), int(fields[3])):
            found.append(int(name))
    return found


def signal_session(sid: int, sig: signal.Signals) -> None:
    procrecord.killpg(sid, sig)
    for pid in members(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


async def emptied(sid: int, exited: asyncio.Future[int | None], timeout: float | None) -> bool:
    """Wait until the leader has exited and no process of its session is left; False if
    timeout passes first."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    await asyncio.wait({exited}, timeout=timeout)
    while not exited.done() or members(sid):
        if deadline is not None and loop.time() >= deadline:
            return False
        await asyncio.sleep(procrecord.GROUP_POLL)
    return True
