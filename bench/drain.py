"""bench/drain.py: lines per CPU-second of the whole drain, on two mixes, and its peak RSS.

The drain (`gun server drain`, pinned with taskset to CPU 0, or to CPUs 0..N-1 with
`--workers N`) gets HTTP POSTs of 100-frame logplex bodies from client processes (on the other
CPUs when there are some), each with `--connections` keep-alive connections (4) and one body
in flight on each, as logplex holds several. It does everything it does in production: read
the frames strictly, deduplicate by Frame-Id (remembered in a file), archive (gzip), parse
l2met and router lines, aggregate (60 s buckets) and flush to its outlets (whisper files,
Prometheus). A real
meta (SQLite) answers the ingest-token lookup (cached by the drain after the first).

Mixes (bench/mixes.py): `bench`, the mix of issue 5 (short lines, 60 % with metrics), and
`production`, closer to a busy Heroku app (8 web and 4 worker sources, router lines with long
quoted paths and UUID request ids, runtime metrics with all seven memory samples and the load
averages, app lines with quoted values and several measures, 35 % plain lines of 100-300 B).

The figure of record is **lines per drain CPU-second** (user + system time of the drain's
processes): a slow client, or a busy machine, lowers lines/s but not what each line costs the
drain. The clients' CPU is printed too: when the drain is below 90 % of its cores while the
clients use most of theirs, the clients were the limit (said as "client-bound"). Targets:
>= 120,000 lines per drain CPU-second on both mixes (twice l2met's end-to-end figure here), and
with `--workers 1,2`, 2 workers on 2 cores >= 1.7x the lines/s of one.

    .venv/bin/python bench/drain.py [--seconds 10] [--clients N] [--connections N]
        [--mix bench|production|both] [--workers 1[,2]] [--drain python|compiled|both]
        [--repeat N] [--py-spy]

`--drain` (default both): the drain as pure Python (GUN_DRAIN_COMPILED=off), and with its hot
modules compiled by mypyc (gun/compiled.py: built here into a scratch directory, needs a C
compiler; GUN_DRAIN_COMPILED=on), which is what `gun up` runs when scripts/setup built it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import drain_wrk  # noqa: E402
from mixes import FRAMES_PER_BODY, MIXES, timed_bodies  # noqa: E402

PY = sys.executable
TOKEN = "gun_bench_admin_token_0123456789abcdef"
DRAIN_TOKEN = "gun_bench_drain_token_0123456789abcdef"  # may only look up ingest tokens
TARGET = 120_000  # lines per drain CPU-second
SCALING = 1.7  # 2 workers on 2 cores, times the lines/s of one
BODIES = 100  # different bodies a second
WARMUP = 3  # seconds from making the bodies to the load's start
Timed = tuple[int, list[list[bytes]]]  # (epoch second of the first, bodies of each second)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    parts = urlsplit(url)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}")
        try:
            c = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=1)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not answer on {url}")


def api(url: str, method: str, path: str, body: object | None = None) -> object:
    parts = urlsplit(url)
    c = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data!r}")
    return json.loads(data) if data else None


def client(
    url: str,
    timed: Timed,
    seconds: float,
    connections: int,
    results: multiprocessing.Queue[tuple[int, int, int]],
) -> None:
    """POSTs bodies over `connections` keep-alive connections, one request in flight on each
    (as logplex holds several), the next one on whichever connection answered, each body with
    its own Logplex-Frame-Id: raw HTTP/1.1 over sockets, requests made up front, so that the
    clients cost little CPU next to the drain's."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    start, payloads = timed
    heads = [
        (
            f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/logplex-1\r\nLogplex-Msg-Count: {FRAMES_PER_BODY}\r\n"
            f"Content-Length: {len(body)}\r\nLogplex-Frame-Id: "
        ).encode()
        for body in payloads[0]
    ]
    me = uuid.uuid4().hex.encode()  # frame ids: this client's, then a counter
    socks = [socket.create_connection((host, port), timeout=30) for _ in range(connections)]
    buffers = [b""] * connections
    sent = lines = failed = 0
    deadline = time.monotonic() + seconds
    i = 0

    def post(c: int) -> None:
        nonlocal i
        now = min(max(int(time.time()) - start, 0), len(payloads) - 1)
        k = i % len(heads)
        i += 1
        socks[c].sendall(heads[k] + b"%s-%d\r\n\r\n" % (me, i) + payloads[now][k])

    for c in range(connections):  # one request in flight on each connection
        post(c)
    busy = set(range(connections))
    waiting = selectors.DefaultSelector()  # the next answer from any of them: a connection
    for c, sock in enumerate(socks):  # whose worker is busy must not hold up the others
        waiting.register(sock, selectors.EVENT_READ, c)
    while busy:
        for ready, _ in waiting.select():
            c = ready.data
            data = socks[c].recv(65536)
            if not data:
                raise SystemExit("the drain closed a connection")
            buffers[c] += data
            buffer = buffers[c]
            head, sep, rest = buffer.partition(b"\r\n\r\n")
            if not sep:
                continue
            length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            if len(rest) < length:
                continue
            answer, buffers[c] = rest[:length], rest[length:]
            sent += 1
            if head.startswith(b"HTTP/1.1 200"):  # {"lines": N, ...}
                lines += int(answer[10 : answer.index(b",")])
            else:
                failed += 1
            if time.monotonic() < deadline:
                post(c)
            else:
                busy.discard(c)
                waiting.unregister(socks[c])
    for sock in socks:
        sock.close()
    results.put((sent, lines, failed))


