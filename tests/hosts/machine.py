"""What this machine needs for test hosts: root, namespaces, and the programs, of which
`problem()` installs the missing ones with apt-get (as root, Debian) before saying why not.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from tests import tools

# program: the Debian package that has it (also in .ci/run's needs)
PROGRAMS = {
    "ip": "iproute2",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "unshare": "util-linux",
    "mount": "mount",
}
# where root's programs are even when a test narrows PATH
SBIN = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]

_found: dict[str, str] = {}


class HostsError(RuntimeError):
    """Test hosts could not be made or removed; the message names the command and its error."""


def program(name: str) -> str:
    """The absolute path of `name`, from PATH or the sbin directories."""
    if name not in _found:
        path = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))
        if path is None:
            raise HostsError(f"{name} is not installed (Debian: apt-get install {PROGRAMS[name]})")
        _found[name] = path
    return _found[name]


def problem() -> str | None:
    """Why test hosts cannot be made here, or None. Installs missing programs first."""
    if os.geteuid() != 0:
        return "test hosts need root (network and mount namespaces)"
    missing = sorted({package for name, package in PROGRAMS.items() if not _has(name)})
    if missing and (why := _install(missing)):
        return why
    probe = subprocess.run(
        [program("unshare"), "--net", "--mount", "--uts", "--pid", "--fork", "true"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"cannot make namespaces here: {probe.stderr.strip()}"
    return None


def _has(name: str) -> bool:
    try:
        program(name)
        return True
    except HostsError:
        return False


def _install(packages: list[str]) -> str | None:
    """apt-get install, after apt-get update if the first try fails; why not, or None."""
    if shutil.which("apt-get") is None:
        return f"missing {' '.join(packages)}, and there is no apt-get to install them"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", *packages]
    with tools.locked("apt-get"):  # a parallel run's apt-get would fail on dpkg's lock
        done = subprocess.run(install, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
            done = subprocess.run(install, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return f"apt-get install {' '.join(packages)} failed: {done.stderr.strip()[-500:]}"
    return None
