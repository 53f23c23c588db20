"""What the benches share: their exceptions and printing, ports, the gun they run, and a main
that cleans up every process left under the bench's temporary directory however it ends."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import psutil

T = TypeVar("T")


class Broke(Exception):
    """Something failed that a measurement needs: the run exits 1."""


class Terminated(Exception):
    """SIGTERM: clean up and exit 143."""


def say(text: str = "") -> None:
    print(text, flush=True)


def secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def last(values: Sequence[float], n: int) -> float | None:
    """When the n-th event happened, None if fewer than n did."""
    return sorted(values)[n - 1] if len(values) >= n else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pointing_into(root: Path) -> list[psutil.Process]:
    """Live processes whose command line or working directory is under root (ours, then)."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        if p.pid == os.getpid() or p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        text = " ".join(p.info["cmdline"] or []) + " " + (p.info["cwd"] or "")
        if str(root) in text:
            found.append(p)
    return found


def kill_leftovers(root: Path) -> int:
    """SIGKILL the process group of every process still pointing into root; how many there were.

    A process in this script's own group is killed alone, never the group.
    """
    procs = pointing_into(root)
    groups = set()
    for p in procs:
        try:
            group = os.getpgid(p.pid)
        except ProcessLookupError:
            continue
        if group == os.getpgrp():
            with contextlib.suppress(psutil.Error):
                p.kill()
        else:
            groups.add(group)
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)
    return len(procs)


def which_gun() -> str:
    """Where the gun that runs comes from, and its git state (the tree others are editing)."""
    spec = importlib.util.find_spec("gun")
    if spec is None or spec.origin is None:
        return "not importable"
    src = Path(spec.origin).resolve().parent
    git = ["git", "-C", str(src)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return f"{src} (not a git checkout)"
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True
    ).stdout.split("\n")
    changed = [line[3:] for line in dirty if line.strip()]
    state = f"uncommitted changes in {', '.join(changed)}" if changed else "clean"
    return f"{src} at {head.stdout.strip()}, {state}"


def run_main(prefix: str, bench: Callable[[Path, contextlib.ExitStack], int]) -> int:
    """Run `bench(root, stack)` in a fresh temporary directory: exit 1 on Broke, 130/143 when
    interrupted or terminated; every process left under the directory is killed, then the
    directory removed."""
    if importlib.util.find_spec("gun") is None:  # the CLI runs as `python -m gun.cli`
        say(f"gun is not importable by {sys.executable}: run this with .venv/bin/python")
        return 1

    def terminated(*_: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, terminated)
    root = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
    if os.geteuid() == 0:
        root.chmod(0o711)  # apps' Unix users pass through it to their releases (gun.isolation)
    try:
        with contextlib.ExitStack() as stack:
            return bench(root, stack)
    except Broke as e:
        say(f"\nbroke: {e}")
        return 1
    except KeyboardInterrupt:
        say("\ninterrupted: cleaning up")
        return 130
    except Terminated:
        say("\nterminated: cleaning up")
        return 143
    finally:
        left = kill_leftovers(root)
        if left:
            say(f"  note: killed {left} leftover process(es) under {root}")
        remove_users(root)
        shutil.rmtree(root, ignore_errors=True)


def remove_users(root: Path) -> None:
    """Remove the Unix users gun made for instances and builds under root (their comment
    names the directory they serve)."""
    import pwd

    from gun import isolation

    for u in pwd.getpwall():
        if u.pw_name.startswith(isolation.PREFIX) and str(root) in u.pw_gecos:
            isolation.remove(u.pw_name)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """One response (Content-Length or chunked); (status, the server closes the connection)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split()[1])
    length, chunked, close = 0, False, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            close = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, close


def stop_groups(procs: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM each process's group (each leads its own), SIGKILL those left after `grace` s."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# -- gun up ------------------------------------------------------------------------------------

GUN = [sys.executable, "-m", "gun.cli"]
TIMEOUT = 180.0  # seconds a command or a wait may take before the run broke


def run(argv: Sequence[str | Path], env: dict[str, str] | None = None) -> str:
    """Run a command to completion, its stdout; Broke if it fails or takes over TIMEOUT."""
    shown = " ".join(map(str, argv))
    try:
        r = subprocess.run(
            [str(a) for a in argv], capture_output=True, text=True, timeout=TIMEOUT, env=env
        )
    except subprocess.TimeoutExpired:
        raise Broke(f"`{shown}` did not finish in {TIMEOUT:g} s") from None
    if r.returncode != 0:
        raise Broke(f"`{shown}` exited {r.returncode}: {(r.stderr or r.stdout).strip()[-2000:]}")
    return r.stdout


def wait_for(done: Callable[[], T | None], timeout: float, what: str, every: float = 0.1) -> T:
    """What `done` gives once it gives something true; Broke after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (got := done()):
        if time.monotonic() >= deadline:
            raise Broke(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
    return got


class GunUp:
    """`gun up --instances 1` in its own process group, everything under `root`, every port a
    free one (never a developer's own gun up's 5100-5102, 5180, 5181)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "gun"
        ports: set[int] = set()
        while len(ports) < 5:
            ports.add(free_port())
        self.port, self.drain_port, self.router_port, self.tls_port, self.rdv_port = ports
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
        self.env["XDG_CONFIG_HOME"] = str(root / "config")  # the user's credentials untouched
        self.env["GUN_DRAIN_LISTEN"] = f"127.0.0.1:{self.drain_port}"
        self.log = root / "up.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [*GUN, "up", "--dir", str(self.home), "--port", str(self.port), "--instances", "1"]
        argv += ["--router-port", str(self.router_port), "--router-tls-port", str(self.tls_port)]
        argv += ["--rendezvous-port", str(self.rdv_port)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def health() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise Broke(f"`gun up` exited {self.proc.returncode}:\n{tail}")
            import httpx  # the benches' venv has it; the harness's other users need not

            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            return False

        wait_for(health, 60, f"meta's /health (see {self.log})")
        wait_for(
            lambda: b"Ctrl-C stops everything" in self.log.read_bytes(),
            60,
            f"`gun up` to be up (see {self.log})",
        )

    def stop(self) -> None:
        if self.proc is not None:
            stop_groups([self.proc], 60)  # gun up stops meta, the router, each agent

    def argv(self, *args: str) -> list[str]:
        """`gun ARGS` as this gun up's admin."""
        token = (self.home / "admin.token").read_text().strip()
        return [*GUN, "--api", self.url, "--token", token, *args]

    def cli(self, *args: str) -> str:
        return run(self.argv(*args), env=self.env)

    def process(self, *words: str) -> psutil.Process:
        """The one process of this gun up's whose command line has these words (meta's:
        `server meta`; an agent's: `gun.agent`) and names this bench's directory."""
        found = []
        for p in psutil.process_iter(["cmdline"]):
            argv = p.info["cmdline"] or []
            if str(self.root) in " ".join(argv) and all(w in argv for w in words):
                found.append(p)
        if len(found) != 1:
            raise Broke(f"{len(found)} processes run {' '.join(words)!r} under {self.root}")
        return found[0]


def procfile_slug(procfile: str) -> bytes:
    """A slug holding only ./app/Procfile (for benches whose processes nothing runs)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        data = procfile.encode()
        info = tarfile.TarInfo("./app/Procfile")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
