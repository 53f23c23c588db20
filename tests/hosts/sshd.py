"""A test host's sshd: its keys and config, the namespaces it runs in, and OpenSSH client
arguments that read nothing of the machine's or the user's ssh configuration.

The host's sshd runs as `ip netns exec HOST unshare --mount --uts --pid --fork --mount-proc
--propagation private -- sh -c ENTER …`, where ENTER, in the new namespaces and before it execs
sshd (which is then the host's PID 1, as init is on a machine):
1. opens the host's own directory (so it can be brought back below),
2. mounts an empty tmpfs over the fleet's directory (every host's directory, the client key)
   and over each hidden path (meta's data dir, …),
3. binds the host's own directory back at its usual path,
4. sets the hostname (its own UTS namespace).
Everything sshd spawns (ssh sessions, an agent started over ssh that outlives them) inherits
that view; mounts made there never propagate back (`--propagation private`). The host's own PID
namespace (and its own /proc) matters as much as the tmpfs: in a shared one, a host's root
could read another host's files through /proc/PID/root, or meta's environment through
/proc/PID/environ. When sshd exits, the kernel kills everything left in its PID namespace.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.hosts.machine import HostsError, program

# $1 name, $2 the fleet's dir, $3 the host's own dir, $4 sshd, $5 its config; then hidden paths.
# mount(8) would resolve /proc/self/fd/3 to its path, which is the empty tmpfs by then: -c.
ENTER = """set -eu
name=$1 fleet=$2 own=$3 sshd=$4 config=$5
shift 5
exec 3<"$own"
mount -t tmpfs -o size=1m,mode=0755 gun-hidden "$fleet"
for path in "$@"; do mount -t tmpfs -o size=1g,mode=0755 gun-hidden "$path"; done
mkdir -p "$own"
mount --no-canonicalize --bind /proc/self/fd/3 "$own"
exec 3<&-
hostname "$name"
exec "$sshd" -D -e -f "$config"
"""

LISTENING = "Server listening on"


def keygen(path: Path, comment: str) -> None:
    """An ed25519 key pair without a passphrase: `path` and `path`.pub."""
    subprocess.run(
        [program("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )


def config(address: str, here: Path) -> str:
    """sshd_config for a host: root logs in with the fleet's key only, on the host's address."""
    return f"""\
# made by tests/hosts for one test host
ListenAddress {address}:22
HostKey {here / "host_key"}
AuthorizedKeysFile {here / "authorized_keys"}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
PidFile none
PrintMotd no
X11Forwarding no
Subsystem sftp internal-sftp
"""


def enter(name: str, fleet: Path, own: Path, sshd: str, conf: Path, hide: list[Path]) -> list[str]:
    """The argv that runs sshd in the host's own mount, UTS and PID namespaces (see ENTER)."""
    paths = [str(fleet), str(own), sshd, str(conf), *(str(p) for p in hide)]
    unshare = [program("unshare"), "--mount", "--uts", "--pid", "--fork", "--mount-proc"]
    unshare += ["--propagation", "private", "--"]
    return [*unshare, "sh", "-c", ENTER, "enter-host", name, *paths]


def wait_listening(proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> None:
    """Returns once sshd says it listens; HostsError with its log if it exits or is silent."""
    deadline = time.monotonic() + timeout
    while LISTENING not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            raise HostsError(f"sshd exited {proc.returncode}: {log.read_text(errors='replace')}")
        if time.monotonic() > deadline:
            raise HostsError(f"sshd did not listen in {timeout} s: {log.read_text()}")
        time.sleep(0.01)


def client_argv(key: Path, address: str, command: str) -> list[str]:
    """OpenSSH's ssh as root@address with `key` only: no config files (-F /dev/null: neither
    ~/.ssh/config nor /etc/ssh/ssh_config, so no ProxyCommand can send it elsewhere), no agent,
    no known_hosts, no prompts, and a 3-second connect timeout."""
    options = {
        "IdentitiesOnly": "yes",
        "IdentityAgent": "none",
        "StrictHostKeyChecking": "no",
        "UserKnownHostsFile": "/dev/null",
        "BatchMode": "yes",
        "ConnectTimeout": "3",
        "LogLevel": "ERROR",
    }
    argv = [program("ssh"), "-F", "/dev/null", "-i", str(key)]
    for option, value in options.items():
        argv += ["-o", f"{option}={value}"]
    return [*argv, f"root@{address}", command]
