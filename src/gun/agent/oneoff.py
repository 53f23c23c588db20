"""One-off processes on the agent: `run.N` joined to its client once the rendezvous has met them.

    one = OneOff(spec, tty=True, size=(120, 40), term="xterm-256color", ttl=86400,
                 framing=Framing.GUN)
    code = await attach(one, reader, writer, user=user, prefix=cgroups.command_prefix(),
                        grace=30, say=lambda text: applog.write("heroku", "run.3", [text]))

Also: `port` (PORT; a free one if not given), `stop` (an asyncio.Event: set it to stop the run,
ps.stop) and `started` (called with the pid once it runs, for `gun ps`). `prefix` only joins a
cgroup: sweeping what escaped the session from it afterwards is the caller's (Cgroups.sweep).

The process is what a Procfile's gets: `bash -c` of the command after `.profile.d`, in the
release directory, as the instance's Unix user when given (its environment on a passed
descriptor, gun.isolation `keep_stdin`), with PORT, DYNO=PS=run.N and the config vars; plus
TERM (the client's; `xterm` under a pty when it sent none) and COLUMNS/LINES when the client's
size is known. It leads a session of its own (gun.agent.oneoffio).

Ends. With `tty` it runs on a pty, its controlling terminal, sized to `size`: the client's
bytes go to the master raw (a `\\x03` is the line discipline's SIGINT for the foreground job),
RESIZE frames resize it, STDIN_END types the terminal's EOF character, and everything the
process writes comes back as STDOUT. Without, stdin, stdout and stderr are pipes: STDOUT and
STDERR frames apart, STDIN_END closes its stdin. `Framing.RAW` (Heroku's clients): input and
output are bytes, stdout and stderr merged; without a pty a `\\x04` ends the input. Output goes
out in chunks of at most rendezvous.READ_CHUNK, each written after the last one drained.

End. When the process exits, what is left of its output is sent (waiting at most DRAIN seconds
for a background child that keeps the terminal or a pipe open), then with GUN framing an EXIT
frame with its code (128+N for a signal N), and the connection is closed. Whatever it left in
its session is then stopped as after a disconnect. attach returns the code.

Stops. The client going away (end of stream, a connection error, a malformed frame) hangs the
session up: SIGHUP to every process of it, SIGTERM HANGUP seconds later, SIGKILL after `grace`
more. The time limit (`ttl`, GUN_RUN_TTL) or `stop` being set tells the client in one line,
then SIGTERM, SIGKILL after `grace`. `say` gets the platform's lines for the app's log, as the
supervisor writes them for every process (`heroku[run.N]`); a one-off ends `complete`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gun import rendezvous as rv
from gun.agent import oneoffio, procrecord
from gun.agent.oneoffio import Ends
from gun.agent.process import R12, SPAWN_ERRORS, exit_line, free_port, spawn_error
from gun.agent.procrecord import ProcessSpec
from gun.errors import ProtocolError
from gun.isolation import UnixUser
from gun.loops import why as why_failed
from gun.rendezvous import Framing, Kind

DEFAULT_TTL = 24 * 3600.0  # seconds a run may last (GUN_RUN_TTL)
HANGUP = 2.0  # seconds from a hangup's SIGHUP to its SIGTERM
DRAIN = 1.0  # seconds to wait for the rest of the output once the process has exited
NOT_STARTED = 127  # the exit code a client is told when the process could not be started
RAW_EOF = b"\x04"
logger = logging.getLogger(__name__)
Say = Callable[[str], None]


@dataclass(frozen=True)
class OneOff:
    """One run: what to run (name run.N, type run) and how its client is attached."""

    spec: ProcessSpec
    tty: bool  # under a pty (the client has a terminal), else with pipes
    size: tuple[int, int] | None  # (cols, rows) of the client's terminal at the start
    term: str | None  # the client's TERM
    ttl: float  # seconds it may run; stopped after
    framing: Framing

    def environment(self, port: int) -> dict[str, str]:
        name = self.spec.name
        extra = {"PORT": str(port), "DYNO": name, "PS": name}
        term = self.term or ("xterm" if self.tty else None)
        if term:
            extra["TERM"] = term
        if self.size is not None:
            extra["COLUMNS"], extra["LINES"] = str(self.size[0]), str(self.size[1])
        return procrecord.environment(self.spec, **extra)


async def attach(
    one: OneOff,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    user: UnixUser | None,
    prefix: str = "",
    grace: float = 5.0,
    say: Say = lambda text: None,
    port: int | None = None,
    stop: asyncio.Event | None = None,
    started: Callable[[int], None] = lambda pid: None,
) -> int | None:
    """Run it, joined to the client at the other end of reader/writer; its exit code (None if
    it could not be started). `stop` set: stop it (ps.stop); `started` gets its pid."""
    spec = one.spec
    env = one.environment(port if port is not None else free_port(set()))
    try:
        ends = oneoffio.spawn(
            procrecord.command_line(spec), spec.cwd, env,
            tty=one.tty, size=one.size, user=user, prefix=prefix,
        )  # fmt: skip
    except SPAWN_ERRORS as e:
        why = spawn_error(e, spec)
        say(f"Process failed to start: {why}")
        link = _Link(one, writer)
        await link.notice(f"gun: {spec.name} could not start: {why}")
        await link.finish(NOT_STARTED)
        return None
    try:
        return await _Run(one, ends, reader, writer, grace, say).life(stop, started)
    finally:
        ends.close()


class _Link:
    """The agent's end of the connection: frames (or bytes) out, with backpressure."""

    def __init__(self, one: OneOff, writer: asyncio.StreamWriter) -> None:
        self.one = one
        self.writer = writer
        self.gone = False  # the client went away: output is dropped

    async def send(self, kind: Kind, data: bytes) -> None:
        if self.gone:
            return
        try:
            self.writer.write(rv.frame(kind, data) if self.one.framing == Framing.GUN else data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            self.hang_up()

    async def notice(self, text: str) -> None:
        """A line of the platform's own to the client: stderr, or in the output for RAW."""
        end = "\r\n" if self.one.tty else "\n"
        await self.send(Kind.STDERR, (text + end).encode())

    def hang_up(self) -> None:
        self.gone = True
        self.writer.transport.abort()  # wakes a write waiting for the client to read

    async def finish(self, code: int) -> None:
        """The exit code (GUN framing) and the end of the connection."""
        if self.one.framing == Framing.GUN:
            await self.send(Kind.EXIT, str(code).encode())
        if not self.gone:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError, TimeoutError):
                await asyncio.wait_for(self.writer.wait_closed(), 5)


