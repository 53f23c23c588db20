"""Reaching a host the team already has, over ssh: OpenSSH's `ssh` binary, run by meta.

Why the binary and not a library (paramiko, asyncssh): it is on every machine meta runs on,
the team's own ssh setup (agent, config, jump hosts) works through it unchanged, `ssh.host`
needs an interactive `ssh -t` anyway, and no ssh or crypto code runs inside meta.

Every call is non-interactive (`BatchMode=yes`: never a password prompt) and bounded
(`ConnectTimeout`, keep-alives). A host's key is pinned when it is added: the first connection
accepts and records it (`StrictHostKeyChecking=accept-new` into a known_hosts file of that one
call), meta keeps the line, and every later call checks it (`StrictHostKeyChecking=yes`). The
private key given with `key=PATH`, if any, is meta's to keep (encrypted at rest, like config
vars): it is written for each call to a file in a private directory and removed after.

Pure: `parse_target`, `argv`, `explain`, `python_version`. I/O: `Ssh.run`, `check`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gun.errors import InvalidParams, Unavailable

MIN_PYTHON = (3, 11)
CONNECT_TIMEOUT = 10  # seconds
_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\Z", re.IGNORECASE)
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(\.{_LABEL})*\Z", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """Where a host is: USER@ADDRESS, port."""

    user: str
    address: str
    port: int = 22

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.user}@{host}" + (f":{self.port}" if self.port != 22 else "")


def parse_target(text: str, port: int = 22) -> Target:
    """USER@ADDRESS (a host name, an IPv4 address or an IPv6 one, bare or in brackets);
    InvalidParams naming what is wrong."""
    user, at, address = text.rpartition("@")
    if not at or not user:
        raise InvalidParams(f"{text!r} is not USER@ADDRESS (for example root@203.0.113.5)")
    if not _USER.match(user):
        raise InvalidParams(f"{user!r} is not a Unix user name")
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    try:
        address = str(ipaddress.ip_address(address))
    except ValueError:
        if not _HOSTNAME.match(address) or address.replace(".", "").isdigit():
            raise InvalidParams(f"{address!r} is not a host name or an IP address") from None
    if not 1 <= port <= 65535:
        raise InvalidParams(f"port {port} is not a port number (1 to 65535)")
    return Target(user, address, port)


def argv(
    target: Target, command: str, *, key: Path | None, known_hosts: Path, pinned: bool
) -> list[str]:
    """The `ssh` command line that runs `command` on the host."""
    options = {
        "BatchMode": "yes",
        "ConnectTimeout": str(CONNECT_TIMEOUT),
        "ServerAliveInterval": "5",
        "ServerAliveCountMax": "3",
        "StrictHostKeyChecking": "yes" if pinned else "accept-new",
        "UserKnownHostsFile": str(known_hosts),
        "GlobalKnownHostsFile": "/dev/null",
        "HashKnownHosts": "no",  # the pinned line stays readable
        "LogLevel": "ERROR",
    }
    if key is not None:
        options["IdentitiesOnly"] = "yes"
    out = ["ssh", "-p", str(target.port)]
    for name, value in options.items():
        out += ["-o", f"{name}={value}"]
    if key is not None:
        out += ["-i", str(key)]
    return [*out, "--", f"{target.user}@{target.address}", command]


_OTHER_KEY = "presented a host key other than the one pinned when it was added"
# What ssh says on its stderr when it cannot get to run the command (it exits 255), and how
# gun says it; the first match wins.
_SSH_FAILURES = [
    ("connection refused", "refuses connections on port {port} (is sshd running?)"),
    ("connection timed out", "did not answer on port {port} within {timeout} s"),
    ("operation timed out", "did not answer on port {port} within {timeout} s"),
    ("no route to host", "cannot be reached (no route to host)"),
    ("network is unreachable", "cannot be reached (network is unreachable)"),
    ("could not resolve hostname", "has a name that does not resolve"),
    ("name or service not known", "has a name that does not resolve"),
    ("host key verification failed", _OTHER_KEY),
    ("remote host identification has changed", _OTHER_KEY),
    ("permission denied", "refused the key (permission denied for user {user})"),
    ("connection closed", "closed the connection"),
    ("connection reset", "closed the connection"),
]


def explain(name: str, target: Target, stderr: str) -> str:
    """One sentence for an ssh that failed (exit 255), naming the host."""
    low = stderr.lower()
    for needle, why in _SSH_FAILURES:
        if needle in low:
            said = why.format(port=target.port, timeout=CONNECT_TIMEOUT, user=target.user)
            return f"host {name} ({target}) {said}"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
    return f"host {name} ({target}) cannot be reached over ssh: {last}"


def python_version(output: str) -> tuple[int, int, int] | None:
    """The version `python3 -c 'import sys; print(*sys.version_info[:3])'` printed."""
    parts = output.split()
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


@dataclass(frozen=True)
class Facts:
    """What `check` learnt of a host."""

    python: tuple[int, int, int]
    known_host: str  # its host key, as a known_hosts line: pinned from now on


@contextmanager
def _private_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gun-ssh-"))  # 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Ssh:
    """Runs commands on one host."""

    def __init__(
        self, name: str, target: Target, *, key: str | None = None, known_host: str | None = None
    ) -> None:
        self.name, self.target, self.key, self.known_host = name, target, key, known_host

    def run(
        self, command: str, *, input: bytes | None = None, timeout: float = 600.0
    ) -> tuple[subprocess.CompletedProcess[bytes], str]:
        """Run `command` there; the finished process and the host's key line as seen. ssh
        failing to connect raises Unavailable with explain()'s sentence; the command's own
        exit code is the caller's to judge."""
        if shutil.which("ssh") is None:
            raise Unavailable("meta's machine has no ssh command (Debian: openssh-client)")
        with _private_dir() as private:
            key = None
            if self.key is not None:
                key = private / "key"
                fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(self.key if self.key.endswith("\n") else self.key + "\n")
            known = private / "known_hosts"
            known.write_text(self.known_host + "\n" if self.known_host else "")
            pinned = bool(self.known_host)
            cmd = argv(self.target, command, key=key, known_hosts=known, pinned=pinned)
            try:
                done = subprocess.run(
                    cmd, input=input, capture_output=True, timeout=timeout,
                    stdin=None if input is not None else subprocess.DEVNULL,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                where = f"host {self.name} ({self.target})"
                raise Unavailable(
                    f"{where} did not finish {command!r} in {timeout:.0f} s"
                ) from None
            if done.returncode == 255:
                said = done.stderr.decode("utf-8", "replace")
                raise Unavailable(explain(self.name, self.target, said))
            seen = known.read_text().strip().splitlines()
        return done, self.known_host or (seen[0] if seen else "")


def check(ssh: Ssh) -> Facts:
    """That the host can be reached, accepts the key and has python3 >= 3.11: its Facts, or
    Unavailable / InvalidParams with one sentence naming the host."""
    done, known_host = ssh.run("python3 -c 'import sys; print(*sys.version_info[:3])'", timeout=60)
    where = f"host {ssh.name} ({ssh.target})"
    if done.returncode == 127:
        raise InvalidParams(f"{where} has no python3 (gun's agent needs Python 3.11 or newer)")
    version = python_version(done.stdout.decode("utf-8", "replace"))
    if done.returncode != 0 or version is None:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise InvalidParams(f"{where} could not run python3: {said[0]}")
    if version[:2] < MIN_PYTHON:
        shown = ".".join(map(str, version))
        raise InvalidParams(f"{where} has Python {shown}; gun's agent needs 3.11 or newer")
    if not known_host:
        raise Unavailable(f"{where} gave no host key to pin")
    return Facts(version, known_host)
