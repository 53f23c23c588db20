"""The README's first command, as a newcomer runs it: `scripts/up` sets up, runs the platform,
deploys examples/python-web and prints its URL through the router, which answers. (On free
ports: the defaults 5100/5101/5102/5180/5181 may be a developer's own `gun up`.)"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from tests.up import Up

REPO = Path(__file__).parent.parent


def test_scripts_up_prints_the_apps_url_and_it_answers(tmp_path: Path) -> None:
    platform = Up(tmp_path)  # its free ports, environment and, at the end, its cleanup
    argv = [
        "scripts/up",
        *("--dir", str(platform.home), "--port", str(platform.port)),
        *("--router-port", str(platform.router_port)),
        *("--router-tls-port", str(platform.router_tls_port)),
        *("--rendezvous-port", str(platform.rendezvous_port)),
    ]
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        env=platform.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    platform.proc = proc  # type: ignore[assignment]
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while not any(line.startswith("gun is running") for line in said):
            assert proc.poll() is None, "".join(said)
            assert time.monotonic() < deadline, "".join(said)
            time.sleep(0.2)
        url = f"http://python-web.localhost:{platform.router_port}/"
        assert f"python-web is answering on {url} (through the router)\n" in said, "".join(said)
        r = httpx.get(
            f"http://127.0.0.1:{platform.router_port}/",
            headers={"Host": "python-web.localhost"},
            timeout=10,
        )
        assert (r.status_code, r.json()["app"]) == (200, "python-web")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(90)
        finally:
            platform.kill_everything()
    reader.join(10)
    assert "Ctrl-C stops everything" in "".join(said)
