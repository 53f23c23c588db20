"""How long a warm deploy takes with gun, next to the bare steps it does, on the same machine.

    .venv/bin/python bench/deploy.py              # 3 rounds
    .venv/bin/python bench/deploy.py --rounds 5

Starts `gun up --instances 3` (a temporary --dir and XDG_CONFIG_HOME, a free port on
127.0.0.1, its own process group), creates the app `bench` and deploys a copy of
examples/python-web made into its own git repository: once cold (the first build downloads
Bottle from the package index; printed, not judged), then scales it to web=3 worker=3. Each
round then

1. commits a one-line change to message.txt and times `gun app:bench deploy dir=REPO` from
   start to exit (a warm build: pip installs from the build cache's wheelhouse with
   --no-index; the release command; a preboot rollout of 3 web and 3 worker processes);
2. waits until the rollout is over (the replaced web processes drained and gone);
3. times the bare steps of the same deploy, run straight from here: `git archive`, `tar -xzf`,
   `python -m venv --copies` + `pip install --no-index` from gun's wheelhouse with the
   interpreter and the pip gun's build used, `tar -czf` of the built app, and 3 web + 3 worker
   processes started (`bash -c`, like the agent) until each web accepts a connection on its
   $PORT and each worker has printed its first line.

It prints every round, min and median of gun's wall time, the median of each bare step and
their sum, gun/bare, and whether the targets are met: a warm deploy takes <= 2x the bare steps
and <= 5 s (medians). Where gun's time goes comes from meta's records (when the build was
created, its release made, the build finished), the deploy's stderr (when build lines reached
the CLI; meta streams the output every 0.2 s) and the agents' app.log.

Everything started here is stopped in `finally` (SIGTERM to `gun up`'s process group and to the
bare processes' groups, then SIGKILL to the group of any process left whose command line or
working directory is in the temporary directory) and the temporary directory is removed.

Exit status: 0 when every measurement was made (targets met or not); 1 when something broke.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

import harness
from harness import (
    Broke,
    free_port,
    last,
    say,
    secs,
    stop_groups,
    which_gun,
)

APP = "bench"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "python-web"
INSTANCES = 3
FORMATION = {"web": 3, "worker": 3}
TARGET_RATIO = 2.0
TARGET_SECONDS = 5.0
TIMEOUT = 120.0  # seconds a deploy, a rollout or a bare step may take before the run broke
GUN = [sys.executable, "-m", "gun.cli"]
GIT = ["git", "-c", "user.name=gun bench", "-c", "user.email=bench@localhost"]
PIP_QUIET = ["--disable-pip-version-check", "--progress-bar", "off"]  # as the buildpack runs it


def median(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def after(stamp: str | None, since: dt.datetime) -> float | None:
    """Seconds from `since` to an ISO timestamp (UTC when it names no zone)."""
    if not stamp:
        return None
    at = dt.datetime.fromisoformat(stamp)
    return ((at if at.tzinfo else at.replace(tzinfo=dt.UTC)) - since).total_seconds()


def run(argv: Sequence[str | Path], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; Broke if it fails or takes over TIMEOUT."""
    shown = " ".join(map(str, argv))
    try:
        r = subprocess.run(
            [str(a) for a in argv], capture_output=True, text=True, timeout=TIMEOUT, **kw
        )
    except subprocess.TimeoutExpired:
        raise Broke(f"`{shown}` did not finish in {TIMEOUT:g} s") from None
    if r.returncode != 0:
        raise Broke(f"`{shown}` exited {r.returncode}: {(r.stderr or r.stdout).strip()[-2000:]}")
    return r


def timed(argv: Sequence[str | Path], **kw: Any) -> float:
    began = time.monotonic()
    run(argv, **kw)
    return time.monotonic() - began


