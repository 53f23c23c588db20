"""A fleet: test hosts on one bridge, and the control namespace their clients run in.

Entering a Fleet claims a run (tests/hosts/runs.py), then, in this order: adds the guard route
`unreachable <subnet>` in the root namespace, makes the control namespace with the bridge and
the control address (.1). Each `host()` adds a namespace joined to the bridge by a veth with
its own address (.11, .12, …) and starts its sshd in its own mount, UTS and PID namespaces
(tests/hosts/sshd.py). No namespace has a
default route or a link to the root namespace: packets to a host can only come from the
control namespace or another host, and can go nowhere else.

Every step that makes something pushes the step that removes it; leaving the Fleet (or failing
to enter it) runs them all, last made first, even when one fails: processes (SIGTERM to each
group the harness started, SIGKILL after GRACE, then SIGKILL to whatever is still in the
namespace), hosts' namespaces, the control namespace, the guard route, the temp dir and the
run's record.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from tests.hosts import ip, runs, sshd
from tests.hosts.machine import HostsError, program

GRACE = 3.0  # seconds between SIGTERM and SIGKILL for the processes the harness started
NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")
FIRST_HOST = 11  # host k (from 0) is .11+k; .1 is the control address

File = int | IO[Any] | None
N = TypeVar("N", bound="Namespace")


class Namespace:
    """A network namespace of the run, and the processes the harness started in it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started: list[subprocess.Popen[bytes]] = []

    def ip(self, *args: str) -> str:
        return ip.ip(*args, netns=self.name)

    def popen(
        self,
        argv: Sequence[str],
        *,
        stdin: File = subprocess.DEVNULL,
        stdout: File = None,
        stderr: File = None,
        env: dict[str, str] | None = None,
        cwd: Path | str | None = None,
    ) -> subprocess.Popen[bytes]:
        """`argv` in this namespace, in a process group of its own."""
        proc = subprocess.Popen(
            [program("ip"), "netns", "exec", self.name, *argv],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def remove(self) -> None:
        """Stop what was started here, kill whatever else is here, delete the namespace."""
        running = [p for p in self.started if p.poll() is None]  # not reaped: the PID is ours
        signal_groups(running, signal.SIGTERM)
        deadline = time.monotonic() + GRACE
        for proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        try:
            signal_groups([p for p in running if p.poll() is None], signal.SIGKILL)
            for proc in running:
                proc.wait(10)
        finally:
            ip.remove_namespace(self.name)


def signal_groups(procs: list[subprocess.Popen[bytes]], sig: signal.Signals) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)


