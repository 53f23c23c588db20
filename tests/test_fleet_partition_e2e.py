"""A partition, as a fleet lives through one: three test hosts (tests/hosts) run an app with a
singleton `clock=1` and `web=3`; the host running clock.1 loses its link (inside its
namespace); meta (GUN_INSTANCE_TIMEOUT=6) marks it lost and clock.1 runs on another host within
timeout + 5 s; the partitioned agent, its lease lapsed, has stopped it before; healed, the host
is online again and does not start clock again.

The clock process writes (hostname, pid, time) every 0.2 s to a file in its release directory
(which the test reads from outside: what a partitioned host wrote counts too) and sends each
line to a collector in the control namespace (the shared store on the control host). Every
host reads the same kernel clock, so the times compare exactly.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from tests.hosts import Fleet
from tests.test_fleet_ssh_e2e import WEB, Cli, start_meta, users_removed

TIMEOUT = 6.0  # GUN_INSTANCE_TIMEOUT: the lease is 6 - 2 (grace) - 1 (margin) = 3 s
COLLECTOR_PORT = 5199
CLOCK = """import json, os, signal, socket, sys, time, urllib.request

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
host, pid, unsent = socket.gethostname(), os.getpid(), []
with open("clock.log", "a", buffering=1) as log:
    while True:
        line = f"{host} {pid} {time.time():.3f}"
        log.write(line + "\\n")
        unsent.append(line)
        try:
            body = "\\n".join(unsent).encode()
            urllib.request.urlopen(os.environ["COLLECTOR"], data=body, timeout=0.5).read()
            unsent = []
        except OSError:
            pass  # partitioned: sent with the next line
        time.sleep(0.2)
"""
COLLECTOR = """import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

out = open(sys.argv[3], "a", buffering=1)


