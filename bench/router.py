"""The router's cost: requests/s and latency through HAProxy vs straight to the same web
process, same run, same client; and the requests lost during a deploy under load.

    .venv/bin/python bench/router.py            # 3 rounds of 10 s each way, deploy 30 s
    .venv/bin/python bench/router.py --quick    # a smoke run: 1 round of 2 s, deploy 10 s

Starts `gun up --instances 1` (a temporary --dir and XDG_CONFIG_HOME, free ports on 127.0.0.1,
its own process group), creates the app `bench`, deploys a web app to it and scales it to
web=1, waits until the router serves it (Host: bench.localhost), then:

1. throughput, closed loop: `wrk -t1 -c C -d S --latency` straight to the web process's port
   and through the router (`-H 'Host: bench.localhost'`), alternating (the order swapped each
   round), `--repeat` rounds, judged by medians: req/s, p50, p99, errors; the CPU seconds of
   HAProxy's processes (master and workers) and of the web process during each run, so
   requests per HAProxy CPU-second and the backend's CPU per 1,000 requests both ways; and
   HAProxy's own counters of the connections it opened to the web process;
2. latency at a fixed rate (the server not saturated): a Python asyncio client, R req/s over K
   keep-alive connections for S s, each way alternating; p50/p99 of its own timings (the
   client is Python; its overhead is the same both ways, so the difference is the router's);
3. a deploy under load: web=2, then through the router at R req/s a preboot deploy of the same
   app, `ps.restart` and `scale web=1`; every request sent, non-2xx and socket error counted.

Targets (the issue): the router keeps >= 70 % of the direct req/s, adds <= 1 ms at p50 (the
fixed-rate measure), and no request fails during the deploy under load. Missing a target still
exits 0; a broken run exits 1.

The app is tests/apps/router_app (the router tests' stdlib keep-alive server; it sets
TCP_NODELAY and a listen backlog of 128: without them a kept-alive response's body waited for
the client's delayed ACK, ~40 ms, and 16 connections opening at once overflowed the backlog of
5, which any measure of it then showed, router or not).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

import harness
from harness import TIMEOUT, Broke, read_response, run, say, wait_for, which_gun

APP = "bench"
HOST = f"{APP}.localhost"
ROUTER_APP = Path(__file__).resolve().parent.parent / "tests" / "apps" / "router_app"
TARGET_RATIO = 0.70
TARGET_P50_ADDED_MS = 1.0


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, min(len(sorted_values), math.ceil(pct / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


# --- gun up -----------------------------------------------------------------------------------


class Gun(harness.GunUp):
    """gun up (harness.GunUp), its router and the processes this bench measures."""

    def start(self) -> None:
        super().start()
        if b"no router:" in self.log.read_bytes():
            raise Broke("gun up runs no router (is HAProxy installed? scripts/setup installs it)")

    def ps(self) -> list[dict[str, Any]]:
        procs: list[dict[str, Any]] = json.loads(self.cli("--json", f"app:{APP}", "ps"))
        return procs

    # the processes measured

    def haproxy(self) -> list[psutil.Process]:
        """The router's HAProxy processes: master and workers (their command line names the
        config in our directory)."""
        config = str(self.home / "router" / "haproxy.cfg")
        found = []
        for p in psutil.process_iter(["name", "cmdline"]):
            cmd = p.info["cmdline"] or []
            if cmd and "haproxy" in Path(cmd[0]).name and config in cmd:
                found.append(p)
        return found

    def router(self) -> list[psutil.Process]:
        """The router process (`gun server router`: HAProxy's log lines made router lines and
        shipped) — its CPU is the cost of the router lines."""
        found = []
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info["cmdline"] or []
            if "router" in cmd and "server" in cmd and str(self.home) in cmd:
                found.append(p)
        return found

    def webs(self) -> list[psutil.Process]:
        """The app's web processes (`python web.py` with a working directory in our data)."""
        instances = str(self.home / "instances")
        found = []
        for p in psutil.process_iter(["cmdline", "cwd"]):
            with contextlib.suppress(psutil.Error):
                cmd = p.info["cmdline"] or []
                if (p.info["cwd"] or "").startswith(instances) and cmd[-1:] == ["web.py"]:
                    found.append(p)
        return found

    def stat(self) -> dict[str, int]:
        """HAProxy's counters for web.1 (connections it opened to it, reused, requests)."""
        sock = self.home / "router" / "admin.sock"
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(sock))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode(errors="replace").splitlines()
        names = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(names, line.split(","), strict=False))
            if row.get("pxname") == f"app-{APP}" and row.get("svname") == "web.1":
                return {k: int(row.get(k) or 0) for k in ("connect", "reuse", "req_tot")}
        return {"connect": 0, "reuse": 0, "req_tot": 0}


