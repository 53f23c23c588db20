"""The session's leak checks (tests/leaks.py) find what the session made and nothing of another
gun on the machine. Each test plays a session of its own inside tmp_path (its basetemp and its
temp dir), and "another gun" lives outside it."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from gun.agent import contain
from tests import leaks


@pytest.fixture
def made(tmp_path: Path) -> leaks.Made:
    (tmp_path / "basetemp").mkdir()
    (tmp_path / "tmp").mkdir()
    return leaks.Made(tmp_path / "basetemp", tmp_path / "tmp")


@pytest.fixture
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of "another gun": not in the session `made` plays."""
    return tmp_path_factory.mktemp("another-gun")


@pytest.mark.parametrize(
    ("text", "ours"),
    [
        ("/s/pytest-1", True),
        ("/s/pytest-1/test_x0/gun/instances/i-1", True),
        ("TMPDIR=/s/tmp", True),
        ("--config=/s/pytest-1/graphite/conf/carbon.conf", True),
        ("PATH=/usr/bin:/s/pytest-1/venv/bin:/bin", True),
        ("GUN_TEST_ROOT=/s/pytest-1/root\0HOME=/root", True),
        ("gun tests, PostgreSQL server in /s/tmp/gun-pg-1", True),
        ("'/s/pytest-1'", True),
        ("/s/pytest-12/test_x0", False),  # another session's basetemp
        ("/s/pytest-1x", False),
        ("/s/tmpdir/x", False),
        ("/home/dev/.local/share/gun/instances/i-1", False),
        ("", False),
    ],
)
def test_what_names_a_session_directory(text: str, ours: bool) -> None:
    made = leaks.Made(Path("/s/pytest-1"), Path("/s/tmp"))
    assert bool(made.pattern().search(text)) is ours


def _sleeper(cwd: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sleep", "300"], cwd=cwd, env={**os.environ, **env}, start_new_session=True
    )


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def test_processes_of_the_session_are_named_and_killed_and_another_guns_are_left(
    made: leaks.Made, elsewhere: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    root = made.basetemp / "test_x0"
    root.mkdir()
    in_root = _sleeper(root)
    marked = _sleeper(elsewhere, GUN_TEST_ROOT=str(root))
    with_tmp = _sleeper(elsewhere, TMPDIR=str(made.tmp))
    other = _sleeper(elsewhere)
    started += [in_root, marked, with_tmp, other]

    found = leaks.processes(made)

    assert sorted(found) == sorted(
        [
            f"process {in_root.pid} (sleep 300) in {root}",
            f"process {marked.pid} (sleep 300) in {elsewhere}",
            f"process {with_tmp.pid} (sleep 300) in {elsewhere}",
        ]
    )
    for p in (in_root, marked, with_tmp):  # killed, and reaped by leaks (they are our children)
        assert not psutil.pid_exists(p.pid)
    assert other.poll() is None and psutil.Process(other.pid).status() != psutil.STATUS_ZOMBIE
    assert leaks.processes(made) == []


def test_a_port_left_listening_in_the_test_process_is_named() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert f"port {port} still listened on by the test process" in leaks.ports()
    assert f"port {port} still listened on by the test process" not in leaks.ports()


def test_cgroups_of_the_sessions_roots_only(made: leaks.Made, elsewhere: Path) -> None:
    """A cgroup is named after a supervisor's root (contain.name_for): those of directories in
    the basetemp are the session's, another platform's roots hash to other names."""
    mount = made.tmp / "cgroup"
    mount.mkdir()
    (mount / "cgroup.controllers").touch()  # a pure cgroup v2 mount, as contain reads one
    base = mount / contain.own_path("0", Path("/proc/self/cgroup").read_text())
    ours = made.basetemp / "test_x0" / "gun" / "instances" / "i-1"
    ours.mkdir(parents=True)
    theirs = elsewhere / "instances" / "i-1"
    for root in (ours, theirs):
        (base / contain.name_for(root)).mkdir(parents=True)

    roots = leaks.roots(made.basetemp)

    assert roots[contain.name_for(ours)] == ours
    assert contain.name_for(theirs) not in roots
    assert leaks.cgroups(roots, mount) == [f"cgroup {base / contain.name_for(ours)} of {ours}"]
    assert sorted(p.name for p in base.glob("gun-*")) == [contain.name_for(theirs)]


def _user(name: str, home: str, comment: str) -> pwd.struct_passwd:
    return pwd.struct_passwd((name, "x", 990, 990, comment, home, "/usr/sbin/nologin"))


def test_unix_users_of_the_session_by_name_home_or_comment() -> None:
    made = leaks.Made(Path("/s/pytest-1"), Path("/s/tmp"))
    root = Path("/s/pytest-1/test_x0/gun/instances/i-1")
    named = contain.name_for(root)
    entries = [
        _user(named, "/nonexistent", "gun instance"),  # a per-instance user, by its name
        _user("gun-0123456789ab", "/nonexistent", "app demo in /s/pytest-1/test_y0/b"),
        _user("gunpg-1a2b3c4d", "/s/tmp/gun-pg-x", "gun tests, PostgreSQL server"),
        _user("gun-ba9876543210", "/nonexistent", "app demo in /home/dev/gun/instances/i-1"),
        _user("gun-aaaaaaaaaaaa", "/nonexistent", "app demo in /s/pytest-12/test_x0"),
        _user("postgres", "/var/lib/postgresql", "PostgreSQL administrator,,,"),
    ]
    chosen = leaks.of_session(made, {named}, entries)
    assert [u.pw_name for u in chosen] == [named, "gun-0123456789ab", "gunpg-1a2b3c4d"]


def test_whatever_is_left_in_the_sessions_temp_dir_is_named_and_removed(
    made: leaks.Made,
) -> None:
    (made.tmp / "gun-build-1.tgz").write_bytes(b"x")
    (made.tmp / "gun-pg-1" / "data").mkdir(parents=True)
    (made.tmp / "node-compile-cache" / "v22").mkdir(parents=True)  # Node's, to reuse: removed
    assert leaks.temp_files(made.tmp) == [
        f"temp file {made.tmp / 'gun-build-1.tgz'}",
        f"temp file {made.tmp / 'gun-pg-1'}",
    ]
    assert list(made.tmp.iterdir()) == []
