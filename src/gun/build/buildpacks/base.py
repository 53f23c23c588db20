"""What every buildpack shares: the error, the output callback, the result, and the command runner.

Every command a buildpack runs goes through `Context.run`: its own process group (a new
session), stdin closed, stdout and stderr read line by line and handed to `out` as they come,
and the whole group killed when the build's deadline passes or the command exits leaving
children behind (a build step must not leave a daemon running on the build host).

A line whose end has not come within PARTIAL_SECONDS (`Installing... ` and then a long wait)
is not held back: when the build has a `partial` sink, what there is of it goes there, and the
rest of the line follows as it comes, ending with its newline. Without one, lines are whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gun import isolation, lines
from gun.errors import InvalidParams
from gun.isolation import UnixUser

Output = Callable[[str], None]
"""Receives each line of build output (without its newline), live, as it is produced."""
Partial = Callable[[str], None]
"""Receives output as raw text: the start of a line not ended yet (already indented), then
the rest of it as it comes, ending with its newline."""

STEP = "-----> "
INDENT = "       "
WARN = " !     "
PARTIAL_SECONDS = 0.2  # a line without its end yet is shown after this long

# Host variables a build may see. Everything else in the build worker's environment (its own
# tokens and database URL, for a start) stays out of the commands an app's code can run.
_HOST_NAMES = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "SHELL", "PYENV_ROOT"}
    | {
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
    }
    | {"SSH_AUTH_SOCK", "GIT_SSH", "GIT_SSH_COMMAND"}
    | {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"}
    | {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}
)
_HOST_PREFIXES = ("LC_", "PIP_", "UV_", "npm_config_", "NPM_CONFIG_")
# Config vars that would break the build tools themselves if exported into a build (Heroku's list
# plus the Python ones that would point the build's interpreter somewhere else).
_NOT_EXPORTED = frozenset(
    {"PATH", "GIT_DIR", "CPATH", "CPPATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LIBRARY_PATH"}
    | {"PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "BUILDPACK"}
)
_EXIT_GRACE = 2.0  # seconds to drain a pipe that an escaped grandchild still holds


class BuildError(InvalidParams):
    """A build that failed; the message is one sentence naming what failed."""


@dataclass(frozen=True)
class BuildResult:
    buildpack: str
    process_types: dict[str, str] = field(default_factory=dict)


class Deadline:
    """The build's time budget, shared by every command it runs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def expired(self, what: str) -> BuildError:
        return BuildError(f"the build ran past its {self.seconds:g} s limit during {what}")


def host_env() -> dict[str, str]:
    """The part of the build host's environment that build commands inherit."""
    return {k: v for k, v in os.environ.items() if k in _HOST_NAMES or k.startswith(_HOST_PREFIXES)}


@dataclass
class Context:
    """One build: its buildpack, where it happens, its config vars, where its output goes, and
    its deadline."""

    buildpack: str
    app_dir: Path
    cache_dir: Path
    config: Mapping[str, str]
    out: Output
    deadline: Deadline
    user: UnixUser | None = None  # whom every command runs as (gun.isolation); None: this process
    partial: Partial | None = None  # where a line goes before its end, if anywhere

    def fail(self, what: str) -> BuildError:
        """The error for a failed build: `what` says what failed, as a phrase."""
        return BuildError(f"buildpack {self.buildpack} failed: {what}")

    def step(self, text: str) -> None:
        self.out(STEP + text)

    def warn(self, text: str) -> None:
        self.out(WARN + text)

    def build_env(self, **extra: str) -> dict[str, str]:
        """Host variables plus the app's config vars (as Heroku's language buildpacks export
        them), plus `extra`."""
        env = host_env()
        env.update({k: v for k, v in self.config.items() if k not in _NOT_EXPORTED})
        env.update(extra)
        return env

    def run(
        self,
        argv: Sequence[str | Path],
        *,
        what: str,
        env: Mapping[str, str],
        cwd: Path | None = None,
        indent: str = INDENT,
        capture: bool = False,
    ) -> tuple[int, str]:
        """Run `argv`, streaming its output; return its exit code and, with `capture`, its
        stdout (then only stderr is streamed). `what` names the command in errors."""
        if self.user is not None:  # it gets what it works on, and a HOME of its own
            for d in (self.app_dir, self.cache_dir):
                isolation.hand_over(self.user, d)
            env = {**env, **isolation.user_env(self.user, self.cache_dir / "home")}
        sink = self.partial

        def partial(text: str, starts: bool) -> None:
            assert sink is not None
            sink(indent + text if starts else text)

        try:
            return run(
                [str(a) for a in argv],
                cwd=cwd or self.app_dir,
                env=env,
                emit=lambda line: self.out(indent + line if line else ""),
                deadline=self.deadline,
                what=what,
                capture=capture,
                user=self.user,
                partial=partial if sink is not None else None,
            )
        except BuildError as e:
            raise self.fail(e.message) from None

    def check(self, argv: Sequence[str | Path], *, what: str, env: Mapping[str, str]) -> None:
        """Run `argv` like `run`; a non-zero exit fails the build."""
        code, _ = self.run(argv, what=what, env=env)
        if code != 0:
            raise self.fail(f"{what} exited {code}")