def wait_for(done: Callable[[], object], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := done()):
        if time.monotonic() >= deadline:
            raise Broke(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
    return got


# --- cleaning up ----------------------------------------------------------------------------


# --- gun ------------------------------------------------------------------------------------


@dataclass
class Deploy:
    """One `gun app:bench deploy`: its wall time and, in seconds after it started, when things
    happened (None: not seen)."""

    wall: float
    version: str
    stderr: list[tuple[float, str]]  # (when the line reached the CLI, line)
    events: dict[str, float | None] = field(default_factory=dict)

    def line_at(self, pattern: str) -> float | None:
        return next((at for at, line in self.stderr if re.search(pattern, line)), None)


class Gun:
    """One `gun up` in its own process group, its data and config under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "gun"
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
        self.env["XDG_CONFIG_HOME"] = str(root / "config")
        self.log = root / "up.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [*GUN, "up", "--dir", str(self.home), "--port", str(self.port)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*argv, "--instances", str(INSTANCES)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def started() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise Broke(f"`gun up` exited {self.proc.returncode}:\n{tail}")
            return b"Ctrl-C stops everything" in self.log.read_bytes()

        wait_for(started, 60, f"`gun up` to start (see {self.log})")

    def stop(self) -> None:
        if self.proc is not None:
            stop_groups([self.proc], 60)  # gun up stops meta, then each agent and its processes
            self.proc = None

    def cli(self, *args: str) -> float:
        return timed([*GUN, *args], env=self.env)

    def deploy(self, repo: Path) -> Deploy:
        """Time `gun app:bench deploy dir=REPO`, noting when each stderr line arrived."""
        logs = self.applog_sizes()
        since = dt.datetime.now(dt.UTC)
        lines: list[tuple[float, str]] = []
        began = time.monotonic()
        proc = subprocess.Popen(
            [*GUN, f"app:{APP}", "deploy", f"dir={repo}"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        err = proc.stderr

        def read_stderr() -> None:
            for raw in err:
                lines.append((time.monotonic() - began, raw.decode(errors="replace").rstrip()))

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            out = proc.stdout.read().decode(errors="replace")
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise Broke(f"`gun app:{APP} deploy` did not finish in {TIMEOUT:g} s") from None
        wall = time.monotonic() - began
        reader.join(10)
        if proc.returncode != 0:
            tail = "\n".join(line for _, line in lines[-30:])
            raise Broke(f"`gun app:{APP} deploy` exited {proc.returncode}:\n{tail}")
        d = Deploy(wall, out.strip(), lines)
        d.events = {
            **self.meta_events(d.version, since),
            "the build's first line reaches the CLI": d.line_at(r"^-----> Building"),
            "release command done, seen by the CLI": d.line_at(r"^-----> Release command of v"),
            **self.agent_events(logs, since),
            "the CLI exits": wall,
        }
        return d

    def api(self, path: str) -> Any:
        token = (self.home / "admin.token").read_text().strip()
        r = httpx.get(
            f"http://127.0.0.1:{self.port}/v1/apps/{APP}/{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        if r.status_code != 200:
            raise Broke(f"GET /v1/apps/{APP}/{path} answered {r.status_code}: {r.text}")
        return r.json()

    def meta_events(self, version: str, since: dt.datetime) -> dict[str, float | None]:
        """From meta's records: when the build was created (the upload was in), its release
        made (buildpack and slug done) and the build finished (the release phase done)."""
        build = self.api("builds")[0]
        release = self.api(f"releases/{version.removeprefix('v')}")
        return {
            "meta: build created (source uploaded)": after(build["created_at"], since),
            "meta: the new release created (build done)": after(release["created_at"], since),
            "meta: build finished (release phase done)": after(build["finished_at"], since),
        }

    def applog_sizes(self) -> dict[Path, int]:
        return {p: p.stat().st_size for p in self.home.glob("instances/*/log/app.log")}

    def agent_events(self, offsets: dict[Path, int], since: dt.datetime) -> dict[str, float | None]:
        """From the agents' app.log: when the release phase began, the last new process was
        spawned and the last one was up (a web one accepts on $PORT; a worker is up at once)."""
        phase: list[float] = []
        spawned: list[float] = []
        up: list[float] = []
        event = re.compile(r"^(\S+) heroku\[(web|worker|release)\.\d+\]: (.*)$")
        for path in self.home.glob("instances/*/log/app.log"):
            with open(path, "rb") as f:
                f.seek(offsets.get(path, 0))
                for raw in f:
                    m = event.match(raw.decode(errors="replace").rstrip("\n"))
                    if m is None:
                        continue
                    try:
                        at = after(m[1], since)
                    except ValueError:
                        continue
                    if at is None:
                        continue
                    if m[3].startswith("Release v"):
                        phase.append(at)
                    elif m[3].startswith("Starting process"):
                        spawned.append(at)
                    elif m[3] == "State changed from starting to up":
                        up.append(at)
        n = sum(FORMATION.values())
        return {
            "agent: release phase begins": min(phase) if phase else None,
            f"agents: all {n} new processes spawned": last(spawned, n),
            f"agents: all {n} up": last(up, n),
        }

    def settle(self) -> None:
        """Wait until the rollout is over: meta shows the formation up on the current release
        and only the formation's processes are alive (the replaced web processes drained)."""
        instances = str(self.home / "instances")

        def converged() -> bool:
            data = self.api("processes")
            procs = data["processes"]
            if len(procs) != sum(FORMATION.values()) or any(
                p["state"] != "up" or p["release"] != data["release"] for p in procs
            ):
                return False
            alive = 0
            for p in psutil.process_iter(["cmdline", "cwd"]):
                cmd = p.info["cmdline"] or []
                if (p.info["cwd"] or "").startswith(instances) and cmd[-1:] in (
                    ["web.py"],
                    ["worker.py"],
                ):
                    alive += 1
            return alive == sum(FORMATION.values())

        wait_for(converged, TIMEOUT, "the rollout to finish", every=0.2)


# --- the app ----------------------------------------------------------------------------------


def make_repo(repo: Path) -> None:
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns(".venv", "__pycache__"))
    run(["git", "init", "-q", repo])
    run([*GIT, "-C", repo, "add", "-A"])
    run([*GIT, "-C", repo, "commit", "-q", "-m", "python-web"])


