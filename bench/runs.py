"""A one-off process's output the whole way a user meets it: `gun app:X run -- cat FILE` on a
`gun up`, against a local `cat` of the same file.

    .venv/bin/python bench/runs.py [--megabytes 50] [--rounds 5]

Starts `gun up --instances 1` (its own process group, a temporary --dir and XDG_CONFIG_HOME,
free ports on 127.0.0.1 for meta, the drain, the router and the rendezvous), creates the app
`bench` and deploys a copy of examples/hello (with an empty requirements.txt: the python
buildpack). Writes that many random megabytes to a file in a world-readable directory under
/tmp (the app's processes run as a Unix user of their own when gun runs as root). Then times,
best of `--rounds`, each reading every byte through a pipe and sha256-ing it in this process:

1. local: `cat FILE`;
2. `gun app:bench run -- cat FILE`: the CLI as a subprocess, its wall time from start to exit
   (CLI start, the POST, the agent's wake, the rendezvous, the bytes through meta's splice);
3. `gun app:bench run -- true`: the fixed cost of a run; and `gun --help` alone, the CLI's own
   start (its imports), which is part of it;
4. derived: data time = (2) - (3), and the ratios (2)/(1) and ((2)-(3))/(1) against the
   issue's bar (at most 4x a local `cat`).

With (2) it prints the CPU seconds that meta's process, the agent's process and the CLI spent
in that round per the file's size: a slow client cannot flatter those. Exits 1 if any sha256
differs from the file's (or something broke), else 0, bar met or not.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

import harness
from harness import GUN, Broke, GunUp, say, which_gun

APP = "bench"
HELLO = Path(__file__).resolve().parent.parent / "examples" / "hello"
READ = 1 << 20  # bytes a read of a pipe asks for
BAR = 4.0


@dataclass
class Timed:
    seconds: float
    size: int
    sha256: str
    cpu: float | None = None  # the child's user + system seconds (rusage)


def read_all(argv: Sequence[str], env: dict[str, str] | None = None) -> Timed:
    """Run argv with its stdout a pipe that this process reads to the end and hashes; the wall
    time from the spawn to its exit."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    digest = hashlib.sha256()
    size = 0
    fd = proc.stdout.fileno()
    while data := os.read(fd, READ):
        digest.update(data)
        size += len(data)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    if proc.returncode != 0:
        raise Broke(f"`{shlex.join(argv[-3:])}` exited {proc.returncode}")
    return Timed(took, size, digest.hexdigest(), usage.ru_utime + usage.ru_stime)


def cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} CPUs, {platform.platform()}"