def cpu_of(procs: Sequence[psutil.Process]) -> dict[int, float]:
    """CPU seconds (user + system) of each live process, by pid."""
    out = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two samples (a process new since: all of its own)."""
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


# --- the app ----------------------------------------------------------------------------------


# --- wrk --------------------------------------------------------------------------------------

WRK_LUA = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

non2xx = 0
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "GUNBENCH requests=%d duration_us=%d p50_us=%d p99_us=%d connect=%d read=%d write=%d "
      .. "timeout=%d non2xx=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, bad))
end
"""


@dataclass
class WrkRun:
    way: str  # "direct" or "router"
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    haproxy_cpu: float  # seconds
    lines_cpu: float  # seconds of the router process: its router lines
    backend_cpu: float  # seconds
    connects: int  # connections HAProxy opened to the web process (router only)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_argv(
    wrk: str, script: Path, gun: Gun, way: str, web_port: int, c: int, s: float
) -> list[str]:
    argv = [wrk, "-t1", "-c", str(c), "-d", f"{s:g}s", "--latency", "--timeout", "10s"]
    argv += ["-s", str(script)]
    if way == "router":
        return [*argv, "-H", f"Host: {HOST}", f"http://127.0.0.1:{gun.router_port}/"]
    return [*argv, f"http://127.0.0.1:{web_port}/"]


def wrk_run(argv: list[str], gun: Gun, way: str, seconds: float) -> WrkRun:
    haproxy, webs = gun.haproxy(), gun.webs()
    if not haproxy or len(webs) != 1:
        raise Broke(f"expected HAProxy and 1 web process, found {len(haproxy)} and {len(webs)}")
    stat0 = gun.stat()
    router = gun.router()
    h0, w0, r0 = cpu_of(haproxy), cpu_of(webs), cpu_of(router)
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise Broke(f"`{shlex.join(argv)}` did not finish") from None
    h1, w1, r1 = cpu_of(gun.haproxy()), cpu_of(webs), cpu_of(router)
    stat1 = gun.stat()
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("GUNBENCH ")), None)
    if p.returncode != 0 or line is None:
        raise Broke(f"wrk failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    f = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    return WrkRun(
        way=way,
        requests=f["requests"],
        seconds=f["duration_us"] / 1e6,
        p50_ms=f["p50_us"] / 1000,
        p99_ms=f["p99_us"] / 1000,
        non2xx=f["non2xx"],
        socket_errors=f["connect"] + f["read"] + f["write"] + f["timeout"],
        haproxy_cpu=cpu_used(h0, h1),
        lines_cpu=cpu_used(r0, r1),
        backend_cpu=cpu_used(w0, w1),
        connects=stat1["connect"] - stat0["connect"],
    )


# --- a fixed-rate keep-alive client -----------------------------------------------------------


