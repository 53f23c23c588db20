"""One-off processes on a fleet: the CLI in the control namespace, the app's instance on a test
host over ssh, both ends meeting at meta's rendezvous (issue 14: "a run on a host in another
namespace works the same"). Piped input and output, the exit code, the process really on the
host, and a CLI killed with SIGKILL stopping it there; with meta over HTTP, then with meta over
HTTPS, so that the rendezvous is TLS on both ends (the CLI's and the agent's, each pinning the
team's CA).

The app is built by the null buildpack: the control namespace has no way to a package index.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.hosts import Fleet, Host
from tests.meta import GUN
from tests.test_fleet_ssh_e2e import WEB, Cli, on, start_meta, users_removed

MARKER = "sleep 987.654"  # the run's command; nothing else on a host has it


def test_a_run_on_a_fleet_host_works_as_on_one_machine_over_http_and_https(
    hosts_ready: None, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "web.py").write_text(WEB)
    (app / "Procfile").write_text("web: exec python3 web.py\n")
    plain, secure = tmp_path / "meta", tmp_path / "meta-tls"
    for home in (plain, secure):
        home.mkdir()
    with Fleet(hide=[plain, secure]) as fleet, users_removed(fleet):
        certs = secure / "certs"  # hidden from the hosts with meta's data, the key too
        made = subprocess.run(
            [*GUN, "server", "certs", "--dir", str(certs), fleet.control.address],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr

        gun = Cli(fleet, start_meta(fleet, plain, port=5100, rendezvous=5102))
        runs_work(fleet, gun, fleet.host("h0"), app)

        url = start_meta(fleet, secure, port=5110, rendezvous=5112, certs=certs)
        assert url.startswith("https://")
        gun = Cli(fleet, url)
        gun.env["GUN_API_CA"] = str(certs / "ca.pem")
        runs_work(fleet, gun, fleet.host("h1"), app)


def runs_work(fleet: Fleet, gun: Cli, host: Host, app: Path) -> None:
    gun.ok(
        "hosts.add", host.name, f"root@{host.address}", f"key={fleet.key}", f"root={host.root}/gun"
    )
    gun.ok("apps.create", "shop")
    gun.ok("app:shop", "instances.create:default", "provider=ssh", f"host={host.name}")
    gun.ok("app:shop", "deploy", f"dir={app}", timeout=300)

    done = fleet.control.run(
        [*GUN, "app:shop", "run", "--", "python3"], input="print(6*7)\n", env=gun.env
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "42\n", "")
    code, out, err = gun("app:shop", "run", "--", "sh", "-c", "exit 3")
    assert (code, out, err) == (3, "", "")
    until(lambda: exited(fleet, gun, 3), 30, "the agent's report of the run's exit code 3")
    here = fleet.control.run(["hostname"]).stdout
    out = gun.ok("app:shop", "run", "--", "sh", "-c", 'echo "$(hostname) $DYNO"')
    assert out.split()[0] == host.name != here.strip(), "it ran on the test host"
    assert out.split()[1].startswith("run.")

    cli = fleet.control.popen(
        [*GUN, "app:shop", "run", "--", MARKER],
        env=gun.env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        until(lambda: runs_on(host), 30, f"the run's {MARKER} on {host.name}")
        os.killpg(cli.pid, signal.SIGKILL)
        cli.wait(10)
        killed = time.monotonic()
        until(lambda: not runs_on(host), 10, f"the run's {MARKER} to be stopped")
        print(f"{host.name}: stopped {time.monotonic() - killed:.2f} s after the CLI was killed")
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait(10)


def runs_on(host: Host) -> list[str]:
    """The processes of the run on `host` (its own PID namespace: the CLI is not there)."""
    return [line for line in on(host, "ps -e -o args=").splitlines() if MARKER in line]


def exited(fleet: Fleet, gun: Cli, code: int) -> bool:
    """The app's events (from the control namespace) hold a run that exited with `code`."""
    url, ca = gun.env["GUN_API_URL"], gun.env.get("GUN_API_CA")
    program = (
        "import json, ssl, sys, urllib.request\n"
        f"r = urllib.request.Request({url + '/v1/apps/shop/events'!r})\n"
        f"r.add_header('Authorization', 'Bearer ' + {gun.env['GUN_API_TOKEN']!r})\n"
        f"context = ssl.create_default_context(cafile={ca!r}) if {ca!r} else None\n"
        "json.dump(json.load(urllib.request.urlopen(r, timeout=5, context=context)), sys.stdout)"
    )
    done = fleet.control.run([sys.executable, "-c", program], timeout=30)
    assert done.returncode == 0, done.stderr
    return any(
        e["action"] == "run.exit" and e["detail"]["exit_code"] == code
        for e in json.loads(done.stdout)
    )


def until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(0.2)
