"""`gun up`: the whole platform in the foreground on the embedded defaults.

meta (SQLite under DIR) runs as a child in its own process group; every app created gets N
local instances in layer `default`, each an agent in its own process group. Ctrl-C or SIGTERM
stops meta, then every agent (each stops its processes within their grace period), and leaves
nothing running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from gun.cli import credentials
from gun.crypto import new_token
from gun.errors import Unavailable
from gun.providers.local import LocalProvider


def admin_token(home: Path) -> str:
    """The admin token `gun up` uses for its meta: made once, kept in DIR/admin.token (0600)."""
    path = home / "admin.token"
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    token = new_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise Unavailable(f"meta exited with status {proc.returncode}: {tail.strip()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise Unavailable(f"meta did not answer on {url} within {timeout:g}s; see {log}")


# meta's and the agents' settings that `gun up` passes on (not the ones it decides itself:
# database, listen address, home, and not the CLI's)
PASSED = (
    "GUN_INSTANCE_TIMEOUT",
    "GUN_SECRET_KEY",
    "GUN_SLUG_MAX_BYTES",
    "GUN_SLUG_STORE",
    "GUN_S3_ENDPOINT_URL",
    "GUN_BUILD_CONCURRENCY",
    "GUN_BUILD_TIMEOUT",
    "GUN_RELEASE_TIMEOUT",
    "GUN_PREBOOT_DRAIN",
    "GUN_MAX_UNAVAILABLE",
    "GUN_KEEP_RELEASES",
)


def run(home: Path, port: int, instances: int, say: object = print) -> None:
    home = home.expanduser().resolve()
    (home / "log").mkdir(parents=True, exist_ok=True)
    token = admin_token(home)
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
    env.update(GUN_HOME=str(home), GUN_ADMIN_TOKEN=token, GUN_AUTO_INSTANCES=str(instances))
    for key in PASSED:
        if key in os.environ:
            env[key] = os.environ[key]
    log = home / "log" / "meta.log"
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    provider = LocalProvider(home / "instances")
    with open(log, "ab") as out:
        meta = subprocess.Popen(
            [sys.executable, "-m", "gun.cli", "server", "meta", "--listen", f"127.0.0.1:{port}"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(url, meta, log, 30)
        saved = credentials.save(credentials.Credentials(api=url, token=token))
        assert callable(say)
        say(f"gun is up: meta on {url}, data in {home}")
        say(
            f"credentials for `gun` written to {saved}; every new app gets {instances} local "
            "instance(s) in layer default"
        )
        say("try: gun apps.create demo && gun app:demo deploy dir=examples/python-web")
        say("Ctrl-C stops everything")
        while not stop.is_set():
            if meta.poll() is not None:
                raise Unavailable(f"meta exited with status {meta.returncode}; see {log}")
            stop.wait(0.5)
        say("stopping: meta, then every agent and its processes")
    finally:
        if meta.poll() is None:
            os.killpg(meta.pid, signal.SIGTERM)
            try:
                meta.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(meta.pid, signal.SIGKILL)
                meta.wait()
        provider.stop_all()
        for s, handler in previous.items():
            signal.signal(s, handler)
