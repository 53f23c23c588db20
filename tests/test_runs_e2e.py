"""One-off processes as a developer uses them, on `gun up`: `run` with piped input, exit codes,
50 MB of output, `console` in a real terminal (a pty), a CLI killed mid-run, and bad input."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pty
import random
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests import tools
from tests.conftest import PgDatabases
from tests.meta import GUN
from tests.up import Up, hello_on_gun


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    tmp = tmp_path_factory.mktemp("runs")
    # a python app: its console is python
    with hello_on_gun(tmp, "demo", {"requirements.txt": ""}) as platform:
        yield platform


def gun(
    up: Up, *args: str, stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*GUN, *args], input=stdin, env=up.env, capture_output=True, timeout=timeout
    )


def test_run_takes_piped_input_and_gives_back_output_and_exit_code(up: Up) -> None:
    done = gun(up, "app:demo", "run", "--", "python3", stdin=b"print(6*7)\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"42\n", b"")
    done = gun(up, "app:demo", "run", "--", "sh", "-c", "exit 3")
    assert done.returncode == 3
    done = gun(up, "app:demo", "run", "--", "sh", "-c", 'echo "$DYNO $PS" >&2; echo "$PORT"')
    assert done.returncode == 0
    assert done.stderr.decode().split()[0].startswith("run.")
    assert int(done.stdout) > 0


def test_fifty_megabytes_of_output_arrive_intact(up: Up) -> None:
    size = 50_000_000
    data = random.Random(7).randbytes(size)
    code = (
        "import random, sys; "
        f"sys.stdout.buffer.write(random.Random(7).randbytes({size})); sys.stdout.flush()"
    )
    began = time.monotonic()
    done = gun(up, "app:demo", "run", "--", "python3", "-c", code, timeout=120)
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) == size
    assert hashlib.sha256(done.stdout).hexdigest() == hashlib.sha256(data).hexdigest()
    print(f"50 MB through gun run in {took:.2f} s")


def test_console_is_python_in_a_terminal_where_ctrl_c_interrupts_and_exit_ends_it(
    up: Up,
) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [*GUN, "app:demo", "console"],
        env={**up.env, "TERM": "xterm"},
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
    )
    os.close(follower)
    seen = b""

    def expect(text: bytes, timeout: float = 30) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while text not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"waited for {text!r}; the terminal shows {seen[-500:]!r}"
            ready, _, _ = select.select([leader], [], [], left)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
        assert text in seen, f"the terminal ended without {text!r}: {seen[-500:]!r}"
        seen = seen[seen.index(text) + len(text) :]

    try:
        expect(b">>> ")
        os.write(leader, b"import os; print(os.environ['DYNO'])\r")
        expect(b"run.")
        expect(b">>> ")
        os.write(leader, b"while True: pass\r")
        time.sleep(1)
        os.write(leader, b"\x03")  # Ctrl-C: the remote python's, not the CLI's
        expect(b"KeyboardInterrupt")
        expect(b">>> ")
        os.write(leader, b"exit()\r")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        os.close(leader)


def runs_of(marker: str) -> list[psutil.Process]:
    """The run's processes on the instance (not the CLI, whose argv holds the marker too)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        argv = p.info["cmdline"] or []
        if marker in " ".join(argv) and "gun.cli" not in argv:
            out.append(p)
    return out


