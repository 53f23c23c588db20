"""How fast gun converges a formation, and what its agents cost next to supervisord.

    .venv/bin/python bench/converge.py            # 3 rounds, 50 processes, 5 instances
    .venv/bin/python bench/converge.py --quick    # 1 round

1. Convergence. Starts `gun up --instances 5` (a temporary --dir and XDG_CONFIG_HOME, a free
   port on 127.0.0.1, its own process group), creates the app `bench`, deploys a tiny app
   (a Procfile with a small web server bound to 127.0.0.1 and an idle worker type), scales it to
   web=0, then times, each round:

   - web=0 -> web=50 through the API (PATCH the formation, poll GET /v1/apps/bench/processes
     every 0.05 s with the admin token) until meta shows all 50 `up`;
   - web=50 -> web=0 the same way until meta shows no process AND no web pid is alive;
   - the same two changes with the CLI, `gun app:bench scale web=50` / `web=0`, which waits until
     converged itself: its wall time (interpreter start and its 0.25 s polling included).

   The agents' app.log tells when they spawned the processes and saw them accept connections,
   so each round also shows how much of the time is meta's view lagging behind the agents.
   Target: 50 up in <= 5 s (the median of the API measure).

2. Footprint with 50 idle processes (`python3 -c 'import time; time.sleep(10**9)'`): RSS, USS
   and CPU (user + system, cpu_times deltas over a 10 s window, % of one CPU) of the 5 agents
   (sum and each), of one agent running all 50 (a second `gun up --instances 1`), and of
   supervisord 4.3.0 (pip-installed in a temporary venv) running the same command with
   numprocs=50. Each is measured alone, one after the other, over windows of the same length.
   Target: the single agent's RSS <= supervisord's.

Everything started here is stopped in `finally` (SIGTERM to each process group, then SIGKILL
to any group left whose processes point into the temporary directory) and the temporary
directory, venv included, is removed. Only 127.0.0.1 is bound.

Exit status: 0 when every measurement was made (targets met or not); 1 when something broke
(a command failed, a convergence timed out, supervisord did not start).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
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
    kill_leftovers,
    last,
    say,
    secs,
    which_gun,
)

APP = "bench"
SUPERVISOR_VERSION = "4.3.0"  # the newest on PyPI when this was written (pip index versions)
TARGET_UP_SECONDS = 5.0
POLL = 0.05  # seconds between GET /v1/apps/bench/processes while timing
TIMEOUT = 120.0  # seconds any one convergence may take before the run counts as broken
MiB = 1024 * 1024
GUN = [sys.executable, "-m", "gun.cli"]

WEB_PY = """\
import os
import socket

server = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
while True:
    conn, _ = server.accept()
    with conn:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n")