class Control(Namespace):
    """The control namespace: the bridge, the control address, and every client of the hosts
    (meta, the drain, ssh), each started by `popen` in a process group of its own and stopped
    when the fleet is. It has no default route and no link out of the bridge."""

    def __init__(self, name: str, address: str) -> None:
        super().__init__(name)
        self.address = address

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
        cwd: Path | str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` here to the end; its output as text. On timeout its group is killed."""
        pipe = subprocess.PIPE
        stdin = subprocess.DEVNULL if input is None else pipe
        proc = self.popen(argv, stdin=stdin, stdout=pipe, stderr=pipe, env=env, cwd=cwd)
        try:
            out, err = proc.communicate(None if input is None else input.encode(), timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        text = (out.decode(errors="replace"), err.decode(errors="replace"))
        return subprocess.CompletedProcess(list(argv), proc.returncode, *text)


class Host:
    """A test host: its own network namespace and address on the bridge, its own mount, UTS
    (its hostname is its name) and PID namespaces, its own directory `root`, its own sshd.
    Reach it with `ssh`, from the control namespace, as root."""

    def __init__(
        self, name: str, address: str, root: Path, namespace: Namespace, link: str, fleet: Fleet
    ) -> None:
        self.name = name
        self.address = address
        self.root = root
        self.namespace = namespace
        self.link = link  # its end of the veth to the bridge, inside its namespace
        self._fleet = fleet

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.address}>"

    def ssh_argv(self, command: str) -> list[str]:
        """OpenSSH's ssh running `command` here; run it with `fleet.control`."""
        return sshd.client_argv(self._fleet.key, self.address, command)

    def ssh(
        self, command: str, *, input: str | None = None, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """`command` run here by root's shell over ssh (255: ssh itself failed)."""
        return self._fleet.control.run(self.ssh_argv(command), input=input, timeout=timeout)

    def put(self, local: Path, remote: str, *, timeout: float = 60.0) -> None:
        """Copy the file `local` to `remote` here, over ssh."""
        argv = self.ssh_argv(f"cat > {shlex.quote(remote)}")
        with open(local, "rb") as data:
            proc = self._fleet.control.popen(argv, stdin=data, stderr=subprocess.PIPE)
            _, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise HostsError(f"copying {local} to {self.name}:{remote}: {err.decode().strip()}")

    def partition(self) -> None:
        """Its link down, inside its namespace: it reaches nothing and nothing reaches it."""
        self.namespace.ip("link", "set", self.link, "down")

    def heal(self) -> None:
        self.namespace.ip("link", "set", self.link, "up")

    def pids(self) -> list[int]:
        """Every process in its network namespace: its sshd, sessions, what they started."""
        return ip.namespace_pids(self.namespace.name)


class Fleet:
    """Test hosts for one test (see the module's docstring); a context manager.

    `hide`: directories every host sees as an empty tmpfs (meta's data dir); each host also
    sees the fleet's directory so, but for its own directory.
    """

    def __init__(self, *, hide: Iterable[Path | str] = ()) -> None:
        self._hide = list(hide)
        self._undo = contextlib.ExitStack()
        self._made = 0  # hosts begun, so a host that failed half-made keeps its names
        self.hosts: dict[str, Host] = {}

    def __enter__(self) -> Fleet:
        try:
            self._start()
        except BaseException:
            self._undo.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._undo.close()

    def _start(self) -> None:
        run = runs.claim()
        self._undo.callback(runs.forget, run)
        ip.add_guard(run.subnet)  # before any namespace: see REFERENCE.md §8
        self._undo.callback(ip.remove_guard, run.subnet)
        self.prefix: str = run.prefix
        self.subnet: ipaddress.IPv4Network = run.subnet
        self.dir: Path = run.dir
        self.hidden = [self._hideable(Path(p)) for p in self._hide]
        self.key = self.dir / "client" / "id_ed25519"
        self.key.parent.mkdir()
        sshd.keygen(self.key, f"{self.prefix} client")
        self.control = self._namespace(Control(f"{self.prefix}-control", str(self.subnet[1])))
        self.bridge = f"{self.prefix}-br"
        self.control.ip("link", "add", self.bridge, "type", "bridge")
        where = f"{self.control.address}/{self.subnet.prefixlen}"
        self.control.ip("addr", "add", where, "dev", self.bridge)
        self.control.ip("link", "set", self.bridge, "up")

    def _namespace(self, ns: N) -> N:
        ip.add_namespace(ns.name)
        self._undo.callback(ns.remove)
        ns.ip("link", "set", "lo", "up")
        return ns

    def _hideable(self, path: Path) -> Path:
        path = path.resolve()
        if not path.is_dir():
            raise HostsError(f"cannot hide {path} from test hosts: not a directory")
        if path == self.dir or self.dir in path.parents:
            raise HostsError(f"{path} is in the fleet's directory, which hosts never see")
        return path

    def host(self, name: str, *, hide: Iterable[Path | str] = ()) -> Host:
        """A new host called `name` (also its hostname); `hide`: more directories it sees as
        an empty tmpfs."""
        if not NAME.fullmatch(name) or name in self.hosts:
            raise HostsError(f"host name {name!r}: taken, or not [a-z][a-z0-9-]{{0,30}}")
        k = self._made
        if FIRST_HOST + k >= self.subnet.num_addresses - 1:
            raise HostsError(f"no address left in {self.subnet} for host {name}")
        hidden = self.hidden + [self._hideable(Path(p)) for p in hide]
        self._made += 1
        address = str(self.subnet[FIRST_HOST + k])
        ns = self._namespace(Namespace(f"{self.prefix}-host-{name}"))
        bridge_end, link = f"{self.prefix}-c{k}", f"{self.prefix}-h{k}"
        ip.ip(
            *("link", "add", bridge_end, "netns", self.control.name, "type", "veth"),
            *("peer", "name", link, "netns", ns.name),
        )
        self.control.ip("link", "set", bridge_end, "master", self.bridge, "up")
        ns.ip("addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", link)
        ns.ip("link", "set", link, "up")

        own = self.dir / "hosts" / name
        root, conf = own / "root", own / "sshd"
        for d in (root, conf):
            d.mkdir(mode=0o755, parents=True)
        sshd.keygen(conf / "host_key", f"{self.prefix} {name}")
        shutil.copy(self.key.with_suffix(".pub"), conf / "authorized_keys")
        (conf / "sshd_config").write_text(sshd.config(address, conf))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        argv = sshd.enter(name, self.dir, own, program("sshd"), conf / "sshd_config", hidden)
        with open(conf / "log", "wb") as log:
            proc = ns.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        sshd.wait_listening(proc, conf / "log")

        host = Host(name, address, root, ns, link, self)
        self.hosts[name] = host
        return host

    def remove(self, name: str) -> None:
        """Take host `name` down now, as a machine that is switched off: every process in it
        killed, its namespace (and links) deleted. Its directory stays until the fleet goes."""
        self.hosts.pop(name).namespace.remove()
