"""The user-data of an ec2 instance (gun.providers.userdata): what it says, that sh reads it, and
a run of it on this machine against a stand-in meta on 127.0.0.1 that serves the agent's
bundle and then refuses the instance's token, as meta does once the instance was deleted: the
user-data installs and starts the agent, the agent stops, and its keep-alive loop removes
everything under the agent's root."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gun.agent.agent import EXIT_DELETED
from gun.providers import agentstart, bundle
from gun.providers.base import NewInstance
from gun.providers.userdata import render

TOKEN = "gun_agent_token_in_the_user_data"


def test_what_the_user_data_says() -> None:
    archive = bundle.archive()
    new = NewInstance("i-0a1b2c3d", "groupme", "app", None, None, "http://10.0.0.5:5100", TOKEN)
    script = render(new, "/srv/gun", archive)
    assert script.startswith("#!/bin/sh\n# gun: the agent of instance i-0a1b2c3d (app groupme")
    config = re.search(r"^(\{.*\})$", script, re.M)
    assert config is not None
    assert json.loads(config[1]) == {
        "meta": "http://10.0.0.5:5100",
        "instance": "i-0a1b2c3d",
        "token": TOKEN,
    }
    with_ca = render(replace(new, ca="-----BEGIN CERTIFICATE-----\nMII\n"), "/srv/gun", archive)
    assert '"ca": "-----BEGIN CERTIFICATE-----\\nMII\\n"' in with_ca
    assert archive.sha256 in script and f"/srv/gun/bundle-{archive.key}" in script
    assert 'chmod 600 "$dir/etc/agent.json"' in script
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    assert agentstart.EXIT_DELETED == EXIT_DELETED
    assert len(script) < 16 * 1024, "EC2 takes 16 KB of user-data"


@pytest.fixture
def meta() -> Iterator[tuple[str, list[str]]]:
    """A stand-in meta: the bundle for the instance's token, 401 for everything else."""
    archive = bundle.archive()
    seen: list[str] = []

    class Meta(BaseHTTPRequestHandler):
        def answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            ok = self.path.endswith("/bundle") and self.headers["Authorization"] == (
                f"Bearer {TOKEN}"
            )
            body = archive.data if ok else b'{"id": "unauthorized", "message": "no"}'
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = answer

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Meta)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_user_data_starts_an_agent_that_leaves_when_refused(
    meta: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, seen = meta
    root = tmp_path / "gun"
    new = NewInstance("i-0a1b2c3d", "groupme", "app", None, None, url, TOKEN)
    script = render(new, str(root), bundle.archive())
    done = subprocess.run(["sh", "-s"], input=script, text=True, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(bundle.archive().data).hexdigest() in script
    deadline = time.monotonic() + 60
    while root.exists():
        assert time.monotonic() < deadline, sorted(p.name for p in root.rglob("*"))[:20]
        time.sleep(0.2)
    assert seen[0] == "GET /v1/agent/instances/i-0a1b2c3d/bundle"
    assert "POST /v1/agent/instances/i-0a1b2c3d/register" in seen


def test_a_wrong_bundle_is_refused(meta: tuple[str, list[str]], tmp_path: Path) -> None:
    url, _ = meta
    root = tmp_path / "gun"
    archive = bundle.archive()
    wrong = bundle.Archive(archive.data, "0" * 64, archive.key, archive.names)
    new = NewInstance("i-0a1b2c3d", "groupme", "app", None, None, url, TOKEN)
    script = render(new, str(root), wrong)
    done = subprocess.run(["sh", "-s"], input=script, text=True, capture_output=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"gun: instance i-0a1b2c3d: gun: the agent's bundle from {url}/v1/agent/instances/"
        f"i-0a1b2c3d/bundle has sha256 {archive.sha256}, not {'0' * 64}"
    )
    assert not (root / f"venv-{archive.key}").exists()
