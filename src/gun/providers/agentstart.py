"""How an agent is started on a machine that is not meta's (provider ssh over ssh, provider ec2
from its user-data): one POSIX sh script, the same for both.

Under the agent's root:

    ROOT/bundle-KEY/*.whl       the wheels of gun and what the agent needs (bundle.py)
    ROOT/venv-KEY/              a venv of the host's python3 with them installed
    ROOT/instances/ID/          the instance: etc/agent.json (0600), log/, releases/, ...
    ROOT/instances/ID/keepalive.pid

The script makes the venv if this version of gun has none there yet, and starts the agent
under a keep-alive loop in a session of its own (`setsid`), so that it outlives whoever ran
the script and is started again a second after it dies. (A host with systemd would rather run
it as a unit; gun does not yet: the loop works on every host, and no machine here has systemd
to test a unit on.)

With `leave=True` (provider ec2, where meta has no way in to remove the instance) the loop
also ends the instance itself: when the agent exits with EXIT_DELETED (meta refused its token:
the instance was deleted; it has stopped its processes), the loop runs the layer's teardown
(`python -m gun.agent.teardown`: after the processes stopped, and its output heard by no one),
removes the instance's cgroups, Unix user and directory (`python -m gun.agent.uninstall`)
and, with the last instance, the whole root, and ends.
"""

from __future__ import annotations

import shlex

EXIT_DELETED = 3  # `python -m gun.agent`'s exit code when meta refuses its token

_START = """set -eu
root={root}; venv={venv}; dir={dir}
if [ ! -x "$venv/bin/python" ]; then
  {install} >"$root/install.log" 2>&1 || {{ cat "$root/install.log" >&2; rm -rf "$venv"; exit 3; }}
fi
if [ -f "$dir/keepalive.pid" ] && kill -0 "$(cat "$dir/keepalive.pid")" 2>/dev/null; then
  exit 0
fi
setsid sh -c 'while :; do "$0/bin/python" -m gun.agent --root "$1" >>"$1/log/agent.log" 2>&1
  if [ $? -eq {deleted} ] && [ "$2" = leave ]; then
    "$0/bin/python" -m gun.agent.teardown "$1"
    "$0/bin/python" -m gun.agent.uninstall "$1"; rm -rf "$1"
    if [ -z "$(ls -A "$3/instances" 2>/dev/null)" ]; then rm -rf "$3"; fi
    exit 0
  fi
  sleep 1; done' "$venv" "$dir" {leave} "$root" </dev/null >/dev/null 2>&1 &
echo $! >"$dir/keepalive.pid"
"""


def start_script(root: str, venv: str, dir: str, install: str, *, leave: bool = False) -> str:
    """The sh script that installs the venv (with `install`, if it is not there) and starts
    the instance at `dir`'s agent under its keep-alive loop; exits 3 if the install failed."""
    q = shlex.quote
    return _START.format(
        root=q(root),
        venv=q(venv),
        dir=q(dir),
        install=install,
        deleted=EXIT_DELETED,
        leave="leave" if leave else "stay",
    )
