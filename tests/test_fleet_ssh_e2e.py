"""A fleet over ssh, as a team runs it: three test hosts (tests/hosts: a network, mount and PID
namespace each, their own sshd, bootstrapped from nothing but python3 and sshd), meta and the
`gun` CLI in the control namespace, an app with web=3 worker=2 spread over the hosts, each web
answering from its own host's address, and every trace gone from the hosts after
`instances.delete`.

The app is built by the null buildpack: the control namespace has no way to a package index.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gun import isolation
from tests.hosts import Fleet, Host
from tests.meta import GUN

ADMIN = "gun_test_admin_token_for_the_fleet"
WEB = """import os, socket
from http.server import BaseHTTPRequestHandler, HTTPServer


class Host(BaseHTTPRequestHandler):
    def do_GET(self):
        body = socket.gethostname().encode()  # a test host's hostname is its name
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("", int(os.environ["PORT"])), Host).serve_forever()
"""
PORT = 5100  # the control namespace is the fleet's own: nothing else listens there


class Cli:
    def __init__(self, fleet: Fleet, url: str) -> None:
        self.fleet = fleet
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
        self.env.update(GUN_API_URL=url, GUN_API_TOKEN=ADMIN)

    def __call__(self, *args: str, timeout: float = 120) -> tuple[int, str, str]:
        done = self.fleet.control.run([*GUN, *args], env=self.env, timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    def ok(self, *args: str, timeout: float = 120) -> str:
        code, out, err = self(*args, timeout=timeout)
        assert code == 0, f"gun {' '.join(args)}: {err}"
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


def get(fleet: Fleet, url: str) -> str:
    """GET `url` from the control namespace (never from this one)."""
    code = (
        "import urllib.request;"
        f" print(urllib.request.urlopen({url!r}, timeout=5).read().decode(), end='')"
    )
    done = fleet.control.run([sys.executable, "-c", code], timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def start_meta(
    fleet: Fleet,
    home: Path,
    *,
    port: int = PORT,
    rendezvous: int | None = None,
    certs: Path | None = None,
    **settings: str,
) -> str:
    """meta in the control namespace (with these GUN_* settings too) on `port`, serving the
    rendezvous on `rendezvous` and HTTPS with `certs` (`gun server certs --dir`) if given; its
    URL once healthy."""
    scheme = "https" if certs else "http"
    url = f"{scheme}://{fleet.control.address}:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
    env.update(
        GUN_HOME=str(home),
        GUN_DATABASE_URL=f"sqlite:///{home / 'meta.db'}",
        GUN_ADMIN_TOKEN=ADMIN,
        GUN_PUBLIC_URL=url,
        **settings,
    )
    if certs:
        env.update(
            GUN_TLS_CERT=str(certs / "server.pem"),
            GUN_TLS_KEY=str(certs / "server-key.pem"),
            GUN_TLS_CA=str(certs / "ca.pem"),
        )
    argv = [*GUN, "server", "meta", "--listen", f"{fleet.control.address}:{port}"]
    if rendezvous is not None:
        argv += ["--rendezvous-listen", f"{fleet.control.address}:{rendezvous}"]
    with open(home / "meta.log", "ab") as log:
        fleet.control.popen(argv, env=env, stdout=log, stderr=log)
    context = f"ssl.create_default_context(cafile={str(certs / 'ca.pem')!r})" if certs else None
    code = (
        "import ssl, urllib.request;"
        f" urllib.request.urlopen('{url}/health', timeout=2, context={context})"
    )
    deadline = time.monotonic() + 30
    while True:
        if fleet.control.run([sys.executable, "-c", code], timeout=10).returncode == 0:
            return url
        assert time.monotonic() < deadline, (home / "meta.log").read_text()[-3000:]
        time.sleep(0.2)


@contextlib.contextmanager
def users_removed(fleet: Fleet) -> Iterator[None]:
    """The instances' Unix users (the hosts share the machine's /etc/passwd) go even when the
    test fails before `instances.delete` (the fleet kills their processes)."""
    try:
        yield
    finally:
        if isolation.can_switch():
            for root in fleet.dir.glob("hosts/*/root/gun/instances/*"):
                isolation.remove(isolation.instance_user_name(root))


def on(host: Host, command: str) -> str:
    done = host.ssh(command)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_three_hosts_over_ssh_run_an_app_and_keep_nothing_after(
    hosts_ready: None, tmp_path: Path
) -> None:
    home = tmp_path / "meta"
    home.mkdir()
    app = tmp_path / "app"
    app.mkdir()
    (app / "web.py").write_text(WEB)
    (app / "Procfile").write_text("web: exec python3 web.py\nworker: exec sleep 100000\n")
    with Fleet(hide=[home]) as fleet, users_removed(fleet):
        hosts = [fleet.host(f"h{i}") for i in range(3)]
        gun = Cli(fleet, start_meta(fleet, home))
        assert on(hosts[0], f"ls -A {home}") == "", "meta's data dir is hidden from the hosts"

        for h in hosts:
            out = gun.ok(
                "hosts.add", h.name, f"root@{h.address}", f"key={fleet.key}", f"root={h.root}/gun"
            )
            assert out.startswith(f"Added host {h.name} (root@{h.address}:22, Python 3.")
        gun.ok("apps.create", "shop")
        gun.ok(
            "app:shop", "layers.set:default", "setup=echo set up on $(hostname)",
            "teardown=echo torn down on $(hostname)",
        )  # fmt: skip
        for h in hosts:
            code, out, err = gun(
                "app:shop", "instances.create:default", "provider=ssh", f"host={h.name}"
            )
            assert code == 0, err
            assert out.endswith("  default  online\n")
            assert err == f"{out.split()[0]} setup: set up on {h.name}\n"
        gun.ok("app:shop", "deploy", f"dir={app}", timeout=300)
        gun.ok("app:shop", "scale", "web=3", "worker=2", timeout=300)

        with_host = {i["id"]: i["host"] for i in gun.json("app:shop", "instances")}
        ps = gun.json("app:shop", "ps")
        assert sorted((p["name"], p["state"]) for p in ps) == [
            ("web.1", "up"), ("web.2", "up"), ("web.3", "up"),
            ("worker.1", "up"), ("worker.2", "up"),
        ]  # fmt: skip
        webs = {p["name"]: (with_host[p["instance"]], p["port"]) for p in ps if p["type"] == "web"}
        assert sorted(h for h, _ in webs.values()) == ["h0", "h1", "h2"], "one web on each host"
        address = {h.name: h.address for h in hosts}
        for name, (host, port) in webs.items():
            assert get(fleet, f"http://{address[host]}:{port}/") == host, name

        for i, host in with_host.items():
            code, out, err = gun("app:shop", f"instances.delete:{i}", timeout=120)
            assert (code, out) == (0, f"Deleted instance {i}\n"), err
            assert err.startswith(f"{i} teardown: torn down on {host}\n")
        for h in hosts:
            assert on(h, f"ls -A {h.root}") == "", f"nothing left on {h.name}"
            left = set(on(h, "ps -e -o comm=").split()) - {"sshd", "bash", "sh", "ps"}
            assert left == set(), f"processes left on {h.name}"
        assert gun.json("hosts")[0]["instances"] == 0