def run(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    emit: Output,
    deadline: Deadline,
    what: str,
    capture: bool = False,
    user: UnixUser | None = None,
    partial: Callable[[str, bool], None] | None = None,
) -> tuple[int, str]:
    if deadline.remaining() <= 0:
        raise deadline.expired(what)
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if capture else subprocess.STDOUT,
            start_new_session=True,
            **isolation.popen_user(user),
        )
    except OSError as e:
        raise BuildError(f"could not start {what} ({e.strerror or e})") from None
    captured: list[bytes] = []
    try:
        _pump(proc, Lines(emit, partial), captured, deadline, what)
        code = proc.wait()
    finally:
        if proc.returncode is None:
            _kill_group(proc.pid)
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    return code, b"".join(captured).decode("utf-8", "replace")


class Lines:
    """Bytes of one output pipe in, lines (and partial lines) out: each complete line to
    `emit` (in pieces past MAX_LINE bytes, gun.lines); with a `partial` sink, the start of a
    line that has waited PARTIAL_SECONDS for its end goes there, then the rest of it."""

    def __init__(self, emit: Output, partial: Callable[[str, bool], None] | None) -> None:
        self.emit, self.partial = emit, partial
        self.pending = b""  # the current line's bytes not passed on yet
        self.since = 0.0  # when `pending` began waiting
        self.started = False  # part of the current line went to `partial` already

    def feed(self, data: bytes) -> None:
        waiting, data = bool(self.pending), self.pending + data
        used = 0
        if self.started:  # the rest of a line shown in part goes there too, up to its end
            end = data.find(b"\n")
            if end != -1:
                self._finish(data[:end])
                used = end + 1
        if not self.started:
            found, more = lines.split_lines(data[used:], final=False)
            for line in found:
                self.emit(lines.text(line))
            used += more
        self.pending = data[used:]
        if used or not waiting:  # what is pending now began waiting now
            self.since = time.monotonic()

    def tick(self) -> None:
        """Show what waited long enough for its line's end."""
        if self.partial is None or not self.pending:
            return
        if time.monotonic() - self.since < PARTIAL_SECONDS:
            return
        cut = lines.utf8_cut(self.pending)  # a character split between reads waits for its end
        shown, self.pending = self.pending[:cut].decode("utf-8", "replace"), self.pending[cut:]
        if shown:
            self.partial(shown, not self.started)
            self.started = True

    def close(self) -> None:
        """The pipe ended: what is left is a last line without its newline."""
        if self.started:
            self._finish(self.pending)
        else:
            for line in lines.split_lines(self.pending, final=True)[0]:
                self.emit(lines.text(line))
        self.pending = b""

    def _finish(self, rest: bytes) -> None:
        """The rest of a line shown in part, and its end."""
        assert self.partial is not None
        self.started = False
        self.partial(lines.text(rest) + "\n", False)


def _pump(
    proc: subprocess.Popen[bytes],
    splitter: Lines,
    captured: list[bytes],
    deadline: Deadline,
    what: str,
) -> None:
    """Read the child's pipes until they close, the child exits (then its group is killed and
    the pipes drained briefly), or the deadline passes (then the group is killed)."""
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None
    sel.register(proc.stdout, selectors.EVENT_READ, "capture" if proc.stderr else "emit")
    if proc.stderr is not None:
        sel.register(proc.stderr, selectors.EVENT_READ, "emit")
    exited_at: float | None = None
    with sel:
        while sel.get_map():
            remaining = deadline.remaining()
            if remaining <= 0:
                _kill_group(proc.pid)
                raise deadline.expired(what)
            if exited_at is None and _has_exited(proc.pid):
                # Kill what the command left running while its pid still names the group.
                _kill_group(proc.pid)
                exited_at = time.monotonic()
            if exited_at is not None and time.monotonic() - exited_at > _EXIT_GRACE:
                break
            for key, _ in sel.select(timeout=min(remaining, 0.1)):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                if key.data == "capture":
                    captured.append(data)
                elif data:
                    splitter.feed(data)
                else:
                    splitter.close()
            splitter.tick()
    splitter.close()


def _has_exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (so its pid keeps naming its group)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@contextlib.contextmanager
def cache_lock(cache_dir: Path, deadline: Deadline, out: Output) -> Iterator[None]:
    """Hold the app's build cache for this build alone; a second build of the app waits."""
    with open(cache_dir / ".lock", "a+b") as f:
        waiting = False
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    out(STEP + "Waiting for another build of this app to release the build cache")
                    waiting = True
                if deadline.remaining() <= 0:
                    raise BuildError(
                        f"the build waited {deadline.seconds:g} s for another build of this app"
                        " to release the build cache"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
