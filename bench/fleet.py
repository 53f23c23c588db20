"""1,000 simulated agents long-polling a real meta on PostgreSQL: how fast a scale reaches them.

    .venv/bin/python bench/fleet.py                  # 1,000 agents, 4 rounds
    .venv/bin/python bench/fleet.py --quick          # 2 rounds
    .venv/bin/python bench/fleet.py --agents 200 --rounds 6 --pin --keep-alive

It starts a real `gun server meta` (its own process group, 127.0.0.1, a free port, a temporary
GUN_HOME) on a fresh PostgreSQL database, creates the app `fleet` with a release whose Procfile
has `web:`, and makes `--agents` instances in it through gun's own Platform over the same
database, with a provider that only records each instance's id and agent token (nothing is
started). This process then plays every instance's agent, one asyncio task each, speaking the
agent protocol over HTTP/1.1 as the real agent does (gun.agent.agent, gun.agent.metaclient):
register, long-poll `desired?after=GEN&wait=25` (read with gun.protocol.read_slice), and report
the slice's processes as up with `PUT observed` at once after a new slice, and besides when
the real agent would (gun.agent.fence.heartbeat: every report_interval, 2 s, until meta
acknowledged the report, then a third of the lease, 5.7 s with GUN_INSTANCE_TIMEOUT=30). Like
the real agent it opens a connection per call, unless `--keep-alive`.

Once web runs one process per instance, each round scales web from N to 2N or back with
`PATCH /v1/apps/fleet/formation` (the admin token): every instance's slice changes. From just
before the PATCH it records when each agent holds a slice showing its change, and prints p50,
p99 and max, how many agents were affected, meta's CPU (user + system of its process tree over
the measured rounds / wall) and peak RSS, the requests/s meta answered, and this process's CPU
(the client's: it shows whether the client was the limit).

Targets: p99 <= 1 s from the PATCH to each affected agent holding its new slice; meta under one
core on average. Exit status: 0 when every measurement was made, targets met or not; 1 when
something broke; 130/143 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import secrets
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

import harness
from api import DEFAULT_PG_URL, Meta, percentile, postgres_store
from gun import protocol
from gun.agent.agent import POLL_WAIT
from gun.agent.config import AgentConfig
from gun.agent.fence import heartbeat
from gun.core import Platform
from gun.crypto import Box, load_or_create_key
from gun.providers import NewInstance
from gun.store import Store
from harness import Broke, say, which_gun

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: tests.fakes
from tests.fakes import RecordingProvider  # noqa: E402

APP = "fleet"
PROCFILE = "web: python3 -m http.server $PORT --bind 127.0.0.1\n"
TARGET_P99 = 1.0  # seconds from the PATCH to an affected agent holding its new slice
TARGET_CPU = 100.0  # % of one core: meta's average over the rounds
REPORT_INTERVAL = AgentConfig.report_interval  # the real agent's heartbeat, seconds
CREATE_AT_ONCE = 20  # gun.core.instances.MAX_NEW_INSTANCES
ROUND_TIMEOUT = 120.0  # seconds a round may take before the run counts as broken
RUN_TIMEOUT = 1200.0  # seconds the agents' whole run may take before it counts as broken
REGISTERING = 20  # agents registering at once


# --- HTTP/1.1 as the agent speaks it ----------------------------------------------------------


class Lane:
    """One call at a time to meta over raw HTTP/1.1: a connection per call (the real agent's
    http.client), or one kept alive."""

    def __init__(self, port: int, keep_alive: bool, counts: Counter[str]) -> None:
        self.port, self.keep_alive, self.counts = port, keep_alive, counts
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(
        self, kind: str, method: str, target: str, token: str, body: object, timeout: float
    ) -> tuple[int, bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        head = [
            f"{method} {target} HTTP/1.1",
            f"Host: 127.0.0.1:{self.port}",
            f"Authorization: Bearer {token}",
            "Accept: application/json",
            f"{protocol.HEADER}: {protocol.VERSION}",
        ]
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        try:
            if self.conn is None:
                self.conn = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self.conn
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
            status, answer, close = await asyncio.wait_for(_response(reader), timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            self.counts[f"{kind} failed"] += 1
            self.close()
            raise
        self.counts[kind] += 1
        if status >= 300:
            self.counts[f"{kind} {status}"] += 1
        if close or not self.keep_alive:
            self.close()
        return status, answer

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, the server closes the connection) of one response."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("meta closed the connection")
    status = int(line.split()[1])
    length, chunked, close = 0, False, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            close = value == "close"
    if not chunked:
        return status, await reader.readexactly(length), close
    parts = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        parts.append(await reader.readexactly(size + 2))
    await reader.readline()
    return status, b"".join(p[:-2] for p in parts), close


# --- the simulated agents ---------------------------------------------------------------------


@dataclass
class SimAgent:
    """One instance's agent: registers, long-polls its slice, reports it as running."""

    id: str
    token: str
    port: int
    keep_alive: bool
    counts: Counter[str]
    report_interval: float
    held: protocol.Slice | None = None
    held_at: float = 0.0  # time.monotonic() when `held` was read
    new_slice: asyncio.Event = field(default_factory=asyncio.Event)
    since: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def api(self) -> str:
        return f"/v1/agent/instances/{self.id}"

    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.held.processes) if self.held else frozenset()

    async def register(self) -> None:
        lane = Lane(self.port, False, self.counts)
        body = protocol.to_json(protocol.Registration(protocol.VERSION, f"sim://{self.id}"))
        delay = 0.2
        while True:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, TimeoutError):
                status, _ = await lane.call(
                    "register", "POST", f"{self.api}/register", self.token, body, 30
                )
                if status < 300:
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def run(self) -> None:
        """Long-poll (once registered)."""
        lane = Lane(self.port, self.keep_alive, self.counts)
        try:
            await self.poll(lane)
        finally:
            lane.close()

    async def poll(self, lane: Lane) -> None:
        delay = 0.2  # the real agent's backoff after a refused or failed long-poll
        while True:
            after = self.held.generation if self.held else -1
            target = f"{self.api}/desired?after={after}&wait={POLL_WAIT:g}"
            try:
                status, body = await lane.call(
                    "desired", "GET", target, self.token, None, POLL_WAIT + 10
                )
                if status >= 300:
                    raise ValueError(f"meta answered {status}")
                got = protocol.read_slice(json.loads(body))
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            if self.held is None or got.generation != self.held.generation:
                changed = self.held is None or {p.name for p in got.processes} != self.names()
                self.held, self.held_at = got, time.monotonic()
                if changed:
                    self.since = datetime.now(UTC)
                    self.new_slice.set()

    def observed(self) -> protocol.Report:
        """The held slice's processes, all up (they start at once here)."""
        s = self.held
        processes = tuple(
            protocol.ObservedProcess(
                name=p.name,
                state="up",
                release=s.release if s else None,
                port=5000 + n,
                pid=100_000 + n,
                restarts=0,
                exit_code=None,
                since=self.since,
            )
            for n, p in enumerate(s.processes if s else ())
        )
        return protocol.Report(protocol.VERSION, processes, None, None)

    async def report(self) -> None:
        """The heartbeat, when the real agent sends it (gun.agent.fence.heartbeat): at once
        after a new slice; else after report_interval while the last one acknowledged is not
        this one, and after a third of the slice's lease once it is (the fleet's agents
        started at different moments: the first waits a random part of report_interval)."""
        lane = Lane(self.port, self.keep_alive, self.counts)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.new_slice.wait(), random.uniform(0, self.report_interval))
        acked: protocol.Report | None = None
        try:
            while True:
                self.new_slice.clear()
                report = self.observed()
                terms = self.held.lease if self.held else None
                every, _ = heartbeat(terms, self.report_interval, report != acked)
                acked = None
                body = protocol.to_json(report)
                with contextlib.suppress(OSError, asyncio.IncompleteReadError, TimeoutError):
                    status, _ = await lane.call(
                        "observed", "PUT", f"{self.api}/observed", self.token, body, 10
                    )
                    acked = report if status < 300 else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.new_slice.wait(), every)
        finally:
            lane.close()


