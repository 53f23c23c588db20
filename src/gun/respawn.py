"""The platform's own processes under `gun up` (meta, the drain): started, watched, and started
again when they die, with a backoff.

The rules:
- a process that exits or is killed is started again: at once the first time, then after 1 s,
  doubling to 30 s; once it has stayed up 60 s, its next death starts the ladder again;
- each death is said with how it ended (status or signal) and the last lines of its log, and
  each return once it answers on its URL again;
- nothing else is touched: agents and app processes run on whatever happens to meta or the
  drain (agents retry meta; the log shipper keeps lines until the drain takes them).
`check()` is one look, from gun up's loop: it never waits on the process.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from gun.agent.backoff import Backoff
from gun.errors import Unavailable

BACKOFF = Backoff(initial=1.0, factor=2.0, cap=30.0, reset_after=60.0)
LOG_TAIL = 5  # lines of its log shown when a process dies
STOP_GRACE = 15.0  # seconds between SIGTERM and SIGKILL


def ended(returncode: int) -> str:
    """How a process ended, in words: `exited with status 3`, `was killed by SIGKILL`."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


def tail(path: Path, lines: int = LOG_TAIL) -> list[str]:
    """The last `lines` non-blank lines of a log file (read from its last 8 KiB)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 8192))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def answers(url: str, timeout: float = 0.5, ca: str | None = None) -> bool:
    """Whether something answers HTTP on url's /health (any status: a 503 is an answer); an
    https URL's certificate verified against `ca` (PEM) when given."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cadata=ca) if ca else True
    try:
        httpx.get(f"{url}/health", timeout=timeout, verify=verify)
    except httpx.HTTPError:
        return False
    return True


class Respawned:
    """One platform process, in a process group of its own, its output appended to `log`."""

    def __init__(
        self,
        what: str,
        argv: Sequence[str],
        env: dict[str, str],
        log: Path,
        url: str,
        say: Callable[[str], None],
        backoff: Backoff = BACKOFF,
        ca: str | None = None,
    ) -> None:
        self.what, self.argv, self.env, self.log, self.url = what, list(argv), env, log, url
        self.ca = ca  # PEM: the CA its https URL's certificate is signed by
        self._say = say
        self._backoff = backoff
        self.proc: subprocess.Popen[bytes] | None = None
        self._started = 0.0  # time.monotonic() of the last start
        self._streak = 0  # deaths in a row, for the backoff
        self._due: float | None = None  # when to start it again, once dead
        self._back = True  # it answered since it was last started
        self._stopped = False
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started, self._due = time.monotonic(), None

    def wait_answering(self, timeout: float) -> None:
        """At gun up's start: wait until it answers; raise Unavailable if it dies or is silent."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                said = " / ".join(tail(self.log))
                raise Unavailable(f"{self.what} {ended(self.proc.returncode)}: {said}")
            if answers(self.url, 1.0, self.ca):
                return
            time.sleep(0.1)
        raise Unavailable(
            f"{self.what} did not answer on {self.url} within {timeout:g}s; see {self.log}"
        )

    def check(self) -> None:
        """One look: a death is said and its restart scheduled; a restart that is due is made;
        a restarted process that answers again is said."""
        now = time.monotonic()
        if self._stopped:
            return
        if self._due is not None:
            if now >= self._due:
                self.start()
                self.restarts += 1
            return
        if self.proc is None:
            return
        code = self.proc.poll()
        if code is None:
            if not self._back and answers(self.url, 0.3, self.ca):
                self._back = True
                self._say(f"{self.what} is back on {self.url} (pid {self.proc.pid})")
            return
        self._streak, delay = self._backoff.after_crash(self._streak, now - self._started)
        self._due, self._back = now + delay, False
        when = f"in {delay:g} s" if delay > 0 else "now"
        lines = "".join(f"\n  {line}" for line in tail(self.log))
        self._say(
            f"{self.what} (pid {self.proc.pid}) {ended(code)}: restarting it {when}; apps and "
            f"agents keep running. The end of {self.log}:{lines}"
        )

    def stop(self) -> None:
        """SIGTERM its group, SIGKILL after STOP_GRACE; no restart after this."""
        self._due, self._stopped = None, True
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            proc.wait()
