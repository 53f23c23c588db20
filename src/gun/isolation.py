"""Isolation: code the platform does not trust runs as an unprivileged Unix user of its own.

Users. An instance's processes (every Procfile type, the release phase, strategy-git builds)
run as the instance's user, `gun-` + 12 hex digits of the sha256 of the instance's resolved
root (its cgroup's name too), so two instances, two `gun up`s or two apps on one host never
share one. A build on meta runs as a user named from meta's build home and the app, made for
the build and removed after it. Each is made with useradd: a system account with its own
group, no home, no login shell, the app and the directory it serves in the comment; `remove`
kills whatever still runs as it and deletes it with userdel.

Switching. A process is spawned as root: `bash -c` joins its cgroup (contain.py) and execs
`setpriv --reuid U --regid G --clear-groups --no-new-privs`, which execs a loader `bash -c`,
now as the user; the loader reads the process's environment from its stdin (NUL-separated
KEY=value, from a memfd), exports it, points stdin at /dev/null and execs `bash -c COMMAND`.
With `keep_stdin` (a one-off process, whose stdin is its client's) the memfd is passed as one
more descriptor instead, its number an argument of the loader, which reads it and closes it:
the command gets the caller's stdin and no trace of the memfd.
The pid never changes, so the process stays the leader of its own group. Nothing of the app's
environment is seen by anything running as root (an LD_PRELOAD or BASH_ENV config var would
otherwise run code as root), and no value is ever in an argv (visible to every user).
`no_new_privs` means no setuid program can give the app more rights than its user has.

Reach. The user must be able to search every directory above what it runs in (buildpacks'
`.profile.d` scripts find the app by its absolute `$PWD`). `blocked` names the first directory
on the way that it cannot search; the agent and the build refuse with that name rather than
start something that cannot find itself.

Without root (`can_switch` is False) nothing switches: processes and builds run as the
platform's own user, as they always did, and can read what it can; the agent says so once.
"""

from __future__ import annotations

import contextlib
import functools
import grp
import hashlib
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gun.errors import Unavailable

PREFIX = "gun-"
ROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}  # all the root stage of a spawn sees
SEARCHABLE = 0o711  # a directory others may pass through to their own files, never list
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
NOT_ROOT = (
    "not root: app processes run as {user} and can read the platform's files; "
    "run the agent as root to isolate apps"
)
# The loader, as the user: the environment from stdin, exported all at once right before the
# exec (so no value changes how the loader itself runs), then the command in a fresh bash.
LOADER = (
    'unset SHLVL; e=(); while IFS= read -r -d "" kv; do e+=("$kv"); done; exec </dev/null; '
    '[ ${#e[@]} -eq 0 ] || export "${e[@]}"; exec "$0" -c "$1"'
)
# The same, reading the environment from descriptor $2 (then closed) and keeping stdin.
LOADER_FD = (
    'unset SHLVL; e=(); n=$2; while IFS= read -r -d "" kv; do e+=("$kv"); done <&"$n"; '
    'exec {n}<&-; [ ${#e[@]} -eq 0 ] || export "${e[@]}"; exec "$0" -c "$1"'
)
_USERADD_TRIES = 50  # useradd fails at once when another process holds /etc/passwd's lock
_lock = threading.Lock()

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnixUser:
    name: str
    uid: int
    gid: int


def can_switch() -> bool:
    """Whether this process may make users and run code as them: whether it is root."""
    return os.geteuid() == 0


def name_for(key: str) -> str:
    """`gun-` + 12 hex digits of the sha256 of key: a user (and cgroup) name of at most 16."""
    return PREFIX + hashlib.sha256(key.encode()).hexdigest()[:12]


def instance_user_name(root: Path) -> str:
    return name_for(str(root.resolve()))


def build_user_name(home: Path, app: str) -> str:
    return name_for(f"{home.resolve()}\0build\0{app}")


def lookup(name: str) -> UnixUser | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return UnixUser(name, entry.pw_uid, entry.pw_gid)


def ensure(name: str, comment: str) -> UnixUser:
    """The user `name`, made now if it does not exist (root only)."""
    with _lock:
        found = lookup(name)
        if found is not None:
            return found
        useradd = shutil.which("useradd", path=ROOT_ENV["PATH"])
        if useradd is None:
            raise Unavailable(
                f"cannot make the user {name} for untrusted code: useradd is missing "
                "(install the passwd package)"
            )
        text = comment.replace(":", "_").replace("\n", " ")[:200]
        argv = [useradd, "--system", "--user-group", "--no-create-home"]
        argv += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"]
        argv += ["--comment", text, name]
        _run_locked(argv, f"useradd {name}")
        made = lookup(name)
        if made is None:
            raise Unavailable(f"useradd said it made the user {name}, but it does not exist")
        log.info("made the user %s (%s) for %s", name, made.uid, text)
        return made