class Collect(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        for line in body.splitlines():
            out.write(f"{line} {time.time():.3f}\\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Collect).serve_forever()
"""

Line = tuple[str, int, float]  # hostname, pid, when the clock wrote it


def clock_lines(fleet: Fleet, collected: Path) -> list[Line]:
    """Every line any clock wrote: on the hosts' disks, and what reached the collector."""
    seen: set[Line] = set()
    texts = [
        p.read_text() for p in fleet.dir.glob("hosts/*/root/gun/instances/*/releases/*/clock.log")
    ]
    if collected.exists():
        texts.append(collected.read_text())
    for text in texts:
        for row in text.splitlines():
            parts = row.split()
            if len(parts) >= 3:
                seen.add((parts[0], int(parts[1]), float(parts[2])))
    return sorted(seen, key=lambda line: line[2])


def runs(lines: list[Line]) -> dict[tuple[str, int], tuple[float, float]]:
    """(host, pid) -> (first, last) time it wrote."""
    spans: dict[tuple[str, int], list[float]] = defaultdict(list)
    for host, pid, at in lines:
        spans[(host, pid)].append(at)
    return {k: (min(v), max(v)) for k, v in spans.items()}


def overlap(spans: dict[tuple[str, int], tuple[float, float]]) -> float:
    """The longest time two clocks ran at once (negative: the shortest gap between two)."""
    items = sorted(spans.values())
    worst = -float("inf")
    for i, (first, last) in enumerate(items):
        for other_first, other_last in items[i + 1 :]:
            worst = max(worst, min(last, other_last) - max(first, other_first))
    return worst


def agent_logs(fleet: Fleet) -> str:
    return "\n".join(
        f"--- {p}\n{p.read_text()[-3000:]}"
        for p in fleet.dir.glob("hosts/*/root/gun/instances/*/log/agent.log")
    )


def wait_for(what: str, check: Callable[[], object], seconds: float, fleet: Fleet) -> float:
    """Poll `check()` until it is true; the time it took."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < seconds, f"{what} within {seconds}s\n{agent_logs(fleet)}"
        time.sleep(0.1)
    return time.monotonic() - began


def test_a_partitioned_host_stops_its_clock_before_it_runs_elsewhere(
    hosts_ready: None, tmp_path: Path
) -> None:
    home = tmp_path / "meta"
    home.mkdir()
    app = tmp_path / "app"
    app.mkdir()
    (app / "web.py").write_text(WEB)
    (app / "clock.py").write_text(CLOCK)
    (app / "Procfile").write_text("web: exec python3 web.py\nclock: exec python3 clock.py\n")
    collected = tmp_path / "collected.txt"
    with Fleet(hide=[home]) as fleet, users_removed(fleet):
        hosts = {name: fleet.host(name) for name in ("h0", "h1", "h2")}
        fleet.control.popen(
            [
                sys.executable,
                "-c",
                COLLECTOR,
                fleet.control.address,
                str(COLLECTOR_PORT),
                str(collected),
            ]
        )
        gun = Cli(fleet, start_meta(fleet, home, GUN_INSTANCE_TIMEOUT=str(TIMEOUT)))
        for h in hosts.values():
            gun.ok(
                "hosts.add", h.name, f"root@{h.address}", f"key={fleet.key}", f"root={h.root}/gun"
            )
        gun.ok("apps.create", "tick")
        for h in hosts.values():
            gun.ok("app:tick", "instances.create:default", "provider=ssh", f"host={h.name}")
        url = f"http://{fleet.control.address}:{COLLECTOR_PORT}/"
        gun.ok("app:tick", "config.set", f"COLLECTOR={url}")
        gun.ok("app:tick", "deploy", f"dir={app}", timeout=300)
        gun.ok("app:tick", "scale", "web=3", "clock=1", timeout=300)
        host_of = {i["id"]: i["host"] for i in gun.json("app:tick", "instances")}

        def clock_on() -> str | None:
            last = clock_lines(fleet, collected)
            return last[-1][0] if last and time.time() - last[-1][2] < 1.0 else None

        wait_for("clock.1 writing", clock_on, 60, fleet)
        ps = {p["name"]: p for p in gun.json("app:tick", "ps")}
        old = host_of[ps["clock.1"]["instance"]]
        assert clock_on() == old

        hosts[old].partition()
        cut = time.time()
        moved = wait_for(
            "clock.1 running on another host",
            lambda: (h := clock_on()) is not None and h != old,
            TIMEOUT + 5,
            fleet,
        )
        print(f"\n$ gun app:tick instances   # {moved:.1f} s into the partition of {old}")
        print(gun.ok("app:tick", "instances"), end="")
        print("$ gun app:tick ps")
        print(gun.ok("app:tick", "ps"), end="")
        states = {host_of[i["id"]]: i["state"] for i in gun.json("app:tick", "instances")}
        assert states[old] == "lost", states
        new = clock_on()

        time.sleep(2.0)
        hosts[old].heal()
        healed = time.time()
        wait_for(
            f"{old} online again",
            lambda: (
                {host_of[i["id"]]: i["state"] for i in gun.json("app:tick", "instances")}[old]
                == "online"
            ),
            TIMEOUT + 10,
            fleet,
        )
        time.sleep(TIMEOUT + 2)  # a whole timeout and more after the heal
        lines = clock_lines(fleet, collected)
        spans = runs(lines)
        after_heal = [line for line in lines if line[0] == old and line[2] >= healed]
        assert after_heal == [], f"{old} ran clock again after the heal: {after_heal[:3]}"
        assert clock_on() == new, "clock.1 still runs where it was moved"
        ps = {p["name"]: p for p in gun.json("app:tick", "ps")}
        assert (host_of[ps["clock.1"]["instance"]], ps["clock.1"]["state"]) == (new, "up")
        assert {p["state"] for p in ps.values()} == {"up"}, ps
        back = [p["type"] for p in ps.values() if host_of[p["instance"]] == old]
        assert back == ["web"], f"{old} runs its share of web again, and no clock: {ps}"

        old_last = max(last for (h, _), (_, last) in spans.items() if h == old)
        new_first = min(first for (h, _), (first, _) in spans.items() if h == new)
        both = overlap(spans)
        print(
            f"partitioned at {0:.1f}; {old}'s clock last wrote at {old_last - cut:+.2f} s; "
            f"{new}'s first at {new_first - cut:+.2f} s; longest overlap of two clocks: "
            f"{both:+.2f} s (negative: a gap); clocks: {json.dumps(sorted(map(list, spans)))}"
        )
        assert old_last - cut <= TIMEOUT, "the partitioned clock ran past the timeout"
        assert both < 0, f"two clocks ran at once for {both:.2f} s"
        assert new_first - cut <= TIMEOUT + 5
