"""The agent's one-off processes (`run.N`): each run its slice lists is started once, in the
slice's release, and reported until meta forgets it.

An attached run starts only once its agent has been let in at meta's rendezvous (gun.rendezvous)
with the instance's token: meta lets one agent in per run, once, so a run is never started
twice (by an agent that restarted, or by two). Then gun.agent.oneoff runs it joined to its
client. A run that leaves the slice while it runs (meta saw its client go) is stopped. An
ended run is reported `down` with its exit code until it leaves the slice, so that meta hears
how it ended (its audit) whichever end went first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from gun import atomic, protocol
from gun import rendezvous as rv
from gun.agent import tls
from gun.agent.config import AgentConfig
from gun.agent.oneoff import OneOff, attach
from gun.agent.supervisor import ProcessSpec, Supervisor
from gun.errors import GunError
from gun.model import RUN_TYPE

log = logging.getLogger("gun.agent.runs")
GREETING_WAIT = 30.0  # seconds for meta's greeting at the rendezvous
FORGET_AFTER = 600.0  # seconds an ended run is reported at most, once it left the slice


class RunKeeper:
    def __init__(self, config: AgentConfig, supervisor: Supervisor) -> None:
        self.config = config
        self.supervisor = supervisor
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stops: dict[str, asyncio.Event] = {}  # set: stop it (SIGTERM, then SIGKILL)
        self._seen: dict[str, protocol.ObservedProcess] = {}  # by name: as last reported
        self._gone: dict[str, float] = {}  # ended runs no longer in the slice: since when
        self.changed = asyncio.Event()
        # detached runs this instance started, kept across agents: nothing else guards them
        # from being started again by the next agent (attached ones: meta's rendezvous)
        self._started_file = config.root / "state" / "runs.json"
        self._started: set[str] = self._load_started()

    def _load_started(self) -> set[str]:
        try:
            names = json.loads(self._started_file.read_text())
        except (OSError, ValueError):
            return set()
        return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()

    def keep(self, slice_: protocol.Slice | None, cwd: Path | None) -> None:
        """Start the slice's new runs (its release is materialised in `cwd`), stop those it no
        longer lists."""
        wanted = {r.name: r for r in slice_.runs} if slice_ is not None else {}
        for name in self._tasks:
            if name not in wanted:  # stopped (ps.stop), or its client went
                self._stops[name].set()
        now = time.monotonic()
        for name in list(self._seen):
            if name in wanted or name in self._tasks:
                self._gone.pop(name, None)
            elif now - self._gone.setdefault(name, now) > FORGET_AFTER:
                del self._seen[name], self._gone[name]
        if slice_ is None or cwd is None or slice_.release is None:
            return
        started = self._started & set(wanted)  # forget what meta forgot
        for name, order in wanted.items():
            if name in self._tasks or name in self._seen or name in started:
                continue
            if not order.attached:
                started.add(name)
            spec = ProcessSpec(
                name=name,
                type=RUN_TYPE,
                command=order.command,
                env=slice_.env,
                cwd=cwd,
                release=slice_.release,
            )
            self._stops[name] = asyncio.Event()
            task = asyncio.create_task(self._run(order, spec, slice_), name=f"run {name}")
            self._tasks[name] = task
            task.add_done_callback(functools.partial(self._done, name))
        if started != self._started:  # before they run: a run written down may not have run,
            atomic.write(self._started_file, json.dumps(sorted(started)))  # never twice
            self._started = started

    def _done(self, name: str, _: asyncio.Task[None]) -> None:
        self._tasks.pop(name, None)
        self._stops.pop(name, None)

    def observed(self) -> list[protocol.ObservedProcess]:
        return list(self._seen.values())

    async def stop_all(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _report(self, spec: ProcessSpec, state: str, code: int | None = None) -> None:
        self._seen[spec.name] = protocol.ObservedProcess(
            name=spec.name,
            state=state,  # type: ignore[arg-type]
            release=spec.release,
            port=None,
            pid=None,
            restarts=0,
            exit_code=code,
            since=None,
        )
        self.changed.set()

    async def _run(
        self, order: protocol.RunOrder, spec: ProcessSpec, slice_: protocol.Slice
    ) -> None:
        code: int | None = None
        self._report(spec, "starting")
        try:
            one = OneOff(
                spec=spec,
                tty=order.tty,
                size=order.size,
                term=order.term,
                ttl=order.ttl,
                framing=rv.Framing(order.framing),
            )
            if not order.attached:
                self._report(spec, "up")
                code = await self._detached(one)
                return
            joined = await self._dial(slice_, spec.name)
            if joined is None:
                return
            reader, writer = joined
            self._report(spec, "up")
            try:
                code = await self._attach(one, reader, writer)
            finally:
                writer.close()
        except Exception as e:  # a run that cannot start is said, and ends
            log.error("%s failed: %s", spec.name, e)
        finally:
            self._report(spec, "down", code)

    async def _attach(
        self, one: OneOff, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> int | None:
        cgroups = self.supervisor.cgroups
        name = one.spec.name
        pids: list[int] = []
        try:
            return await attach(
                one,
                reader,
                writer,
                user=self.supervisor.user,
                prefix=cgroups.command_prefix() if cgroups is not None else "",
                say=lambda text: self.supervisor.applog.write("heroku", name, [text]),
                stop=self._stops[name],
                started=pids.append,
            )
        finally:
            if cgroups is not None and pids:  # what left its session (a daemon) goes too
                killed = await cgroups.sweep(pids[0])
                if killed:
                    said = f"Stopping with SIGKILL what had left the session (pid {killed})"
                    self.supervisor.applog.write("heroku", name, [said])

    async def _detached(self, one: OneOff) -> int | None:
        """A run with no client: its end of the attachment is here, no input goes in, and its
        output becomes the app's log lines, app[run.N]."""
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=theirs)
        out_reader, out_writer = await asyncio.open_connection(sock=ours)
        out_writer.write(rv.frame(rv.Kind.STDIN_END))
        logging_task = asyncio.create_task(self._log_output(out_reader, one.spec.name))
        try:
            return await self._attach(one, reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(TimeoutError, OSError, GunError):
                await asyncio.wait_for(logging_task, 5)
            out_writer.close()

    async def _log_output(self, reader: asyncio.StreamReader, name: str) -> None:
        """Its STDOUT and STDERR frames, line by line, into app.log as app[NAME]."""
        partial = {rv.Kind.STDOUT: b"", rv.Kind.STDERR: b""}
        while (got := await rv.read_frame(reader)) is not None:
            kind, payload = got
            if kind not in partial:
                break  # EXIT: the end
            *lines, partial[kind] = (partial[kind] + payload).split(b"\n")
            if lines:
                text = [line.decode(errors="replace") for line in lines]
                self.supervisor.applog.write("app", name, text)
        rest = [p.decode(errors="replace") for p in partial.values() if p]
        if rest:
            self.supervisor.applog.write("app", name, rest)

    async def _dial(
        self, slice_: protocol.Slice, name: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Connected to meta's rendezvous for run `name`, let in; None if meta does not let
        this agent in (the run was taken, or its client never came)."""
        if slice_.rendezvous is None:
            log.error("%s: meta names no rendezvous to meet its client at", name)
            return None
        where = urlsplit(slice_.rendezvous)
        host, port = where.hostname or "127.0.0.1", where.port or 0
        ctx = None
        if slice_.rendezvous_tls and slice_.rendezvous_ca:  # the CA meta names (in the slice)
            ctx = tls.context(slice_.rendezvous_ca, system=False)
        elif slice_.rendezvous_tls:  # none named: the CAs meta itself is trusted with
            ctx = tls.context(self.config.ca, system=True)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=host if ctx else None),
            GREETING_WAIT,
        )
        writer.write(rv.agent_hello(slice_.instance, name, self.config.token))
        await writer.drain()
        try:
            got = await asyncio.wait_for(reader.readexactly(len(rv.GREETING)), GREETING_WAIT)
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            got = b""
        if got != rv.GREETING:
            log.info("%s: meta's rendezvous did not let this agent in", name)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return None
        return reader, writer
