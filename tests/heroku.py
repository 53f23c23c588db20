"""Heroku's own clients pointed at a gun (REFERENCE.md §6): the stock `heroku` CLI from npm and
heroku3 from PyPI, unchanged.

The CLI (HEROKU_CLI, pinned) is installed on first need into the test cache (tests/tools.py:
$GUN_TEST_CACHE, else ~/.cache/gun-tests) with `npm install --prefix`, under a lock, and run
by the node of `tools.node_bindir()` (at least 20, which it needs). Every run gets a throwaway
HOME and the environment that keeps it offline: no telemetry, no update checks, its
particleboard (the team lookups) pointed at gun. heroku3 and six are pinned in pyproject.toml's
dev dependencies.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.meta import Result
from tests.tools import cache_dir, locked, node_bindir, run
from tests.up import Up

HEROKU_CLI = "11.10.0"


def admin_token(up: Up) -> str:
    return up.admin_token


def v1(up: Up, path: str) -> Any:
    """GET gun's own API as the admin: what really happened."""
    r = httpx.get(
        f"{up.url}/v1{path}", headers={"Authorization": f"Bearer {admin_token(up)}"}, timeout=10
    )
    r.raise_for_status()
    return r.json()


def cli_home() -> Path:
    """CACHE/heroku-VERSION, holding node_modules/heroku (`npm install heroku@VERSION`), once."""
    home = cache_dir() / f"heroku-{HEROKU_CLI}"
    stamp = home / ".installed"
    with locked(home.name):
        if not stamp.exists():
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            (home / "package.json").write_text('{"private": true}\n')
            env = {**os.environ, "PATH": f"{node_bindir()}{os.pathsep}{os.environ['PATH']}"}
            npm = ["npm", "install", "--prefix", str(home), "--no-audit", "--no-fund"]
            run([*npm, "--omit=dev", f"heroku@{HEROKU_CLI}"], cwd=home, env=env)
            stamp.touch()
    return home


@dataclass
class HerokuCLI:
    """`heroku ARGS` against the gun at `url` (http://127.0.0.1:PORT) as the holder of `token`.

    `ca`: a CA certificate the CLI should trust besides Node's (NODE_EXTRA_CA_CERTS), for the
    rendezvous listener of `heroku run`."""

    url: str
    token: str
    ca: Path | None = None

    def env(self, home: Path) -> dict[str, str]:
        cache = home / ".cache" / "heroku"
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "terms-of-service").touch()
        env = {
            "PATH": f"{node_bindir()}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "LANG": "C.UTF-8",
            "HEROKU_HOST": self.url,
            "HEROKU_API_KEY": self.token,
            "HEROKU_PARTICLEBOARD_URL": self.url,
            "DISABLE_TELEMETRY": "true",
            "HEROKU_DISABLE_AUTOUPDATE": "true",
            "HEROKU_SKIP_NEW_VERSION_CHECK": "true",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        if self.ca is not None:
            env["NODE_EXTRA_CA_CERTS"] = str(self.ca)
        return env

    @staticmethod
    def argv(*args: str) -> list[str]:
        program = cli_home() / "node_modules" / "heroku" / "bin" / "run"
        return [str(node_bindir() / "node"), str(program), *args]

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 120, **env: str
    ) -> Result:
        """Run the CLI; its exit code, stdout and stderr. A run past `timeout` raises."""
        with tempfile.TemporaryDirectory(prefix="gun-heroku-home-") as home:
            p = subprocess.run(
                self.argv(*args),
                env={**self.env(Path(home)), **env},
                input=input if input is not None else "",
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=home,
            )
        return Result(p.returncode, p.stdout, p.stderr)

    def until(self, *args: str, seen: str, timeout: float = 60) -> str:
        """stdout of a run that does not end by itself (`logs --tail`) until `seen` is in it;
        then the CLI (its process group) is killed. Not seen within `timeout`: AssertionError."""
        with tempfile.TemporaryDirectory(prefix="gun-heroku-home-") as home:
            p = subprocess.Popen(
                self.argv(*args),
                env=self.env(Path(home)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=home,
                start_new_session=True,
            )
            assert p.stdout is not None and p.stderr is not None
            out = b""
            deadline = time.monotonic() + timeout
            try:
                while seen.encode() not in out and time.monotonic() < deadline:
                    ready, _, _ = select.select([p.stdout], [], [], 0.2)
                    if ready:
                        chunk = os.read(p.stdout.fileno(), 65536)
                        if not chunk:
                            break
                        out += chunk
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
                err = p.stderr.read().decode(errors="replace")
                p.stdout.close()
                p.stderr.close()
        text = out.decode(errors="replace")
        assert seen in text, f"heroku {' '.join(args)}: no {seen!r} in\n{text}\n{err}"
        return text

    def ok(self, *args: str, **env: str) -> str:
        """stdout of a run that must exit 0."""
        r = self(*args, **env)
        assert r.code == 0, f"heroku {' '.join(args)} exited {r.code}:\n{r.out}\n{r.err}"
        return r.out


def heroku3_client(url: str, token: str) -> Any:
    """heroku3's client for the gun at `url`: HEROKU_URL is set before `from_key()`, which at
    once reads GET /account/rate-limits."""
    import heroku3  # type: ignore[import-untyped]

    heroku3.api.HEROKU_URL = url
    return heroku3.from_key(token)
