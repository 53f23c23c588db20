"""Where the drain's time goes, without HTTP: `Drain.accept` and the flush, in one process.

    .venv/bin/python bench/drain_profile.py [--mix bench|production] [--bodies 2000]
        [--profile]   # cProfile: the top costs by own time (tottime) and by cumulative time

A Drain as `gun server drain` makes it (archive in a temporary directory, whisper and
Prometheus outlets, frame ids remembered in a file) takes `--bodies` bodies of the mix (100
frames each, each with its own Logplex-Frame-Id), then flushes every bucket to the outlets.
It prints lines per CPU-second (process time, so a busy machine slows it less than wall time
would) for accept alone and for accept + flush. What HTTP costs on top is what bench/drain.py
measures end to end.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gun.logs.archive import Archive  # noqa: E402
from gun.logs.drain import Drain  # noqa: E402
from gun.logs.outlets.prometheus import PrometheusOutlet  # noqa: E402
from gun.logs.outlets.whisper import WhisperOutlet  # noqa: E402
from gun.logs.seen import Seen  # noqa: E402
from mixes import FRAMES_PER_BODY, MIXES, bodies  # noqa: E402


def run(mix: str, count: int, profile: bool, top: int) -> None:
    payloads = bodies(mix, count)
    ids = [uuid.uuid4().hex for _ in payloads]
    tmp = Path(tempfile.mkdtemp(prefix="gun-bench-profile-"))
    try:
        drain = Drain(
            Archive(tmp / "archive"),
            [PrometheusOutlet(), WhisperOutlet(tmp / "whisper")],
            seen=Seen(tmp),
        )
        (tmp / "archive").mkdir()
        profiler = cProfile.Profile() if profile else None
        lines = 0
        if profiler:
            profiler.enable()
        c0 = time.process_time()
        for body, frame_id in zip(payloads, ids, strict=True):
            lines += drain.accept("shop", body, frame_id).lines
        c1 = time.process_time()
        drain.clock = lambda: time.time() + 3600  # every interval closed
        drain.flush()
        c2 = time.process_time()
        if profiler:
            profiler.disable()
        assert lines == count * FRAMES_PER_BODY, lines
        print(f"mix {mix}: {count:,} bodies, {lines:,} lines, Python {sys.version.split()[0]}")
        print(f"  accept          {lines / (c1 - c0):>10,.0f} lines per CPU-second")
        print(f"  accept + flush  {lines / (c2 - c0):>10,.0f} lines per CPU-second")
        if profiler:
            for key in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(top)
                print(f"-- top {top} by {key} --")
                text = out.getvalue()
                print(text[text.index("   ncalls") :].rstrip())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mix", choices=(*MIXES, "both"), default="both")
    ap.add_argument("--bodies", type=int, default=2000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    args = ap.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    for mix in MIXES if args.mix == "both" else (args.mix,):
        run(mix, args.bodies, args.profile, args.top)


if __name__ == "__main__":
    main()