def commit_change(repo: Path, n: int) -> None:
    (repo / "message.txt").write_text(f"hello from gun, change {n}\n")
    run([*GIT, "-C", repo, "commit", "-q", "-a", "-m", f"change {n}"])


# --- the bare steps ---------------------------------------------------------------------------

BARE = (
    "git archive --format=tar.gz HEAD",
    "tar -xzf",
    "venv --copies + pip install --no-index",
    "tar -czf the built app",
    "3 web + 3 worker started",
)


@dataclass(frozen=True)
class Build:
    """What gun's python buildpack used, for the bare steps to use the same."""

    python: str  # the interpreter
    wheels: Path  # the build cache's wheelhouse
    pip: Path | None  # pip unpacked from the interpreter's wheel (None: the venv gets its own)


def what_gun_used(gun: Gun, cold: Deploy) -> Build:
    m = next(
        (m for _, line in cold.stderr if (m := re.search(r"Using Python \S+ \((.+?)\)", line))),
        None,
    )
    if m is None:
        raise Broke("the cold deploy's build output names no interpreter (`Using Python X (PATH)`)")
    cache = gun.home / "builds" / "cache" / APP
    wheels = cache / "python" / "wheels"
    if not any(wheels.glob("*.whl")):
        raise Broke(f"gun's build cache has no wheelhouse at {wheels}")
    pips = sorted(cache.glob("tools/pip-*/pip/__main__.py"))
    return Build(m[1], wheels, pips[-1].parent if pips else None)


@dataclass(frozen=True)
class Bare:
    """One run of the bare steps: each step's seconds (as BARE), and more detail."""

    steps: list[float]
    venv: float  # of step 3
    pip: float  # of step 3
    release: float  # `python release.py`, not one of the steps (gun runs it too)


