"""The supervisor: runs an app's processes on one instance, restarts crashes, stops them cleanly.

Each process is `bash -c COMMAND` in its own session and process group, run as the instance's
Unix user when the supervisor has one (gun.isolation; the pid leads the group either way). Its
stdout and stderr go to a file (ROOT/log/procs/NAME.out), never a pipe, so it outlives an agent
killed with SIGKILL; one tail loop copies every line into ROOT/log/app.log. Exits are seen
through a pidfd (no thread per process); records in ROOT/state/procs let the next agent
re-adopt processes. The supervisor decides; gun.agent.process holds its view of each process,
gun.agent.procfiles its records and output files, gun.agent.procrecord the system calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

import psutil

from gun.agent import applog, procrecord
from gun.agent.applog import AppLog, LogSink
from gun.agent.backoff import Backoff
from gun.agent.contain import Cgroups
from gun.agent.process import (
    R10,
    R12,
    RETIRING,
    SPAWN_ERRORS,
    Proc,
    ProcessState,
    accepts,
    exit_line,
    free_port,
    now,
    spawn_error,
)
from gun.agent.procfiles import ProcessFiles
from gun.agent.procrecord import ProcessSpec, State
from gun.errors import Conflict, InvalidParams, NotFound, Unavailable
from gun.isolation import UnixUser
from gun.loops import Loops
from gun.settings import AppLogLimits

__all__ = ["Backoff", "LogSink", "ProcessSpec", "ProcessState", "State", "Supervisor"]

DEFAULT_BACKOFF = Backoff()
BOOT_POLL = 0.1  # seconds between attempts to connect to a booting web process
Exit = asyncio.Future[int | None]  # the leader's exit code; None when it is not our child
logger = logging.getLogger(__name__)


class Supervisor:
    """Runs processes under ROOT; call every method from the same event loop."""

    def __init__(
        self,
        root: Path,
        *,
        boot_timeout: float = 60.0,
        grace: float = 30.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        log: LogSink | None = None,
        poll: float = 0.1,
        contain: bool = True,
        user: UnixUser | None = None,
        isolated: bool = False,
        rotation: AppLogLimits = applog.DEFAULT_ROTATION,
    ) -> None:
        for name, value in (("boot_timeout", boot_timeout), ("grace", grace), ("poll", poll)):
            if not value >= 0:
                raise InvalidParams(f"supervisor {name} {value!r} is invalid: use 0 or more")
        self.root = root
        self.boot_timeout = boot_timeout
        self.grace = grace
        self.backoff = backoff
        self.applog = AppLog(applog.path_of(root), log, rotation)
        self.files = ProcessFiles(root, self.applog)
        self.loops = Loops(logger)  # the tail loop
        self._poll = poll
        self._procs: dict[str, Proc] = {}
        self._retiring: dict[str, Proc] = {}
        self._changes = asyncio.Event()
        self._opened = False
        self._closed = False
        self._contain = contain  # a cgroup per process, where one can be made
        self.cgroups: Cgroups | None = None
        self.user = user  # whom processes run as (gun.isolation); None: the agent's own user
        self._isolated = isolated  # processes must run as self.user: none starts without one

    async def start(self, spec: ProcessSpec) -> ProcessState:
        """Spawn the process: `starting` (web, until it accepts on $PORT), else `up`."""
        return self._start(spec, restarts=0)

    async def stop(self, name: str, grace: float | None = None) -> ProcessState:
        """SIGTERM the group, SIGKILL it after the grace period; return once the group is empty."""
        p = self._get(name)
        await self._stop(p, self.grace if grace is None else grace)
        assert p.final is not None
        return p.final

    async def drain_and_stop(self, name: str, drain: float) -> ProcessState:
        """Stop a process no longer wanted; a web process that is up serves `drain` seconds
        more first, while routers, told by meta that it is gone, stop sending it requests
        (those under way finish before its SIGTERM)."""
        p = self._get(name)
        if p.spec.type == "web" and p.state == "up" and drain > 0:
            self._platform(p, f"Stopping in {drain:g}s, once the router sends it no request")
            await asyncio.sleep(drain)
        return await self.stop(name)

    def stop_all(self, grace: float) -> list[str]:
        """Have every process stopped (SIGTERM to the group, SIGKILL after `grace`), copies
        being replaced too, without waiting: the names of those told now (fencing). One that is
        being stopped already keeps the grace it was given."""
        told = []
        for p in [*self._procs.values(), *self._retiring.values()]:
            if p.request == "run":
                p.request, p.grace = "stop", grace
                p.wake.set()
                told.append(p.spec.name)
        return told

    async def preboot(self, spec: ProcessSpec, drain: float = 0.0) -> ProcessState:
        """Replace a web process without a gap: start the new copy on a new port while the old
        one serves; once the new one accepts connections (or fails to), wait `drain` seconds
        for routers to notice, then stop the old one. Anything else is stopped, then started."""
        old = self._procs.get(spec.name)
        if old is None or old.state != "up" or spec.type != "web" or spec.name in self._retiring:
            if old is not None:
                await self.stop(spec.name)
            return self._start(spec, restarts=0)
        self._retire(old)
        try:
            self._start(spec, restarts=0)
        except BaseException:
            await self._stop(old, self.grace)
            raise
        new = self._procs[spec.name]
        while new.state == "starting" and new.request == "run":
            await self.changed()
        if new.state == "up" and drain > 0:
            await asyncio.sleep(drain)
        if old.request == "run":  # else it exited during the drain, or is being let go
            self._platform(old, f"Stopping the process it replaced (pid {old.pid})")
        await self._stop(old, self.grace)
        return new.view()

    def _retire(self, p: Proc) -> None:
        """Set p aside, still running, while its new copy boots."""
        self.files.retire(p)
        del self._procs[p.spec.name]
        self._retiring[p.spec.name] = p

    async def _stop(self, p: Proc, grace: float) -> None:
        if p.request == "run":
            p.request, p.grace = "stop", grace
            p.wake.set()
        if p.task is not None:
            await asyncio.shield(p.task)

    def states(self) -> list[ProcessState]:
        return [p.view() for _, p in sorted(self._procs.items())]

    def serving(self) -> list[ProcessState]:
        """What to tell routers: like states(), but a web process being prebooted is shown as
        the copy that still serves until the new one is up."""
        out = []
        for name, p in sorted(self._procs.items()):
            old = self._retiring.get(name)
            prebooting = old is not None and old.state == "up" and p.state == "starting"
            out.append((old if prebooting and old else p).view())
        return out

    async def changed(self) -> None:
        """Return at the next state change of any process."""
        await self._changes.wait()

    async def adopt(self) -> list[str]:
        """Re-adopt the processes a previous agent recorded; clean up after the dead ones."""
        self._open()
        adopted = []
        for rec in procrecord.load_all(self.root, RETIRING):
            # a copy that was being replaced when the last agent died: its successor runs
            p = self.files.load(rec, retiring=True)
            alive = rec.pid is not None and procrecord.same_process(rec.pid, rec.create_time)
            await self._bury(p, alive, f"Process being replaced (pid {rec.pid}) was killed")
        for rec in procrecord.load_all(self.root):
            if rec.spec.name in self._procs:
                continue
            p = self.files.load(rec)
            alive = rec.pid is not None and procrecord.same_process(rec.pid, rec.create_time)
            if alive and rec.state != "stopping":
                self._procs[rec.spec.name] = p
                self._run(p)
                self._platform(p, f"Process re-adopted by a new agent (pid {rec.pid})")
                adopted.append(rec.spec.name)
                continue
            why = "was being stopped: killed it" if alive else "exited while no agent watched"
            await self._bury(
                p, alive, f"Process (pid {rec.pid}) {why}" if rec.pid is not None else None
            )
        return adopted

    async def _bury(self, p: Proc, alive: bool, said: str | None) -> None:
        """Clean up after a process an earlier agent recorded, dead or not to be kept: kill
        what is left of its group (while any member is left, no new process can get the
        number pgid, so a group of that id without such a process is ours), copy its last
        output, say `said`, forget it."""
        if p.pgid is not None:
            if alive or not psutil.pid_exists(p.pgid):
                procrecord.killpg(p.pgid, signal.SIGKILL)
            await self._sweep(p, p.pgid)
        self.files.pump(p, final=True)
        if said:
            self._platform(p, said)
        self._forget(p)

    async def shutdown(self, stop_processes: bool) -> None:
        """Stop every process (gun up exiting), or leave them running for the next agent."""
        procs = [*self._procs.values(), *self._retiring.values()]
        for p in procs:
            if p.request == "run":
                p.request, p.grace = ("stop", self.grace) if stop_processes else ("detach", 0)
                p.wake.set()
        await asyncio.gather(*(asyncio.shield(p.task) for p in procs if p.task))
        await self.loops.stop()
        self.applog.close()
        if self.cgroups is not None:
            self.cgroups.close()  # only if empty: detached processes keep theirs
        self._closed = True

    # -- one process's life ----------------------------------------------------------------

    def _start(self, spec: ProcessSpec, restarts: int) -> ProcessState:
        """Spawn the process and watch it. A spawn that fails is a crash: the process is shown
        crashed and tried again with the crash backoff, one platform line per attempt."""
        self._open()
        if spec.name in self._procs:
            raise Conflict(f"process {spec.name} is already running here: stop or restart it")
        p = Proc(spec, restarts=restarts)
        self._procs[spec.name] = p
        self._try_spawn(p)
        self._run(p)
        return p.view()

    def _try_spawn(self, p: Proc) -> None:
        """Spawn p; if the system refuses, say why in app.log and mark it `spawn_failed`."""
        try:
            self._spawn(p)
        except SPAWN_ERRORS as e:
            if p.pid is not None:  # it started, but what follows failed: it must not linger
                procrecord.killpg(p.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(p.pid, 0)
                p.pid = p.pgid = p.port = None
            p.spawn_failed = spawn_error(e, p.spec)
            p.started_at = asyncio.get_running_loop().time()  # it ran for no time at all

    def _run(self, p: Proc) -> None:
        p.task = asyncio.create_task(self._life(p), name=f"supervise {p.spec.name}")

    async def _life(self, p: Proc) -> None:
        exited: Exit | None = None
        try:
            while True:
                if p.spawn_failed:  # a crash like any other: the backoff, then again
                    await self._crashed(p, None)
                if p.pid is not None and exited is None:
                    exited = asyncio.ensure_future(procrecord.reaped(p.pid, p.create_time))
                if p.request != "run":
                    break
                if p.pid is None or exited is None:
                    self._try_spawn(p)
                    continue
                if p.state == "starting":
                    await self._boot(p, exited)
                while p.request == "run" and not exited.done():
                    await self._pause(p, exited, None)
                if p.request == "run" and p.retiring:
                    p.request = "stop"  # it exited while being replaced: that is its stop
                elif p.request == "run":
                    await self._crashed(p, exited.result())
                    exited = None
            if p.request == "stop":
                await self._terminate(p, exited)
            else:
                self._forget(p, detach=True)
        except Exception:  # a bug or a full disk: never leave a process unwatched
            logger.exception("supervising %s failed: killing its process group", p.spec.name)
            if p.pgid is not None:
                procrecord.killpg(p.pgid, signal.SIGKILL)
                await self._sweep(p, p.pgid)
            self._forget(p)
        finally:
            if exited is not None and not exited.done():
                exited.cancel()

    def _spawn(self, p: Proc) -> None:
        spec = p.spec
        self.files.pump(p, final=True)  # whatever an earlier run left unread
        path = procrecord.out_path(self.root, spec.name)
        port = free_port({q.port for q in [*self._procs.values(), *self._retiring.values()]})
        env = procrecord.environment(spec, PORT=str(port), DYNO=spec.name, PS=spec.name)
        prefix = self.cgroups.command_prefix() if self.cgroups is not None else ""
        if self._isolated and self.user is None:
            raise PermissionError("the instance has no Unix user to run it as yet")
        pid = procrecord.spawn(spec, env, path, prefix, self.user)
        p.pid, p.pgid, p.port, p.offset = pid, pid, port, 0
        if p.out_fd is None:
            p.out_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        p.create_time = procrecord.create_time(pid)
        p.started, p.started_at = now(), asyncio.get_running_loop().time()
        self._set(p, "starting")
        self._platform(p, f"Starting process with command `{spec.command}`")
        self._set(p, "starting" if spec.type == "web" else "up")
        self.files.save(p)

    async def _boot(self, p: Proc, exited: Exit) -> None:
        """Wait until a web process accepts connections on $PORT; kill it after boot_timeout."""
        loop = asyncio.get_running_loop()
        deadline = p.started_at + self.boot_timeout
        while p.request == "run" and not exited.done():
            assert p.port is not None and p.pgid is not None
            if await accepts(p.port):
                self._set(p, "up")
                return
            if loop.time() >= deadline:
                self._platform(p, R10.format(self.boot_timeout))
                self._platform(p, "Stopping process with SIGKILL")
                procrecord.killpg(p.pgid, signal.SIGKILL)
                await asyncio.wait({exited})
                return
            await self._pause(p, exited, min(BOOT_POLL, deadline - loop.time()))

    async def _crashed(self, p: Proc, code: int | None) -> None:
        """The leader exited by itself (or never started): clean up, count it, wait to restart.
        A spawn that failed says so and the wait in one line: one line per attempt."""
        if p.pgid is not None:
            procrecord.killpg(p.pgid, signal.SIGKILL)  # what is left of the group
            await procrecord.vanish(p.pgid, None, None)
            await self._sweep(p, p.pgid)
            self.files.pump(p, final=True)
            self._platform(p, exit_line(code))
        p.exit_code, p.pid, p.pgid, p.port = code, None, None, None
        p.restarts += 1
        self._set(p, "crashed")
        uptime = asyncio.get_running_loop().time() - p.started_at
        p.streak, delay = self.backoff.after_crash(p.streak, uptime)
        again = f"restarting in {delay:g} seconds" if delay > 0 else "restarting"
        if p.spawn_failed:
            self._platform(p, f"Process failed to start: {p.spawn_failed}; {again}")
            p.spawn_failed = None
        else:
            self._platform(p, again.capitalize())
        self.files.save(p)
        if delay > 0:
            await self._pause(p, None, delay)

    async def _terminate(self, p: Proc, exited: Exit | None) -> None:
        if p.pgid is not None:
            self._set(p, "stopping")
            self._platform(p, "Stopping all processes with SIGTERM")
            procrecord.killpg(p.pgid, signal.SIGTERM)
            if self.cgroups is not None:  # those that left the group too
                self.cgroups.send(p.pgid, signal.SIGTERM)
            deadline = asyncio.get_running_loop().time() + p.grace
            gone = await procrecord.vanish(p.pgid, exited, p.grace)
            if not gone or (self.cgroups and not await self.cgroups.emptied(p.pgid, deadline)):
                self._platform(p, R12.format(p.grace))
                self._platform(p, "Stopping all processes with SIGKILL")
                procrecord.killpg(p.pgid, signal.SIGKILL)
                await procrecord.vanish(p.pgid, exited, None)
            await self._sweep(p, p.pgid)
            p.exit_code = exited.result() if exited is not None else None
            self.files.pump(p, final=True)
            self._platform(p, exit_line(p.exit_code))
            p.pid, p.pgid, p.port = None, None, None
        self._set(p, "down")
        self._forget(p)

    async def _sweep(self, p: Proc, pgid: int) -> None:
        """Kill what is left in the process's cgroup: what escaped its process group."""
        if self.cgroups is None:
            return
        killed = await self.cgroups.sweep(pgid)
        if killed:
            pids = ", ".join(map(str, killed))
            self._platform(p, f"Stopping with SIGKILL what had left the process group (pid {pids})")

    def _forget(self, p: Proc, *, detach: bool = False) -> None:
        """Let go of p: gone for good, or (detach) left running with a record for the next agent."""
        if detach:
            self.files.pump(p, final=False)
            self.files.save(p)
        else:
            self.files.remove(p.key)
        self.files.close_out(p, unlink=not detach)
        p.final = p.view()
        slots = self._retiring if p.retiring else self._procs
        if slots.get(p.spec.name) is p:
            del slots[p.spec.name]

    async def _pause(self, p: Proc, exited: Exit | None, seconds: float | None) -> None:
        """Sleep until `seconds` pass, the leader exits, or a stop or shutdown comes in."""
        waiter = asyncio.ensure_future(p.wake.wait())
        futures: set[asyncio.Future[Any]] = {waiter} if exited is None else {waiter, exited}
        try:
            await asyncio.wait(futures, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    # -- state, records, output ------------------------------------------------------------

    def _set(self, p: Proc, state: State) -> None:
        if state != p.state:
            self._platform(p, f"State changed from {p.state} to {state}")
            p.state, p.since = state, now()
            self._changes.set()
            self._changes = asyncio.Event()

    def problems(self) -> list[str]:
        """What is wrong with supervising here now, one sentence each (empty: nothing)."""
        found = [f"the supervisor's {n} loop failed ({w})" for n, w in self.loops.down().items()]
        return found + [e for e in (self.applog.error, self.files.error) if e]

    def _get(self, name: str) -> Proc:
        p = self._procs.get(name)
        if p is None:
            raise NotFound(f"process {name!r} is not running on this instance")
        return p

    def _open(self) -> None:
        if self._closed:
            raise Unavailable("this supervisor has shut down: make a new one")
        if not self._opened:
            self._opened = True
            for d in ("state/procs", "log/procs"):
                (self.root / d).mkdir(parents=True, exist_ok=True)
            self.cgroups = Cgroups.open(self.root) if self._contain else None
            if self.cgroups is not None:
                logger.info(
                    "each process runs in a cgroup of its own under %s", self.cgroups.directory
                )
            elif self._contain:
                logger.warning(
                    "no writable cgroup hierarchy: a process that leaves its process group"
                    " (setsid) is not stopped with it"
                )
            self.loops.start("tail", self._tail_pass)

    async def _tail_pass(self) -> None:
        """One pass for all processes: copy new output lines to app.log, every `poll` seconds."""
        await asyncio.sleep(self._poll)
        self.applog.follow()
        for p in [*self._procs.values(), *self._retiring.values()]:
            if self.files.pump(p, final=False):
                self.files.save(p)

    def _platform(self, p: Proc, text: str) -> None:
        self.applog.write("heroku", p.spec.name, [text])