def python_load(
    url: str,
    timed: Timed,
    seconds: float,
    clients: int,
    connections: int,
    cpus: set[int],
    drains: list[psutil.Process],
    rss_peak: int,
) -> tuple[float, int, int, int, float, int]:
    """`clients` processes running `client`, pinned to `cpus`: (wall seconds, bodies sent,
    lines taken, bodies refused, the clients' CPU seconds, the drain's peak RSS)."""
    results: multiprocessing.Queue[tuple[int, int, int]] = multiprocessing.Queue()
    began = time.monotonic()
    work = (url, timed, seconds, connections, results)
    loaders = [multiprocessing.Process(target=client, args=work) for _ in range(clients)]
    for w in loaders:
        w.start()
        if w.pid:
            os.sched_setaffinity(w.pid, cpus)
    watched = [psutil.Process(w.pid) for w in loaders if w.pid]
    used: dict[int, float] = {}  # CPU seconds of each client, as last read
    while any(w.is_alive() for w in loaders):
        rss_peak = max(rss_peak, rss_of(drains))
        for c in watched:
            with contextlib.suppress(psutil.Error):  # gone: its last reading stands
                used[c.pid] = sum(c.cpu_times()[:2])
        time.sleep(0.2)
    wall = time.monotonic() - began
    got = [results.get() for _ in loaders]
    for w in loaders:
        w.join()
    sent, lines, failed = (sum(x) for x in zip(*got, strict=True))
    return wall, sent, lines, failed, sum(used.values()), rss_peak


@dataclass
class Run:
    mix: str
    workers: int
    wall: float
    bodies: int
    failed: int
    lines: int
    drain_cpu: float  # seconds, all the drain's processes
    drain_system: float  # seconds of it in the kernel
    client_cpu: float  # seconds, all clients
    client_cores: int  # CPUs the clients may use
    rss_peak: int  # bytes, the drain's processes together
    parent_cpu: float  # seconds, the parent's alone (workers > 1: the hub)

    @property
    def per_cpu_second(self) -> float:
        return self.lines / self.drain_cpu

    @property
    def client_bound(self) -> bool:
        return (
            self.drain_cpu / self.wall < 0.9 * self.workers
            and self.client_cpu / self.wall > 0.8 * self.client_cores
        )


