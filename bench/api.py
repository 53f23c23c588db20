"""Latency and throughput of meta's config var routes, on SQLite and on PostgreSQL.

    .venv/bin/python bench/api.py            # 10 s per route, 50 clients, both stores
    .venv/bin/python bench/api.py --quick    # 2 s per route

For each store this starts a real meta server (`gun server meta`) on 127.0.0.1 in its own
process group, creates the app `bench` with 10 config vars, then drives, one after the other:

    GET   /config_vars/show/bench
    PATCH /v1/apps/bench/config-vars     {"K3": "v123"}

with `wrk` (a small Lua script counts non-2xx responses and prints the latency percentiles),
or, if wrk is not on PATH, with a Python asyncio load generator (raw keep-alive HTTP/1.1).

Targets: p99 < 50 ms on both routes, and >= 1,000 requests/s on the GET.
Exit status: 0 when every run completed without errors (targets met or not: this is a
measurement); 1 when a server failed or any request errored (non-2xx, socket error, timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from harness import read_response

APP = "bench"
CONFIG_VARS = {f"K{i}": f"value-{i}-" + "x" * 24 for i in range(10)}
PATCH_BODY = {"K3": "v123"}
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

TARGET_P99_MS = 50.0
TARGET_GET_RPS = 1000.0


# --- results -----------------------------------------------------------------------------------


@dataclass
class Run:
    store: str
    route: str
    generator: str
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    non2xx: int = 0
    socket_errors: int = 0
    failure: str | None = None  # the run could not be made at all (server died, ...)
    notes: list[str] = field(default_factory=list)
    cpu: CpuUse | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors

    @property
    def min_rps(self) -> float | None:
        return TARGET_GET_RPS if self.route.startswith("GET") else None

    def misses(self) -> list[str]:
        """Why the target was missed (empty: met)."""
        if self.failure:
            return ["failed"]
        out = []
        if self.errors:
            out.append("errors")
        if self.requests == 0 or self.p99_ms >= TARGET_P99_MS:
            out.append(f"p99>={TARGET_P99_MS:g}ms")
        if self.min_rps is not None and self.rps < self.min_rps:
            out.append(f"req/s<{self.min_rps:,.0f}")
        return out


@dataclass(frozen=True)
class CpuSample:
    meta: float  # CPU seconds used by the meta process (all its threads)
    generator: float  # ... by this process and its reaped children (wrk)
    busy: float  # ... by the whole machine, all CPUs
    wall: float

    @classmethod
    def take(cls, meta_pid: int) -> CpuSample:
        m = psutil.Process(meta_pid).cpu_times()
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = psutil.cpu_times()
        busy = (
            t.user
            + t.nice
            + t.system
            + sum(getattr(t, f, 0.0) for f in ("irq", "softirq", "steal"))
        )
        return cls(
            meta=m.user + m.system,
            generator=me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
            busy=busy,
            wall=time.monotonic(),
        )


@dataclass(frozen=True)
class CpuUse:
    """Average use during a run, in % of one core."""

    meta: float
    generator: float
    rest: float  # the database server (PostgreSQL) and any other process on the machine

    @classmethod
    def between(cls, a: CpuSample, b: CpuSample) -> CpuUse:
        wall = max(b.wall - a.wall, 1e-9)
        meta = (b.meta - a.meta) / wall * 100
        gen = (b.generator - a.generator) / wall * 100
        busy = (b.busy - a.busy) / wall * 100
        return cls(meta, gen, max(busy - meta - gen, 0.0))


# --- the meta server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Meta:
    """`gun server meta` in its own process group, on 127.0.0.1, with its own GUN_HOME."""

    def __init__(
        self,
        home: Path,
        database_url: str,
        token: str,
        cpus: set[int] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.env = env or {}  # more GUN_* settings for meta
        self.cpus = cpus  # pin meta to these CPUs (None: not pinned)
        self.database_url = database_url
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "meta.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
        env.update(
            GUN_HOME=str(self.home),
            GUN_DATABASE_URL=self.database_url,
            GUN_ADMIN_TOKEN=self.token,
        )
        env.update(self.env)
        cmd = [
            sys.executable,
            "-m",
            "gun.cli",
            "server",
            "meta",
            "--listen",
            f"127.0.0.1:{self.port}",
        ]
        cpus = self.cpus

        def pin() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=pin if cpus else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"meta exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(
            f"meta did not answer GET /health within {timeout:g}s:\n{self.log_tail()}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        # Whatever else is left in the group (there should be nothing).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None

    def seed(self) -> None:
        """The app `bench` with CONFIG_VARS."""
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as c:
            r = c.post("/v1/apps", json={"name": APP})
            if r.status_code != 201:
                raise RuntimeError(f"POST /v1/apps answered {r.status_code}: {r.text}")
            r = c.patch(f"/v1/apps/{APP}/config-vars", json=CONFIG_VARS)
            if r.status_code != 200:
                raise RuntimeError(f"PATCH config-vars answered {r.status_code}: {r.text}")
            r = c.get(f"/config_vars/show/{APP}")
            if r.status_code != 200 or r.json() != CONFIG_VARS:
                raise RuntimeError(f"GET /config_vars/show answered {r.status_code}: {r.text}")


# --- stores ------------------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_store(work: Path) -> Iterator[str]:
    yield f"sqlite:///{work / 'meta.db'}"


def _libpq_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


@contextlib.contextmanager
def postgres_store(admin_url: str) -> Iterator[str]:
    """A fresh database gun_bench_<random> on the server of `admin_url`, dropped afterwards."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    admin_url = _libpq_url(admin_url)
    name = f"gun_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --- load generators ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    method: str
    path: str
    body: bytes | None
    token: str


