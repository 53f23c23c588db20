"""bench/drain.py: lines/s through the whole drain on one core, and its peak RSS.

The drain (`gun server drain`, pinned to CPU 0 with taskset) gets HTTP POSTs of 100-frame
logplex bodies from client processes pinned to the other CPUs, and does everything it does in
production: read the frames, deduplicate by Frame-Id, archive (gzip), parse l2met and router
lines, aggregate (60 s buckets) and flush to its outlets (whisper files, Prometheus). A real
meta (SQLite) answers the ingest-token lookup (cached by the drain after the first).

The mix per 100 lines: 25 router lines, 25 app lines with measure#/count#/sample#, 10 runtime
metric lines, 40 plain lines. Target: >= 150,000 lines/s on one core (l2met's Go parser and
aggregator: 83,000-140,000 lines/s on one core of a machine like this one).

    .venv/bin/python bench/drain.py [--seconds 10] [--clients 3]
"""

from __future__ import annotations

import argparse
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
from pathlib import Path
from urllib.parse import urlsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TOKEN = "gun_bench_admin_token_0123456789abcdef"
DRAIN_TOKEN = "gun_bench_drain_token_0123456789abcdef"  # may only look up ingest tokens
FRAMES_PER_BODY = 100


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


def frame(appname: str, procid: str, msg: str, stamp: str) -> bytes:
    text = f"<190>1 {stamp} host {appname} {procid} - {msg}\n".encode()
    return b"%d %s" % (len(text), text)


def bodies(count: int) -> list[bytes]:
    """`count` bodies of the mix, stamped now (the bench is far shorter than two buckets)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
    router = (
        "at=info method=GET path=/items/{n} host=shop.example.com request_id={u} "
        'fwd="10.1.2.3" dyno=web.{d} connect=1ms service={s}ms status={st} bytes=4312 '
        "protocol=https"
    )
    out = []
    for b in range(count):
        frames = []
        for i in range(FRAMES_PER_BODY):
            n = b * FRAMES_PER_BODY + i
            kind = i % 20
            if kind < 5:
                msg = router.format(
                    n=n, u=uuid.UUID(int=n), d=n % 4 + 1, s=n % 300, st=(200, 200, 404, 500)[n % 4]
                )
                frames.append(frame("heroku", "router", msg, stamp))
            elif kind < 10:
                msg = f"measure#db.query={n % 50}ms count#orders=1 sample#queue.depth={n % 9}jobs"
                frames.append(frame("app", f"web.{n % 4 + 1}", msg, stamp))
            elif kind < 12:
                msg = (
                    f"source=web.{n % 4 + 1} dyno=heroku.shop.i-1 sample#load_avg_1m=0.4{n % 9} "
                    "sample#memory_total=210.00MB sample#memory_rss=200.12MB "
                    "sample#memory_quota=512.00MB"
                )
                frames.append(frame("heroku", f"web.{n % 4 + 1}", msg, stamp))
            else:
                msg = f'Started GET "/items/{n}" for 10.1.2.3 at 2026-11-26 12:00:00 +0000'
                frames.append(frame("app", f"web.{n % 4 + 1}", msg, stamp))
        out.append(b"".join(frames))
    return out


def client(
    url: str,
    payloads: list[bytes],
    seconds: float,
    results: multiprocessing.Queue[tuple[int, int, int]],
) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    sent = lines = failed = 0
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        body = payloads[i % len(payloads)]
        i += 1
        headers = {
            "Content-Type": "application/logplex-1",
            "Logplex-Msg-Count": str(FRAMES_PER_BODY),
            "Logplex-Frame-Id": uuid.uuid4().hex,
        }
        conn.request("POST", parts.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        sent += 1
        if r.status == 200:
            lines += json.loads(data)["lines"]
        else:
            failed += 1
    results.put((sent, lines, failed))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=max(1, min(3, (os.cpu_count() or 2) - 1)))
    args = ap.parse_args()
    cpus = os.cpu_count() or 1
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
        with open(tmp / "meta.log", "ab") as out:
            meta = subprocess.Popen(
                [PY, "-m", "gun.cli", "server", "meta", "--listen", f"127.0.0.1:{meta_port}"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        procs.append(meta)
        wait_http(meta_url, meta, "meta")
        api(meta_url, "POST", "/v1/apps", {"name": "shop"})
        ingest = api(meta_url, "GET", "/v1/apps/shop/drains/ingest")
        assert isinstance(ingest, dict)
        drain_env = dict(env, GUN_META_URL=meta_url, GUN_DRAIN_META_TOKEN=DRAIN_TOKEN)
        pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        with open(tmp / "drain.log", "ab") as out:
            listen = f"127.0.0.1:{drain_port}"
            drain = subprocess.Popen(
                [*pin, PY, "-m", "gun.cli", "server", "drain", "--listen", listen],
                env=drain_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        procs.append(drain)
        wait_http(drain_url, drain, "the drain")
        ps = psutil.Process(drain.pid)
        payloads = bodies(200)
        results: multiprocessing.Queue[tuple[int, int, int]] = multiprocessing.Queue()
        # warm up: the token lookup, imports, first whisper files
        client(ingest["url"], payloads[:5], 1.0, results)
        results.get()
        cpu0 = sum(ps.cpu_times()[:2])
        rss_peak = ps.memory_info().rss
        began = time.monotonic()
        work = (ingest["url"], payloads, args.seconds, results)
        workers = [multiprocessing.Process(target=client, args=work) for _ in range(args.clients)]
        for w in workers:
            w.start()
            if cpus > 1:
                os.sched_setaffinity(w.pid, set(range(1, cpus)))  # type: ignore[arg-type]
        while any(w.is_alive() for w in workers):
            rss_peak = max(rss_peak, ps.memory_info().rss)
            time.sleep(0.2)
        wall = time.monotonic() - began
        cpu = sum(ps.cpu_times()[:2]) - cpu0
        got = [results.get() for _ in workers]
        for w in workers:
            w.join()
        sent, lines, failed = (sum(x) for x in zip(*got, strict=True))
        hwm = 0
        with open(f"/proc/{drain.pid}/status") as f:
            for row in f:
                if row.startswith("VmHWM:"):
                    hwm = int(row.split()[1]) * 1024
        print(f"drain on CPU 0 ({'taskset' if pin else 'not pinned'}), {args.clients} clients, "
              f"{cpus} CPUs, {wall:.1f} s")  # fmt: skip
        print(f"  bodies      {sent:>10,} ({failed} refused), {FRAMES_PER_BODY} frames each")
        print(f"  lines       {lines:>10,}")
        print(f"  lines/s     {lines / wall:>10,.0f}   (target >= 150,000 on one core)")
        print(f"  drain CPU   {cpu / wall * 100:>9.0f} %  of one core")
        print(f"  peak RSS    {max(rss_peak, hwm) / 2**20:>9.1f} MiB")
        print(f"  target      {'met' if lines / wall >= 150_000 else 'missed'}")
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