def test_killing_the_cli_stops_the_remote_process_within_ten_seconds(up: Up) -> None:
    marker = "sleep 987.654"  # ours alone
    proc = subprocess.Popen(
        [*GUN, "app:demo", "run", "--", marker],
        env=up.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        up.until(lambda: runs_of(marker), 30, "the run's sleep")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        up.until(lambda: not runs_of(marker), 10, "the run's sleep to be stopped")
        print(f"stopped {time.monotonic() - killed:.2f} s after the CLI was killed")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for p in runs_of(marker):
            p.kill()


def test_bad_runs_are_refused_in_one_sentence(up: Up) -> None:
    done = gun(up, "app:demo", "run")
    assert done.returncode != 0
    assert b"no command given" in done.stderr
    assert up.ok("apps.create", "empty") == "Created app empty (v1)\n"
    done = gun(up, "app:empty", "run", "--", "true")
    assert done.returncode != 0
    assert b"app 'empty' has no code released yet: deploy it before running" in done.stderr
    done = gun(up, "app:demo", "run", "layer=jobs", "--", "true")
    assert b"app 'demo' has no layer 'jobs'" in done.stderr
    viewer = json.loads(gun(up, "--json", "tokens.create", "peeker", "role=viewer").stdout)["token"]
    r = httpx.post(
        f"{up.url}/v1/apps/demo/runs",
        json={"command": "env"},
        headers={"Authorization": f"Bearer {viewer}"},
        timeout=10,
    )
    assert r.status_code == 403
    assert r.json()["message"] == "token 'peeker' has role viewer; this needs role developer"
    admin = (up.home / "admin.token").read_text().strip()
    r = httpx.post(
        f"{up.url}/v1/apps/demo/runs",
        json={"command": "  "},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    assert r.status_code == 422
    assert r.json()["message"] == "the command is empty: give one, e.g. `gun app:APP run -- bash`"


def test_every_run_is_in_the_apps_events_with_its_exit_code(up: Up) -> None:
    assert gun(up, "app:demo", "run", "--", "sh", "-c", "exit 7").returncode == 7
    admin = (up.home / "admin.token").read_text().strip()

    def exited() -> list[dict[str, object]]:
        r = httpx.get(
            f"{up.url}/v1/apps/demo/events",
            headers={"Authorization": f"Bearer {admin}"},
            timeout=10,
        )
        return [e for e in r.json() if e["action"] == "run.exit" and e["detail"]["exit_code"] == 7]

    [event] = up.until(exited, 30, "the run's exit in the events")
    assert event["detail"]["command"] == "sh -c 'exit 7'"


@contextlib.contextmanager
def psql_on_path() -> Iterator[str]:
    """A PATH on which the app's processes find psql: the machine's, else a copy of the
    PostgreSQL wheel's (its own cache is not readable by the app's user)."""
    found = shutil.which("psql")
    install = tools.postgres()
    if found or install.tree is None:
        yield f"{Path(found).parent if found else install.bindir}:/usr/bin:/bin"
        return
    where = Path(tempfile.mkdtemp(prefix="gun-psql-"))
    try:
        copy = where / "pg"
        shutil.copytree(install.tree, copy, ignore=shutil.ignore_patterns("include"))
        for d in (where, *[p for p in copy.rglob("*") if p.is_dir()], copy):
            d.chmod(0o755)
        yield f"{copy / install.bindir.relative_to(install.tree)}:/usr/bin:/bin"
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_console_db_is_psql_on_the_apps_database(up: Up, pg_databases: PgDatabases) -> None:
    done = gun(up, "app:demo", "console.db")
    assert done.returncode != 0
    assert b"app 'demo' has no database: set DATABASE_URL" in done.stderr
    done = gun(up, "app:demo", "console.db", "follower=true")
    assert b"app 'demo' has no follower database: DATABASE_FOLLOWER_URLS is not set" in done.stderr
    url = pg_databases.fresh().replace("postgres@", "postgres:s3cret-pw@")  # trust: ignored
    with psql_on_path() as path:
        up.ok("app:demo", "config.set", f"DATABASE_URL={url}", f"PATH={path}")
        proc = subprocess.Popen(
            [*GUN, "app:demo", "console.db"],
            env=up.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            # psql runs with no argument: the password is in no argv a user of the host can
            # read (ps, /proc/PID/cmdline)
            up.until(lambda: runs_of("psql") and not runs_of("python3 -c"), 30, "psql alone")
            assert [
                p.info["cmdline"]
                for p in psutil.process_iter(["cmdline"])
                if "s3cret-pw" in " ".join(p.info["cmdline"] or [])
            ] == []
            for p in runs_of("psql"):  # no argument: Debian's /usr/bin/psql (perl) execs
                args = [a for a in p.cmdline() if not a.endswith(("psql", "perl"))]
                assert args == [], p.cmdline()
            out, err = proc.communicate(b"select 6*7 as answer;\n", timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        assert proc.returncode == 0, err
        assert b" answer \n--------\n     42\n(1 row)" in out
        up.ok("app:demo", "config.unset", "DATABASE_URL", "PATH")


def test_a_detached_run_logs_shows_in_ps_and_stops_on_request(up: Up) -> None:
    marker = "sleep 876.543"
    done = gun(up, "app:demo", "run:detached", "--", f"echo hello from afar; {marker}")
    assert done.returncode == 0, done.stderr
    said = done.stdout.decode()
    name = said.split(" detached as ")[1].split(":")[0]
    assert said.startswith(f"Running `echo hello from afar; {marker}` detached as run.")

    def listed() -> list[dict[str, object]]:
        rows = json.loads(gun(up, "--json", "app:demo", "ps").stdout)
        return [r for r in rows if r["name"] == name and r["state"] == "up"]

    [row] = up.until(listed, 30, f"{name} up in ps")
    assert (row["type"], row["port"], row["restarts"]) == ("run", None, 0)
    table = gun(up, "app:demo", "ps").stdout.decode()
    assert f"{name}: `echo hello from afar; {marker}` started by " in table
    up.until(
        lambda: f"app[{name}]: hello from afar" in gun(up, "app:demo", "logs").stdout.decode(),
        30,
        "the detached run's output in the app's logs",
    )
    assert runs_of(marker)
    assert up.ok("app:demo", "ps.stop:" + name) == f"Stopped {name}\n"
    up.until(lambda: not runs_of(marker), 20, "the stopped run's process to end")
    up.until(lambda: not listed(), 20, f"{name} gone from ps")


def test_a_run_is_stopped_at_its_time_limit(up: Up) -> None:
    up.ok("app:demo", "config.set", "GUN_RUN_TTL=2")
    try:
        began = time.monotonic()
        done = gun(up, "app:demo", "run", "--", "sleep 600")
        assert done.returncode == 143
        assert b"time limit" in done.stderr
        assert time.monotonic() - began < 30
    finally:
        up.ok("app:demo", "config.unset", "GUN_RUN_TTL")


def test_what_a_run_leaves_behind_is_stopped_with_it(up: Up) -> None:
    marker = "sleep 765.432"  # leaves the run's session: only its cgroup holds it
    done = gun(up, "app:demo", "run", "--", f"setsid {marker} </dev/null >/dev/null 2>&1 & echo ok")
    assert (done.returncode, done.stdout) == (0, b"ok\n")
    up.until(lambda: not runs_of(marker), 15, "the daemon the run left to be stopped")
