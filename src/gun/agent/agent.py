"""The agent: long-polls its slice from meta, has its release materialised (agent.materialise)
and its release phase run (agent.releasephase), reconciles, reports.

A slice with a `lease` fences its processes (gun.agent.fence, docs/fleet.md): they run only
while the agent holds its lease, renewed by every heartbeat meta acknowledges, and the fence
loop stops them all when it lapses; after that only a fresh slice lets them run again.

Its loops (register, poll, report, converge, fence, metrics, logship, and the supervisor's tail)
are kept by gun.loops: a pass that fails is retried with a backoff, and while one is failing the
instance's `problem` (what `gun instances` shows) says why, e.g. "no space left on device
writing ROOT/etc/env". Once the disk has room again the next pass converges.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import hashlib
import json
import logging
import signal
from pathlib import Path

from gun import atomic, isolation, protocol
from gun.agent import applog, files, runtime_metrics
from gun.agent.applog import Position
from gun.agent.config import AgentConfig
from gun.agent.fence import Fence, clock, heartbeat
from gun.agent.logship import LogShipper
from gun.agent.materialise import Materialiser
from gun.agent.metaclient import MetaClient, Refused, Unreachable
from gun.agent.netaddr import address_towards
from gun.agent.process import ProcessState
from gun.agent.reconcile import Action, Desired, Observed, reconcile
from gun.agent.releasephase import ReleasePhases
from gun.agent.routers import RouterKeeper
from gun.agent.runs import RunKeeper
from gun.agent.setup import Setup
from gun.agent.supervisor import ProcessSpec, Supervisor
from gun.errors import GunError, ProtocolError
from gun.loops import Loops

log = logging.getLogger("gun.agent")
POLL_WAIT = 25.0
LOG_POSITION_EVERY = 1.0  # seconds between saves of how far log shipping got
NO_SPACE = "no space left"
PROBLEM_MAX = 2000  # characters meta keeps


def env_digest(env: dict[str, str], nonce: int) -> str:
    text = json.dumps([sorted(env.items()), nonce])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Agent:
    def __init__(self, config: AgentConfig, supervisor: Supervisor | None = None) -> None:
        self.config = config
        self.root = config.root
        self.desired: protocol.Slice | None = files.load_desired(self.root)
        app = self.desired.app if self.desired else ""
        drains = list(self.desired.drains) if self.desired else []
        self.shipper = LogShipper(app, drains, ca=config.ca)
        self.supervisor = supervisor or Supervisor(
            self.root,
            log=self.shipper.sink,
            isolated=isolation.can_switch(),
            rotation=config.applog,
        )
        self.meta = MetaClient(config.meta, config.token, ca=config.ca)
        self.setup = Setup(self.root, self.shipper.sink)
        self._api = f"/v1/agent/instances/{config.instance}"
        self.loops = Loops(log)
        self._poll_delay = 0.2  # after meta refused or did not answer a long-poll
        self._desired_unsaved = False  # the slice in memory is not yet cached on disk
        self._unread: str | None = None  # why meta's last answer to the long-poll was not read
        self._acked: protocol.Report | None = None  # the last heartbeat meta acknowledged
        self._cpu_seen: runtime_metrics.CpuSeen = {}
        self._log_positions: dict[str, Position] = {}  # by drain, as last saved in state/
        self.started: dict[str, Desired] = self._load_started()
        self._ready: tuple[int, Path | None] | None = None  # generation materialised, its dir
        self._inflight: dict[str, asyncio.Task[None]] = {}  # actions under way, by process
        self.releases = Materialiser(config, self.meta, self._api, self.supervisor)
        self.changed = asyncio.Event()
        self.stopping = asyncio.Event()
        self.fence = Fence(self.root)
        self.deleted = False  # meta refused its token: it exits with EXIT_DELETED
        self.phases = ReleasePhases(
            self.meta, self._api, config.instance, self.releases, self.supervisor, self.stopping
        )
        self.router = RouterKeeper(config, self.root / "router")
        self.runs = RunKeeper(config, self.supervisor)

    # what we started, with its digest, survives agent restarts --------------------------------

    def _load_started(self) -> dict[str, Desired]:
        try:
            raw = json.loads((self.root / "state" / "started.json").read_text())
            return {n: Desired(**d) for n, d in raw.items()}
        except (OSError, ValueError, TypeError):
            return {}

    def _save_started(self, started: dict[str, Desired]) -> None:
        data = {n: d.__dict__ for n, d in started.items()}
        atomic.write(self.root / "state" / "started.json", json.dumps(data))

    def problem_now(self) -> str | None:
        """What the instance's problem is now: the release that cannot run here, and every loop
        that is failing, one sentence each; None when all is well."""
        problem = self.releases.problem  # why the current release cannot run here
        parts = [problem] if problem else []
        if self._unread:
            parts.append(f"the desired state from meta is not acted on: {self._unread}")
        for name, reason in self.loops.down().items():
            if reason.startswith(NO_SPACE):
                parts.append(reason)
            else:
                parts.append(f"the agent's {name} loop failed ({reason}): retrying")
        parts += self.supervisor.problems()
        parts += self.router.problems()
        text = "; ".join(dict.fromkeys(parts))
        return text[:PROBLEM_MAX] if text else None

    # meta ------------------------------------------------------------------------------------

    async def register(self) -> None:
        delay = 0.2
        while not self.stopping.is_set():
            try:
                ip = await self._ip()
                registration = protocol.Registration(protocol.VERSION, str(self.root), ip)
                sent = clock()
                await self.meta.register(self._api, registration)
                self.fence.renewed(self.terms, sent)
                return
            except Refused as e:
                log.error("meta refused registration: %s", e)
                if self._deleted(e):
                    return
            except Unreachable as e:
                log.warning("meta unreachable at %s (%s); retrying", self.config.meta, e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _ip(self) -> str | None:
        """The address this host's packets toward meta leave from, where routers reach its web
        processes (in a thread: naming meta may ask DNS); None, said in the log, when the host
        cannot tell (no route to meta yet): meta keeps the one it knew, and the agent registers
        all the same."""
        try:
            return await asyncio.to_thread(address_towards, self.config.meta)
        except Exception as e:  # never a reason not to register
            log.warning("cannot tell this host's address towards %s (%s)", self.config.meta, e)
            return None

    def _deleted(self, e: Refused) -> bool:
        """meta refuses this instance's token (401): the instance was deleted and its token
        revoked with it. The agent stops its processes and exits with EXIT_DELETED (a
        provider's keep-alive loop may then remove the instance: agentstart.py)."""
        if e.status != 401:
            return False
        log.error("meta refuses this instance's token: it was deleted; stopping")
        self.deleted = True
        self.stopping.set()
        return True

    async def poll(self) -> None:
        """One long-poll of the desired state; a new generation is applied, and cached on disk
        (a cache that could not be written is written again before the next long-poll). A slice
        that does not read (another protocol's) is said once and not acted on: what runs keeps
        running as the last slice said, and the instance's problem says why."""
        if self._desired_unsaved and self.desired is not None:
            files.save_desired(self.root, self.desired)
            self._desired_unsaved = False
        after = self.desired.generation if self.desired else -1
        self.fence.repoll.clear()
        fresh = self.fence.needs_slice(self.terms)
        if fresh:
            after = -1  # fenced, with the lease held again: a fresh slice at once
        asked = clock()
        # heard again while fenced, a long-poll (which a partition may have left hanging) is
        # given up for a fresh ask
        give_up = None if fresh else self.fence.repoll
        try:
            slice_ = await self.meta.desired(self._api, after, POLL_WAIT, give_up)
            if slice_ is None:
                return
        except (Refused, Unreachable, ProtocolError) as e:
            if isinstance(e, Refused):
                log.error("meta refused the desired state: %s", e)
                if self._deleted(e):
                    return
            elif isinstance(e, ProtocolError) and e.message != self._unread:
                log.error("not acting on the desired state from meta: %s", e.message)
                self._unread = e.message
            await asyncio.sleep(self._poll_delay)
            self._poll_delay = min(self._poll_delay * 2, 5.0)
            return
        self._poll_delay = 0.2
        self._unread = None
        was = self.fence.may_run(slice_.lease)
        self.fence.sliced(slice_.lease, asked)
        if self.fence.may_run(slice_.lease) != was:
            self.changed.set()
        if self.desired is None or slice_.generation != self.desired.generation:
            self.desired = slice_
            self.shipper.app = slice_.app
            try:
                self.shipper.set_destinations(list(slice_.drains))
            except GunError as e:
                log.error("log drains refused: %s", e.message)
            self.changed.set()
            self._desired_unsaved = True
            files.save_desired(self.root, slice_)
            self._desired_unsaved = False

    async def report(self) -> None:
        """One heartbeat with the observed state of every process and the instance's problem;
        the next comes at once after a change of a process, else after report_interval, or,
        with a lease and nothing new since the last one meta acknowledged, after a third of
        the lease (Fence.heartbeat)."""
        # Listen for changes before taking the snapshot: a change while the PUT is in flight
        # (a process crashing right after it started) must bring the next report at once.
        changed = asyncio.ensure_future(self.supervisor.changed())
        self.runs.changed.clear()  # a one-off process that starts or ends also brings one
        ran = asyncio.ensure_future(self.runs.changed.wait())
        try:
            await asyncio.sleep(0)  # let it start waiting on the current change event
            report = protocol.Report(
                protocol.VERSION,
                (
                    *(observed(s) for s in self.supervisor.serving()),
                    *self.runs.observed(),
                ),
                self.problem_now(),
                self.setup.report(),
            )
            terms = self.terms
            news = report != self._acked
            every, timeout = heartbeat(terms, self.config.report_interval, news)
            self._acked = None
            try:
                sent = clock()
                await self.meta.report(self._api, report, timeout)
                self.fence.renewed(terms, sent)
                self._acked = report
            except Refused as e:
                log.error("meta refused the report: %s", e)
            except Unreachable:
                pass
            await asyncio.wait({changed, ran}, timeout=every, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            ran.cancel()

    @staticmethod
    def wanted(slice_: protocol.Slice, cwd: Path) -> dict[str, tuple[Desired, ProcessSpec]]:
        """The slice's processes as reconcile and the supervisor take them (the slice has a
        release: it was materialised into `cwd`)."""
        assert slice_.release is not None
        env, release = slice_.env, slice_.release
        out = {}
        for p in slice_.processes:
            d = Desired(p.name, p.type, p.command, release, env_digest(env, p.nonce))
            spec = ProcessSpec(
                name=p.name, type=p.type, command=p.command, env=env, cwd=cwd, release=release
            )
            out[p.name] = (d, spec)
        return out

    async def converge(self) -> None:
        """One reconcile pass: stops, replacements, starts. Raises what keeps the release from
        being materialised here (a full disk, meta away), except a release refused here, which
        is the instance's `problem` until a new release comes."""
        slice_ = self.desired
        if slice_ is None:
            return
        if slice_.setup is not None:  # nothing of the app runs here before the layer's setup
            done = await self.setup.ensure(slice_.setup, slice_.app, slice_.instance)
            if not done:
                return
        self.phases.start(slice_)
        if self._ready is not None and self._ready[0] == slice_.generation:
            cwd = self._ready[1]  # this generation's files are written already
        else:
            try:
                cwd = await self.releases.materialise(slice_)
            except (GunError, Refused, Unreachable, OSError) as e:
                log.error("cannot materialise release v%s: %s", slice_.release, e)
                if isinstance(e, GunError) and self.releases.problem:
                    return  # refused here, and said so: a new release is needed
                raise
            self._ready = (slice_.generation, cwd)
        wanted = self.wanted(slice_, cwd) if cwd else {}
        if not self.fence.may_run(slice_.lease):
            wanted = {}  # fenced: the fence loop stops them, nothing starts
        self.runs.keep(slice_ if self.fence.may_run(slice_.lease) else None, cwd)
        observed = []
        for s in self.supervisor.states():
            had = self.started.get(s.name)
            observed.append(
                Observed(
                    s.name,
                    s.type,
                    s.state,
                    s.release,
                    had.env_digest if had else "",
                    had.command if had else None,
                )
            )
        actions = reconcile(
            [d for d, _ in wanted.values()],
            observed,
            max_unavailable=slice_.rollout.max_unavailable,
        )
        actions = [a for a in actions if a.name not in self._inflight]
        actions = await self._leased(actions, wanted)
        if not actions:
            return
        started = dict(self.started)
        for action in actions:
            started.pop(action.name, None)
            if action.kind in ("start", "replace"):
                started[action.name] = wanted[action.name][0]
        # once per pass, before acting (if it cannot be written, nothing is done: a replacement
        # recorded but not made would never be made); a start it names that never happened is
        # redone
        self._save_started(started)
        self.started = started

        drain = slice_.rollout.drain_seconds

        async def act(kind: str, name: str) -> None:
            if kind == "replace":  # web: preboot, the old copy serves until the new one does
                await self.supervisor.preboot(wanted[name][1], drain)
            elif kind == "stop":  # a web process: routers stop sending it requests first
                await self.supervisor.drain_and_stop(name, drain)
            else:
                await self.supervisor.start(wanted[name][1])

        # each on its own: one process slow to stop, or a preboot's drain, must hold up neither
        # the others nor the next pass (which leaves processes with an action under way alone)
        for action in actions:
            task = asyncio.create_task(act(action.kind, action.name))
            self._inflight[action.name] = task
            task.add_done_callback(functools.partial(self._acted, action))

    def _acted(self, action: Action, task: asyncio.Task[None]) -> None:
        if self._inflight.get(action.name) is task:
            del self._inflight[action.name]
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed: %s", action, task.exception())
        self.changed.set()  # another pass: what waited for this may go now

    async def metrics(self) -> None:
        """Heroku's runtime metric lines for every running process, once an interval."""
        await asyncio.sleep(self.config.metrics_interval)
        if not self.shipper.app:
            return
        lines = await asyncio.to_thread(
            runtime_metrics.sample_lines,
            self.supervisor.states(),
            app=self.shipper.app,
            instance=self.config.instance,
            cpu_seen=self._cpu_seen,
        )
        for procid, text in lines:  # app.log and, through its sink, the drains
            self.supervisor.applog.write("heroku", procid, [text])

    # how far log shipping got, across agents ------------------------------------------------

    def _recover_logs(self) -> None:
        """Ship to each drain what app.log holds that the last agent had not shipped to it (it
        saved how far it got in state/logship.json); a drain it did not know starts at the end
        of app.log, as does everything when nothing was saved."""
        self.shipper.resume_from(self.supervisor.applog.position())
        since = applog.load_positions(self.root) or {}
        due, warnings = applog.unshipped(self.supervisor.applog.path, since)
        for warning in warnings:
            log.warning("%s", warning)
        for d in due:
            line = d.line
            self.shipper.add(line.appname, line.procid, line.text, line.when, line.span, d.drains)
        if due:
            log.info("shipping %d app.log lines the last agent had not shipped", len(due))

    def _save_log_positions(self) -> None:
        where = self.shipper.resume_points()
        if where != self._log_positions:
            applog.save_positions(self.root, where)
            self._log_positions = where

    async def logship(self) -> None:
        """Save how far log shipping got, once a second when it moved."""
        await asyncio.sleep(LOG_POSITION_EVERY)
        self._save_log_positions()

    async def _leased(
        self, actions: list[Action], wanted: dict[str, tuple[Desired, ProcessSpec]]
    ) -> list[Action]:
        """Drop replacements meta does not lease now: a non-web process replaced is down for a
        moment, and meta keeps those moments to `max_unavailable` per type across instances.
        Without meta, nothing is replaced (starts and stops go on)."""
        asking = [
            a.name for a in actions if a.kind == "replace" and wanted[a.name][0].type != "web"
        ]
        if not asking:
            return actions
        try:
            answer = await self.meta.call(
                "POST", f"{self._api}/replacements", body={"names": asking}
            )
            granted = set(answer["granted"])
        except (Refused, Unreachable) as e:
            log.warning("no replacement leases from meta: %s", e)
            granted = set()
        return [a for a in actions if a.name not in asking or a.name in granted]

    @property
    def terms(self) -> protocol.Lease | None:
        """How the current slice's processes are fenced (None: they are not)."""
        return self.desired.lease if self.desired else None

    async def route(self) -> None:
        """On an instance of the platform's router app, keep its router running as the app's
        config says (gun.router.onhost), while the lease holds; once a second."""
        slice_ = self.desired
        wanted = slice_ if slice_ is not None and self.fence.may_run(slice_.lease) else None
        await self.router.keep(wanted)
        await asyncio.sleep(1.0)

    async def fence_pass(self) -> None:
        await self.fence.guard(self.terms, self.supervisor)

    async def reconcile(self) -> None:
        """One converge pass, then wait for a change (a second at most)."""
        self.changed.clear()
        await self.converge()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), 1.0)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        files.lock_down(self.root)
        await asyncio.to_thread(self._recover_logs)  # before anything new is written
        if not isolation.can_switch():
            log.warning(isolation.NOT_ROOT.format(user=getpass.getuser()))
        elif self.desired is not None:  # what it adopts may need restarting as the user
            with contextlib.suppress(GunError):  # said, and the instance's problem
                await self.releases.app_user(self.desired.app)
        adopted = await self.supervisor.adopt()
        if adopted:
            log.info("re-adopted %s", ", ".join(adopted))
        self.loops.start("register", self.register, until_done=True)
        self.loops.start("poll", self.poll)
        self.loops.start("report", self.report)
        self.loops.start("converge", self.reconcile)
        self.loops.start("fence", self.fence_pass)
        self.loops.start("metrics", self.metrics)
        self.loops.start("logship", self.logship)
        self.loops.start("router", self.route)
        await self.stopping.wait()
        self.meta.abort()
        await self.loops.stop()
        self.meta.abort()
        under_way = list(self._inflight.values())  # the supervisor stops what they started
        for t in under_way:
            t.cancel()
        await asyncio.gather(*under_way, return_exceptions=True)
        await self.router.keep(None)
        await self.runs.stop_all()
        await self.supervisor.shutdown(stop_processes=True)
        await asyncio.to_thread(self.shipper.close, 2.0)
        with contextlib.suppress(OSError):  # what was not sent is shipped by the next agent
            self._save_log_positions()
        with contextlib.suppress(Refused, Unreachable):
            last = tuple(observed(s) for s in self.supervisor.states())
            final = protocol.Report(protocol.VERSION, last, None, self.setup.report())
            await self.meta.report(self._api, final, 2)


def observed(s: ProcessState) -> protocol.ObservedProcess:
    """A process as the supervisor sees it, as the agent reports it to meta."""
    return protocol.ObservedProcess(
        name=s.name,
        state=s.state,
        release=s.release,
        port=s.port,
        pid=s.pid,
        restarts=s.restarts,
        exit_code=s.exit_code,
        since=s.since,
    )


EXIT_DELETED = 3  # meta refused the instance's token (agentstart.EXIT_DELETED)


def main(config: AgentConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    agent = Agent(config)
    asyncio.run(agent.run())
    if agent.deleted:
        raise SystemExit(EXIT_DELETED)