# --- setting up: the app, its release, the instances ------------------------------------------


class Recorder(RecordingProvider):
    """An instance provider that starts nothing (tests/fakes.py): it keeps each new instance's
    id and token."""

    name = "bench"


def admin(
    meta: Meta, method: str, path: str, body: object = None, content: bytes | None = None
) -> httpx.Response:
    """A call with the admin token; an error status is Broke."""
    headers = {"Authorization": f"Bearer {meta.token}"}
    r = httpx.request(
        method, meta.url + path, headers=headers, json=body, content=content, timeout=60
    )
    if r.status_code >= 300:
        raise Broke(f"{method} {path} answered {r.status_code}: {r.text[:300]}")
    return r


def set_up(meta: Meta, database_url: str, count: int) -> list[NewInstance]:
    """The app with a release of `web`, web=0, and `count` instances no agent runs yet."""
    admin(meta, "POST", "/v1/apps", {"name": APP})
    admin(meta, "PATCH", f"/v1/apps/{APP}/config-vars", {"GREETING": "hello"})
    slug = harness.procfile_slug(PROCFILE)
    made = admin(meta, "POST", f"/v1/apps/{APP}/slugs", content=slug).json()
    admin(meta, "POST", f"/v1/apps/{APP}/releases", {"slug": made["id"]})
    scale(meta, 0)
    store = Store.open(database_url, Box(load_or_create_key(meta.home, None)))
    try:
        recorder = Recorder()
        gun = Platform(store, providers={recorder.name: recorder}, meta_url=meta.url)
        who = gun.tokens.authenticate(meta.token)
        for start in range(0, count, CREATE_AT_ONCE):
            n = min(CREATE_AT_ONCE, count - start)
            gun.instances.create(who, APP, "default", n, provider=recorder.name)
    finally:
        store.close()
    return recorder.made