def remove(name: str) -> None:
    """Kill every process of the user `name`, then delete it and its group (if it exists)."""
    with _lock:
        user = lookup(name)
        if user is None:
            return
        kill_all(user)
        # --force: a killed process may stay a zombie for a while; it runs nothing
        userdel = shutil.which("userdel", path=ROOT_ENV["PATH"]) or "userdel"
        _run_locked([userdel, "--force", name], f"userdel {name}", ok=(0, 6))
        with contextlib.suppress(KeyError):
            grp.getgrnam(name)  # left when USERGROUPS_ENAB is off
            groupdel = shutil.which("groupdel", path=ROOT_ENV["PATH"]) or "groupdel"
            _run_locked([groupdel, name], f"groupdel {name}", ok=(0, 6))


_said_not_root = False


@contextlib.contextmanager
def build_user(home: Path, app: str) -> Iterator[UnixUser | None]:
    """The user one build of `app` on the meta of `home` runs as: made for it, removed after it
    with whatever it left running. None when this process is not root (said once)."""
    global _said_not_root
    if not can_switch():
        if not _said_not_root:
            _said_not_root = True
            log.warning(
                "not root: builds run as %s and can read meta's files; run meta as root to "
                "isolate builds",
                pwd.getpwuid(os.geteuid()).pw_name,
            )
        yield None
        return
    user = ensure(build_user_name(home, app), f"gun build of {app} for {home.resolve()}")
    try:
        yield user
    finally:
        try:
            remove(user.name)
        except Unavailable as e:  # the build itself is done; the next one reuses the name
            log.error("%s", e.message)


