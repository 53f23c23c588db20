"""A real OpenSSH server on 127.0.0.1 for one test: its own host key, a client key it accepts
for root, and the PATH its sessions get (so a test can hand a host an old python3, or none).
Fleet tests that need hosts of their own on a network use tests/hosts instead; this is for
what one ssh connection does."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class Sshd:
    port: int
    key: str  # the private key it accepts, OpenSSH format
    host_key: Path  # its public host key
    log: Path


def need_sshd() -> None:
    why = None
    if os.geteuid() != 0:
        why = "needs root (sshd logs in as root)"
    elif not Path(SSHD).exists() or shutil.which("ssh") is None:
        why = "needs OpenSSH (Debian: openssh-server, openssh-client; .ci/run installs them)"
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gun-test", "-f", str(path)],
        check=True,
    )
    return path.read_text()


@contextlib.contextmanager
def login_user(tmp: Path) -> Iterator[str]:
    """A Unix user whose login shell is /bin/sh (root's bash here reads a ~/.bashrc that puts
    pyenv's python3 first on the PATH, whatever the server sets), removed at the end."""
    name = f"gunssh{os.urandom(4).hex()}"
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "useradd",
            "-M",
            "-d",
            str(home),
            "-s",
            "/bin/sh",
            "-p",
            "*",
            "-c",
            f"gun ssh test at {tmp}",
            name,
        ],  # "*": no password, not locked (sshd refuses a locked user)
        check=True,
    )
    try:
        os.chown(home, pwd.getpwnam(name).pw_uid, -1)
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def sshd_running(tmp: Path, path: str = "/usr/local/bin:/usr/bin:/bin") -> Iterator[Sshd]:
    """sshd -D on 127.0.0.1:PORT in its own process group, its sessions' PATH `path`; the group
    is killed at the end."""
    need_sshd()
    tmp.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    keygen(tmp / "host_key")
    key = keygen(tmp / "client_key")
    (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
    port = _free_port()
    config = tmp / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1:{port}\n"
        f"HostKey {tmp / 'host_key'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n"
        f"SetEnv PATH={path}\n"
    )
    log = tmp / "sshd.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"sshd did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield Sshd(port, key, tmp / "host_key.pub", log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