def scale(meta: Meta, web: int) -> None:
    admin(
        meta,
        "PATCH",
        f"/v1/apps/{APP}/formation",
        {"updates": [{"type": "web", "quantity": web}]},
    )


# --- measuring ----------------------------------------------------------------------------------


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its children."""
    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def own_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


@dataclass
class Round:
    web: int  # the formation it scaled to
    patch: float  # seconds the PATCH took
    affected: int
    latencies: list[float]  # seconds from before the PATCH to each affected agent's new slice
    meta_cpu: float  # % of one core during the round


async def held_all(agents: list[SimAgent], done: Callable[[SimAgent], bool], what: str) -> None:
    deadline = time.monotonic() + ROUND_TIMEOUT
    while not all(done(a) for a in agents):
        if time.monotonic() > deadline:
            missing = sum(1 for a in agents if not done(a))
            raise Broke(
                f"{missing} of {len(agents)} agents did not {what} within {ROUND_TIMEOUT:g} s "
                f"(calls so far: {dict(agents[0].counts)})"
            )
        await asyncio.sleep(0.01)


async def one_round(meta: Meta, agents: list[SimAgent], web: int, pid: int) -> Round:
    before = {a.id: (a.names(), a.held.generation if a.held else -1) for a in agents}
    cpu0, wall0 = tree_cpu(pid), time.monotonic()
    began = time.monotonic()
    await asyncio.to_thread(scale, meta, web)
    patched = time.monotonic() - began
    await held_all(
        agents,
        lambda a: a.held is not None and a.held.generation > before[a.id][1],
        "hear of the scale",
    )
    held = sum(len(a.held.processes) for a in agents if a.held)
    if held != web:
        raise Broke(f"the agents hold {held} web processes after scaling to web={web}")
    changed = [a for a in agents if a.names() != before[a.id][0]]
    cpu = (tree_cpu(pid) - cpu0) / max(time.monotonic() - wall0, 1e-9) * 100
    return Round(web, patched, len(changed), sorted(a.held_at - began for a in changed), cpu)


@dataclass
class Window:
    """What meta and this process did over a stretch of wall time."""

    seconds: float
    meta_cpu: float  # % of one core
    own_cpu: float
    requests: Counter[str]

    @property
    def answered(self) -> int:
        return sum(n for k, n in self.requests.items() if " " not in k)


@contextlib.asynccontextmanager
async def window(pid: int, counts: Counter[str], into: list[Window]) -> AsyncIterator[None]:
    cpu0, mine0, wall0, counts0 = tree_cpu(pid), own_cpu(), time.monotonic(), Counter(counts)
    yield
    wall = max(time.monotonic() - wall0, 1e-9)
    into.append(
        Window(
            wall,
            (tree_cpu(pid) - cpu0) / wall * 100,
            (own_cpu() - mine0) / wall * 100,
            counts - counts0,
        )
    )


# --- the run ------------------------------------------------------------------------------------


def machine_load() -> str:
    busy = psutil.cpu_percent(interval=1.0)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    text = f"{busy:.0f}% CPU busy over 1 s, load average {load}"
    if busy > 25 or os.getloadavg()[0] > (psutil.cpu_count() or 1) / 4:
        text += " -- BUSY: other work is running, the figures are inflated"
    return text


async def register(agents: list[SimAgent], tasks: list[asyncio.Task[None]]) -> None:
    """Every agent registers, REGISTERING at a time, and heartbeats from then on, before any
    long-polls: each registration bumps the app's generation, which would answer every
    waiting long-poll again."""
    gate = asyncio.Semaphore(REGISTERING)

    async def one(a: SimAgent) -> None:
        async with gate:
            await a.register()
        tasks.append(asyncio.create_task(a.report()))

    await asyncio.wait_for(asyncio.gather(*(one(a) for a in agents)), ROUND_TIMEOUT * 5)


async def drive(args: argparse.Namespace, meta: Meta, made: list[NewInstance]) -> int:
    assert meta.proc is not None
    pid = meta.proc.pid
    counts: Counter[str] = Counter()
    agents = [
        SimAgent(m.id, m.token, meta.port, args.keep_alive, counts, args.report_interval)
        for m in made
    ]
    tasks: list[asyncio.Task[None]] = []
    try:
        began = time.monotonic()
        await register(agents, tasks)
        say(f"  {len(agents)} agents registered in {time.monotonic() - began:.1f} s")
        tasks += [asyncio.create_task(a.run()) for a in agents]
        began = time.monotonic()
        await held_all(agents, lambda a: a.held is not None, "get a slice")
        say(f"  {len(agents)} agents hold a slice in {time.monotonic() - began:.1f} s")
        n = len(agents)
        began = time.monotonic()
        first = await one_round(meta, agents, n, pid)
        say(
            f"  web=0 -> {n}: {first.affected} agents affected, all in "
            f"{time.monotonic() - began:.2f} s (setup, not judged)"
        )
        await asyncio.sleep(args.settle)
        windows: list[Window] = []
        async with window(pid, counts, windows):
            await asyncio.sleep(args.settle)
        idle = windows.pop()
        rounds: list[Round] = []
        async with window(pid, counts, windows):
            for i in range(args.rounds):
                web = 2 * n if i % 2 == 0 else n
                r = await one_round(meta, agents, web, pid)
                rounds.append(r)
                show_round(i + 1, args.rounds, r)
                await asyncio.sleep(args.settle)
        return verdict(args, rounds, idle, windows[0], pid)
    finally:
        await cancel_all(tasks)


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel every task, again and again until each has ended: Python 3.11's wait_for can
    swallow a cancellation that arrives as what it waits for completes (fixed in 3.12), and a
    run of 1,000 agents hung in its cleanup on one."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=1.0)
    for t in tasks:  # retrieved: nothing is said of them at exit
        if not t.cancelled():
            t.exception()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def show_round(i: int, of: int, r: Round) -> None:
    lat = r.latencies
    say(
        f"  round {i}/{of}: web -> {r.web}: {r.affected} agents affected; "
        f"p50 {ms(percentile(lat, 50))}, p99 {ms(percentile(lat, 99))}, "
        f"max {ms(lat[-1] if lat else 0)}; PATCH {ms(r.patch)}; meta {r.meta_cpu:.0f}% "
        f"during the round"
    )


def verdict(
    args: argparse.Namespace, rounds: list[Round], idle: Window, run: Window, pid: int
) -> int:
    lat = sorted(x for r in rounds for x in r.latencies)
    p99 = percentile(lat, 99)
    say()
    say(
        f"all {len(rounds)} rounds, {len(lat)} agent updates: p50 {ms(percentile(lat, 50))}, "
        f"p99 {ms(p99)}, max {ms(lat[-1] if lat else 0)} from the PATCH to the agent holding "
        f"its new slice"
    )
    say(
        f"meta:    {run.meta_cpu:.0f}% of one core on average over {run.seconds:.1f} s of "
        f"rounds ({args.settle:g} s settling after each); {idle.meta_cpu:.0f}% idle (only "
        f"long-polls and heartbeats, {idle.seconds:.1f} s); peak RSS "
        f"{peak_rss(pid) / 2**20:.0f} MiB"
    )
    kinds = ", ".join(f"{k} {n / run.seconds:,.0f}/s" for k, n in sorted(run.requests.items()))
    say(
        f"requests: {run.answered / run.seconds:,.0f}/s answered over the rounds ({kinds}); "
        f"idle {idle.answered / idle.seconds:,.0f}/s"
    )
    say(
        f"client:  this process used {run.own_cpu:.0f}% of one core over the rounds "
        f"({idle.own_cpu:.0f}% idle)"
    )
    failed = {k: n for k, n in run.requests.items() if " " in k}
    if failed:
        say(f"errors:  {', '.join(f'{k}: {n}' for k, n in sorted(failed.items()))}")
        say(
            "         meta was saturated: calls failed or timed out (10 s). One Python process "
            "does not go much past one core, so its CPU understates the load."
        )
    p99_ok, cpu_ok = p99 <= TARGET_P99, run.meta_cpu < TARGET_CPU
    say(
        f"targets: p99 <= {TARGET_P99:g} s: {'PASS' if p99_ok else 'MISS'}; "
        f"meta < {TARGET_CPU:.0f}% of one core on average: {'PASS' if cpu_ok else 'MISS'}"
    )
    return 0


async def bounded(run: Coroutine[None, None, int], seconds: float) -> int:
    try:
        return await asyncio.wait_for(run, seconds)
    except TimeoutError:
        raise Broke(f"the agents' run took over {seconds:g} s") from None


def bench(args: argparse.Namespace, root: Path, stack: contextlib.ExitStack) -> int:
    say(
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, {sys.executable} "
        f"(Python {platform.python_version()})"
    )
    say(f"gun:     {which_gun()}")
    say(f"before:  {machine_load()}")
    transport = (
        "one connection kept alive per lane"
        if args.keep_alive
        else ("a connection per call, as the real agent")
    )
    say(
        f"agents:  {args.agents} in this one asyncio process, raw HTTP/1.1 ({transport}); "
        f"long-poll wait {POLL_WAIT:g} s, a report after each new slice, every "
        f"{args.report_interval:g} s until acknowledged, then a third of the lease"
    )
    database_url = stack.enter_context(postgres_store(args.pg_url))
    home = root / "meta"
    home.mkdir()
    token = "gun_bench_" + secrets.token_urlsafe(24)
    cpus = {1} if args.pin else None
    meta = Meta(home, database_url, token, cpus, env={"GUN_MAX_PROCESSES": str(4 * args.agents)})
    stack.callback(meta.stop)
    meta.start()
    say(
        f"meta:    {meta.url}, pid {meta.proc.pid if meta.proc else '-'}, "
        f"{'pinned to CPU 1, this process to CPU 0' if args.pin else 'not pinned'}"
    )
    began = time.monotonic()
    made = set_up(meta, database_url, args.agents)
    say(f"  {len(made)} instances made in {time.monotonic() - began:.1f} s")
    if args.pin:
        os.sched_setaffinity(0, {0})
    try:
        code = asyncio.run(bounded(drive(args, meta, made), RUN_TIMEOUT))
    except Broke as e:
        raise Broke(f"{e}; meta's log ends:\n{meta.log_tail(10)}") from None
    say(f"after:   {machine_load()}")
    if not meta.alive():
        raise Broke(f"meta died:\n{meta.log_tail()}")
    return code


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--agents", type=int, default=1000, help="simulated agents (default 1000)")
    p.add_argument("--rounds", type=int, default=4, help="scales to time (default 4)")
    p.add_argument("--quick", action="store_true", help="2 rounds, 2 s settling")
    p.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds after each round, and of the idle window (default 5)",
    )
    p.add_argument(
        "--report-interval",
        type=float,
        default=REPORT_INTERVAL,
        help="seconds between an agent's heartbeats (default %(default)g, the real agent's; "
        "meta marks an instance lost after GUN_INSTANCE_TIMEOUT, 30 s, without one)",
    )
    p.add_argument(
        "--keep-alive",
        action="store_true",
        help="keep connections alive (the real agent opens one per call)",
    )
    p.add_argument(
        "--pin",
        action="store_true",
        help="meta on CPU 1, the agents on CPU 0 (PostgreSQL anywhere)",
    )
    p.add_argument(
        "--pg-url",
        default=os.environ.get("GUN_BENCH_DATABASE_URL") or DEFAULT_PG_URL,
        help="PostgreSQL server to make a throwaway database on (default %(default)s)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.settle = 2, 2.0
    if args.agents < 1 or args.rounds < 1 or args.settle < 0 or args.report_interval <= 0:
        p.error("--agents, --rounds and --report-interval must be positive, --settle not negative")
    if args.pin and (os.cpu_count() or 1) < 2:
        p.error("--pin needs two CPUs")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    return harness.run_main("gun-fleet-bench-", lambda root, stack: bench(args, root, stack))


if __name__ == "__main__":
    sys.exit(main())
