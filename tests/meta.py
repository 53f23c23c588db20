"""A real meta server (`gun server meta`) in its own process group on 127.0.0.1, and the CLI."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

GUN = [sys.executable, "-m", "gun.cli"]


# The ports `gun up` takes by default (meta 5100, the drain 5101, the rendezvous 5102, the
# router 5180 and 5181), which a developer's own platform may hold while the tests run: no
# test listens on them.
GUN_DEFAULT_PORTS = frozenset({5100, 5101, 5102, 5180, 5181})


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that the system says is free now (never one of gun's defaults)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in GUN_DEFAULT_PORTS:
            return port


@dataclass
class Result:
    code: int
    out: str
    err: str


class MetaServer:
    def __init__(self, home: Path, database_url: str, admin_token: str | None) -> None:
        self.home = home
        self.database_url = database_url
        self.admin_token = admin_token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "meta.log"
        self.extra_env: dict[str, str] = {}  # more GUN_* settings for the server
        self.verify: ssl.SSLContext | bool = True  # how the test's own client checks HTTPS

    def serve_tls(self, certs: Path) -> None:
        """HTTPS with the certificate `gun server certs --dir CERTS` made; agents pin its CA."""
        self.extra_env.update(
            GUN_TLS_CERT=str(certs / "server.pem"),
            GUN_TLS_KEY=str(certs / "server-key.pem"),
            GUN_TLS_CA=str(certs / "ca.pem"),
        )
        self.url = f"https://127.0.0.1:{self.port}"
        self.verify = ssl.create_default_context(cafile=str(certs / "ca.pem"))

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
        env.update(GUN_HOME=str(self.home), GUN_DATABASE_URL=self.database_url)
        if self.admin_token:
            env["GUN_ADMIN_TOKEN"] = self.admin_token
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 20.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*GUN, "server", "meta", "--listen", f"127.0.0.1:{self.port}"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"meta exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                health = httpx.get(f"{self.url}/health", timeout=1, verify=self.verify)
                if health.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"meta did not answer within {timeout}s: {self.log.read_text()}")

    def stop(self) -> None:
        """Stop meta; remove the Unix users its builds and instances made (if any are left)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        from tests.appusers import remove_made_under  # a plugin: imported by pytest first

        remove_made_under(self.home)

    def gun(
        self,
        *args: str,
        token: str | None = None,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> Result:
        """Run the real `gun` CLI against this server (`input` on its stdin)."""
        e = self.env()
        del e["GUN_DATABASE_URL"]
        e.pop("GUN_ADMIN_TOKEN", None)
        e["GUN_API_URL"] = self.url
        e["GUN_API_TOKEN"] = token or self.admin_token or ""
        e.update(env or {})
        p = subprocess.run(
            [*GUN, *args], env=e, capture_output=True, text=True, timeout=60, input=input
        )
        return Result(p.returncode, p.stdout, p.stderr)

    def http(self, token: str | None = None) -> httpx.Client:
        t = token or self.admin_token
        headers = {"Authorization": f"Bearer {t}"} if t else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, verify=self.verify)