def interpreter() -> str:
    """sys.version, and which build it is: the pyenv one `python3` on PATH is, Debian's."""
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    if "/.pyenv/" in str(base):
        kind = "pyenv"
    elif str(base).startswith("/usr/bin/"):
        kind = "Debian's /usr/bin/python3"
    else:
        kind = "neither pyenv's nor Debian's"
    on_path = shutil.which("python3")
    if on_path:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            real = subprocess.run(
                [on_path, "-c", "import sys; print(sys._base_executable)"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
            if real and Path(real).resolve() == base:
                kind += ", the one `python3` on PATH runs"
            else:
                kind += f", not the one `python3` on PATH runs ({real or on_path})"
    version = sys.version.replace("\n", " ")
    return f"{sys.executable} -> {base} ({kind}): Python {version}"


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--megabytes", type=int, default=50, help="the file's size in MB (50)")
    p.add_argument("--rounds", type=int, default=5, help="rounds, best of which counts (5)")
    args = p.parse_args(argv)
    if args.megabytes < 1 or args.rounds < 1:
        p.error("--megabytes and --rounds must be positive")
    return args


def bench(root: Path, stack: contextlib.ExitStack, args: argparse.Namespace) -> int:
    say(f"command:     {shlex.join([sys.executable, *sys.argv])}")
    say(f"machine:     {machine()}")
    say(f"interpreter: {interpreter()}")
    say(f"gun:         {which_gun()}")
    say(f"load average before: {load_average()}")

    size = args.megabytes * 1_000_000
    data_dir = Path(tempfile.mkdtemp(prefix="gun-bench-runs-data-", dir="/tmp"))
    stack.callback(shutil.rmtree, data_dir, True)
    data_dir.chmod(0o755)  # the app's Unix user reads it
    path = data_dir / "random.bin"
    data = os.urandom(size)
    path.write_bytes(data)
    path.chmod(0o644)
    want = hashlib.sha256(data).hexdigest()
    del data

    gun = GunUp(root)
    stack.callback(gun.stop)
    gun.start()
    app = root / "app"
    shutil.copytree(HELLO, app)
    (app / "requirements.txt").write_text("")  # the python buildpack, as tests/test_runs_e2e.py
    gun.cli("apps.create", APP)
    gun.cli(f"app:{APP}", "deploy", f"dir={app}")
    say(f"gun up on {gun.url}, rendezvous on 127.0.0.1:{gun.rdv_port}; {root}")
    say(f"file: {path}, {size:,} random bytes, sha256 {want[:16]}...")

    cat = gun.argv(f"app:{APP}", "run", "--", "cat", str(path))
    true = gun.argv(f"app:{APP}", "run", "--", "true")
    read_all(true, gun.env)  # warm-up: the first run of a deploy, page cache, imports
    say(f"\n{args.rounds} round(s), each: local cat, gun run -- cat, gun run -- true")
    local: list[Timed] = []
    remote: list[Timed] = []
    fixed: list[Timed] = []
    alone: list[Timed] = []
    meta_cpu: list[float] = []
    agent_cpu: list[float] = []
    meta_fixed: list[float] = []
    agent_fixed: list[float] = []
    bad = 0
    for i in range(args.rounds):
        got = read_all(["cat", str(path)])
        local.append(got)
        meta, agent = gun.process("server", "meta"), gun.process("gun.agent")
        before = cpu(meta), cpu(agent)
        run = read_all(cat, gun.env)
        meta_cpu.append(cpu(meta) - before[0])
        agent_cpu.append(cpu(agent) - before[1])
        remote.append(run)
        before = cpu(meta), cpu(agent)
        nothing = read_all(true, gun.env)
        meta_fixed.append(cpu(meta) - before[0])
        agent_fixed.append(cpu(agent) - before[1])
        fixed.append(nothing)
        alone.append(read_all([*GUN, "--help"], gun.env))
        for what, t in (("local cat", got), ("gun run -- cat", run)):
            if t.sha256 != want or t.size != size:
                bad += 1
                say(f"  round {i + 1}: {what}: {t.size:,} bytes, sha256 {t.sha256[:16]}... DIFFERS")
        say(
            f"  round {i + 1}: local cat {got.seconds:.3f} s, run cat {run.seconds:.3f} s,"
            f" run true {nothing.seconds:.3f} s; CPU meta {meta_cpu[-1]:.2f} s,"
            f" agent {agent_cpu[-1]:.2f} s, CLI {run.cpu or 0:.2f} s (run true: meta"
            f" {meta_fixed[-1]:.2f} s, agent {agent_fixed[-1]:.2f} s, CLI {nothing.cpu or 0:.2f} s)"
        )

    one = min(t.seconds for t in local)
    two = min(t.seconds for t in remote)
    three = min(t.seconds for t in fixed)
    start = min(t.seconds for t in alone)
    per = size / 50_000_000
    say(f"\nbest of {args.rounds}, {size / 1e6:g} MB:")
    say(f"  1. local cat                       {one:7.3f} s  ({size / one / 1e6:,.0f} MB/s)")
    say(f"  2. gun run -- cat (whole command)  {two:7.3f} s  ({size / two / 1e6:,.0f} MB/s)")
    say(f"  3. gun run -- true (fixed cost)    {three:7.3f} s")
    say(f"     of which the CLI's start         {start:7.3f} s  (`gun --help`, its imports)")
    say(f"  4. data time (2)-(3)               {two - three:7.3f} s")
    for label, ratio in (("(2)/(1)", two / one), ("((2)-(3))/(1)", (two - three) / one)):
        verdict = "met" if ratio <= BAR else "missed"
        say(f"     {label:<14} {ratio:6.1f}x   bar <= {BAR:g}x: {verdict}")
    say(f"  CPU seconds (user + system), medians of {args.rounds} rounds:")
    say("     process  run cat  run true  difference per 50 MB")
    for who, cat_s, true_s in (
        ("meta", meta_cpu, meta_fixed),
        ("agent", agent_cpu, agent_fixed),
        ("CLI", [t.cpu or 0.0 for t in remote], [t.cpu or 0.0 for t in fixed]),
    ):
        a, b = statistics.median(cat_s), statistics.median(true_s)
        say(f"     {who:<7} {a:8.2f} {b:9.2f} {(a - b) / per:21.2f}")
    say(f"sha256: {'all intact' if not bad else f'{bad} DIFFER'}")
    say(f"load average after: {load_average()}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.run_main("gun-bench-runs-", lambda root, stack: bench(root, stack, args))


if __name__ == "__main__":
    sys.exit(main())
