"""`gun up --https`: meta serves HTTPS with a certificate of gun up's own CA (DIR/tls/ca.pem),
and every part pins it — the CLI (its saved credentials), the agents, the drain, the router,
a run's attachment, and the stock heroku CLI given NODE_EXTRA_CA_CERTS."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.heroku import HerokuCLI, admin_token
from tests.meta import GUN
from tests.up import HELLO, running


def test_gun_up_https_is_pinned_by_every_part(tmp_path: Path) -> None:
    with running(tmp_path, instances=1, https=True) as up:
        ca = up.home / "tls" / "ca.pem"
        assert up.url.startswith("https://127.0.0.1:")
        assert httpx.get(f"{up.url}/health", verify=up.verify, timeout=10).status_code == 200
        with pytest.raises(httpx.ConnectError):  # a certificate no public CA signed
            httpx.get(f"{up.url}/health", timeout=10)

        source = tmp_path / "app"
        source.mkdir()
        for f in HELLO.iterdir():
            (source / f.name).write_bytes(f.read_bytes())
        assert up.ok("apps.create", "demo") == "Created app demo (v1)\n"  # credentials pin ca
        assert up.ok("app:demo", "deploy", f"dir={source}") == "v2\n"  # agents pin it
        up.until(lambda: [p for p in up.processes("demo") if p["state"] == "up"], 60, "web.1")
        logs = lambda: up.ok("app:demo", "logs")  # noqa: E731  the drain asks meta, pinned
        up.until(lambda: "State changed from starting to up" in logs(), 30, "the app's logs")

        done = subprocess.run(
            [*GUN, "app:demo", "run", "--", "echo $DYNO"],
            env=up.env,
            input=b"",
            capture_output=True,
            timeout=60,
        )
        assert (done.returncode, done.stdout) == (0, b"run.1\n"), done.stderr

        heroku = HerokuCLI(up.url, admin_token(up), ca)
        assert heroku.ok("auth:whoami").strip() == "admin@gun"
        assert heroku("run", "-x", "exit 3", "-a", "demo").code == 3
