"""Provider ssh: an instance is a directory and an agent on a registered host (core/hosts.py),
put there over ssh (providers/ssh.py). On the host, under its root (default /var/lib/gun):

    ROOT/bundle-KEY/*.whl       the wheels of gun and what the agent needs (bundle.py)
    ROOT/venv-KEY/              a venv of the host's python3 with them installed
    ROOT/instances/ID/          the instance: etc/agent.json (0600), log/, releases/, ...
    ROOT/instances/ID/keepalive.pid

`create` sends the wheels and agent.json in one tar stream and runs agentstart.py's script:
it makes the venv if this version of gun has none there yet, and starts the agent under a
keep-alive loop in a session of its own (`setsid`), so that it outlives the ssh connection and
is started again a second after it dies. `delete` runs the layer's teardown (`python -m
gun.agent.teardown`, its output returned), stops the loop and the agent (SIGTERM: the agent
stops its processes within their grace), kills what is left after STOP_SECONDS, removes the
instance's cgroups, Unix user and directory (`python -m gun.agent.uninstall`) and, once no
instance is left, the whole root. KEY is gun's version and a digest of the wheels, so an
upgrade of meta brings a new venv beside the old.
"""

from __future__ import annotations

import io
import json
import shlex
import tarfile
from collections.abc import Callable

from gun.agent.setup import TEARDOWN_SECONDS
from gun.errors import Unavailable
from gun.providers import agentstart, bundle
from gun.providers.base import Made, NewInstance
from gun.providers.ssh import Ssh

STOP_SECONDS = 40  # the agent's own stop (every process's grace) must fit in it

_STOP = """set -u
root={root}; dir={dir}
for venv in "$root"/venv-*; do
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -m gun.agent.teardown "$dir" && break
done
if [ -f "$dir/keepalive.pid" ]; then
  loop=$(cat "$dir/keepalive.pid")
  kill -TERM "-$loop" 2>/dev/null
  i=0
  while kill -0 "-$loop" 2>/dev/null && [ $i -lt {wait} ]; do sleep 0.5; i=$((i+1)); done
  kill -KILL "-$loop" 2>/dev/null
fi
for venv in "$root"/venv-*; do
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -m gun.agent.uninstall "$dir" && break
done
rm -rf "$dir"
if [ -z "$(ls -A "$root/instances" 2>/dev/null)" ]; then rm -rf "$root"; fi
exit 0
"""


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class SshProvider:
    name = "ssh"

    def __init__(self, reach: Callable[[str], tuple[Ssh, str]]) -> None:
        self.reach = reach  # a registered host: how to reach it, and its root (Hosts.reach)

    def _host(self, host: str | None) -> tuple[Ssh, str]:
        if host is None:
            raise Unavailable("provider ssh needs the instance's host")
        return self.reach(host)

    def create(self, new: NewInstance) -> Made:
        ssh, root = self._host(new.host)
        blobs = bundle.blobs()
        key = bundle.key_of(blobs)
        where = f"{root}/instances/{new.id}"
        config = new.agent_json()
        files = {f"bundle-{key}/{n}": (b, 0o644) for n, b in blobs.items()}
        files[f"instances/{new.id}/etc/agent.json"] = (json.dumps(config).encode(), 0o600)
        q = shlex.quote
        unpack = (
            f"umask 077 && mkdir -p {q(root)} && tar -x -o -C {q(root)}"
            f" && mkdir -p {q(where)}/log && chmod 711 {q(root)} {q(root)}/instances {q(where)}"
        )  # the instance's Unix user passes through to its releases; etc/ and log/ are 0700
        self._run(ssh, unpack, input=_tar(files), what="could not receive the agent's files")
        venv = f"{root}/venv-{key}"
        install = bundle.install_command(
            "python3", venv, [f"{root}/bundle-{key}/{n}" for n in sorted(blobs)]
        )
        start = agentstart.start_script(root, venv, where, install)
        self._run(ssh, f"sh -c {q(start)}", what="could not start the agent")
        return Made(f"{ssh.target.address}:{where}")

    def delete(self, instance_id: str, host: str | None = None) -> str | None:
        ssh, root = self._host(host)
        where = f"{root}/instances/{instance_id}"
        stop = _STOP.format(root=shlex.quote(root), dir=shlex.quote(where), wait=STOP_SECONDS * 2)
        said = self._run(ssh, f"sh -c {shlex.quote(stop)}", what="could not remove the instance")
        return said.rstrip("\n") or None  # the teardown's output

    def _run(self, ssh: Ssh, command: str, *, what: str, input: bytes | None = None) -> str:
        done, _ = ssh.run(command, input=input, timeout=TEARDOWN_SECONDS + STOP_SECONDS + 300)
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise Unavailable(f"host {ssh.name} ({ssh.target}) {what}: {said[0]}")
        return done.stdout.decode("utf-8", "replace")

    def ids(self) -> list[str]:
        return []  # each host keeps its own agents going

    def shell(self, instance_id: str) -> list[str]:
        return ["true"]  # ssh.host builds its command from the instance's host instead

    def ensure_running(self) -> list[str]:
        return []  # the keep-alive loop on the host does it
