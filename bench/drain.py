"""bench/drain.py: lines per CPU-second of the whole drain, on two mixes, and its peak RSS.

The drain (`gun server drain`, pinned with taskset to CPU 0, or to CPUs 0..N-1 with
`--workers N`) gets HTTP POSTs of 100-frame logplex bodies from client processes (on the other
CPUs when there are some), and does everything it does in production: read the frames
strictly, deduplicate by Frame-Id (remembered in a file), archive (gzip), parse l2met and router
lines, aggregate (60 s buckets) and flush to its outlets (whisper files, Prometheus). A real
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

    .venv/bin/python bench/drain.py [--seconds 10] [--clients N] [--mix bench|production|both]
        [--workers 1[,2]] [--py-spy]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
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
from mixes import FRAMES_PER_BODY, MIXES, bodies  # noqa: E402

PY = sys.executable
TOKEN = "gun_bench_admin_token_0123456789abcdef"
DRAIN_TOKEN = "gun_bench_drain_token_0123456789abcdef"  # may only look up ingest tokens
TARGET = 120_000  # lines per drain CPU-second
SCALING = 1.7  # 2 workers on 2 cores, times the lines/s of one


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
    payloads: list[bytes],
    seconds: float,
    results: multiprocessing.Queue[tuple[int, int, int]],
) -> None:
    """POSTs bodies one after the other on one keep-alive connection, each with its own
    Logplex-Frame-Id: raw HTTP/1.1 over a socket, requests made up front, so that the clients
    cost little CPU next to the drain's."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    heads = [
        (
            f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/logplex-1\r\nLogplex-Msg-Count: {FRAMES_PER_BODY}\r\n"
            f"Content-Length: {len(body)}\r\nLogplex-Frame-Id: "
        ).encode()
        for body in payloads
    ]
    me = uuid.uuid4().hex.encode()  # frame ids: this client's, then a counter
    sock = socket.create_connection((host, port), timeout=30)
    sent = lines = failed = 0
    deadline = time.monotonic() + seconds
    i = 0
    buffer = b""
    while time.monotonic() < deadline:
        k = i % len(payloads)
        i += 1
        sock.sendall(heads[k] + b"%s-%d\r\n\r\n" % (me, i) + payloads[k])
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        while len(buffer) < length:
            buffer += sock.recv(65536)
        answer, buffer = buffer[:length], buffer[length:]
        sent += 1
        if head.startswith(b"HTTP/1.1 200"):  # {"lines": N, ...}
            lines += int(answer[10 : answer.index(b",")])
        else:
            failed += 1
    sock.close()
    results.put((sent, lines, failed))


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


# The drain's hot modules, compiled with mypyc for --mypyc (what a compiled build would gain).
HOT = ["logs/frames.py", "logs/parse.py", "logs/aggregate.py", "logs/model.py", "lines.py",
       "logs/filters.py"]  # fmt: skip


