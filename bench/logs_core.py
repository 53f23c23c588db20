"""Throughput of the drain's pure core: frames.read, parse and aggregate, on one core.

    .venv/bin/python bench/logs_core.py             # 400,000 lines, best of 3 runs
    .venv/bin/python bench/logs_core.py --lines 100000 --runs 1 --cpu 1

Builds LINES log lines of a realistic mix with frames.frame(), 100 frames to a body as
logplex POSTs them, then times each stage over all the bodies, the best of --runs:

  read         frames.read on every body
  read+parse   ... and parse.parse_lines on each body's lines (rows, no Measurement objects)
  read+parse+aggregate
               ... and Aggregator.add_rows (one aggregator, resolution 60), with
               flush(clock - 5 s) after every body: the drain's hot path
  with parse() + add()
               the same with the one-line API: parse(line) builds Measurements and
               Aggregator.add takes each one (for comparison)

The mix, per 100 lines: 50 lines without metrics (Rails-style request logs, platform lines,
1 in 11 with non-ASCII text), 25 router lines (1 in 25 an error: H12 with a 503, or H10 with
empty values), 20 app lines with measure#/count#/sample#/unique#/legacy measure. (some with
source=, some with a quoted msg=), 5 runtime-metric lines (load average and memory,
`sample#...` with `source=web.N`). Values vary (random latencies, byte counts, memory, user
ids), ten web processes, timestamps advance 1.5 ms per line (about ten minutes of traffic for
400k lines), about 170 bytes and 1.7 measurements per line.

`--unfrozen-line` measures a proposed change to model.py: Line as a dataclass that is not
frozen (a frozen dataclass's __init__ goes through object.__setattr__ once per field).

The process pins itself to one CPU (--cpu, default the first it may use). Target: read +
parse + aggregate >= 400,000 lines/s, so the whole drain path (HTTP included) can reach
150,000 lines/s on one core. Exit status 0 whether the target is met or not.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from gun.logs import frames  # noqa: E402
from gun.logs.aggregate import Aggregator  # noqa: E402
from gun.logs.parse import parse, parse_lines  # noqa: E402

T0 = 1655131943.0  # 2022-06-13T14:52:23Z
STEP = 0.0015  # seconds of simulated time per line
TARGET = 400_000

PLAIN = [
    'Started GET "/orders/{n}" for 204.204.{a}.{b} at 2022-06-13 14:52:23 +0000',
    "Processing by OrdersController#show as HTML",
    '  Parameters: {{"id"=>"{n}"}}',
    "Completed 200 OK in {ms}ms (Views: 12.1ms | ActiveRecord: 3.2ms | Allocations: 4021)",
    "  Rendered orders/show.html.erb within layouts/application (Duration: 7.4ms)",
    "INFO  [worker] job ProcessPayment id={n} finished in {ms} ms",
    "State changed from starting to up",
    "Starting process with command `bundle exec puma -C config/puma.rb`",
    "[2022-06-13 14:52:23 +0000] [{n}] [INFO] Booting worker with pid: {n}",
    '10.1.{a}.{b} - - [13/Jun/2022:14:52:23 +0000] "GET /health HTTP/1.1" 200 2 "-" "kube"',
    "Bestellung {n} für José bestätigt — {small} Artikel, {ms} €",
]
METRICS = [
    "at=info measure#db.query={ms}ms measure#db.rows={a}rows",
    "measure#web.latency={ms}ms count#orders.created=1 sample#queue.depth={a}",
    'at=info msg="charge captured" count#payments.captured=1 measure#stripe.call={ms}ms',
    "source=web.{w} measure#cache.get={small}ms count#cache.hit",
    "count#signups=1 unique#users=u{n} measure#email.render={ms}.{b}ms",
    "measure.legacy.time={ms}ms measure.legacy.count",
]
RUNTIME = [
    "source=web.{w} dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456"
    " sample#load_avg_1m=0.{a} sample#load_avg_5m=0.{b} sample#load_avg_15m=0.{small}",
    "source=web.{w} dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456"
    " sample#memory_total={a}.{b}MB sample#memory_rss={a}.{small}MB sample#memory_cache=0.00MB"
    " sample#memory_swap=0.00MB sample#memory_pgpgin={n}pages sample#memory_pgpgout={n}pages"
    " sample#memory_quota=512.00MB",
]
ROUTER = (
    'at=info method=GET path="/orders/{n}" host=shop.example.com'
    ' request_id=8601b555-6a83-4c12-8269-{n:012d} fwd="204.204.{a}.{b}" dyno=web.{w}'
    " connect={small}ms service={ms}ms status={status} bytes={bytes} protocol=https"
)
ROUTER_ERRORS = [
    'at=error code=H12 desc="Request timeout" method=GET path="/orders/{n}"'
    " host=shop.example.com request_id=8601b555-6a83-4c12-8269-{n:012d}"
    ' fwd="204.204.{a}.{b}" dyno=web.{w} connect=1ms service=30001ms status=503 bytes=0'
    " protocol=https",
    'at=error code=H10 desc="App crashed" method=GET path="/" host=shop.example.com'
    ' request_id=8601b555-6a83-4c12-8269-{n:012d} fwd="204.204.{a}.{b}" dyno= connect='
    " service= status=503 bytes= protocol=https",
]


def build(count: int, seed: int = 1) -> list[bytes]:
    """COUNT lines of the mix, framed, 100 frames to a body."""
    rnd = random.Random(seed)
    bodies: list[bytes] = []
    frames_: list[bytes] = []
    for i in range(count):
        values = {
            "n": rnd.randrange(1, 10**6),
            "a": rnd.randrange(256),
            "b": rnd.randrange(100),
            "w": rnd.randrange(1, 11),
            "ms": int(rnd.expovariate(1 / 60)),
            "small": rnd.randrange(5),
            "status": rnd.choice((200, 200, 200, 200, 200, 200, 302, 304, 404, 500)),
            "bytes": rnd.randrange(100, 50_000),
        }
        slot = i % 100
        t = T0 + i * STEP
        if slot < 50:
            appname, procid = "app", f"web.{values['w']}"
            msg = PLAIN[rnd.randrange(len(PLAIN))].format(**values)
        elif slot < 75:
            appname, procid = "heroku", "router"
            if rnd.randrange(25) == 0:
                msg = rnd.choice(ROUTER_ERRORS).format(**values)
            else:
                msg = ROUTER.format(**values)
        elif slot < 95:
            appname, procid = "app", f"web.{values['w']}"
            msg = METRICS[rnd.randrange(len(METRICS))].format(**values)
        else:
            appname, procid = "heroku", f"web.{values['w']}"
            msg = RUNTIME[slot % 2].format(**values)
        pri = 158 if procid == "router" else 190
        frames_.append(frames.frame(pri, t, appname, procid, msg))
        if len(frames_) == 100:
            bodies.append(b"".join(frames_))
            frames_ = []
    if frames_:
        bodies.append(b"".join(frames_))
    return bodies


def stage_read(bodies: list[bytes]) -> int:
    read = frames.read
    n = 0
    for body in bodies:
        n += len(read(body).lines)
    return n


def stage_parse(bodies: list[bytes]) -> int:
    read = frames.read
    n = 0
    for body in bodies:
        lines = read(body).lines
        parse_lines(lines)
        n += len(lines)
    return n


def stage_all(bodies: list[bytes]) -> int:
    read = frames.read
    agg = Aggregator("shop", 60)
    add_rows = agg.add_rows
    n = 0
    for body in bodies:
        lines = read(body).lines
        now = lines[-1].time + 0.5  # the clock when the body arrives
        add_rows(parse_lines(lines).rows, now)
        n += len(lines)
        agg.flush(now - 5)
    agg.flush(float("inf"))
    return n


def stage_measurements(bodies: list[bytes]) -> int:
    """read+parse+aggregate with the one-line API: parse() gives Measurements, add() each."""
    read = frames.read
    agg = Aggregator("shop", 60)
    add = agg.add
    n = 0
    for body in bodies:
        lines = read(body).lines
        now = lines[-1].time + 0.5
        for line in lines:
            for m in parse(line).measurements:
                add(m, now)
        n += len(lines)
        agg.flush(now - 5)
    agg.flush(float("inf"))
    return n


def best(stage: Callable[[list[bytes]], int], bodies: list[bytes], runs: int) -> float:
    """The best lines/s of `runs` runs."""
    rates = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        n = stage(bodies)
        rates.append(n / (time.perf_counter() - started))
    return max(rates)


def unfreeze_line() -> None:
    """What-if for a proposed change to model.py: Line as a slotted dataclass that is not
    frozen (a frozen dataclass's __init__ sets each field through object.__setattr__, about
    4x slower). Swaps such a twin into frames, the only module that builds Lines."""
    from gun.logs import model

    specs = [(f.name, f.type) for f in dataclasses.fields(model.Line)]
    module: Any = frames
    module.Line = dataclasses.make_dataclass("Line", specs, slots=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=400_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first)")
    ap.add_argument(
        "--unfrozen-line",
        action="store_true",
        help="what-if: Line not frozen (a proposed change to model.py)",
    )
    args = ap.parse_args()
    if args.unfrozen_line:
        unfreeze_line()

    cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    started = time.perf_counter()
    bodies = build(args.lines)
    size = sum(len(b) for b in bodies)
    sample = frames.read(b"".join(bodies[:10]))
    measures = sum(len(parse(line).measurements) for line in sample.lines)
    print(
        f"python {platform.python_version()} on CPU {cpu}; {args.lines:,} lines in"
        f" {len(bodies):,} bodies, {size / args.lines:.0f} bytes/line,"
        f" {measures / len(sample.lines):.2f} measurements/line"
        f" (built in {time.perf_counter() - started:.1f} s)"
    )
    agg_rate = 0.0
    for label, stage in (
        ("read", stage_read),
        ("read+parse", stage_parse),
        ("read+parse+aggregate", stage_all),
        ("  with parse() + add()", stage_measurements),
    ):
        rate = best(stage, bodies, args.runs)
        if stage is stage_all:
            agg_rate = rate
        print(f"  {label:22s} {rate:>10,.0f} lines/s  ({1e6 / rate:.2f} µs/line)")
    verdict = "met" if agg_rate >= TARGET else "MISSED"
    print(f"target read+parse+aggregate >= {TARGET:,} lines/s: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