class _Run:
    def __init__(
        self,
        one: OneOff,
        ends: Ends,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        grace: float,
        say: Say,
    ) -> None:
        self.one, self.ends, self.reader, self.grace, self.say = one, ends, reader, grace, say
        self.link = _Link(one, writer)
        self.name = one.spec.name

    async def life(self, stop: asyncio.Event | None, started: Callable[[int], None]) -> int | None:
        pid = self.ends.pid
        exited = asyncio.ensure_future(procrecord.reaped(pid, procrecord.create_time(pid)))
        self.say(f"Starting process with command `{self.one.spec.command}`")
        self.say("State changed from starting to up")
        started(pid)
        outputs = [asyncio.ensure_future(self._output(self.ends.stdout, Kind.STDOUT))]
        if self.ends.stderr is not None:
            outputs.append(asyncio.ensure_future(self._output(self.ends.stderr, Kind.STDERR)))
        client = asyncio.ensure_future(self._input())
        stopped = asyncio.ensure_future(stop.wait() if stop else asyncio.Event().wait())
        stopping: asyncio.Task[None] | None = None
        try:
            await asyncio.wait(
                {exited, client, stopped}, timeout=self.one.ttl, return_when=asyncio.FIRST_COMPLETED
            )
            if not exited.done():
                stopping = asyncio.create_task(self._stop(exited, client, stopped))
                await asyncio.wait({exited})
            _, late = await asyncio.wait(outputs, timeout=DRAIN)
            for task in (*late, client):
                task.cancel()
            code = exited.result()
            self.say(exit_line(code))
            self.say("State changed from up to complete")
            await self.link.finish(code if code is not None else 255)
            if stopping is None:  # what the process left behind
                stopping = asyncio.create_task(self._hang_up(exited, "the process exited"))
            await stopping
            return code
        finally:
            for f in (*outputs, client, stopped, exited):
                f.cancel()
            if stopping is not None:
                stopping.cancel()
            if oneoffio.members(pid) or not exited.done():  # cancelled: leave nothing
                oneoffio.signal_session(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            if not self.link.writer.transport.is_closing():
                self.link.writer.transport.abort()

    async def _stop(
        self,
        exited: asyncio.Future[int | None],
        client: asyncio.Future[None],
        stopped: asyncio.Future[Any],
    ) -> None:
        """Stop the process while it runs: its client went away, or its time is up."""
        if client.done():
            error = client.exception()
            why = "its client went away"
            if isinstance(error, ProtocolError):
                why = f"its client broke the protocol ({error.message})"
                logger.warning("%s: %s: hanging up", self.name, error.message)
            elif error is not None:  # a bug, or the system refusing its stdin: never silent
                logger.error("%s: reading its client failed", self.name, exc_info=error)
                why = f"reading its client failed ({why_failed(error)})"
            self.link.hang_up()
            await self._hang_up(exited, why)
            return
        if stopped.done():
            line = f"gun: {self.name} was stopped"
        else:
            line = (
                f"gun: {self.name} stopped after its time limit of {self.one.ttl:g} s (GUN_RUN_TTL)"
            )
        await self.link.notice(line)
        self.say(f"Stopping all processes with SIGTERM: {line.removeprefix('gun: ')}")
        await self._kill(exited, [(signal.SIGTERM, self.grace)])

    async def _hang_up(self, exited: asyncio.Future[int | None], why: str) -> None:
        pid = self.ends.pid
        if exited.done() and not oneoffio.members(pid):
            return
        self.say(f"Stopping all processes with SIGHUP: {why}")
        await self._kill(exited, [(signal.SIGHUP, HANGUP), (signal.SIGTERM, self.grace)])

    async def _kill(
        self, exited: asyncio.Future[int | None], steps: list[tuple[signal.Signals, float]]
    ) -> None:
        """Each signal in turn to the whole session, until it is empty; SIGKILL at last."""
        pid = self.ends.pid
        for sig, wait in steps:
            oneoffio.signal_session(pid, sig)
            if await oneoffio.emptied(pid, exited, wait):
                return
        if steps[-1][0] == signal.SIGTERM:
            self.say(R12.format(steps[-1][1]))
        self.say("Stopping all processes with SIGKILL")
        oneoffio.signal_session(pid, signal.SIGKILL)
        await oneoffio.emptied(pid, exited, None)

    async def _output(self, fd: int, kind: Kind) -> None:
        while data := await oneoffio.read(fd, rv.READ_CHUNK):
            await self.link.send(kind, data)

    async def _input(self) -> None:
        """What the client sends, until it goes away (returns, or raises ProtocolError)."""
        if self.one.framing == Framing.RAW:
            return await self._raw_input()
        while True:
            try:
                got = await rv.read_frame(self.reader)
            except (ConnectionError, OSError):
                return
            if got is None:
                return
            kind, payload = got
            if kind == Kind.STDIN:
                await self._feed(payload)
            elif kind == Kind.STDIN_END:
                self.ends.end_input()
            elif kind == Kind.RESIZE:
                self.ends.resize(*rv.read_size(payload))
            else:
                raise ProtocolError(f"rendezvous: a client does not send {kind.name} frames")

    async def _raw_input(self) -> None:
        ended = False
        while True:
            try:
                data = await self.reader.read(rv.READ_CHUNK)
            except (ConnectionError, OSError):
                return
            if not data:
                return
            if ended:
                continue
            if not self.one.tty and RAW_EOF in data:
                await self._feed(data[: data.index(RAW_EOF)])
                self.ends.end_input()
                ended = True
            else:
                await self._feed(data)

    async def _feed(self, data: bytes) -> None:
        if self.ends.stdin is not None:
            await oneoffio.write(self.ends.stdin, data)
