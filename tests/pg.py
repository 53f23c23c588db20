"""PostgreSQL for the tests: GUN_TEST_DATABASE_URL, or a throwaway server from the installed
binaries. Never skipped: without either, the PostgreSQL tests fail with this module's message."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    return Path(dirs[0]) if dirs else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_server() -> Iterator[str]:
    """initdb + pg_ctl start in a temp dir (as user postgres when we are root); stop + remove."""
    bindir = _bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL tests need GUN_TEST_DATABASE_URL or PostgreSQL's server binaries "
            "(apt-get install postgresql)"
        )
    data = Path(tempfile.mkdtemp(prefix="gun-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    pgdata = data / "data"
    subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(pgdata),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(pgdata),
            "-o",
            opts,
            "-w",
            "-l",
            str(data / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def server() -> Iterator[str]:
    """A server URL (its maintenance database) that tests may create databases on."""
    given = os.environ.get("GUN_TEST_DATABASE_URL")
    if given:
        yield given
    else:
        with throwaway_server() as url:
            yield url