@dataclass(frozen=True)
class Knobs:
    duration: float
    concurrency: int
    threads: int
    timeout: float


@dataclass
class Measured:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    notes: list[str]


def _lua_str(s: str) -> str:
    if not s.isprintable():
        raise ValueError(f"not printable: {s!r}")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


WRK_DONE = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

non2xx = 0
bad_status = 0
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    bad_status = status
  end
end

function done(summary, latency, requests)
  local bad, last = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    local s = t:get("bad_status") or 0
    if s ~= 0 then last = s end
  end
  local e = summary.errors
  io.write(string.format(
    "GUNBENCH requests=%d duration_us=%d p50_us=%d p99_us=%d connect=%d read=%d write=%d "
      .. "timeout=%d status=%d non2xx=%d bad_status=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status, bad, last))
end
"""


def wrk_script(load: Load) -> str:
    lines = [
        f"wrk.method = {_lua_str(load.method)}",
        f'wrk.headers["Authorization"] = {_lua_str("Bearer " + load.token)}',
    ]
    if load.body is not None:
        lines += [
            'wrk.headers["Content-Type"] = "application/json"',
            f"wrk.body = {_lua_str(load.body.decode())}",
        ]
    return "\n".join(lines) + "\n" + WRK_DONE


def run_wrk(wrk: str, base_url: str, load: Load, knobs: Knobs, work: Path) -> Measured:
    script = work / f"{load.method.lower()}.lua"
    script.write_text(wrk_script(load))
    cmd = [
        wrk,
        "-t",
        str(knobs.threads),
        "-c",
        str(knobs.concurrency),
        "-d",
        f"{knobs.duration:g}s",
        "--timeout",
        f"{knobs.timeout:g}s",
        "-s",
        str(script),
        base_url + load.path,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=knobs.duration + 60)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("GUNBENCH ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    f = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    socket_errors = f["connect"] + f["read"] + f["write"] + f["timeout"]
    notes = []
    if f["non2xx"]:
        notes.append(f"{f['non2xx']} non-2xx responses (last status {f['bad_status']})")
    if socket_errors:
        notes.append(
            f"socket errors: connect {f['connect']}, read {f['read']}, "
            f"write {f['write']}, timeout {f['timeout']}"
        )
    return Measured(
        requests=f["requests"],
        seconds=f["duration_us"] / 1e6,
        p50_ms=f["p50_us"] / 1000,
        p99_ms=f["p99_us"] / 1000,
        non2xx=f["non2xx"],
        socket_errors=socket_errors,
        notes=notes,
    )


def _raw_request(host: str, load: Load) -> bytes:
    head = [
        f"{load.method} {load.path} HTTP/1.1",
        f"Host: {host}",
        f"Authorization: Bearer {load.token}",
        "Accept: application/json",
    ]
    body = load.body or b""
    if load.body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _python_load(
    host: str, port: int, load: Load, knobs: Knobs
) -> tuple[list[float], int, int, float, int]:
    raw = _raw_request(f"{host}:{port}", load)
    latencies: list[float] = []
    counts = {"non2xx": 0, "socket": 0, "bad_status": 0}
    start = time.perf_counter()
    deadline = start + knobs.duration

    async def client() -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.perf_counter() < deadline:
            try:
                if conn is None:
                    conn = await asyncio.open_connection(host, port)
                reader, writer = conn
                t0 = time.perf_counter()
                writer.write(raw)
                status, close = await asyncio.wait_for(read_response(reader), knobs.timeout)
                latencies.append(time.perf_counter() - t0)
                if not 200 <= status <= 299:
                    counts["non2xx"] += 1
                    counts["bad_status"] = status
                if close:
                    writer.close()
                    conn = None
            except (
                OSError,
                ConnectionError,
                asyncio.IncompleteReadError,
                TimeoutError,
                ValueError,
                IndexError,
            ):
                counts["socket"] += 1
                if conn is not None:
                    conn[1].close()
                    conn = None
                await asyncio.sleep(0.01)
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(client() for _ in range(knobs.concurrency)))
    elapsed = time.perf_counter() - start
    return latencies, counts["non2xx"], counts["socket"], elapsed, counts["bad_status"]


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(pct / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def run_python(port: int, load: Load, knobs: Knobs) -> Measured:
    try:
        import uvloop  # type: ignore[import-not-found]

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    lat, non2xx, sock, elapsed, bad = runner(_python_load("127.0.0.1", port, load, knobs))
    lat.sort()
    notes = []
    if non2xx:
        notes.append(f"{non2xx} non-2xx responses (last status {bad})")
    if sock:
        notes.append(f"{sock} socket errors or timeouts")
    return Measured(
        requests=len(lat),
        seconds=elapsed,
        p50_ms=percentile(lat, 50) * 1000,
        p99_ms=percentile(lat, 99) * 1000,
        non2xx=non2xx,
        socket_errors=sock,
        notes=notes,
    )


# --- one store ---------------------------------------------------------------------------------


def routes(token: str) -> list[tuple[str, Load]]:
    return [
        (f"GET /config_vars/show/{APP}", Load("GET", f"/config_vars/show/{APP}", None, token)),
        (
            f"PATCH /v1/apps/{APP}/config-vars",
            Load("PATCH", f"/v1/apps/{APP}/config-vars", json.dumps(PATCH_BODY).encode(), token),
        ),
    ]


def bench_store(
    store: str,
    url_of: contextlib.AbstractContextManager[str],
    work: Path,
    knobs: Knobs,
    warmup: float,
    wrk: str | None,
    cpus: set[int] | None = None,
) -> list[Run]:
    generator = "wrk" if wrk else "python"
    token = "gun_bench_" + secrets.token_urlsafe(24)
    runs: list[Run] = []
    with url_of as database_url:
        meta = Meta(work, database_url, token, cpus)
        try:
            meta.start()
            meta.seed()
            for route, load in routes(token):
                run = Run(store, route, generator)
                runs.append(run)
                if not meta.alive():
                    run.failure = f"meta is not running:\n{meta.log_tail()}"
                    continue
                print(
                    f"  {store:10} {route} for {knobs.duration:g}s ...", file=sys.stderr, flush=True
                )
                try:
                    if warmup > 0:
                        short = Knobs(warmup, knobs.concurrency, knobs.threads, knobs.timeout)
                        _measure(wrk, meta, load, short, work)
                    assert meta.proc is not None
                    before = CpuSample.take(meta.proc.pid)
                    m = _measure(wrk, meta, load, knobs, work)
                    run.cpu = CpuUse.between(before, CpuSample.take(meta.proc.pid))
                except Exception as e:
                    run.failure = f"{type(e).__name__}: {e}"
                    continue
                run.requests, run.seconds = m.requests, m.seconds
                run.p50_ms, run.p99_ms = m.p50_ms, m.p99_ms
                run.non2xx, run.socket_errors, run.notes = m.non2xx, m.socket_errors, m.notes
                if not meta.alive():
                    run.failure = f"meta died during the run:\n{meta.log_tail()}"
        except Exception as e:
            failure = f"{type(e).__name__}: {e}"
            done = {r.route for r in runs}
            for route, _ in routes(token):
                if route not in done:
                    runs.append(Run(store, route, generator, failure=failure))
        finally:
            meta.stop()
    return runs


def _measure(wrk: str | None, meta: Meta, load: Load, knobs: Knobs, work: Path) -> Measured:
    if wrk:
        return run_wrk(wrk, meta.url, load, knobs, work)
    return run_python(meta.port, load, knobs)


# --- report ------------------------------------------------------------------------------------


def table(runs: list[Run]) -> str:
    header = ("store", "route", "requests", "req/s", "p50 ms", "p99 ms", "errors", "target met")
    rows: list[tuple[str, ...]] = [header]
    for r in runs:
        misses = r.misses()
        met = "yes" if not misses else "NO (" + ", ".join(misses) + ")"
        if r.failure:
            rows.append((r.store, r.route, "-", "-", "-", "-", "-", met))
        else:
            rows.append(
                (
                    r.store,
                    r.route,
                    f"{r.requests:,}",
                    f"{r.rps:,.0f}",
                    f"{r.p50_ms:.1f}",
                    f"{r.p99_ms:.1f}",
                    f"{r.errors:,}",
                    met,
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {2, 3, 4, 5, 6}

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(rows[0]), rule, *(fmt(row) for row in rows[1:])])


def parse_cpus(text: str) -> set[int]:
    try:
        cpus = {int(c) for c in text.split(",") if c.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of CPU numbers") from None
    if not cpus or not cpus <= os.sched_getaffinity(0):
        raise argparse.ArgumentTypeError(f"{text!r}: not CPUs this process may use")
    return cpus


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark meta's GET /config_vars/show/{app} and "
        "PATCH /v1/apps/{app}/config-vars on SQLite and PostgreSQL."
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds per route (default 10)")
    p.add_argument("--quick", action="store_true", help="2 s per route (overrides --duration)")
    p.add_argument(
        "--concurrency",
        "-c",
        type=int,
        default=50,
        help="concurrent clients / keep-alive connections (default 50)",
    )
    p.add_argument("--threads", "-t", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="per-request timeout in seconds; a timeout counts as an error",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds of unmeasured load before each route (default 1; 0: none)",
    )
    p.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument(
        "--pg-url",
        default=os.environ.get("GUN_BENCH_DATABASE_URL") or DEFAULT_PG_URL,
        help="PostgreSQL server to make a throwaway database on "
        "(default: $GUN_BENCH_DATABASE_URL or %(default)s)",
    )
    p.add_argument(
        "--meta-cpus",
        type=parse_cpus,
        default=None,
        metavar="LIST",
        help="pin meta to these CPUs, e.g. 1 or 0,1 (default: not pinned)",
    )
    p.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk if on PATH (auto), or the Python asyncio one",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.duration = 2.0
    if args.duration <= 0 or args.concurrency < 1 or args.threads < 1:
        p.error("--duration, --concurrency and --threads must be positive")
    args.threads = min(args.threads, args.concurrency)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk") if args.generator in ("auto", "wrk") else None
    if args.generator == "wrk" and not wrk:
        print("wrk is not on PATH (apt-get install wrk)", file=sys.stderr)
        return 2
    if wrk:
        generator = (
            f"wrk ({wrk}, -t {args.threads} -c {args.concurrency} "
            f"-d {args.duration:g}s, closed loop, keep-alive)"
        )
    else:
        why = "wrk not on PATH" if args.generator == "auto" else "--generator python"
        generator = (
            f"python asyncio, raw keep-alive HTTP/1.1, {args.concurrency} tasks "
            f"in one process ({why})"
        )
    knobs = Knobs(args.duration, args.concurrency, args.threads, args.timeout)
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]

    print(f"generator:   {generator}", flush=True)
    print(
        f"machine:     {os.cpu_count()} CPUs, {platform.platform()}, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    print(
        f"load:        {args.concurrency} concurrent clients, {args.duration:g}s per route "
        f"after {args.warmup:g}s warm-up; app {APP!r} with {len(CONFIG_VARS)} config vars; "
        f"PATCH body {json.dumps(PATCH_BODY)}",
        flush=True,
    )
    if args.meta_cpus:
        print(f"meta pinned: CPUs {','.join(map(str, sorted(args.meta_cpus)))}", flush=True)
    print(
        f"targets:     p99 < {TARGET_P99_MS:g} ms (both routes), "
        f">= {TARGET_GET_RPS:,.0f} req/s (GET), no errors",
        flush=True,
    )

    runs: list[Run] = []
    for store in stores:
        with tempfile.TemporaryDirectory(prefix=f"gun-bench-{store}-") as tmp:
            work = Path(tmp)
            url_of: contextlib.AbstractContextManager[str] = (
                sqlite_store(work) if store == "sqlite" else postgres_store(args.pg_url)
            )
            try:
                runs += bench_store(store, url_of, work, knobs, args.warmup, wrk, args.meta_cpus)
            except Exception as e:  # e.g. PostgreSQL unreachable
                failure = f"{type(e).__name__}: {e}"
                runs += [Run(store, route, "-", failure=failure) for route, _ in routes("")]

    print()
    print(table(runs))
    print()
    cores = (os.cpu_count() or 1) * 100
    for r in runs:
        if r.cpu:
            print(
                f"cpu:    {r.store} {r.route}: meta {r.cpu.meta:.0f}%, {r.generator} "
                f"{r.cpu.generator:.0f}%, everything else {r.cpu.rest:.0f}% "
                f"(% of one core; the machine has {cores}%)"
            )
    for r in runs:
        for note in r.notes:
            print(f"note:   {r.store} {r.route}: {note}")
        if r.failure:
            print(f"FAILED: {r.store} {r.route}: {r.failure}")
    bad = [r for r in runs if r.failure or r.errors]
    met = [r for r in runs if not r.misses()]
    print(
        f"targets met on {len(met)} of {len(runs)} runs; "
        + (
            "all runs completed without errors"
            if not bad
            else f"{len(bad)} run(s) failed or had errors"
        )
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