"""
IDLE = "-c 'import time; time.sleep(10**9)'"


# --- processes we start, and cleaning up after them ----------------------------------------


def alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM proc's process group (proc leads it), SIGKILL the group after `grace` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        say(f"  pid {proc.pid} did not exit {grace:g} s after SIGTERM: SIGKILL to its group")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def kill_group_of(p: psutil.Process | None) -> None:
    """SIGKILL the process group p leads, if p is still the process it was."""
    if p is not None and alive(p):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)


# --- gun ----------------------------------------------------------------------------------


class Gun:
    """One `gun up` in its own process group, its data and config under `root`."""

    def __init__(self, root: Path, instances: int) -> None:
        self.root = root
        self.home = root / "home"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.instances = instances
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
        self.env["XDG_CONFIG_HOME"] = str(root / "config")
        self.log = root / "up.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.meta_proc: psutil.Process | None = None  # its command line names no path of ours
        self.http: httpx.Client | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True)
        argv = [*GUN, "up", "--dir", str(self.home), "--port", str(self.port)]
        argv += ["--instances", str(self.instances)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(
            lambda: b"Ctrl-C stops everything" in self.log.read_bytes(),
            30,
            f"`gun up` to start (see {self.log})",
            guard=self._check_running,
        )
        self.meta_proc = self.meta()
        token = (self.home / "admin.token").read_text().strip()
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def _check_running(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise Broke(f"`gun up` exited with status {self.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None
        if self.proc is not None:
            stop_group(self.proc, 90)  # gun up stops meta, then each agent and its processes
            self.proc = None
        kill_group_of(self.meta_proc)
        self.meta_proc = None
        left = kill_leftovers(self.root)
        if left:
            say(f"  note: {left} process(es) of gun were still running after it stopped: killed")

    def cli(self, *args: str) -> float:
        """Run `gun ARGS`; its wall time. Raises Broke if it fails."""
        began = time.monotonic()
        try:
            r = subprocess.run(
                [*GUN, *args], env=self.env, capture_output=True, text=True, timeout=TIMEOUT + 60
            )
        except subprocess.TimeoutExpired:
            raise Broke(f"`gun {' '.join(args)}` did not return in {TIMEOUT + 60:g} s") from None
        took = time.monotonic() - began
        if r.returncode != 0:
            raise Broke(f"`gun {' '.join(args)}` exited {r.returncode}: {r.stderr.strip()}")
        return took

    def cli_watched(
        self, args: Sequence[str], done: Callable[[], bool]
    ) -> tuple[float, float | None]:
        """Run `gun ARGS` while polling done() every POLL seconds: (its wall time, when done()
        first held, None if not while it ran). Raises Broke if it fails."""
        began = time.monotonic()
        proc = subprocess.Popen(
            [*GUN, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        seen = None
        try:
            while True:
                try:
                    proc.wait(POLL)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if seen is None and done():
                    seen = time.monotonic() - began
                if time.monotonic() - began > TIMEOUT + 60:
                    raise Broke(f"`gun {' '.join(args)}` did not return in {TIMEOUT + 60:g} s")
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate()
        took = time.monotonic() - began
        if proc.returncode != 0:
            raise Broke(f"`gun {' '.join(args)}` exited {proc.returncode}: {err.strip()}")
        return took, seen

    def api(self, method: str, path: str, body: Any = None) -> Any:
        assert self.http is not None
        self._check_running()
        try:
            r = self.http.request(method, path, json=body)
        except httpx.HTTPError as e:
            raise Broke(f"{method} {path} failed: {type(e).__name__}: {e}") from None
        if r.status_code >= 300:
            raise Broke(f"{method} {path} answered {r.status_code}: {r.text}")
        return r.json() if r.content else None

    def processes(self) -> list[dict[str, Any]]:
        procs: list[dict[str, Any]] = self.api("GET", f"/v1/apps/{APP}/processes")["processes"]
        return procs

    def scale(self, **counts: int) -> None:
        updates = [{"type": t, "quantity": n} for t, n in counts.items()]
        self.api("PATCH", f"/v1/apps/{APP}/formation", {"updates": updates})

    def agents(self) -> dict[str, psutil.Process]:
        """Each instance's agent, by instance id."""
        found = {}
        for path in sorted((self.home / "instances").glob("*/agent.pid")):
            record = json.loads(path.read_text())
            proc = psutil.Process(int(record["pid"]))
            if abs(proc.create_time() - float(record["started"])) > 0.05:
                raise Broke(f"the agent of {path.parent.name} is not running")
            found[path.parent.name] = proc
        if len(found) != self.instances:
            raise Broke(f"found {len(found)} agents, expected {self.instances}")
        return found

    def meta(self) -> psutil.Process:
        assert self.proc is not None
        for child in psutil.Process(self.proc.pid).children():
            if "meta" in child.cmdline():
                return child
        raise Broke("meta is not running under `gun up`")

    def applog_sizes(self) -> dict[Path, int]:
        return {p: p.stat().st_size for p in (self.home / "instances").glob("*/log/app.log")}