def tree(p: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [p, *p.children(recursive=True)]
    return [p]


def cpu_of(procs: list[psutil.Process]) -> tuple[float, float]:
    """(user + system, system) seconds of the processes still there."""
    total = system = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
            system += t.system
    return total, system


def rss_of(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def start(
    tmp: Path, name: str, argv: list[str], env: dict[str, str], cpus: str | None = None
) -> subprocess.Popen[bytes]:
    pin = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
    with open(tmp / f"{name}.log", "ab") as out:
        return subprocess.Popen(
            [*pin, PY, "-m", "gun.cli", "server", *argv],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


# The drain's stages, by a function on the stack (the first that matches wins).
STAGES = [
    ("frames: read", "read (gun/logs/frames.py"),
    ("metrics: parse", "parse_lines (gun/logs/parse.py"),
    ("metrics: aggregate", "add_rows (gun/logs/aggregate.py"),
    ("archive: format, gzip, write", "append (gun/logs/archive.py"),
    ("frame ids", "(gun/logs/seen.py"),
    ("frame ids", "_remember (gun/logs/drain.py"),
    ("the rest of accept", "accept (gun/logs/drain.py"),
    ("outlets and flush", "(gun/logs/outlets/"),
    ("HTTP, routing, the event loop", ""),
]


def stages(folded: Path) -> dict[str, int]:
    """Samples per stage of the drain's work, from py-spy's collapsed stacks."""
    found: dict[str, int] = {}
    for row in folded.read_text().splitlines():
        stack, _, times = row.rpartition(" ")
        stage = next(name for name, mark in STAGES if mark in stack)
        found[stage] = found.get(stage, 0) + int(times)
    return dict(sorted(found.items(), key=lambda x: -x[1]))


def top_costs(folded: Path, count: int = 15) -> list[str]:
    """The functions most often on top of the drain's stacks (own time), and the drain's
    code most often anywhere on them (total), from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for row in folded.read_text().splitlines():
        stack, _, times = row.rpartition(" ")
        frames = stack.split(";")
        k = int(times)
        samples += k
        own[frames[-1]] = own.get(frames[-1], 0) + k
        for f in set(frames):
            if "gun/" in f:
                total[f] = total.get(f, 0) + k
    out = [f"  by stage ({samples} samples):"]
    for stage, n in stages(folded).items():
        out.append(f"    {n / samples:6.1%}  {stage}")
    out.append("  own time:")
    for where, n in sorted(own.items(), key=lambda x: -x[1])[:count]:
        out.append(f"    {n / samples:6.1%}  {where}")
    out.append("  total time, gun's code:")
    for where, n in sorted(total.items(), key=lambda x: -x[1])[:count]:
        out.append(f"    {n / samples:6.1%}  {where}")
    return out


def run(
    mix: str,
    seconds: float,
    clients: int,
    connections: int,
    workers: int,
    spy: bool,
    build: Path | None,
    wrk: str | None,
) -> Run:
    """A drain of `workers` workers (and its meta) from scratch, loaded by `clients` processes
    of `connections` connections each (threads of `wrk`, or Python processes) for `seconds`;
    compiled by mypyc from `build` (gun/compiled.py), or pure Python."""
    cpus = os.cpu_count() or 1
    drain_cpus = set(range(min(workers, cpus)))
    client_cpus = set(range(cpus)) - drain_cpus or set(range(cpus))
    tmp = Path(tempfile.mkdtemp(prefix="gun-bench-drain-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        meta_port, drain_port = free_port(), free_port()
        meta_url, drain_url = f"http://127.0.0.1:{meta_port}", f"http://127.0.0.1:{drain_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
        env.update(
            GUN_HOME=str(tmp),
            GUN_ADMIN_TOKEN=TOKEN,
            GUN_DRAIN_TOKEN=DRAIN_TOKEN,
            GUN_DRAIN_URL=drain_url,
        )
        meta = start(tmp, "meta", ["meta", "--listen", f"127.0.0.1:{meta_port}"], env)
        procs.append(meta)
        wait_http(meta_url, meta, "meta")
        api(meta_url, "POST", "/v1/apps", {"name": "shop"})
        ingest = api(meta_url, "GET", "/v1/apps/shop/drains/ingest")
        assert isinstance(ingest, dict)
        drain_env = dict(env, GUN_META_URL=meta_url, GUN_DRAIN_META_TOKEN=DRAIN_TOKEN)
        drain_env["GUN_DRAIN_COMPILED"] = "off" if build is None else "on"
        if build is not None:
            drain_env["GUN_COMPILED_DIR"] = str(build)
        if workers > 1:
            drain_env["GUN_DRAIN_WORKERS"] = str(workers)
        pinned = ",".join(map(str, sorted(drain_cpus)))
        argv = ["drain", "--listen", f"127.0.0.1:{drain_port}"]
        drain = start(tmp, "drain", argv, drain_env, pinned)
        procs.append(drain)
        wait_http(drain_url, drain, "the drain")
        now = int(time.time())
        timed = (now, timed_bodies(mix, BODIES, now, int(seconds) + WARMUP + 10))
        results: multiprocessing.Queue[tuple[int, int, int]] = multiprocessing.Queue()
        # warm up: the token lookup, imports, the first whisper files
        client(ingest["url"], timed, 1.0, 1, results)
        results.get()
        time.sleep(1.5)  # the flush after the warm-up
        drains = tree(psutil.Process(drain.pid))
        cpu0, system0 = cpu_of(drains)
        parent0, _ = cpu_of(drains[:1])
        rss_peak = rss_of(drains)
        spying = None
        if spy:
            spying = subprocess.Popen(
                ["py-spy", "record", "--pid", str(drains[-1].pid), "--duration",
                 str(int(seconds)), "--rate", "200", "--format", "raw", "--output",
                 str(tmp / "spy.txt"), "--nonblocking"],
                stdout=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        began = time.monotonic()
        if wrk is not None:
            loader = drain_wrk.Wrk(wrk, ingest["url"], timed, FRAMES_PER_BODY, tmp)
            loader.start(seconds, clients, connections, client_cpus)
            while loader.running():
                rss_peak = max(rss_peak, rss_of(drains))
                time.sleep(0.2)
            wall = time.monotonic() - began
            cpu1, system1 = cpu_of(drains)
            parent1, _ = cpu_of(drains[:1])
            got = loader.result()
            sent, lines, failed, client_cpu = got.sent, got.lines, got.failed, got.cpu
        else:
            wall, sent, lines, failed, client_cpu, rss_peak = python_load(
                ingest["url"], timed, seconds, clients, connections, client_cpus, drains,
                rss_peak,
            )  # fmt: skip
            cpu1, system1 = cpu_of(drains)
            parent1, _ = cpu_of(drains[:1])
        if spying is not None:
            spying.wait(30)
            print(f"py-spy of one drain process, mix {mix}:", *top_costs(tmp / "spy.txt"), sep="\n")
        return Run(
            mix, workers, wall, sent, failed, lines, cpu1 - cpu0, system1 - system0,
            client_cpu, len(client_cpus), rss_peak, parent1 - parent0,
        )  # fmt: skip
    except BaseException:
        for name in ("drain", "meta"):
            with contextlib.suppress(OSError):
                print(f"--- the end of {name}.log:", (tmp / f"{name}.log").read_text()[-2000:])
        raise
    finally:
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=max(1, min(3, (os.cpu_count() or 2) - 1)))
    ap.add_argument("--mix", choices=(*MIXES, "both"), default="both")
    ap.add_argument(
        "--connections", type=int, default=4, help="keep-alive connections of each client"
    )
    ap.add_argument("--workers", default="1", help="drain workers: 1, 2, or 1,2 to compare")
    ap.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="the load: wrk when on PATH (auto), or Python client processes",
    )
    ap.add_argument("--py-spy", action="store_true", help="profile a drain process with py-spy")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each, judged by the median")
    ap.add_argument(
        "--drain",
        choices=("python", "compiled", "both"),
        default="both",
        help="the drain as pure Python, with its hot modules compiled by mypyc, or both",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gun-bench-compiled-") as where:
        builds: list[tuple[str, Path | None]] = []
        if args.drain in ("python", "both"):
            builds.append(("python", None))
        if args.drain in ("compiled", "both"):
            from gun import compiled  # here: an older gun (a baseline's venv) has none

            print(f"compiled by mypyc into {compiled.build(Path(where))}", flush=True)
            builds.append(("compiled", Path(where)))
        measure(args, builds)


def row(r: Run, kind: str) -> str:
    verdict = "met" if r.per_cpu_second >= TARGET else "missed"
    bound = ", client-bound" if r.client_bound else ""
    refused = f", {r.failed} bodies refused" if r.failed else ""
    return (
        f"{r.mix:<11} {kind:<8} {r.workers:>7} {r.lines:>10,} {r.lines / r.wall:>9,.0f}"
        f" {r.drain_cpu / r.wall:>8.0%} {r.per_cpu_second:>12,.0f}"
        f" {r.drain_system / r.drain_cpu:>8.0%} {r.client_cpu / r.wall:>10.0%}"
        f" {r.rss_peak / 2**20:>8.1f}  {verdict} (>= {TARGET:,}){bound}{refused}"
        + (f"; the hub {r.parent_cpu / r.wall:.0%}" if r.workers > 1 else "")
    )


def summary(mix: str, kind: str, runs: list[Run], repeat: int) -> None:
    """The medians of `repeat` runs (the figures to judge by), and 2 workers / 1 from them."""
    per_second: dict[int, float] = {}
    for workers in sorted({r.workers for r in runs}):
        mine = [r for r in runs if r.workers == workers]
        per_cpu = statistics.median(r.per_cpu_second for r in mine)
        per_second[workers] = statistics.median(r.lines / r.wall for r in mine)
        if repeat > 1:
            verdict = "met" if per_cpu >= TARGET else "missed"
            print(
                f"{mix:<11} {kind:<8} {workers:>7} median of {repeat}: {per_second[workers]:,.0f}"
                f" lines/s, {per_cpu:,.0f} lines/CPU-s  {verdict} (>= {TARGET:,})"
            )
    if 1 in per_second and 2 in per_second:
        ratio = per_second[2] / per_second[1]
        verdict = "met" if ratio >= SCALING else "missed"
        print(f"{mix:<11} {kind:<8} 2 workers / 1: {ratio:.2f}x lines/s  {verdict} (>= {SCALING}x)")


def measure(args: argparse.Namespace, builds: list[tuple[str, Path | None]]) -> None:
    counts = [int(w) for w in args.workers.split(",")]
    cpus = os.cpu_count() or 1
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    wrk = drain_wrk.available() if args.generator in ("auto", "wrk") else None
    if args.generator == "wrk" and wrk is None:
        raise SystemExit("wrk is not on PATH (apt-get install wrk)")
    clients = f"wrk ({wrk}), {args.clients} thread(s)" if wrk else f"{args.clients} process(es)"
    print(
        f"{cpus} CPUs, the drain pinned to the first N with taskset, {clients}"
        f" of {args.connections} connections each on the others (or on all when there"
        f" are none), {args.seconds:g} s a run,"
        f" Python {sys.version.split()[0]} ({PY}); load average before: {load}"
    )
    print(
        f"{'mix':<11} {'drain':<8} {'workers':>7} {'lines':>10} {'lines/s':>9} {'drain CPU':>9}"
        f" {'lines/CPU-s':>12} {'(kernel)':>8} {'clients CPU':>11} {'RSS MiB':>8}  target"
    )
    mixes = MIXES if args.mix == "both" else (args.mix,)
    failed = False
    for mix in mixes:
        for kind, build in builds:
            runs = []
            for _ in range(args.repeat):  # 1, 2, 1, 2, ...: drift on the host hits both alike
                for workers in counts:
                    r = run(
                        mix, args.seconds, args.clients, args.connections, workers, args.py_spy,
                        build, wrk,
                    )  # fmt: skip
                    runs.append(r)
                    failed = failed or r.failed > 0
                    print(row(r, kind), flush=True)
            summary(mix, kind, runs, args.repeat)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