def bare_round(repo: Path, work: Path, build: Build) -> Bare:
    work.mkdir(parents=True)
    source, slug, app = work / "source.tar.gz", work / "slug.tar.gz", work / "app"
    took = [
        timed(
            ["git", "-C", repo, "archive", "--format=tar.gz", "--prefix=app/", "-o", source, "HEAD"]
        )
    ]
    took.append(timed(["tar", "-xzf", source, "-C", work]))

    env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
    venv = app / ".venv"
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}")
    env.update(PIP_NO_INPUT="1", PIP_CACHE_DIR=str(work / "pip-cache"))
    no_pip = ["--without-pip"] if build.pip else []  # as the buildpack: pip from the wheel
    venv_s = timed([build.python, "-m", "venv", "--copies", *no_pip, venv], cwd=app, env=env)
    python = venv / "bin" / "python"
    pip: list[str | Path] = [python, build.pip] if build.pip else [python, "-m", "pip"]
    links: list[str | Path] = ["--no-index", "--find-links", build.wheels, "-r", "requirements.txt"]
    pip_s = timed([*pip, "install", *PIP_QUIET, *links], cwd=app, env=env)
    took.append(venv_s + pip_s)

    took.append(timed(["tar", "-czf", slug, "-C", work, "app"]))
    took.append(start_processes(app, env))
    release = timed(
        [shutil.which("bash") or "/bin/bash", "-c", "python release.py"], cwd=app, env=env
    )
    return Bare(took, venv_s, pip_s, release)


