"""The user-data of an ec2 instance (pure): a POSIX sh script that cloud-init runs as root at
first boot, which bootstraps the instance's agent the way provider ssh does over ssh.

It
1. checks for python3 3.11 or newer (else it says so in one sentence, on stderr: the
   instance's console output, and in ROOT/bootstrap.log, and stops);
2. writes ROOT/instances/ID/etc/agent.json (0600): meta's URL, the instance's id, its
   agent token and, when meta has one (GUN_TLS_CA), the CA its HTTPS is pinned to;
3. downloads the agent's wheels from meta (GET /v1/agent/instances/ID/bundle, with that
   token, pinned to that CA; retried for BUNDLE_TRIES tries while meta cannot be reached)
   and checks their sha256 against the one written here, then unpacks them to
   ROOT/bundle-KEY/;
4. runs agentstart.py's script: a venv of python3 with the wheels, and the agent under its
   keep-alive loop, which removes the instance from the machine once meta refuses its token
   (`leave`: meta has no way in to do it).

The agent token is in the user-data, and so readable by anything on the instance that can
reach the instance metadata service (169.254.169.254) for as long as the instance lives.
"""

from __future__ import annotations

import json
import shlex

from gun.providers import agentstart, bundle
from gun.providers.base import NewInstance

BUNDLE_TRIES = 60  # 5 s apart: meta may come up after its instances

_FETCH = r"""import hashlib, json, ssl, sys, tarfile, time, urllib.error, urllib.request
config, into, want, tries = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = json.load(open(config))
url = c["meta"] + "/v1/agent/instances/" + c["instance"] + "/bundle"
request = urllib.request.Request(url, headers={"Authorization": "Bearer " + c["token"]})
pinned = ssl.create_default_context(cadata=c["ca"]) if c.get("ca") else None
for attempt in range(tries):
    try:
        data = urllib.request.urlopen(request, timeout=30, context=pinned).read()
        break
    except urllib.error.HTTPError as e:
        sys.exit(f"gun: meta refused the agent's bundle ({e.code}) at {url}")
    except OSError as e:
        if attempt == tries - 1:
            sys.exit(f"gun: meta cannot be reached at {url} ({e})")
        time.sleep(5)
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"gun: the agent's bundle from {url} has sha256 {got}, not {want}")
with open(into + ".tar", "wb") as f:
    f.write(data)
with tarfile.open(into + ".tar") as tar:
    for m in tar.getmembers():
        if not m.isfile() or "/" in m.name or m.name.startswith("."):
            sys.exit(f"gun: the agent's bundle holds {m.name!r}, not a wheel")
    tar.extractall(into, filter="data")
"""

_SCRIPT = """#!/bin/sh
# gun: the agent of instance {id} (app {app}, layer {layer}); cloud-init runs this as root
set -eu
umask 077
root={root}; dir={dir}; bundle={bundle}
mkdir -p "$dir/etc" "$dir/log" "$bundle"
chmod 711 "$root" "$root/instances" "$dir"
problem() {{ echo "gun: instance {id}: $*" | tee -a "$root/bootstrap.log" >&2; exit 1; }}
command -v python3 >/dev/null || problem "no python3 here (gun's agent needs Python 3.11 or newer)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || problem \\
  "python3 is $(python3 -V 2>&1); gun's agent needs 3.11 or newer"
cat >"$dir/etc/agent.json" <<'GUN_AGENT_JSON'
{config}
GUN_AGENT_JSON
chmod 600 "$dir/etc/agent.json"
umask 022
python3 -c {fetch} "$dir/etc/agent.json" "$bundle" {sha256} {tries} \\
  2>>"$root/bootstrap.log" || problem "$(tail -n 1 "$root/bootstrap.log")"
rm -f "$bundle.tar"
sh -c {start}
"""


def render(new: NewInstance, root: str, archive: bundle.Archive) -> str:
    """The user-data script of instance `new`, its agent living in `root`, with the bundle
    `archive` meta serves."""
    q = shlex.quote
    where = f"{root}/instances/{new.id}"
    into = f"{root}/bundle-{archive.key}"
    venv = f"{root}/venv-{archive.key}"
    install = bundle.install_command("python3", venv, [f"{into}/{n}" for n in archive.names])
    return _SCRIPT.format(
        id=new.id,
        app=new.app,
        layer=new.layer,
        root=q(root),
        dir=q(where),
        bundle=q(into),
        config=json.dumps(new.agent_json()),
        fetch=q(_FETCH),
        sha256=archive.sha256,
        tries=BUNDLE_TRIES,
        start=q(agentstart.start_script(root, venv, where, install, leave=True)),
    )
