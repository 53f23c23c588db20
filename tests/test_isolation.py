"""Isolation: what an app's code (its processes, its release command, its build) can read.

The issue's reproduction first: a developer token scoped to app alpha deploys a snooping
Procfile and a snooping buildpack under a real `gun up`, while app beta keeps a secret in its
config; then the modes of the data directory as a table, the user's life with its instance,
and the pieces (launching as the user, reach, hand-over) with real processes and files.
Everything that needs root to make users is only collected when the tests run as root.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import stat
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gun import isolation
from gun.agent.supervisor import ProcessSpec, Supervisor
from gun.isolation import UnixUser
from tests.appusers import made_under
from tests.meta import GUN, Result
from tests.supervising import MARK, no_leaks, run_as, said, until
from tests.up import Up, running

pytestmark = pytest.mark.skipif(not isolation.can_switch(), reason="making users needs root")

SNOOP = "sh -c 'cat ../../../../admin.token; grep -h SECRET ../../../../instances/*/etc/env'"
# what else one app's code tries: meta's secrets, another app's instance, its own platform files
PEEK = (
    "sh -c 'for f in ../../../../secret.key ../../../../meta.db ../../../../instances/$BETA/etc/env"
    " ../../../../instances/$BETA/state/desired.json ../../state/desired.json ../../etc/env"
    " ../../etc/agent.json ../../log/app.log /proc/$BETA_PID/environ; do cat $f; done;"
    " ls ../../../.. ../../../../instances ../../../../instances/$BETA/releases;"
    " kill -0 $BETA_PID; echo peeked; sleep 1000'"
)
BUILDPACK = {
    "bin/detect": "#!/bin/sh\necho snooper\n",
    "bin/compile": (
        "#!/bin/sh\n"
        "cd $1\n"
        "cat ../../../../admin.token ../../../../secret.key\n"
        'meta=$(cat "$3/HOME_OF_META")\n'
        'cat "$meta/admin.token" "$meta/secret.key"\n'
        'echo "built as $(id -un) in $HOME"\n'
    ),
}
BETA_SECRET = "beta-secret-4c1d"


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    with running(tmp_path, instances=1) as platform:
        yield platform


def as_token(up: Up, token: str, *args: str) -> Result:
    env = dict(up.env, GUN_API_URL=up.url, GUN_API_TOKEN=token)
    p = subprocess.run([*GUN, *args], env=env, capture_output=True, text=True, timeout=180)
    return Result(p.returncode, p.stdout, p.stderr)


def source(tmp: Path, procfile: str) -> Path:
    tmp.mkdir(parents=True)
    (tmp / "Procfile").write_text(procfile)
    return tmp


def instance_of(up: Up, app: str) -> Path:
    [instance] = up.json(f"app:{app}", "instances")
    return up.home / "instances" / instance["id"]


def app_lines(root: Path, name: str) -> list[str]:
    return [
        line.split(": ", 1)[1]
        for line in (root / "log" / "app.log").read_text().splitlines()
        if f" app[{name}]: " in line
    ]


def test_an_apps_code_reads_nothing_of_the_platform_or_of_another_app(
    up: Up, tmp_path: Path
) -> None:
    admin_token = (up.home / "admin.token").read_text().strip()
    secret_key = (up.home / "secret.key").read_text().strip()

    # beta: a secret in its config, a worker running
    up.ok("apps.create", "beta")
    up.ok("app:beta", "config.set", f"SECRET={BETA_SECRET}")
    beta_src = source(tmp_path / "beta", "worker: sleep 1000\n")
    up.ok("app:beta", "deploy", f"dir={beta_src}")
    up.ok("app:beta", "scale", "worker=1")
    beta = instance_of(up, "beta")
    [worker] = up.until(lambda: [p for p in up.processes("beta") if p["state"] == "up"], 60, "b")
    assert BETA_SECRET in (beta / "etc" / "env").read_text()

    # alpha's developer: a token for alpha alone, a buildpack and a Procfile that snoop
    up.ok("apps.create", "alpha")
    token = up.ok("tokens.create", "alpha-dev", "role=developer", "app=alpha").strip()
    pack = tmp_path / "buildpack"
    for name, text in BUILDPACK.items():
        (pack / name).parent.mkdir(parents=True, exist_ok=True)
        (pack / name).write_text(text)
        (pack / name).chmod(0o755)
    config = [f"BUILDPACK={pack}", f"HOME_OF_META={up.home}", f"BETA={beta.name}"]
    config.append(f"BETA_PID={worker['pid']}")
    assert as_token(up, token, "app:alpha", "config.set", *config).code == 0
    alpha_src = source(tmp_path / "alpha", f"snoop: {SNOOP}\npeek: {PEEK}\n")
    deploy = as_token(up, token, "app:alpha", "deploy", f"dir={alpha_src}")
    assert deploy.code == 0, deploy.err

    build = deploy.err + deploy.out
    for path in ("../../../../admin.token", "../../../../secret.key"):
        assert f"cat: {path}: Permission denied" in build
    for name in ("admin.token", "secret.key"):
        assert f"cat: {up.home}/{name}: Permission denied" in build
    builder = isolation.build_user_name(up.home / "builds", "alpha")
    assert f"built as {builder} in {up.home}/builds/cache/alpha/home" in build
    assert isolation.lookup(builder) is None  # made for the build, removed after it

    scaled = as_token(up, token, "app:alpha", "scale", "snoop=1", "peek=1", "--wait=false")
    assert scaled.code == 0, scaled.err
    alpha = instance_of(up, "alpha")
    up.until(lambda: "peeked" in app_lines(alpha, "peek.1"), 60, "peek")
    up.until(lambda: len(app_lines(alpha, "snoop.1")) >= 2, 60, "snoop")

    assert app_lines(alpha, "snoop.1")[:2] == [
        "cat: ../../../../admin.token: Permission denied",
        "grep: ../../../../instances/*/etc/env: No such file or directory",  # cannot list them
    ]
    peek = app_lines(alpha, "peek.1")
    for path in (
        "../../../../secret.key",
        "../../../../meta.db",
        f"../../../../instances/{beta.name}/etc/env",
        f"../../../../instances/{beta.name}/state/desired.json",
        "../../state/desired.json",
        "../../etc/env",
        "../../etc/agent.json",
        "../../log/app.log",
        f"/proc/{worker['pid']}/environ",
    ):
        assert f"cat: {path}: Permission denied" in peek
    for path in ("../../../..", "../../../../instances", f"../../../../instances/{beta.name}"):
        assert any(line.startswith(f"ls: cannot open directory '{path}") for line in peek)
    assert any("Operation not permitted" in line for line in peek)  # kill -0 beta's worker

    def shipped() -> Result | None:  # app.log has it; the drain a batch later
        logs = as_token(up, token, "app:alpha", "logs")
        return logs if "admin.token: Permission denied" in logs.out else None

    logs = up.until(shipped, 30, "the snoop's lines in gun logs")
    everything = build + logs.out + (alpha / "log" / "app.log").read_text()
    for secret in (admin_token, secret_key, BETA_SECRET):
        assert secret not in everything

    # the instance's user goes with the instance
    user = isolation.instance_user_name(alpha)
    assert isolation.lookup(user) is not None
    assert (
        up.ok("app:alpha", "instances.delete:" + alpha.name) == f"Deleted instance {alpha.name}\n"
    )
    assert isolation.lookup(user) is None
    assert made_under(up.home) == [isolation.instance_user_name(beta)]


def test_an_instance_its_user_cannot_reach_runs_nothing_and_says_why(
    up: Up, tmp_path: Path
) -> None:
    up.ok("apps.create", "closed")
    root = instance_of(up, "closed")
    root.chmod(0o700)  # by hand, after its agent started: nothing of the app may run
    src = source(tmp_path / "src", "worker: sleep 1000\n")
    up.ok("app:closed", "deploy", f"dir={src}")
    user = isolation.instance_user_name(root)
    why = (
        f"every process runs as the unprivileged user {user}, which cannot reach "
        f"{root / 'releases'}: {root} is drwx------; keep gun's data where every directory above"
        " it may be searched by others (chmod o+x, or e.g. GUN_HOME=/var/lib/gun)"
    )
    up.until(lambda: up.json("app:closed", "instances")[0]["problem"] == why, 30, "the problem")
    scaled = up.gun("app:closed", "scale", "worker=1", "--timeout=3")
    assert scaled.code == 1
    assert not list((root / "releases").glob("v*"))
    assert [(p["name"], p["state"], p["pid"]) for p in up.processes("closed")] == [
        ("worker.1", "starting", None)  # wanted there, never started
    ]


def _mode(path: Path) -> tuple[str, str]:
    st = path.lstat()
    owner = pwd.getpwuid(st.st_uid).pw_name
    return oct(stat.S_IMODE(st.st_mode)), "root" if owner == "root" else "app"


def test_the_data_directory_keeps_everything_from_the_apps(up: Up, tmp_path: Path) -> None:
    up.ok("apps.create", "modes")
    src = source(tmp_path / "src", "worker: echo hi; sleep 1000\n")
    up.ok("app:modes", "deploy", f"dir={src}")
    up.ok("app:modes", "scale", "worker=1")
    root = instance_of(up, "modes")
    up.until(lambda: "hi" in app_lines(root, "worker.1"), 60, "the worker's line")
    up.until(lambda: list((up.home / "logs" / "modes").glob("*/*.log.gz")), 60, "the archive")
    [day] = (up.home / "logs" / "modes").iterdir()
    [hour] = day.iterdir()
    release = max((root / "releases").iterdir())
    home = up.home
    table = {
        home: ("0o711", "root"),
        home / "admin.token": ("0o600", "root"),
        home / "secret.key": ("0o600", "root"),
        home / "meta.db": ("0o600", "root"),
        home / "meta.db-wal": ("0o600", "root"),
        home / "log": ("0o700", "root"),
        home / "logs": ("0o700", "root"),
        home / "logs" / "modes": ("0o700", "root"),
        day: ("0o700", "root"),
        hour: ("0o600", "root"),
        home / "builds": ("0o711", "root"),
        home / "builds" / "work": ("0o711", "root"),
        home / "builds" / "cache": ("0o711", "root"),
        home / "builds" / "cache" / "modes": ("0o700", "root"),
        home / "instances": ("0o711", "root"),
        root: ("0o711", "root"),
        root / "etc": ("0o700", "root"),
        root / "etc" / "env": ("0o600", "root"),
        root / "etc" / "agent.json": ("0o600", "root"),
        root / "state": ("0o700", "root"),
        root / "log": ("0o700", "root"),
        root / "log" / "app.log": ("0o600", "root"),
        root / "slugs": ("0o700", "root"),
        root / "releases": ("0o711", "root"),
        release: ("0o700", "app"),
    }
    assert {path: _mode(path) for path in table} == table
    if (home / "whisper").exists():
        assert _mode(home / "whisper") == ("0o700", "root")


# -- the pieces ------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "instance"
    (root / "releases" / "v1").mkdir(parents=True)
    with no_leaks(root):
        yield root


@pytest.fixture
def user(root: Path) -> Iterator[UnixUser | None]:
    with run_as("app's user", root) as made:
        yield made


def test_config_vars_never_reach_anything_that_runs_as_root(root: Path, user: UnixUser) -> None:
    """BASH_ENV and LD_PRELOAD would run code as whoever starts with them: only the app does."""
    app = root / "releases" / "v1"
    (app / "evil.sh").write_text("id -u >> ran-as\n")
    isolation.hand_over(user, app)
    env = {MARK: str(root), "BASH_ENV": str(app / "evil.sh"), "LD_PRELOAD": "/gun-no-such.so"}
    spec = ProcessSpec("worker.1", "worker", "echo started; sleep 1000", env, app, 1)

    async def session() -> None:
        sup = Supervisor(root, user=user)
        try:
            await sup.start(spec)
            await until(lambda: "started" in said(root, "app", "worker.1"), "the worker")
        finally:
            await sup.shutdown(stop_processes=True)

    asyncio.run(asyncio.wait_for(session(), 20))
    assert set((app / "ran-as").read_text().split()) == {str(user.uid)}
    noise = [line for line in said(root, "app", "worker.1") if "gun-no-such.so" in line]
    assert len(noise) >= 1  # the app's own programs were asked to preload it


def test_launching_as_a_user_puts_no_value_in_an_argv_and_gives_root_a_clean_env(
    user: UnixUser,
) -> None:
    env = {"SECRET": "s3cret value", "PATH": "/app/bin"}
    with isolation.launch("/bin/bash", "echo $SECRET", env, user, "true; ") as how:
        assert not [a for a in how.argv if "s3cret" in a]
        assert how.env == isolation.ROOT_ENV
        assert os.pread(how.stdin, 4096, 0) == b"SECRET=s3cret value\0PATH=/app/bin\0"
        assert how.argv[:4] == [*RESET, "/bin/bash", "-c"] and how.argv[-1] == "echo $SECRET"
    with isolation.launch("/bin/bash", "echo hi", env, None) as how:
        assert (how.argv, how.env, how.stdin) == ([*RESET, "/bin/bash", "-c", "echo hi"], env, -3)


def test_keeping_stdin_the_environment_comes_on_a_descriptor_the_command_never_sees(
    root: Path, user: UnixUser
) -> None:
    """A one-off process's stdin is its client's: the loader reads the env from another fd."""
    env = {MARK: str(root), "SECRET": "s3cret value", "PATH": "/usr/bin:/bin"}
    command = 'echo "secret=$SECRET"; cat; ls /proc/$$/fd; id -u'
    with isolation.launch("/bin/bash", command, env, user, "true; ", keep_stdin=True) as how:
        assert not [a for a in how.argv if "s3cret" in a]
        assert how.env == isolation.ROOT_ENV and how.stdin is None
        [fd] = how.pass_fds
        ran = subprocess.run(
            how.argv, env=how.env, input=b"typed by the client\n", pass_fds=how.pass_fds,
            capture_output=True, cwd=root, timeout=10,
        )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.decode().split("\n") == [
        "secret=s3cret value", "typed by the client", "0", "1", "2", str(user.uid), "",
    ]  # fmt: skip
    with isolation.launch("/bin/bash", "cat", env, None, keep_stdin=True) as how:
        assert (how.argv, how.env, how.stdin, how.pass_fds) == (
            [*RESET, "/bin/bash", "-c", "cat"],
            env,
            None,
            (),
        )


def test_what_is_launched_starts_with_ctrl_c_at_its_default_whatever_the_agent_ignores(
    root: Path,
) -> None:
    """An agent started in the background of a script ignores SIGINT and SIGQUIT; what it
    launches must not (bash cannot undo an ignored signal: a console's Ctrl-C would do
    nothing)."""
    assert RESET[1:] == ["--default-signal=INT,QUIT"], "this machine's env cannot reset them"
    ignoring = [sys.executable, "-c", IGNORE_AND_RUN]
    with isolation.launch(
        "/bin/bash", "grep -E '^Sig(Ign|Blk)' /proc/self/status", {}, None
    ) as how:
        ran = subprocess.run([*ignoring, *how.argv], capture_output=True, timeout=10, cwd=root)
    assert ran.returncode == 0, ran.stderr
    ignored = int(
        dict(line.split(":\t") for line in ran.stdout.decode().split("\n")[:-1])["SigIgn"], 16
    )
    assert ignored & (1 << (signal.SIGINT - 1) | 1 << (signal.SIGQUIT - 1)) == 0, hex(ignored)
    without = subprocess.run(
        [*ignoring, "grep", "SigIgn", "/proc/self/status"], capture_output=True
    )
    assert int(without.stdout.split()[1], 16) & (1 << (signal.SIGINT - 1)), (
        "the check would pass anyway"
    )


IGNORE_AND_RUN = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGQUIT, signal.SIG_IGN)
os.execvp(sys.argv[1], sys.argv[1:])
"""
RESET = isolation.default_signals()  # `env --default-signal=INT,QUIT` (coreutils 8.31+)