def compiled_copy(into: Path) -> Path:
    """A copy of the gun package with HOT compiled by mypyc (mypy's compiler, from the dev
    dependencies; needs a C compiler), for PYTHONPATH."""
    source = Path(__file__).resolve().parent.parent / "src" / "gun"
    shutil.copytree(source, into / "gun", ignore=shutil.ignore_patterns("__pycache__"))
    mypyc = Path(PY).parent / "mypyc"
    done = subprocess.run(
        [str(mypyc), *(f"gun/{m}" for m in HOT)], cwd=into, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"mypyc failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return into


def run(mix: str, seconds: float, clients: int, workers: int, spy: bool) -> Run:
    """A drain of `workers` workers (and its meta) from scratch, loaded by `clients` processes
    for `seconds`."""
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
        if workers > 1:
            drain_env["GUN_DRAIN_WORKERS"] = str(workers)
        pinned = ",".join(map(str, sorted(drain_cpus)))
        argv = ["drain", "--listen", f"127.0.0.1:{drain_port}"]
        drain = start(tmp, "drain", argv, drain_env, pinned)
        procs.append(drain)
        wait_http(drain_url, drain, "the drain")
        payloads = bodies(mix, 200)
        results: multiprocessing.Queue[tuple[int, int, int]] = multiprocessing.Queue()
        # warm up: the token lookup, imports, the first whisper files
        client(ingest["url"], payloads[:20], 1.0, results)
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
        work = (ingest["url"], payloads, seconds, results)
        loaders = [multiprocessing.Process(target=client, args=work) for _ in range(clients)]
        for w in loaders:
            w.start()
            if w.pid:
                os.sched_setaffinity(w.pid, client_cpus)
        watched = [psutil.Process(w.pid) for w in loaders if w.pid]
        used: dict[int, float] = {}  # CPU seconds of each client, as last read
        while any(w.is_alive() for w in loaders):
            rss_peak = max(rss_peak, rss_of(drains))
            for c in watched:
                with contextlib.suppress(psutil.Error):  # gone: its last reading stands
                    used[c.pid] = sum(c.cpu_times()[:2])
            time.sleep(0.2)
        wall = time.monotonic() - began
        cpu1, system1 = cpu_of(drains)
        parent1, _ = cpu_of(drains[:1])
        got = [results.get() for _ in loaders]
        for w in loaders:
            w.join()
        sent, lines, failed = (sum(x) for x in zip(*got, strict=True))
        if spying is not None:
            spying.wait(30)
            print(f"py-spy of one drain process, mix {mix}:", *top_costs(tmp / "spy.txt"), sep="\n")
        return Run(
            mix, workers, wall, sent, failed, lines, cpu1 - cpu0, system1 - system0,
            sum(used.values()), len(client_cpus), rss_peak, parent1 - parent0,
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
    ap.add_argument("--workers", default="1", help="drain workers: 1, 2, or 1,2 to compare")
    ap.add_argument("--py-spy", action="store_true", help="profile a drain process with py-spy")
    ap.add_argument(
        "--mypyc", action="store_true", help="run the drain with its hot modules compiled by mypyc"
    )
    args = ap.parse_args()
    if args.mypyc:
        build = Path(tempfile.mkdtemp(prefix="gun-bench-mypyc-"))
        try:
            os.environ["PYTHONPATH"] = str(compiled_copy(build))
            print(f"the drain runs with {', '.join(HOT)} compiled by mypyc")
            measure(args)
        finally:
            shutil.rmtree(build, ignore_errors=True)
        return
    measure(args)


def measure(args: argparse.Namespace) -> None:
    counts = [int(w) for w in args.workers.split(",")]
    cpus = os.cpu_count() or 1
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{cpus} CPUs, the drain pinned to the first N with taskset, {args.clients} client"
        f" process(es) on the others (or on all when there are none), {args.seconds:g} s a run,"
        f" Python {sys.version.split()[0]} ({PY}); load average before: {load}"
    )
    print(
        f"{'mix':<11} {'workers':>7} {'lines':>10} {'lines/s':>9} {'drain CPU':>9}"
        f" {'lines/CPU-s':>12} {'(kernel)':>8} {'clients CPU':>11} {'RSS MiB':>8}  target"
    )
    mixes = MIXES if args.mix == "both" else (args.mix,)
    runs = []
    for mix in mixes:
        for workers in counts:
            r = run(mix, args.seconds, args.clients, workers, args.py_spy)
            runs.append(r)
            verdict = "met" if r.per_cpu_second >= TARGET else "missed"
            bound = ", client-bound" if r.client_bound else ""
            refused = f", {r.failed} bodies refused" if r.failed else ""
            print(
                f"{r.mix:<11} {r.workers:>7} {r.lines:>10,} {r.lines / r.wall:>9,.0f}"
                f" {r.drain_cpu / r.wall:>8.0%} {r.per_cpu_second:>12,.0f}"
                f" {r.drain_system / r.drain_cpu:>8.0%} {r.client_cpu / r.wall:>10.0%}"
                f" {r.rss_peak / 2**20:>8.1f}  {verdict} (>= {TARGET:,}){bound}{refused}"
                + (f"; the hub {r.parent_cpu / r.wall:.0%}" if r.workers > 1 else ""),
                flush=True,
            )
        one = [r for r in runs if r.mix == mix and r.workers == 1]
        two = [r for r in runs if r.mix == mix and r.workers == 2]
        if one and two:
            ratio = (two[0].lines / two[0].wall) / (one[0].lines / one[0].wall)
            verdict = "met" if ratio >= SCALING else "missed"
            print(f"{mix:<11} 2 workers / 1: {ratio:.2f}x lines/s  {verdict} (>= {SCALING}x)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if any(r.failed for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