def wait_for(
    done: Callable[[], object],
    timeout: float,
    what: str,
    every: float = 0.1,
    guard: Callable[[], None] | None = None,
) -> Any:
    """Call done() until it returns something true; Broke after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if guard is not None:
            guard()
        got = done()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise Broke(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


# --- what the agents saw (their app.log) ---------------------------------------------------

EVENT = re.compile(r"^(?P<stamp>\S+) heroku\[(?P<type>[A-Za-z0-9_-]+)\.\d+\]: (?P<text>.*)$")


def agent_events(
    gun: Gun, offsets: dict[Path, int], since: dt.datetime, ptype: str
) -> dict[str, list[float]]:
    """Seconds after `since` at which the agents spawned, saw up, saw down a `ptype` process."""
    out: dict[str, list[float]] = {"spawned": [], "up": [], "down": []}
    for path in (gun.home / "instances").glob("*/log/app.log"):
        with open(path, "rb") as f:
            f.seek(offsets.get(path, 0))
            for raw in f:
                m = EVENT.match(raw.decode("utf-8", "replace").rstrip("\n"))
                if m is None or m["type"] != ptype:
                    continue
                try:
                    at = (dt.datetime.fromisoformat(m["stamp"]) - since).total_seconds()
                except ValueError:
                    continue
                text = m["text"]
                if text.startswith("Starting process"):
                    out["spawned"].append(at)
                elif text == "State changed from starting to up":
                    out["up"].append(at)
                elif text.endswith(" to down"):
                    out["down"].append(at)
    return out


# --- convergence ---------------------------------------------------------------------------


@dataclass
class Round:
    n: int  # web processes
    floor: float | None = None  # n web.py spawned straight from here until all accept
    up_api: float = 0.0  # PATCH web=N until meta shows N up
    up_first: float = 0.0  # until meta shows the first one up
    up_spawned: float | None = None  # until the agents had spawned all N (their app.log)
    up_agents: float | None = None  # until the agents had seen all N accept connections
    down_api: float = 0.0  # PATCH web=0 until meta shows none and no pid is alive
    down_meta: float = 0.0  # until meta shows none
    down_pids: float = 0.0  # until no web pid is alive
    down_agents: float | None = None  # until the agents had seen all N down
    up_cli: float = 0.0  # `gun scale web=N`, wall time
    up_cli_agents: float | None = None  # until the agents had seen all N accept connections
    up_cli_meta: float | None = None  # until meta showed all N up (polled while the CLI ran)
    down_cli: float = 0.0  # `gun scale web=0`, wall time
    notes: list[str] = field(default_factory=list)


def web_pids(procs: list[dict[str, Any]]) -> list[psutil.Process]:
    found = []
    for p in procs:
        if p["type"] == "web" and p.get("pid"):
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(p["pid"]))
    return found


def all_up(procs: list[dict[str, Any]], ptype: str, n: int) -> bool:
    mine = [p for p in procs if p["type"] == ptype]
    return len(mine) == n and all(p["state"] == "up" for p in mine)


def states(procs: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for p in procs:
        counts[p["state"]] = counts.get(p["state"], 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"


def scale_up_api(gun: Gun, n: int, r: Round) -> list[dict[str, Any]]:
    offsets, since = gun.applog_sizes(), dt.datetime.now(dt.UTC)
    began = time.monotonic()
    gun.scale(web=n)
    first = None
    while True:
        procs = gun.processes()
        took = time.monotonic() - began
        if first is None and any(p["state"] == "up" for p in procs):
            first = took
        if all_up(procs, "web", n):
            break
        if took > TIMEOUT:
            raise Broke(f"web={n} did not converge in {TIMEOUT:g} s: {states(procs)}")
        time.sleep(POLL)
    r.up_api, r.up_first = took, first or took
    events = agent_events(gun, offsets, since, "web")
    r.up_spawned, r.up_agents = last(events["spawned"], n), last(events["up"], n)
    return procs


def scale_down_api(gun: Gun, n: int, pids: list[psutil.Process], r: Round) -> None:
    offsets, since = gun.applog_sizes(), dt.datetime.now(dt.UTC)
    began = time.monotonic()
    gun.scale(web=0)
    meta = gone = None
    while meta is None or gone is None:
        procs = gun.processes() if meta is None else []
        took = time.monotonic() - began
        if meta is None and not procs:
            meta = took
        if gone is None and not any(alive(p) for p in pids):
            gone = took
        if took > TIMEOUT:
            left = sum(alive(p) for p in pids)
            raise Broke(f"web=0 did not converge in {TIMEOUT:g} s: {states(procs)}, {left} alive")
        if meta is None or gone is None:
            time.sleep(POLL)
    r.down_meta, r.down_pids, r.down_api = meta, gone, max(meta, gone)
    r.down_agents = last(agent_events(gun, offsets, since, "web")["down"], n)


def check_web(procs: list[dict[str, Any]]) -> None:
    """Every web process answers HTTP on its port (once, outside the timings)."""
    with httpx.Client(timeout=5) as client:
        for p in procs:
            r = client.get(f"http://127.0.0.1:{p['port']}/")
            if r.status_code != 200:
                raise Broke(f"{p['name']} answered {r.status_code} on port {p['port']}")


def floor(app: Path, command: str, n: int) -> float | None:
    """Spawn n `bash -c COMMAND` straight from here (no gun): seconds until all accept.

    The lower bound this machine sets (n servers starting on its CPUs). None if a server
    exited early (its port was taken meanwhile, e.g. by a connecting socket's ephemeral port).
    """
    bash = shutil.which("bash") or "/bin/bash"
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
    began = time.monotonic()
    procs = {
        port: subprocess.Popen(
            [bash, "-c", command],
            cwd=app,
            env={**env, "PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for port in ports
    }
    try:
        waiting = set(ports)
        while waiting:
            for port in list(waiting):
                if procs[port].poll() is not None:
                    return None
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        waiting.discard(port)
            if time.monotonic() - began > TIMEOUT:
                raise Broke(f"{len(waiting)} of {n} did not accept in {TIMEOUT:g} s: {command}")
            time.sleep(0.025)
        return time.monotonic() - began
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def one_round(gun: Gun, n: int, settle: float, first: bool, app: App) -> Round:
    r = Round(n)
    for _ in range(3):
        r.floor = floor(app.path, app.web, n)
        if r.floor is not None:
            break
    time.sleep(settle)
    procs = scale_up_api(gun, n, r)
    if first:
        check_web(procs)
    pids = web_pids(procs)
    if len(pids) != n:
        r.notes.append(f"meta reported {len(pids)} pids for {n} web processes")
    time.sleep(settle)
    scale_down_api(gun, n, pids, r)
    time.sleep(settle)

    offsets, since = gun.applog_sizes(), dt.datetime.now(dt.UTC)
    r.up_cli, r.up_cli_meta = gun.cli_watched(
        [f"app:{APP}", "scale", f"web={n}"], lambda: all_up(gun.processes(), "web", n)
    )
    r.up_cli_agents = last(agent_events(gun, offsets, since, "web")["up"], n)
    procs = gun.processes()
    if not all_up(procs, "web", n):
        r.notes.append(f"after `gun scale web={n}` returned meta showed {states(procs)}")
    pids = web_pids(procs)
    time.sleep(settle)
    r.down_cli = gun.cli(f"app:{APP}", "scale", "web=0")
    left = [p for p in pids if alive(p)]
    if left:
        r.notes.append(f"{len(left)} web pid(s) still alive when `gun scale web=0` returned")
        wait_for(lambda: not any(alive(p) for p in pids), TIMEOUT, "the web processes to exit")
    time.sleep(settle)
    return r


def show_round(i: int, rounds: int, r: Round) -> None:
    say(
        f"round {i}/{rounds}: up {secs(r.up_api)} (API) {secs(r.up_cli)} (CLI)"
        f" | down {secs(r.down_api)} (API) {secs(r.down_cli)} (CLI)"
    )
    say(
        f"  floor: {r.n} web commands spawned straight from this script all accept at "
        f"{secs(r.floor)}"
    )
    say(
        f"  up:   agents spawned all by {secs(r.up_spawned)}, saw all accept by "
        f"{secs(r.up_agents)}; meta showed the first up at {secs(r.up_first)}, "
        f"all at {secs(r.up_api)}"
    )
    say(
        f"  down: agents saw all down by {secs(r.down_agents)}, all pids gone at "
        f"{secs(r.down_pids)}; meta showed none at {secs(r.down_meta)}"
    )
    say(
        f"  CLI:  after `gun scale web={r.n}` started: agents saw all accept at "
        f"{secs(r.up_cli_agents)}, meta showed all up at {secs(r.up_cli_meta)}, "
        f"the CLI returned at {secs(r.up_cli)}"
    )
    for note in r.notes:
        say(f"  note: {note}")


def summarise_rounds(rounds: list[Round], n: int, instances: int) -> bool:
    def row(label: str, values: Sequence[float | None], verdict: str = "") -> None:
        got = [v for v in values if v is not None]
        lo = secs(min(got)) if got else "-"
        mid = secs(statistics.median(got)) if got else "-"
        say(f"  {label:<52} {lo:>8} {mid:>8}  {verdict}")

    up = statistics.median(r.up_api for r in rounds)
    met = up <= TARGET_UP_SECONDS
    say()
    say(f"convergence: {instances} instances, web=0 -> {n} -> 0, {len(rounds)} round(s)")
    say(f"  {'':<52} {'min':>8} {'median':>8}")
    verdict = f"target <= {TARGET_UP_SECONDS:g} s: {'met' if met else 'MISSED'}"
    row(f"up:   PATCH web={n} -> meta shows {n} up (API)", [r.up_api for r in rounds], verdict)
    row(f"up:   `gun scale web={n}` wall time (CLI)", [r.up_cli for r in rounds])
    row("down: PATCH web=0 -> none in meta, no pid alive (API)", [r.down_api for r in rounds])
    row("down: `gun scale web=0` wall time (CLI)", [r.down_cli for r in rounds])
    row(f"floor: {n} web commands spawned here, all accept", [r.floor for r in rounds])
    say("  where the time goes (agents' app.log; seconds after the PATCH):")
    row(f"  up:   agents had spawned all {n}", [r.up_spawned for r in rounds])
    row(f"  up:   agents had seen all {n} accept on $PORT", [r.up_agents for r in rounds])
    row("  up:   meta showed the first one up", [r.up_first for r in rounds])
    row(f"  down: agents had seen all {n} down", [r.down_agents for r in rounds])
    row("  down: every web pid gone", [r.down_pids for r in rounds])
    row("  down: meta showed none", [r.down_meta for r in rounds])
    row(f"  CLI up: agents had seen all {n} accept", [r.up_cli_agents for r in rounds])
    row(f"  CLI up: meta showed all {n} up", [r.up_cli_meta for r in rounds])
    return met


# --- footprint -----------------------------------------------------------------------------


@dataclass
class Use:
    what: str
    processes: str
    rss: float  # MiB
    uss: float  # MiB
    cpu: float  # % of one CPU over the window
    target: str = ""


def measure(
    procs: Sequence[psutil.Process], window: float
) -> dict[int, tuple[float, float, float]]:
    """pid -> (RSS MiB, USS MiB, CPU %) over `window` seconds, from cpu_times deltas."""
    before = {p.pid: p.cpu_times() for p in procs}
    psutil.cpu_percent()
    began = time.monotonic()
    time.sleep(window)
    took = time.monotonic() - began
    busy = psutil.cpu_percent()
    note = " -- BUSY: other work ran, CPU figures may be off" if busy > 15 else ""
    say(f"  the machine was {busy:.0f}% busy (all CPUs) during the window{note}")
    out = {}
    for p in procs:
        t0, t1 = before[p.pid], p.cpu_times()
        cpu = max(0.0, (t1.user + t1.system - t0.user - t0.system) / took * 100)
        mem = p.memory_full_info()
        out[p.pid] = (mem.rss / MiB, mem.uss / MiB, cpu)
    return out


def total(what: str, count: str, values: Sequence[tuple[float, float, float]]) -> Use:
    rss, uss, cpu = (sum(v[i] for v in values) for i in range(3))
    return Use(what, count, rss, uss, cpu)


def rss_of(procs: Sequence[psutil.Process]) -> float:
    return sum(p.memory_info().rss for p in procs) / MiB


def gun_footprint(gun: Gun, n: int, window: float, settle: float) -> tuple[list[Use], Use, float]:
    """Scale the idle type to n and measure the agents and meta; (rows, agents' sum, children)."""
    gun.scale(web=0, idle=n)
    procs = wait_for(
        lambda: (ps := gun.processes()) and all_up(ps, "idle", n) and ps,
        TIMEOUT,
        f"{n} idle processes to be up",
        every=0.2,
    )
    time.sleep(settle)
    children = [psutil.Process(p["pid"]) for p in procs if p["type"] == "idle"]
    agents, meta = gun.agents(), gun.meta()
    got = measure([*agents.values(), meta], window)
    per = {i: sum(p["instance"] == i for p in procs) for i in agents}
    rows = []
    if len(agents) > 1:
        rows.append(
            total(f"gun: {len(agents)} agents, sum", str(n), [got[a.pid] for a in agents.values()])
        )
        for i, a in agents.items():
            rows.append(Use(f"gun:   agent {i}", str(per[i]), *got[a.pid]))
    else:
        rows.append(Use("gun: 1 agent", str(n), *got[next(iter(agents.values())).pid]))
    count = f"{len(agents)} agent{'s' if len(agents) > 1 else ''}"
    rows.append(Use(f"gun: meta ({count})", "-", *got[meta.pid]))
    agents_sum = total("", str(n), [got[a.pid] for a in agents.values()])
    return rows, agents_sum, rss_of(children)


# --- supervisord ---------------------------------------------------------------------------

SUPERVISORD_CONF = """\
[unix_http_server]
file={root}/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
silent=true
logfile={root}/supervisord.log
pidfile={root}/supervisord.pid
childlogdir={root}/childlog
directory={root}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{root}/supervisor.sock

[program:idle]
command={command}
process_name=%(program_name)s-%(process_num)0{width}d
numprocs={n}
directory={root}/work
autostart=true
autorestart=true
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={root}/childlog/%(program_name)s-%(process_num)0{width}d.out
"""


class Supervisord:
    """supervisord from a temporary venv, running `command` numprocs=n, all under root."""

    def __init__(self, root: Path, version: str, command: str, n: int) -> None:
        self.root = root
        self.version = version
        self.command = command
        self.n = n
        self.venv = root / "venv"
        self.conf = root / "supervisord.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    def install(self) -> float:
        began = time.monotonic()
        for argv in (
            [sys.executable, "-m", "venv", str(self.venv)],
            [
                str(self.venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                f"supervisor=={self.version}",
            ],
        ):
            r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise Broke(f"`{' '.join(argv)}` exited {r.returncode}: {r.stderr.strip()}")
        return time.monotonic() - began

    def start(self) -> None:
        for d in ("childlog", "work"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            SUPERVISORD_CONF.format(
                root=self.root, command=self.command, n=self.n, width=len(str(self.n))
            )
        )
        with open(self.root / "supervisord.out", "ab") as out:
            self.proc = subprocess.Popen(
                [str(self.venv / "bin" / "supervisord"), "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(
            lambda: self.running() == self.n,
            60,
            f"supervisord to report {self.n} RUNNING",
            every=0.5,
            guard=self._check_running,
        )

    def _check_running(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            log = self.root / "supervisord.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise Broke(f"supervisord exited with status {self.proc.returncode}:\n{tail}")

    def running(self) -> int:
        """How many programs `supervisorctl status` shows RUNNING (0 before it answers)."""
        r = subprocess.run(
            [str(self.venv / "bin" / "supervisorctl"), "-c", str(self.conf), "status"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return sum(line.split()[1:2] == ["RUNNING"] for line in r.stdout.splitlines())

    def process(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, 30)  # supervisord stops its programs on SIGTERM
            self.proc = None
        left = kill_leftovers(self.root)
        if left:
            say(f"  note: {left} process(es) of supervisord were left after it stopped: killed")


def supervisord_footprint(sv: Supervisord, window: float, settle: float) -> tuple[Use, float]:
    time.sleep(settle)
    me = sv.process()
    children = me.children()
    if len(children) != sv.n:
        raise Broke(f"supervisord has {len(children)} children, expected {sv.n}")
    got = measure([me], window)
    return Use(f"supervisord {sv.version}", str(sv.n), *got[me.pid]), rss_of(children)


# --- the run -------------------------------------------------------------------------------


def interpreter(choice: str | None) -> str:
    """The python the app's processes run: --python, else what `python3` on PATH really is.

    A pyenv shim on PATH costs ~0.1 s of CPU per start (bash + `pyenv exec`), which would be
    measured as platform time: the shim is resolved to the interpreter it runs.
    """
    if choice:
        return choice
    r = subprocess.run(
        ["python3", "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if r.returncode != 0 or not r.stdout.strip():
        raise Broke(f"python3 on PATH does not run: {r.stderr.strip()}")
    found = r.stdout.strip()
    if os.geteuid() == 0 and not _others_can_run(Path(found)):
        # as root, gun runs the app as an unprivileged user (gun.isolation): e.g. pyenv's
        # interpreters under a /root that is 0700 are not for it
        return str(Path("/usr/bin/python3").resolve())
    return found


def _others_can_run(path: Path) -> bool:
    real = path.resolve()
    return all(d.stat().st_mode & 0o001 for d in [*real.parents, real])


def machine_load() -> str:
    """How busy the machine is (other work inflates every figure here)."""
    busy = psutil.cpu_percent(interval=1.0)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    text = f"machine: {busy:.0f}% CPU busy over 1 s, load average {load}"
    if busy > 25 or os.getloadavg()[0] > (psutil.cpu_count() or 1) / 2:
        text += " -- BUSY: other work is running, the figures are inflated"
    return text


@dataclass(frozen=True)
class App:
    path: Path
    web: str  # the Procfile's commands
    idle: str


def make_app(path: Path, python: str, web: str) -> App:
    """The app: a Procfile with web (a small server on 127.0.0.1:$PORT) and idle."""
    path.mkdir(parents=True)
    (path / "web.py").write_text(WEB_PY)
    py = shlex.quote(python)
    web_command = f"{py} web.py" if web == "tiny" else f"{py} -m http.server $PORT --bind 127.0.0.1"
    app = App(path, web_command, f"{py} {IDLE}")
    (path / "Procfile").write_text(f"web: {app.web}\nidle: {app.idle}\n")
    return app


def start_app(gun: Gun, app: App) -> None:
    gun.start()
    gun.cli("apps.create", APP)
    gun.cli(f"app:{APP}", "deploy", f"dir={app.path}")
    gun.cli(f"app:{APP}", "scale", "web=0")


def footprint_table(rows: list[Use], n: int, window: float) -> None:
    say()
    say(f"footprint with {n} idle processes ({window:g} s window, each setup measured alone)")
    head = f"  {'what':<34} {'processes':>9} {'RSS MiB':>8} {'USS MiB':>8} {'CPU %':>7}  target"
    say(head)
    for u in rows:
        say(
            f"  {u.what:<34} {u.processes:>9} {u.rss:>8.1f} {u.uss:>8.1f} {u.cpu:>7.2f}  {u.target}"
        )
    say("  CPU % is of one CPU: (user + system seconds) / window seconds * 100")


def run(args: argparse.Namespace, root: Path, stack: contextlib.ExitStack) -> int:
    n, rounds = args.processes, 1 if args.quick else args.rounds
    python = interpreter(args.python)
    app = make_app(root / "app", python, args.web)
    say(f"gun convergence and footprint: {n} processes, {args.instances} instances")
    say(
        f"  {platform.node()}: {psutil.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB, {platform.platform()}"
    )
    say(f"  gun: {which_gun()}")
    say(f"  run by {sys.executable} (Python {platform.python_version()})")
    say(f"  app processes: {python} (python3 on PATH: {shutil.which('python3')})")
    say(f"  web: {app.web}")
    say(f"  idle: {app.idle}")
    say(f"  temporary directory: {root}")
    say(f"  {machine_load()}")

    # 1. convergence ----------------------------------------------------------------------
    gun = Gun(root / "gun", args.instances)
    stack.callback(gun.stop)
    start_app(gun, app)
    startup = min(gun.cli("--version") for _ in range(3))
    say(f"  gun up on {gun.url}; the CLI alone (`gun --version`) takes {startup:.2f} s")
    say()
    results = []
    for i in range(1, rounds + 1):
        r = one_round(gun, n, args.settle, first=i == 1, app=app)
        show_round(i, rounds, r)
        results.append(r)
    up_met = summarise_rounds(results, n, args.instances)
    up_line = (
        f"  {n} up in <= {TARGET_UP_SECONDS:g} s (median, API): "
        f"{'met' if up_met else 'MISSED'} ({statistics.median(r.up_api for r in results):.2f} s)"
    )
    if args.skip_footprint:
        say()
        say("targets:")
        say(up_line)
        return 0

    # 2. footprint ------------------------------------------------------------------------
    say()
    say(f"footprint: gun with {args.instances} agents, {n} idle processes ...")
    rows, _, gun_children = gun_footprint(gun, n, args.window, args.settle)
    gun.stop()

    say(f"footprint: gun with 1 agent, {n} idle processes ...")
    one = Gun(root / "gun1", 1)
    stack.callback(one.stop)
    start_app(one, app)
    one_rows, one_agent, one_children = gun_footprint(one, n, args.window, args.settle)
    one.stop()

    say(f"footprint: supervisord {args.supervisor} (pip install in a temporary venv) ...")
    sv = Supervisord(root / "supervisord", args.supervisor, app.idle, n)
    stack.callback(sv.stop)
    installed = sv.install()
    say(f"  installed supervisor=={args.supervisor} in {installed:.1f} s")
    sv.start()
    sv_row, sv_children = supervisord_footprint(sv, args.window, args.settle)
    sv.stop()

    say(f"  {machine_load()}")
    rss_met = one_agent.rss <= sv_row.rss
    one_rows[0].target = (
        f"RSS <= supervisord's: {'met' if rss_met else 'MISSED'} "
        f"({one_agent.rss - sv_row.rss:+.1f} MiB)"
    )
    together = total("gun: 1 agent + meta", str(n), [(u.rss, u.uss, u.cpu) for u in one_rows])
    footprint_table([*rows, *one_rows, together, sv_row], n, args.window)
    say(
        f"  the {n} supervised processes themselves: {gun_children:.1f} MiB RSS under gun "
        f"({args.instances} agents), {one_children:.1f} MiB under gun (1 agent), "
        f"{sv_children:.1f} MiB under supervisord"
    )

    say()
    say("targets:")
    say(up_line)
    say(
        f"  agent RSS <= supervisord's ({n} processes each): {'met' if rss_met else 'MISSED'} "
        f"({one_agent.rss:.1f} MiB vs {sv_row.rss:.1f} MiB)"
    )
    return 0


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Time gun's convergence to web=N and back, and measure its agents' "
        "footprint next to supervisord."
    )
    ap.add_argument("--rounds", type=int, default=3, help="convergence rounds (default 3)")
    ap.add_argument("--processes", type=int, default=50, help="processes (default 50)")
    ap.add_argument("--instances", type=int, default=5, help="instances (default 5)")
    ap.add_argument("--quick", action="store_true", help="1 round")
    ap.add_argument(
        "--skip-footprint", action="store_true", help="time the convergence only (no supervisord)"
    )
    ap.add_argument(
        "--window", type=float, default=10.0, help="footprint CPU window, s (default 10)"
    )
    ap.add_argument("--settle", type=float, default=1.0, help="pause between steps, s (default 1)")
    ap.add_argument(
        "--web",
        choices=("tiny", "http.server"),
        default="tiny",
        help="web server: a 9-line socket server (default) or python3 -m http.server",
    )
    ap.add_argument(
        "--python", help="interpreter for the app's processes (default: python3 on PATH, resolved)"
    )
    ap.add_argument(
        "--supervisor",
        default=SUPERVISOR_VERSION,
        help=f"supervisor version to pip install (default {SUPERVISOR_VERSION})",
    )
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.processes < 1 or not 1 <= args.instances <= 20:
        ap.error("--rounds and --processes must be >= 1, --instances 1..20")
    if args.window <= 0 or args.settle < 0:
        ap.error("--window must be > 0 and --settle >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    return harness.run_main("gun-bench-converge-", lambda root, stack: run(args, root, stack))


if __name__ == "__main__":
    sys.exit(main())