@pytest.mark.parametrize(
    ("modes", "blocked_at"),
    [
        ((0o711, 0o711, 0o700), None),  # the last is the user's own: it may enter
        ((0o755, 0o711, 0o700), None),
        ((0o700, 0o711, 0o700), "a"),
        ((0o711, 0o710, 0o700), "a/b"),
        ((0o711, 0o644, 0o700), "a/b"),
    ],
)
def test_blocked_names_the_first_directory_the_user_cannot_pass(
    tmp_path: Path, user: UnixUser, modes: tuple[int, int, int], blocked_at: str | None
) -> None:
    c = tmp_path / "a" / "b" / "c"
    c.mkdir(parents=True)
    os.chown(c, user.uid, user.gid)
    for path, mode in zip((tmp_path / "a", tmp_path / "a" / "b", c), modes, strict=True):
        path.chmod(mode)
    try:
        expected = None if blocked_at is None else tmp_path / blocked_at
        assert isolation.blocked(c, user) == expected
        probe = subprocess.run(
            ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups"]
            + ["--", "test", "-x", str(c)]
        )
        assert (probe.returncode == 0) == (blocked_at is None)  # the kernel agrees
    finally:
        for path in (tmp_path / "a", tmp_path / "a" / "b"):
            path.chmod(0o755)


