"""The programs the tests bring (tests/tools.py, tests/pg.py): a throwaway PostgreSQL that never
runs as root and takes its user and files away with it, and a node and npm that run."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from pathlib import Path

import psutil
import psycopg
import pytest

from tests import pg, tools


@pytest.mark.parametrize(
    ("raw", "portable"), [("", False), ("0", False), ("1", True), ("yes", None), (" 1", None)]
)
def test_gun_test_portable_is_1_or_0(raw: str, portable: bool | None) -> None:
    if portable is None:
        with pytest.raises(RuntimeError) as e:
            tools.portable_setting(raw)
        assert str(e.value) == f"GUN_TEST_PORTABLE must be 1 or 0, not {raw!r}"
    else:
        assert tools.portable_setting(raw) is portable


def test_a_throwaway_server_never_runs_as_root_and_takes_its_user_and_files_away() -> None:
    with pg.throwaway_server() as url, psycopg.connect(url) as c:
        data = Path(str(c.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
        pid = int(c.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        user = pwd.getpwuid(psutil.Process(pid).uids().real)
    assert not data.parent.exists()
    if os.geteuid() != 0:
        assert user.pw_uid == os.geteuid()
        return
    # root runs the tests; PostgreSQL refuses root: a user made for this server, now gone
    assert user.pw_name.startswith(pg.USER_PREFIX) and user.pw_uid != 0
    assert (user.pw_dir, user.pw_gecos) == (
        str(data.parent),
        f"gun tests, PostgreSQL server in {data.parent}",
    )
    running = psutil.process_iter(["uids", "status"])  # a zombie runs nothing: PID 1 reaps it
    assert [
        p
        for p in running
        if p.info["uids"].real == user.pw_uid and p.info["status"] != psutil.STATUS_ZOMBIE
    ] == []
    with pytest.raises(KeyError):
        pwd.getpwnam(user.pw_name)


@pytest.mark.parametrize(
    ("program", "version"), [("node", r"v\d+\.\d+\.\d+"), ("npm", r"\d+\.\d+\.\d+")]
)
def test_node_and_npm_run(program: str, version: str) -> None:
    done = subprocess.run(
        [str(tools.node_bindir() / program), "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(version, done.stdout.strip()), done.stdout