def _run_locked(argv: list[str], what: str, ok: tuple[int, ...] = (0,)) -> None:
    """Run a shadow-utils command, again while another process holds the passwd lock."""
    for attempt in range(_USERADD_TRIES):
        done = subprocess.run(
            argv, env=ROOT_ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        if done.returncode in ok:
            return
        if "lock" not in done.stderr or attempt == _USERADD_TRIES - 1:
            why = done.stderr.strip() or f"exit status {done.returncode}"
            raise Unavailable(f"{what} failed: {why}")
        time.sleep(0.05 + 0.01 * attempt)


def kill_all(user: UnixUser, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process running as the user; returns their pids once they are gone (or
    are zombies)."""
    import psutil  # only here: the drain imports this module for make_dir

    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in psutil.process_iter(["uids", "status"]) if _runs_as(p, user.uid)]
        if not left or time.monotonic() > deadline:
            return killed
        for p in left:
            with contextlib.suppress(psutil.Error):
                p.send_signal(signal.SIGKILL)
                killed.append(p.pid)
        psutil.wait_procs(left, timeout=0.5)


def _runs_as(p: Any, uid: int) -> bool:
    """Whether a psutil.Process (from process_iter with uids and status) runs as uid."""
    uids = p.info.get("uids")
    if uids is None or p.info.get("status") == "zombie":
        return False
    return uid in (uids.real, uids.effective, uids.saved)


# -- spawning as the user -------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """How to start `bash -c COMMAND`: the argv, the environment, the stdin and the extra
    descriptors to give Popen."""

    argv: list[str]
    env: Mapping[str, str]
    stdin: int | None  # subprocess.DEVNULL, a descriptor `launch` closes after, None: the caller's
    pass_fds: tuple[int, ...] = ()  # closed by `launch` afterwards too


@contextlib.contextmanager
def launch(
    bash: str,
    command: str,
    env: Mapping[str, str],
    user: UnixUser | None,
    prefix: str = "",
    *,
    keep_stdin: bool = False,
) -> Iterator[Launch]:
    """`bash -c PREFIX COMMAND` as today without a user; with one, PREFIX runs as root, then
    the command as the user with env (see the module docstring). keep_stdin: the caller gives
    the stdin (Launch.stdin is None), the environment travels in Launch.pass_fds."""
    if user is None:
        stdin = None if keep_stdin else subprocess.DEVNULL
        yield Launch([*default_signals(), bash, "-c", prefix + command], env, stdin)
        return
    setpriv = shutil.which("setpriv", path=ROOT_ENV["PATH"])
    if setpriv is None:  # an OSError: a spawn that failed, as any other
        raise FileNotFoundError("cannot run code as an app's user: setpriv (util-linux) is missing")
    switch = [setpriv, f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups"]
    fd = _env_file(env)
    try:
        switch += ["--no-new-privs", "--", bash, "-c"]
        if keep_stdin:
            switch += [LOADER_FD, bash, command, str(fd)]
        else:
            switch += [LOADER, bash, command]
        argv = switch
        if prefix:
            # positional parameters, not quoting: the command never becomes shell text for root
            argv = [bash, "-c", prefix + 'exec "$@"', bash, *switch]
        argv = [*default_signals(), *argv]
        if keep_stdin:
            yield Launch(argv, ROOT_ENV, None, (fd,))
        else:
            yield Launch(argv, ROOT_ENV, fd)
    finally:
        os.close(fd)


def default_signals() -> list[str]:
    """`env --default-signal=INT,QUIT` (coreutils 8.31+): what an app runs starts with Ctrl-C
    and Ctrl-\\ at their defaults, whatever the agent inherited — a program started in the
    background of a script ignores both, and bash cannot undo an ignored signal, so a console's
    Ctrl-C would do nothing. Empty where there is no such `env` (the signals stay as they are)."""
    env = shutil.which("env", path=ROOT_ENV["PATH"])
    return [env, "--default-signal=INT,QUIT"] if env is not None and _env_resets(env) else []


@functools.cache
def _env_resets(env: str) -> bool:
    """Whether this `env` knows --default-signal (asked once)."""
    try:
        done = subprocess.run(
            [env, "--default-signal=INT", "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _env_file(env: Mapping[str, str]) -> int:
    """A descriptor, at offset 0, of an anonymous file holding env as KEY=value NUL-ended."""
    data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items())
    try:
        fd = os.memfd_create("gun-env", os.MFD_CLOEXEC)
    except (AttributeError, OSError):  # no memfd: an unlinked temporary file
        with tempfile.TemporaryFile() as f:
            fd = os.dup(f.fileno())
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def popen_user(user: UnixUser | None) -> dict[str, Any]:
    """Popen's arguments to run a program as the user (none without one)."""
    if user is None:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def user_env(user: UnixUser, home: Path) -> dict[str, str]:
    return {"HOME": str(home), "USER": user.name, "LOGNAME": user.name}


# -- files ----------------------------------------------------------------------------------


def blocked(path: Path, user: UnixUser) -> Path | None:
    """The first directory from / down to path (included) that the user cannot search, by its
    mode bits (the user has no groups but its own); None when it can reach path."""
    path = path.resolve()
    for d in [*reversed(path.parents), path]:
        try:
            st = os.stat(d)
        except FileNotFoundError:
            return None  # not there yet: whoever makes it decides its mode
        if st.st_uid == user.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == user.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return d
    return None


def unreachable(what: str, path: Path, user: UnixUser, where: Path) -> str:
    """The sentence for a path the user cannot reach, `where` being what blocked returned."""
    mode = stat.filemode(os.stat(where).st_mode)
    return (
        f"{what} runs as the unprivileged user {user.name}, which cannot reach {path}: "
        f"{where} is {mode}; keep gun's data where every directory above it may be searched "
        f"by others (chmod o+x, or e.g. GUN_HOME=/var/lib/gun)"
    )


def hand_over(user: UnixUser, top: Path) -> None:
    """Make top and everything in it the user's, without following symlinks.

    Safe while the user changes the tree: directories are walked by descriptor (os.fwalk checks
    each is the one it listed), entries changed relative to those descriptors and never through
    a link, and a regular file with more than one link is left alone unless already the
    user's (with protected_hardlinks, the Linux default, a user cannot link a file it does not
    own; without it, this refuses to chown one that may be such a link).
    """
    for _, dirs, files, dirfd in os.fwalk(top, topdown=False, follow_symlinks=False):
        for name in [*dirs, *files]:
            _give(user, name, dirfd)
    _give(user, str(top), None)


def _give(user: UnixUser, name: str, dirfd: int | None) -> None:
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        if (st.st_uid, st.st_gid) == (user.uid, user.gid):
            return
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            return
        os.chown(name, user.uid, user.gid, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        pass  # removed meanwhile


def take_back(top: Path) -> None:
    """Close top to everyone but root (its contents keep their owners): what a user left
    behind cannot be opened by a later user that gets the same uid."""
    with contextlib.suppress(FileNotFoundError):
        os.chown(top, 0, 0, follow_symlinks=False)
        os.chmod(top, PRIVATE_DIR)


def make_dir(path: Path, mode: int) -> Path:
    """Make the directory and its missing parents, each with `mode` whatever the umask; an
    existing one of this process's gets `mode` too. Returns path."""
    missing = []
    d = path
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode)
            d.chmod(mode)
    st = path.stat()
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != mode:
        path.chmod(mode)
    return path


def private_file(path: Path) -> None:
    """Give an existing file of this process mode 0600."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if path.stat().st_mode & 0o077:
            path.chmod(PRIVATE_FILE)