@dataclass
class Paced:
    """What a fixed-rate load saw: every request's latency (s), statuses, failures."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    late: int = 0  # requests sent over 10 ms after their time (the client fell behind)
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def failed(self) -> int:
        bad = sum(n for status, n in self.statuses.items() if not 200 <= status < 300)
        return bad + sum(self.errors.values())

    def ms(self, pct: float) -> float:
        return percentile(sorted(self.latencies), pct) * 1000


async def paced(
    port: int, host: str, rate: float, connections: int, seconds: float, stop: threading.Event
) -> Paced:
    """`connections` keep-alive clients send GET / at `rate` req/s in all (each its share, the
    starts staggered) for `seconds` or until `stop`; a connection closed is opened again."""
    out = Paced()
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: gun-bench\r\n\r\n".encode()
    every = connections / rate
    began = time.perf_counter()
    deadline = began + seconds

    async def client(i: int) -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        due = began + i * every / connections
        while due < deadline and not stop.is_set():
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.01:
                out.late += 1
            due += every
            try:
                if conn is None:
                    conn = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
                reader, writer = conn
                t0 = time.perf_counter()
                writer.write(request)
                status, close = await asyncio.wait_for(read_response(reader), 40)
                out.latencies.append(time.perf_counter() - t0)
                out.statuses[status] += 1
                if close:
                    writer.close()
                    conn = None
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as e:
                out.errors[type(e).__name__] += 1
                if conn is not None:
                    conn[1].close()
                    conn = None
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(client(i) for i in range(connections)))
    out.seconds = time.perf_counter() - began
    return out


def paced_run(
    port: int, host: str, rate: float, connections: int, seconds: float, stop: threading.Event
) -> Paced:
    return asyncio.run(paced(port, host, rate, connections, seconds, stop))


# --- the bench --------------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} CPUs, {platform.platform()}"


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def serving(gun: Gun, n: int) -> set[str]:
    """Wait until the router sends requests to exactly n web processes; their names."""
    url = f"http://127.0.0.1:{gun.router_port}/"

    def dynos() -> set[str] | None:
        seen = set()
        with httpx.Client(headers={"Host": HOST}, timeout=10) as c:
            for _ in range(4 * n + 4):
                try:
                    r = c.get(url)
                except httpx.HTTPError:
                    return None
                if r.status_code != 200:
                    return None
                seen.add(r.json()["dyno"])
        return seen if len(seen) == n else None

    found: set[str] = wait_for(dynos, TIMEOUT, f"the router to serve {n} web process(es)", 0.25)
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("-c", "--connections", type=int, default=16, help="wrk connections (16)")
    p.add_argument("-d", "--seconds", type=float, default=10.0, help="seconds a run (10)")
    p.add_argument("--repeat", type=int, default=3, help="rounds, each way once a round (3)")
    p.add_argument("--rate", type=float, default=200.0, help="fixed-rate req/s (200)")
    p.add_argument("-k", "--keepalive", type=int, default=4, help="fixed-rate connections (4)")
    p.add_argument("--deploy-seconds", type=float, default=30.0, help="deploy under load (30)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 s, 1 round, deploy 10 s")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.repeat, args.deploy_seconds = 2.0, 1, 10.0
    if min(args.connections, args.repeat, args.keepalive) < 1 or args.seconds <= 0:
        p.error("--connections, --repeat, --keepalive and --seconds must be positive")
    return args


def bench(root: Path, stack: contextlib.ExitStack, args: argparse.Namespace) -> int:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise Broke("wrk is not on PATH (apt-get install wrk)")
    say(f"command:     {shlex.join([sys.executable, *sys.argv])}")
    say(f"machine:     {machine()}")
    say(f"interpreter: {sys.executable}: Python {sys.version.splitlines()[0]}")
    say(f"gun:         {which_gun()}")
    haproxy_v = run([shutil.which("haproxy") or "/usr/sbin/haproxy", "-v"]).splitlines()[0]
    say(f"haproxy:     {haproxy_v}")
    say(f"wrk:         {wrk}")
    say(f"load average before: {load_average()}")
    say(f"temporary directory: {root}")

    gun = Gun(root)
    stack.callback(gun.stop)
    gun.start()
    app = ROUTER_APP
    say(f"app:         {app}")
    gun.cli("apps.create", APP)
    gun.cli(f"app:{APP}", "deploy", f"dir={app}")
    gun.cli(f"app:{APP}", "scale", "web=1")
    serving(gun, 1)
    ps = gun.ps()
    if len(ps) != 1 or ps[0].get("port") is None:
        raise Broke(f"`gun app:{APP} ps` shows {ps}")
    web_port = int(ps[0]["port"])
    say(f"gun up on {gun.url}, the router on 127.0.0.1:{gun.router_port}, web.1 on {web_port}")

    # 1. throughput
    script = root / "count.lua"
    script.write_text(WRK_LUA)
    c, s = args.connections, args.seconds
    say(f"\n1. throughput, closed loop: wrk -t1 -c {c} -d {s:g}s --latency, {args.repeat} round(s)")
    for way in ("direct", "router"):  # warm-up, not counted
        wrk_run(wrk_argv(wrk, script, gun, way, web_port, c, 1), gun, way, 1)
    runs: list[WrkRun] = []
    for i in range(args.repeat):
        for way in ("direct", "router") if i % 2 == 0 else ("router", "direct"):
            argv = wrk_argv(wrk, script, gun, way, web_port, c, s)
            if i == 0:
                say(f"   {way}: {shlex.join(argv)}")
            r = wrk_run(argv, gun, way, s)
            runs.append(r)
            per_h = f"{r.requests / r.haproxy_cpu:,.0f}" if r.haproxy_cpu > 0 else "-"
            say(
                f"   round {i + 1} {way:6}: {r.rps:8,.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                f"p99 {r.p99_ms:7.2f} ms  non-2xx {r.non2xx}  socket errors "
                f"{r.socket_errors}  HAProxy CPU {r.haproxy_cpu:.2f} s ({per_h} req/CPU-s)  "
                f"router lines CPU {r.lines_cpu:.2f} s  "
                f"backend CPU {r.backend_cpu:.2f} s  backend connections opened {r.connects}"
            )

    def med(way: str, get: Callable[[WrkRun], float]) -> float:
        return median([get(r) for r in runs if r.way == way])

    # 2. latency at a fixed rate
    rate, k = args.rate, args.keepalive
    say(
        f"\n2. latency at a fixed rate: Python asyncio client, {rate:g} req/s over {k} "
        f"keep-alive connections, {s:g} s a run, {args.repeat} round(s)"
    )
    never = threading.Event()
    paced_runs: dict[str, list[Paced]] = {"direct": [], "router": []}
    for i in range(args.repeat):
        for way in ("direct", "router") if i % 2 == 0 else ("router", "direct"):
            port, host = (web_port, "127.0.0.1") if way == "direct" else (gun.router_port, HOST)
            got = paced_run(port, host, rate, k, s, never)
            paced_runs[way].append(got)
            say(
                f"   round {i + 1} {way:6}: {len(got.latencies):6,} answers  "
                f"p50 {got.ms(50):6.2f} ms  p99 {got.ms(99):6.2f} ms  failed {got.failed}  "
                f"late {got.late}"
            )
    p50 = {w: median([g.ms(50) for g in v]) for w, v in paced_runs.items()}
    p99 = {w: median([g.ms(99) for g in v]) for w, v in paced_runs.items()}

    # 3. deploy under load
    say(
        f"\n3. deploy under load: web=2, then through the router at {rate:g} req/s over {k} "
        f"connections for {args.deploy_seconds:g} s: deploy (preboot), ps.restart, scale web=1"
    )
    gun.cli(f"app:{APP}", "scale", "web=2")
    serving(gun, 2)
    stop = threading.Event()
    result: list[Paced] = []
    load = threading.Thread(
        target=lambda: result.append(
            paced_run(gun.router_port, HOST, rate, k, args.deploy_seconds + TIMEOUT, stop)
        ),
        daemon=True,
    )
    began = time.monotonic()
    load.start()
    steps: list[str] = []

    def step(what: str, action: Callable[[], object]) -> None:
        t0 = time.monotonic()
        action()
        steps.append(f"{what} {t0 - began:.1f}-{time.monotonic() - began:.1f} s")

    try:
        time.sleep(min(2.0, args.deploy_seconds / 5))
        step("deploy", lambda: gun.cli(f"app:{APP}", "deploy", f"dir={app}"))
        before = {p["name"]: p["since"] for p in gun.ps()}

        def restarted() -> bool:
            now = {p["name"]: p["since"] for p in gun.ps()}
            return now.keys() == before.keys() and all(now[n] != before[n] for n in now)

        def restart() -> None:
            gun.cli(f"app:{APP}", "ps.restart")
            wait_for(restarted, TIMEOUT, "ps.restart to replace every process", 0.25)
            serving(gun, 2)

        step("ps.restart", restart)
        step("scale web=1", lambda: (gun.cli(f"app:{APP}", "scale", "web=1"), serving(gun, 1)))
        left = args.deploy_seconds - (time.monotonic() - began)
        if left > 0:
            time.sleep(left)
    finally:
        stop.set()
        load.join(60)
    if not result:
        raise Broke("the load under the deploy did not finish")
    under = result[0]
    say(f"   steps (seconds after the load began): {', '.join(steps)}")
    say(
        f"   {under.sent:,} requests in {under.seconds:.1f} s: statuses "
        f"{dict(under.statuses)}, socket errors {dict(under.errors) or 0}, "
        f"p50 {under.ms(50):.2f} ms, p99 {under.ms(99):.2f} ms"
    )

    # the table
    rps = {w: med(w, lambda r: r.rps) for w in ("direct", "router")}
    ratio = rps["router"] / rps["direct"] if rps["direct"] else 0.0
    added = p50["router"] - p50["direct"]
    router_runs = [r for r in runs if r.way == "router"]
    per_cpu = median([r.requests / r.haproxy_cpu for r in router_runs if r.haproxy_cpu > 0])
    backend = {w: med(w, lambda r: r.backend_cpu / max(r.requests, 1) * 1e6) for w in rps}
    conns = median([r.connects / max(r.requests, 1) for r in router_runs])
    lines_ms = median([r.lines_cpu / max(r.requests, 1) * 1e6 for r in router_runs])
    errors = sum(r.non2xx + r.socket_errors for r in runs)
    errors += sum(g.failed for v in paced_runs.values() for g in v)

    def met(ok: bool) -> str:
        return "met" if ok else "MISSED"

    rows = [
        ("measure (medians)", "direct", "router", "router vs direct", "target"),
        (
            f"wrk -c {c} req/s",
            f"{rps['direct']:,.0f}",
            f"{rps['router']:,.0f}",
            f"{ratio:.0%}",
            f">= {TARGET_RATIO:.0%}: {met(ratio >= TARGET_RATIO)}",
        ),
        (
            f"wrk -c {c} p50 ms",
            f"{med('direct', lambda r: r.p50_ms):.2f}",
            f"{med('router', lambda r: r.p50_ms):.2f}",
            f"{med('router', lambda r: r.p50_ms) - med('direct', lambda r: r.p50_ms):+.2f}",
            "",
        ),
        (
            f"wrk -c {c} p99 ms",
            f"{med('direct', lambda r: r.p99_ms):.2f}",
            f"{med('router', lambda r: r.p99_ms):.2f}",
            f"{med('router', lambda r: r.p99_ms) - med('direct', lambda r: r.p99_ms):+.2f}",
            "",
        ),
        (
            f"{rate:g} req/s p50 ms",
            f"{p50['direct']:.2f}",
            f"{p50['router']:.2f}",
            f"{added:+.2f}",
            f"<= +{TARGET_P50_ADDED_MS:g} ms: {met(added <= TARGET_P50_ADDED_MS)}",
        ),
        (
            f"{rate:g} req/s p99 ms",
            f"{p99['direct']:.2f}",
            f"{p99['router']:.2f}",
            f"{p99['router'] - p99['direct']:+.2f}",
            "",
        ),
        ("requests per HAProxy CPU-s", "", f"{per_cpu:,.0f}", "", ""),
        ("router lines CPU ms / 1,000 req", "", f"{lines_ms:.0f}", "", ""),
        (
            "backend CPU ms / 1,000 req",
            f"{backend['direct']:.0f}",
            f"{backend['router']:.0f}",
            f"{backend['router'] / backend['direct']:.2f}x" if backend["direct"] else "-",
            "",
        ),
        ("backend connections / req", "", f"{conns:.3f}", "", ""),
        (
            "deploy under load: failed",
            "",
            f"{under.failed} of {under.sent:,}",
            "",
            f"0: {met(under.failed == 0 and under.sent > 0)}",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    say()
    for n, row in enumerate(rows):
        say(
            "  ".join(
                cell.ljust(w) if i in (0, 4) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            say("  ".join("-" * w for w in widths))
    say()
    say(
        "the fixed-rate client is Python (asyncio, in this process): its own overhead is in "
        "both p50s alike, so their difference is the router's"
    )
    if errors:
        say(f"note: {errors} request(s) failed in the throughput and fixed-rate runs")
    say(f"load average after: {load_average()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.run_main("gun-bench-router-", lambda root, stack: bench(root, stack, args))


if __name__ == "__main__":
    sys.exit(main())
