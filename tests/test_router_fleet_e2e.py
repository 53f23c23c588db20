"""A router on a fourth host in front of three (tests/hosts): the platform's app `gun-router`
has an instance on host `edge`, whose agent runs the router; the app `shop`, at `app.test`, has
its web processes on hosts a0, a1, a2. A client in the fleet's control namespace sends a steady
load through the router while the team deploys, restarts and scales: no request fails. Then a
web process is killed and a host cut off: what fails is bounded by the health checks."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gun.router.haproxy import Settings
from tests.hosts import Fleet, Host
from tests.test_fleet_ssh_e2e import Cli, on, start_meta, users_removed

REPO = Path(__file__).parent.parent
WEB = """import os, socket
from http.server import BaseHTTPRequestHandler, HTTPServer


class Host(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{socket.gethostname()} {os.environ['DYNO']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("", int(os.environ["PORT"])), Host).serve_forever()
"""
RATE = 200  # requests a second, from 4 keep-alive clients
STEADY = 30  # seconds of load at least, through the deploy, the restart and the scales


def through(fleet: Fleet, router: str, tries: int, *, verify: bool = True) -> set[str]:
    """What `tries` GETs of app.test through the router answered (host and dyno), from the
    control namespace."""
    code = (
        "import httpx, sys\n"
        f"seen = {{httpx.get({router!r}, headers={{'Host': 'app.test'}}, timeout=10,"
        f" verify={verify!r}).text for _ in range({tries})}}\n"
        "print('\\n'.join(sorted(seen)))"
    )
    done = fleet.control.run([sys.executable, "-c", code], timeout=60)
    return set(done.stdout.split("\n")) - {""} if done.returncode == 0 else set()


def serving(fleet: Fleet, router: str, n: int, gun: Cli) -> set[str]:
    deadline = time.monotonic() + 90
    while True:
        seen = through(fleet, router, 4 * n + 4)
        if len(seen) == n:
            return seen
        if time.monotonic() > deadline:
            edge = gun.json("app:gun-router", "instances")
            raise AssertionError(f"the router serves {seen}, not {n} processes; router: {edge}")
        time.sleep(0.5)


class ControlLoad:
    """tests/load.py in the control namespace: RATE requests a second through the router."""

    def __init__(self, fleet: Fleet, router: str) -> None:
        self.proc = fleet.control.popen(
            [sys.executable, "-m", "tests.load", router, "app.test", str(RATE), "600"],
            stdout=subprocess.PIPE,
            cwd=str(REPO),
        )

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=90)
        summary: dict[str, Any] = json.loads(out)
        return summary


@contextlib.contextmanager
def sockets_removed(fleet: Fleet) -> Iterator[None]:
    """The router's admin socket: its directory on the test host is too long a path for one, so
    it lies in the temp dir (gun.router.haproxy.Settings.socket), and a router killed with its
    host leaves it there."""
    try:
        yield
    finally:
        for home in fleet.dir.glob("hosts/*/root/gun/instances/*/router"):
            name = Settings(listen="", home=home, syslog="").socket.name
            for where in {Path(tempfile.gettempdir()), Path("/tmp")}:  # the agent's, and ours
                (where / name).unlink(missing_ok=True)


def web_pid(host: Host, port: int) -> int:
    listening = on(host, f"ss -Htlnp 'sport = :{port}'")
    return int(listening.split("pid=")[1].split(",")[0])


def test_a_router_on_a_fourth_host_loses_no_request_through_deploys(
    hosts_ready: None, tmp_path: Path
) -> None:
    home = tmp_path / "meta"
    home.mkdir()
    app = tmp_path / "app"
    app.mkdir()
    (app / "web.py").write_text(WEB)
    (app / "Procfile").write_text("web: exec python3 web.py\n")
    with Fleet(hide=[home]) as fleet, users_removed(fleet), sockets_removed(fleet):
        hosts = [fleet.host(f"a{i}") for i in range(3)]
        edge = fleet.host("edge")
        gun = Cli(fleet, start_meta(fleet, home, GUN_INSTANCE_TIMEOUT="6"))
        for h in [*hosts, edge]:
            gun.ok(
                "hosts.add", h.name, f"root@{h.address}", f"key={fleet.key}", f"root={h.root}/gun"
            )
        gun.ok("apps.create", "shop")
        for h in hosts:
            gun.ok("app:shop", "instances.create:default", "provider=ssh", f"host={h.name}")
        gun.ok("app:shop", "deploy", f"dir={app}", timeout=300)
        gun.ok("app:shop", "scale", "web=3", timeout=300)
        gun.ok("app:shop", "domains.add:app.test")

        gun.ok("apps.create", "gun-router")
        gun.ok(
            "app:gun-router", "config.set", "ROUTER_PORT=8080", "ROUTER_TLS_PORT=8443",
            "ROUTER_TIMEOUT=5",
        )  # fmt: skip
        gun.ok("app:gun-router", "instances.create:router", "provider=ssh", "host=edge")
        router = f"http://{edge.address}:8080/"
        seen = serving(fleet, router, 3, gun)  # each process in turn, one on each host
        assert sorted(x.split()[0] for x in seen) == ["a0", "a1", "a2"]
        assert sorted(x.split()[1] for x in seen) == ["web.1", "web.2", "web.3"]
        # HTTPS too, with the default certificate openssl made: the agent has no cryptography
        https = through(fleet, f"https://{edge.address}:8443/", 4, verify=False)
        assert https and https <= seen, https

        load = ControlLoad(fleet, router)
        started = time.monotonic()
        gun.ok("app:shop", "deploy", f"dir={app}", timeout=300)  # preboot
        gun.ok("app:shop", "ps.restart")
        time.sleep(6)  # the restart rolls
        gun.ok("app:shop", "scale", "web=1")
        serving(fleet, router, 1, gun)
        gun.ok("app:shop", "scale", "web=4")
        serving(fleet, router, 4, gun)
        time.sleep(max(0.0, STEADY - (time.monotonic() - started)))
        steady = load.stop()
        print("deploy, restart, scale 3 -> 1 -> 4:", steady)
        assert sum(steady["statuses"].values()) > 0.8 * STEADY * RATE
        assert steady["failed"] == 0, steady

        load = ControlLoad(fleet, router)
        time.sleep(2)
        ps = gun.json("app:shop", "ps")
        where = {i["id"]: i["host"] for i in gun.json("app:shop", "instances")}
        web = next(p for p in ps if p["name"] == "web.1")
        host = next(h for h in hosts if h.name == where[web["instance"]])
        on(host, f"kill -9 {web_pid(host, web['port'])}")
        time.sleep(5)
        killed = load.stop()
        print("kill -9 of web.1:", killed)
        assert killed["failed"] <= 4, killed  # at most the requests it was serving

        load = ControlLoad(fleet, router)
        time.sleep(2)
        cut = next(h for h in hosts if h.name == where[web["instance"]])
        cut.partition()
        serving(fleet, router, 4, gun)  # its processes are placed on the others (instance lost)
        lost = load.stop()
        cut.heal()
        print(f"host {cut.name} cut off:", lost)
        # those under way on its processes, and those sent to them until two health checks
        # failed (2 x 1 s) each waited for the connect timeout and went elsewhere: bounded
        assert lost["failed"] <= 2 * RATE, lost
