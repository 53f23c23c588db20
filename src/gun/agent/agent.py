"""The agent: long-polls its slice from meta, materialises releases, reconciles, reports.

Its loops (register, poll, report, converge, metrics, logship, and the supervisor's tail) are
kept by gun.loops: a pass that fails is retried with a backoff, and while one is failing the
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
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gun import atomic, isolation
from gun.agent import applog, files, releasephase, runtime_metrics
from gun.agent.applog import Position
from gun.agent.config import AgentConfig
from gun.agent.logship import LogShipper
from gun.agent.metaclient import MetaClient, Refused, Unreachable
from gun.agent.reconcile import Action, Desired, Observed, reconcile
from gun.agent.supervisor import ProcessSpec, Supervisor
from gun.build.slug import SlugError, unpack
from gun.errors import GunError, InvalidParams, Unavailable
from gun.loops import Loops, why

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
        self.desired: dict[str, Any] | None = files.load_desired(self.root)
        app = self.desired["app"] if self.desired else ""
        self.shipper = LogShipper(app, self.desired.get("drains", []) if self.desired else [])
        self.supervisor = supervisor or Supervisor(
            self.root,
            log=self.shipper.sink,
            isolated=isolation.can_switch(),
            rotation=config.applog,
        )
        self.meta = MetaClient(config.meta, config.token)
        self.loops = Loops(log)
        self._poll_delay = 0.2  # after meta refused or did not answer a long-poll
        self._desired_unsaved = False  # the slice in memory is not yet cached on disk
        self._cpu_seen: runtime_metrics.CpuSeen = {}
        self._log_positions: dict[str, Position] = {}  # by drain, as last saved in state/
        self.started: dict[str, Desired] = self._load_started()
        self._ready: tuple[int, Path | None] | None = None  # generation materialised, its dir
        self._phases: dict[int, asyncio.Task[None]] = {}  # release phases run, by version
        self._inflight: dict[str, asyncio.Task[None]] = {}  # actions under way, by process
        self.problem: str | None = None  # why the current release cannot run here, reported
        self._failed: dict[int, str] = {}  # strategy git: releases whose build failed here
        self.changed = asyncio.Event()
        self.stopping = asyncio.Event()
        self._api = f"/v1/agent/instances/{config.instance}"

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
        parts = [self.problem] if self.problem else []
        for name, reason in self.loops.down().items():
            if reason.startswith(NO_SPACE):
                parts.append(reason)
            else:
                parts.append(f"the agent's {name} loop failed ({reason}): retrying")
        parts += self.supervisor.problems()
        text = "; ".join(dict.fromkeys(parts))
        return text[:PROBLEM_MAX] if text else None

    # meta ------------------------------------------------------------------------------------

    async def register(self) -> None:
        delay = 0.2
        while not self.stopping.is_set():
            try:
                await self.meta.call(
                    "POST", f"{self._api}/register", body={"address": str(self.root)}
                )
                return
            except Refused as e:
                log.error("meta refused registration: %s", e)
            except Unreachable as e:
                log.warning("meta unreachable at %s (%s); retrying", self.config.meta, e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def poll(self) -> None:
        """One long-poll of the desired state; a new generation is applied, and cached on disk
        (a cache that could not be written is written again before the next long-poll)."""
        if self._desired_unsaved and self.desired is not None:
            files.save_desired(self.root, self.desired)
            self._desired_unsaved = False
        after = self.desired["generation"] if self.desired else -1
        try:
            slice_ = await self.meta.call(
                "GET",
                f"{self._api}/desired",
                params={"after": after, "wait": POLL_WAIT},
                timeout=POLL_WAIT + 10,
            )
        except (Refused, Unreachable) as e:
            if isinstance(e, Refused):
                log.error("meta refused the desired state: %s", e)
            await asyncio.sleep(self._poll_delay)
            self._poll_delay = min(self._poll_delay * 2, 5.0)
            return
        self._poll_delay = 0.2
        if self.desired is None or slice_["generation"] != self.desired["generation"]:
            self.desired = slice_
            self.shipper.app = slice_["app"]
            try:
                self.shipper.set_destinations(slice_.get("drains", []))
            except GunError as e:
                log.error("log drains refused: %s", e.message)
            self.changed.set()
            self._desired_unsaved = True
            files.save_desired(self.root, slice_)
            self._desired_unsaved = False

    async def report(self) -> None:
        """One heartbeat with the observed state of every process and the instance's problem;
        the next comes after report_interval, or at once after a change."""
        # Listen for changes before taking the snapshot: a change while the PUT is in flight
        # (a process crashing right after it started) must bring the next report at once.
        changed = asyncio.ensure_future(self.supervisor.changed())
        try:
            await asyncio.sleep(0)  # let it start waiting on the current change event
            body = {
                "processes": [self._observed_json(s) for s in self.supervisor.serving()],
                "problem": self.problem_now(),
            }
            try:
                await self.meta.call("PUT", f"{self._api}/observed", body=body)
            except Refused as e:
                log.error("meta refused the report: %s", e)
            except Unreachable:
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed, self.config.report_interval)
        finally:
            changed.cancel()

    @staticmethod
    def _observed_json(s: Any) -> dict[str, Any]:
        return {
            "name": s.name,
            "type": s.type,
            "state": s.state,
            "release": s.release,
            "port": s.port,
            "pid": s.pid,
            "restarts": s.restarts,
            "exit_code": s.exit_code,
            "since": s.since.isoformat() if s.since else None,
        }

    # making it so ---------------------------------------------------------------------------

    async def materialise(self, slice_: dict[str, Any]) -> Path | None:
        """Download, verify and unpack the release's slug; write etc/env, etc/formation."""
        version = slice_["release"]
        if version is None or (slice_["slug"] is None and not slice_.get("git")):
            return None
        target = await self._prepared(version, slice_)
        files.write_etc(self.root, slice_["env"], [p["type"] for p in slice_["processes"]])
        files.switch_current(self.root, target)
        files.prune_releases(self.root, self.config.keep_releases)
        files.prune_slugs(self.root, self.config.keep_releases)
        return target

    async def _prepared(self, version: int, source: dict[str, Any]) -> Path:
        """releases/vN from the source's slug, or (strategy git) built from its commit."""
        await self._app_user()
        if source.get("slug"):
            return await self._unpacked(version, source["slug"])
        return await self._built(version, source["git"], source["env"])

    async def _built(self, version: int, git: dict[str, str], env: dict[str, str]) -> Path:
        """Strategy git: fetch and reset the checkout to the commit, build a copy of it into
        releases/vN (or copy the build of an earlier release of the same commit)."""
        target = self.root / "releases" / f"v{version}"
        if target.exists():
            return target
        if version in self._failed:  # a build that failed fails again: wait for a new release
            raise InvalidParams(self._failed[version])
        built = self.root / "state" / "built" / git["commit"]
        try:
            earlier = self.root / "releases" / built.read_text().strip()
        except OSError:
            earlier = None
        try:
            if earlier is not None and earlier.is_dir():
                log.info("release v%s: commit %s is built already", version, git["commit"][:7])
                staging = self.root / "releases" / f".v{version}.copy"
                copy = functools.partial(_copy_tree, earlier, staging)
                await asyncio.to_thread(self._stage, staging, copy)
                staging.rename(target)
            else:
                await self._build_commit(version, git, env, target)
        except GunError as e:
            self.problem = f"v{version} of commit {git['commit'][:7]} failed here: {e.message}"
            self._failed[version] = self.problem
            log.error("%s", self.problem)
            raise
        atomic.write(built, target.name)
        self.problem = None
        return target

    async def _build_commit(
        self, version: int, git: dict[str, str], env: dict[str, str], target: Path
    ) -> None:
        from gun.build import buildpacks, gitrepo  # only agents that build pay for it

        lines: list[str] = []
        me = self.config.instance

        def out(line: str) -> None:
            lines.append(f"[{me}] {line}\n")
            self.supervisor.applog.write("heroku", "build", [line])

        checkout = self.root / "git" / "checkout"
        tmp = self.root / "releases" / f".v{version}.build"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            out(f"-----> git fetch origin && git reset --hard {git['commit'][:7]}")
            await asyncio.to_thread(gitrepo.checkout, git["repo"], checkout, git["commit"])
            await asyncio.to_thread(_copy_tree, checkout, tmp)
            user = self.supervisor.user
            cache = self.root / "cache" / "build"
            await asyncio.to_thread(buildpacks.build, tmp, cache, env, out, user=user)
            await asyncio.to_thread(self._stage, tmp)  # root wrote some of it
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            with contextlib.suppress(Refused, Unreachable):
                text = "".join(lines)
                await self.meta.call(
                    "POST", f"{self._api}/releases/{version}/output", body={"text": text}
                )

    async def _unpacked(self, version: int, slug: dict[str, Any]) -> Path:
        """releases/vN, unpacked from the slug (downloaded unless it is in the slug cache)."""
        target = self.root / "releases" / f"v{version}"
        cache = self.root / "slugs" / f"{slug['sha256']}.tar.gz"
        if not target.exists():
            if not cache.exists():
                await self._download(slug["sha256"], cache)
            else:
                log.info("release v%s: slug %s is in the cache", version, slug["sha256"][:12])
            staging = self.root / "releases" / f".v{version}.unpack"
            limits = self.config.slug_limits
            try:
                fill = functools.partial(
                    unpack,
                    cache,
                    staging,
                    slug["sha256"],
                    max_bytes=limits.max_unpacked_bytes,
                    max_members=limits.max_members,
                )
                await asyncio.to_thread(self._stage, staging, fill)
                staging.rename(target)
            except SlugError as e:
                cache.unlink(missing_ok=True)
                self.problem = f"release v{version} refused: {e.message}"
                log.error("%s", self.problem)
                raise
        with contextlib.suppress(FileNotFoundError):
            os.utime(cache)  # recently used: pruned last
        self.problem = None
        return target

    # the app's Unix user (gun.isolation) -----------------------------------------------------

    async def _app_user(self) -> None:
        """Make the instance's user (root only), once, before anything of the app runs; refuse
        (as the instance's problem) when that user could not reach its releases."""
        if self.supervisor.user is not None or not isolation.can_switch():
            return
        app = self.desired["app"] if self.desired else "?"
        name = isolation.instance_user_name(self.root)
        comment = f"gun app {app} at {self.root}"
        releases = self.root / "releases"
        try:
            user = await asyncio.to_thread(isolation.ensure, name, comment)
            where = isolation.blocked(releases, user)
            if where is not None:
                raise Unavailable(isolation.unreachable("every process", releases, user, where))
        except GunError as e:
            self.problem = e.message
            log.error("%s", e.message)
            raise
        for made in [d for d in releases.glob("v*") if d.is_dir()]:  # by an agent before this
            await asyncio.to_thread(isolation.hand_over, user, made)
        self.supervisor.user = user
        log.info("app processes run as %s (uid %s)", user.name, user.uid)

    def _stage(self, staging: Path, fill: Callable[[], object] | None = None) -> None:
        """Fill a release directory under a temporary name (with `fill`, after removing what an
        earlier try left there) and give it to the app's user, private to it; the caller renames
        it into place, so a releases/vN that exists is ready to run."""
        if fill is not None:
            shutil.rmtree(staging, ignore_errors=True)
            fill()
        user = self.supervisor.user
        if user is not None:
            isolation.hand_over(user, staging)
            staging.chmod(isolation.PRIVATE_DIR)

    # the release phase ------------------------------------------------------------------------

    def _maybe_release_phase(self, slice_: dict[str, Any]) -> None:
        phase = slice_.get("release_phase")
        if phase and phase["release"] not in self._phases:
            self._phases[phase["release"]] = asyncio.create_task(self._release_phase(phase))

    async def _release_phase(self, phase: dict[str, Any]) -> None:
        """Run the pending release's command once, its output sent to meta as it comes."""
        version = phase["release"]
        api = f"{self._api}/releases/{version}"
        lines: list[str] = []
        done = asyncio.Event()

        def emit(line: str) -> None:
            lines.append(line + "\n")
            self.supervisor.applog.write("app", releasephase.DYNO, [line])

        async def send() -> None:
            while lines:
                text = "".join(lines)
                try:
                    await self.meta.call("POST", f"{api}/output", body={"text": text})
                except (Refused, Unreachable) as e:
                    log.warning("release phase output not sent: %s", e)
                    return
                del lines[: text.count("\n")]

        async def pump() -> None:
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.3)
                await send()

        pumper = asyncio.create_task(pump())
        self.supervisor.applog.write("heroku", releasephase.DYNO, [f"Release v{version} phase"])
        try:
            cwd = await self._prepared(version, phase)
            emit(f"Running `{phase['command']}` on {self.config.instance}")
            code, error = await releasephase.run(
                cwd, phase["command"], phase["env"], phase["timeout"], emit, self.supervisor.user
            )
        except Exception as e:  # whatever it is, meta hears of it: the release fails, not hangs
            if not isinstance(e, GunError | Refused | Unreachable | OSError):
                log.exception("the release phase of v%s failed", version)
            code, error = None, f"{self.config.instance} could not prepare v{version}: {why(e)}"
        done.set()
        await pumper
        delay = 0.5
        while not self.stopping.is_set():
            try:
                await self.meta.call(
                    "POST", f"{api}/result", body={"exit_code": code, "error": error}
                )
                return
            except Refused as e:
                log.error("meta refused the release phase result of v%s: %s", version, e)
                return
            except Unreachable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _download(self, sha256: str, dest: Path) -> None:
        """The slug into the slug cache, whole or not at all (`unpack` checks its sha256)."""
        with atomic.writer(dest, sync=False) as f:
            await self.meta.call("GET", f"{self._api}/slugs/{sha256}", into=f, timeout=300)

    def wanted(self, slice_: dict[str, Any], cwd: Path) -> dict[str, tuple[Desired, ProcessSpec]]:
        env: dict[str, str] = slice_["env"]
        out = {}
        for p in slice_["processes"]:
            d = Desired(
                p["name"], p["type"], p["command"], slice_["release"], env_digest(env, p["nonce"])
            )
            spec = ProcessSpec(
                name=p["name"],
                type=p["type"],
                command=p["command"],
                env=env,
                cwd=cwd,
                release=slice_["release"],
            )
            out[p["name"]] = (d, spec)
        return out

    async def converge(self) -> None:
        """One reconcile pass: stops, replacements, starts. Raises what keeps the release from
        being materialised here (a full disk, meta away), except a release refused here, which
        is the instance's `problem` until a new release comes."""
        slice_ = self.desired
        if slice_ is None:
            return
        self._maybe_release_phase(slice_)
        if self._ready is not None and self._ready[0] == slice_["generation"]:
            cwd = self._ready[1]  # this generation's files are written already
        else:
            try:
                cwd = await self.materialise(slice_)
            except (GunError, Refused, Unreachable, OSError) as e:
                log.error("cannot materialise release v%s: %s", slice_["release"], e)
                if isinstance(e, GunError) and self.problem:
                    return  # refused here, and said so: a new release is needed
                raise
            self._ready = (slice_["generation"], cwd)
        wanted = self.wanted(slice_, cwd) if cwd else {}
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
        rollout = slice_.get("rollout") or {}
        actions = reconcile(
            [d for d, _ in wanted.values()],
            observed,
            max_unavailable=int(rollout.get("max_unavailable", 1)),
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

        drain = float(rollout.get("drain", 0.0))

        async def act(kind: str, name: str) -> None:
            if kind == "replace":  # web: preboot, the old copy serves until the new one does
                await self.supervisor.preboot(wanted[name][1], drain)
            elif kind == "stop":
                await self.supervisor.stop(name)
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
                await self._app_user()
        adopted = await self.supervisor.adopt()
        if adopted:
            log.info("re-adopted %s", ", ".join(adopted))
        self.loops.start("register", self.register, until_done=True)
        self.loops.start("poll", self.poll)
        self.loops.start("report", self.report)
        self.loops.start("converge", self.reconcile)
        self.loops.start("metrics", self.metrics)
        self.loops.start("logship", self.logship)
        await self.stopping.wait()
        self.meta.abort()
        await self.loops.stop()
        self.meta.abort()
        under_way = list(self._inflight.values())  # the supervisor stops what they started
        for t in under_way:
            t.cancel()
        await asyncio.gather(*under_way, return_exceptions=True)
        await self.supervisor.shutdown(stop_processes=True)
        await asyncio.to_thread(self.shipper.close, 2.0)
        with contextlib.suppress(OSError):  # what was not sent is shipped by the next agent
            self._save_log_positions()
        with contextlib.suppress(Refused, Unreachable):
            body = {"processes": [self._observed_json(s) for s in self.supervisor.states()]}
            await self.meta.call("PUT", f"{self._api}/observed", body=body, timeout=2)


def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))


def main(config: AgentConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(Agent(config).run())