def test_hand_over_gives_the_tree_and_never_what_a_link_points_at(
    tmp_path: Path, user: UnixUser
) -> None:
    outside = tmp_path / "platform-secret"
    outside.write_text("x")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file").write_text("y")
    (tree / "link").symlink_to(outside)
    (tree / "dirlink").symlink_to(tmp_path)
    os.link(outside, tree / "hardlink")  # a second name of a file that is not the user's
    isolation.hand_over(user, tree)
    mine = (user.uid, user.gid)
    for path in (tree, tree / "sub", tree / "sub" / "file", tree / "link", tree / "dirlink"):
        assert (path.lstat().st_uid, path.lstat().st_gid) == mine
    assert outside.stat().st_uid == 0 and tmp_path.stat().st_uid == 0


AGENT_AS = """
import sys
sys.path[:0] = sys.argv[1:3]
from pathlib import Path
from gun.agent.__main__ import main
main(["--root", sys.argv[3], "--meta", "http://127.0.0.1:9", "--instance", "i-test"])
"""


def test_an_agent_that_is_not_root_says_so_once_and_runs_processes_as_itself(
    tmp_path: Path, user: UnixUser
) -> None:
    """An agent run as an ordinary user (here: a throwaway one, with the system's Python 3.11
    and this checkout's code and packages) warns once at start and goes on."""
    root = tmp_path / "instance-of-a-user"
    root.mkdir()
    os.chown(root, user.uid, user.gid)
    src = str(Path(__file__).parent.parent / "src")
    packages = sysconfig.get_paths()["purelib"]
    python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    switch = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", "--"]
    env = {"PATH": "/usr/bin:/bin", "GUN_AGENT_TOKEN": "gun_x", "HOME": str(root)}
    log = tmp_path / "agent.log"
    with open(log, "wb") as out:
        agent = subprocess.Popen(
            [*switch, python, "-c", AGENT_AS, src, packages, str(root)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while "meta unreachable" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(agent.pid, 15)
        agent.wait(20)
    text = log.read_text()
    warning = isolation.NOT_ROOT.format(user=user.name)
    assert text.count(warning) == 1, text
    assert _mode(root) == ("0o711", "app") and _mode(root / "state") == ("0o700", "app")