def start_processes(app: Path, env: dict[str, str]) -> float:
    """Start the formation as the agent would (`bash -c COMMAND`, own session, the venv on
    PATH); seconds until each web accepts on its $PORT and each worker has printed a line."""
    bash = shutil.which("bash") or "/bin/bash"
    procs: list[subprocess.Popen[bytes]] = []
    webs: dict[int, subprocess.Popen[bytes]] = {}
    outs: list[Path] = []
    began = time.monotonic()
    try:
        for kind, n in FORMATION.items():
            for i in range(1, n + 1):
                port = free_port()
                out = app / f"{kind}.{i}.out"
                with open(out, "wb") as f:
                    proc = subprocess.Popen(
                        [bash, "-c", f"python {kind}.py"],
                        cwd=app,
                        env={**env, "PORT": str(port), "DYNO": f"{kind}.{i}"},
                        stdin=subprocess.DEVNULL,
                        stdout=f,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                procs.append(proc)
                if kind == "web":
                    webs[port] = proc
                else:
                    outs.append(out)

        def ready() -> bool:
            for proc in procs:
                if proc.poll() is not None:
                    raise Broke(f"`{proc.args!r}` in {app} exited {proc.returncode} at once")
            for port in list(webs):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        del webs[port]
            return not webs and all(out.stat().st_size > 0 for out in outs)

        wait_for(ready, TIMEOUT, "the bare processes to start", every=0.005)
        return time.monotonic() - began
    finally:
        stop_groups(procs, 10)


# --- the run ----------------------------------------------------------------------------------


def machine_load() -> str:
    """How busy the machine is now (the load average lags a minute behind: it is shown, but
    only the CPU use of the last second makes the line say BUSY)."""
    busy = psutil.cpu_percent(interval=1.0)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    text = f"{busy:.0f}% CPU busy over 1 s, load average {load}"
    if busy > 20:
        text += " -- BUSY: other work is running, the figures are inflated"
    return text


def show_deploy(label: str, d: Deploy) -> None:
    say(f"{label}: {d.version} in {d.wall:.2f} s")
    events = sorted((at, what) for what, at in d.events.items() if at is not None)
    say("  " + ", ".join(f"{what} {at:.2f}" for at, what in events))


def report(deploys: list[Deploy], bare: list[Bare], startup: float) -> None:
    walls = [d.wall for d in deploys]
    gun_min, gun_mid = min(walls), statistics.median(walls)
    steps = [statistics.median(b.steps[i] for b in bare) for i in range(len(BARE))]
    total = sum(steps)

    def row(label: str, low: str, mid: str) -> None:
        say(f"  {label:<56} {low:>8} {mid:>8}")

    say()
    say(f"warm deploy of examples/python-web to {INSTANCES} instances, {len(deploys)} round(s)")
    row("", "min", "median")
    row("gun app:bench deploy (wall time)", secs(gun_min), secs(gun_mid))
    say(f"  bare steps on this machine (median of {len(bare)} each):")
    for i, (name, value) in enumerate(zip(BARE, steps, strict=True), 1):
        row(f"  {i}. {name}", "", secs(value))
    venv = statistics.median(b.venv for b in bare)
    pip = statistics.median(b.pip for b in bare)
    say(f"       (3. = venv {venv:.2f} s + pip install {pip:.2f} s)")
    row("  bare total", "", secs(total))
    row("gun / bare", f"{gun_min / total:.1f}x", f"{gun_mid / total:.1f}x")
    say("  where gun's time goes (seconds after the deploy started, median):")
    row("  the CLI alone starting (`gun --version`, min of 3)", "", secs(startup))
    mids = {what: median([d.events.get(what) for d in deploys]) for what in deploys[0].events}
    for what, at in sorted(mids.items(), key=lambda kv: (kv[1] is None, kv[1] or 0.0)):
        row(f"  {what}", "", secs(at))
    n = sum(FORMATION.values())
    tail = [d.wall - up for d in deploys if (up := d.events.get(f"agents: all {n} up"))]
    row(f"  the CLI's wait after all {n} were up", "", secs(median(tail)))
    release = statistics.median(b.release for b in bare)
    row("  (bare: `python release.py` alone; not in the total)", "", secs(release))
    # The measure: from the command to all processes up. The CLI exits later: it then
    # watches non-web processes stay up for 1 s (cli/wait.py STEADY) before it says so.
    all_up = median([d.events.get(f"agents: all {n} up") for d in deploys])
    say()
    say("targets (medians), from the command to all processes up:")
    if all_up is None:
        say("  not measured: the agents' logs did not show every process up")
    else:
        say(
            f"  gun <= {TARGET_RATIO:g}x the bare steps: "
            f"{'met' if all_up <= TARGET_RATIO * total else 'MISSED'} "
            f"({all_up:.2f} s vs {TARGET_RATIO * total:.2f} s allowed, {all_up / total:.1f}x)"
        )
        say(
            f"  gun <= {TARGET_SECONDS:g} s: {'met' if all_up <= TARGET_SECONDS else 'MISSED'} "
            f"({all_up:.2f} s)"
        )
    say(
        f"  (until the CLI exits: {gun_mid:.2f} s, {gun_mid / total:.1f}x the bare steps, "
        f"{'within' if gun_mid <= TARGET_SECONDS else 'over'} {TARGET_SECONDS:g} s)"
    )


def bench(args: argparse.Namespace, root: Path, stack: contextlib.ExitStack) -> int:
    formation = " ".join(f"{k}={v}" for k, v in FORMATION.items())
    say(
        f"gun deploy vs the bare steps: examples/python-web, {INSTANCES} instances, "
        f"{formation}, {args.rounds} round(s)"
    )
    say(
        f"  {platform.node()}: {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB, {platform.platform()}"
    )
    say(f"  gun: {which_gun()}")
    say(f"  temporary directory: {root}")
    say(f"  machine: {machine_load()}")

    repo = root / "repo"
    make_repo(repo)
    gun = Gun(root)
    stack.callback(gun.stop)
    gun.start()
    startup = min(gun.cli("--version") for _ in range(3))
    gun.cli("apps.create", APP)
    cold = gun.deploy(repo)
    show_deploy("cold deploy (the first build downloads Bottle; not judged)", cold)
    build = what_gun_used(gun, cold)
    pip = build.pip or "its own in the venv"
    say(f"  the build used {build.python}, pip {pip}, wheels in {build.wheels}")
    gun.cli(f"app:{APP}", "scale", *formation.split())
    gun.settle()

    deploys: list[Deploy] = []
    bare: list[Bare] = []
    for i in range(1, args.rounds + 1):
        commit_change(repo, i)
        deploys.append(gun.deploy(repo))
        gun.settle()
        bare.append(bare_round(repo, root / f"bare{i}", build))
        show_deploy(f"round {i}/{args.rounds}: warm deploy", deploys[-1])
        steps = bare[-1].steps
        say(f"  bare steps: {' + '.join(f'{s:.2f}' for s in steps)} = {sum(steps):.2f} s")
    say(f"  machine: {machine_load()}")
    report(deploys, bare, startup)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Time a warm `gun deploy` of examples/python-web to 3 instances next to the "
        "bare steps it does, measured on this machine in the same run."
    )
    ap.add_argument("--rounds", type=int, default=3, help="warm deploys and bare runs (default 3)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    return harness.run_main("gun-bench-deploy-", lambda root, stack: bench(args, root, stack))


if __name__ == "__main__":
    sys.exit(main())
