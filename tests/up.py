"""`gun up` in a test: the real platform in its own process group, and helpers to look at it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

from gun.agent import contain
from tests.appusers import remove_made_under
from tests.meta import GUN, Result, free_port

HELLO = Path(__file__).parent.parent / "examples" / "hello"


@contextmanager
def running(
    tmp: Path, instances: int, instance_timeout: float = 5.0, https: bool = False, **settings: str
) -> Iterator[Up]:
    """A started platform (with GUN_* `settings`; meta on HTTPS with `https`), stopped
    afterwards; every process group it made is killed anyway."""
    platform = Up(tmp, instances=instances, instance_timeout=instance_timeout, https=https)
    platform.env.update(settings)
    try:
        platform.start()
        yield platform
    finally:
        try:
            platform.stop()
        finally:
            platform.kill_everything()


@contextmanager
def hello_on_gun(
    tmp: Path, app: str, extra: Mapping[str, str] | None = None, **settings: str
) -> Iterator[Up]:
    """`gun up` (one instance, with GUN_* `settings`) with `app` deployed (v2) from a copy of
    examples/hello with the `extra` files added, its processes really running."""
    with running(tmp, instances=1, **settings) as platform:
        source = tmp / "app"
        source.mkdir()
        for f in HELLO.iterdir():
            (source / f.name).write_bytes(f.read_bytes())
        for name, text in (extra or {}).items():
            (source / name).write_text(text)
        assert platform.ok("apps.create", app) == f"Created app {app} (v1)\n"
        assert platform.ok(f"app:{app}", "deploy", f"dir={source}") == "v2\n"
        yield platform


class Up:
    def __init__(
        self, tmp: Path, instances: int = 2, instance_timeout: float = 5.0, https: bool = False
    ) -> None:
        self.home = tmp / "gun"
        self.config = tmp / "config"
        self.port = free_port()
        self.https = https
        self.url = f"{'https' if https else 'http'}://127.0.0.1:{self.port}"
        self.instances = instances
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
        self.drain_port = free_port()
        self.drain_url = f"http://127.0.0.1:{self.drain_port}"
        self.router_port = free_port()  # never 5180: a gun up of the user's may be there
        self.router_url = f"http://127.0.0.1:{self.router_port}"
        self.router_tls_port = free_port()
        self.rendezvous_port = free_port()
        self.env.update(
            XDG_CONFIG_HOME=str(self.config),
            GUN_INSTANCE_TIMEOUT=str(instance_timeout),
            GUN_DRAIN_LISTEN=f"127.0.0.1:{self.drain_port}",
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / "up.log"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    *GUN,
                    "up",
                    "--dir",
                    str(self.home),
                    "--port",
                    str(self.port),
                    "--instances",
                    str(self.instances),
                    "--router-port",
                    str(self.router_port),
                    "--router-tls-port",
                    str(self.router_tls_port),
                    "--rendezvous-port",
                    str(self.rendezvous_port),
                    *(["--https"] if self.https else []),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.until(lambda: b"Ctrl-C stops everything" in self.log.read_bytes(), 30, "gun up")

    def stop(self, timeout: float = 60) -> float:
        """SIGTERM `gun up`; returns how long it took to exit."""
        assert self.proc is not None
        began = time.monotonic()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        return time.monotonic() - began

    def gun(self, *args: str) -> Result:
        p = subprocess.run([*GUN, *args], env=self.env, capture_output=True, text=True, timeout=180)
        return Result(p.returncode, p.stdout, p.stderr)

    def ok(self, *args: str) -> str:
        r = self.gun(*args)
        assert r.code == 0, f"gun {' '.join(args)} exited {r.code}: {r.err}"
        return r.out

    def json(self, *args: str) -> Any:
        return json.loads(self.ok("--json", *args))

    def processes(self, app: str) -> list[dict[str, Any]]:
        token = (self.home / "admin.token").read_text().strip()
        r = httpx.get(
            f"{self.url}/v1/apps/{app}/processes",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            verify=self.verify,
        )
        r.raise_for_status()
        procs: list[dict[str, Any]] = r.json()["processes"]
        return procs

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """How a client of meta checks its certificate: against gun up's CA with `https`."""
        if not self.https:
            return True
        return ssl.create_default_context(cafile=str(self.home / "tls" / "ca.pem"))

    def agent_pid(self, instance: str) -> int:
        record = json.loads((self.home / "instances" / instance / "agent.pid").read_text())
        return int(record["pid"])

    @staticmethod
    def until(check: Callable[[], object], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    @property
    def admin_token(self) -> str:
        """The admin token `gun up` wrote."""
        return (self.home / "admin.token").read_text().strip()

    def ours(self) -> list[psutil.Process]:
        """Every live process whose command line or cwd points into this platform's data."""
        found = []
        for p in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
            try:
                if p.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                text = " ".join(p.info["cmdline"] or []) + " " + (p.info["cwd"] or "")
            except psutil.Error:
                continue
            if str(self.home) in text:
                found.append(p)
        return found

    def kill_everything(self) -> None:
        """Last resort in `finally`: kill every process group of this platform, and remove the
        Unix users it made (an instance's outlives a stopped `gun up`, as its directory does)."""
        groups = set()
        if self.proc is not None:
            groups.add(self.proc.pid)
        for p in self.ours():
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(p.pid))
        for g in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(g, signal.SIGKILL)
        for instance in (self.home / "instances").glob("*"):
            contain.remove(instance)  # and what left its process group, with the cgroups
        remove_made_under(self.home)
