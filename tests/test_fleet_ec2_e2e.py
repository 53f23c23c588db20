"""A fleet on EC2, as a team runs it, against moto's server as the EC2 API (tests/hosts/cloud.py:
each instance moto runs boots its user-data on a fresh test host): the seed's exact command
makes three instances in layer `app`, whose settings name provider ec2; an app with web=3
worker=2 runs on them, each web answering from its own host; `gun ps` and `gun instances` say
where and in what state; after `instances.delete` nothing of gun is left on the hosts (no
process, no file under the agent's root) and each instance's token is refused.

The app is built by the null buildpack: the control namespace has no way to a package index.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gun import isolation
from tests.hosts import Fleet, Host
from tests.hosts.cloud import AWS_ENV, Cloud, ec2, moto
from tests.test_fleet_ssh_e2e import ADMIN, WEB, Cli, get, on, start_meta

SETUP = """
ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
subnet = ec2.describe_subnets(
    Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]},
             {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
sg = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
ec2.create_key_pair(KeyName="deploy")
print(json.dumps({"ami": ami, "subnet": subnet, "sg": sg}))
"""


def leftovers(root: str) -> Callable[[Host], tuple[str, set[str]]]:
    """What of gun is on a host just before EC2 takes it down: files under the agent's root
    and processes (waiting up to 90 s for the agent to stop and remove itself)."""

    def inspect(host: Host) -> tuple[str, set[str]]:
        deadline = time.monotonic() + 90
        files, procs = "?", {"?"}
        while time.monotonic() < deadline:
            try:
                files = on(host, f"ls -A {root} 2>/dev/null || true")
                procs = set(on(host, "ps -e -o comm=").split()) - {"sshd", "bash", "sh", "ps"}
            except subprocess.TimeoutExpired:  # a busy machine: ask again
                continue
            if not files and not procs:
                break
            time.sleep(0.5)
        return files, procs

    return inspect


def refused(fleet: Fleet, url: str, instance: str, token: str) -> int:
    """The status meta answers an instance's token with (from the control namespace)."""
    code = (
        "import urllib.request, urllib.error\n"
        f"r = urllib.request.Request({url + '/v1/agent/instances/' + instance + '/bundle'!r},"
        f" headers={{'Authorization': 'Bearer ' + {token!r}}})\n"
        "try:\n    print(urllib.request.urlopen(r, timeout=10).status)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code)\n"
    )
    return int(fleet.control.run([sys.executable, "-c", code], timeout=30).stdout)


def routes(fleet: Fleet, url: str) -> dict[str, list[tuple[str, int]]]:
    """Each app's backends in meta's routing table, (host, port) each, read with the admin's
    token from the control namespace."""
    code = (
        "import urllib.request\n"
        f"r = urllib.request.Request({url + '/v1/router/routes'!r},"
        f" headers={{'Authorization': 'Bearer ' + {ADMIN!r}}})\n"
        "print(urllib.request.urlopen(r, timeout=10).read().decode())\n"
    )
    done = fleet.control.run([sys.executable, "-c", code], timeout=30)
    assert done.returncode == 0, done.stderr
    return {
        r["app"]: [(b["host"], b["port"]) for b in r["backends"]]
        for r in json.loads(done.stdout)["routes"]
    }


# three instances boot their user-data on test hosts, then leave: ~60 s alone, past the
# suite's 300 s once on a loaded 2-CPU CI machine (41 min run), so it gets 600
@pytest.mark.timeout(600)
def test_the_seed_command_runs_an_app_on_three_ec2_instances_and_they_leave_nothing(
    hosts_ready: None, tmp_path: Path
) -> None:
    home, app, root = tmp_path / "meta", tmp_path / "app", tmp_path / "gun-root"
    for d in (home, app, root):
        d.mkdir()
    (app / "web.py").write_text(WEB)
    (app / "Procfile").write_text("web: exec python3 web.py\nworker: exec sleep 100000\n")
    ids: list[str] = []
    with Fleet(hide=[home]) as fleet, moto(fleet, tmp_path) as endpoint:
        try:
            url = start_meta(fleet, home, **AWS_ENV, AWS_ENDPOINT_URL_EC2=endpoint)
            gun = Cli(fleet, url)
            made = ec2(fleet, endpoint, SETUP)
            with Cloud(fleet, endpoint, hide=[root], inspect=leftovers(str(root))) as cloud:
                gun.ok("apps.create", "groupme")
                out = gun.ok(
                    "app:groupme", "layers.set:app", "provider=ec2", f"ami={made['ami']}",
                    f"subnet={made['subnet']}", f"security_groups={made['sg']}",
                    "key_name=deploy", f"root={root}",
                )  # fmt: skip
                assert out == (
                    f"Layer app runs every type; its instances: provider ec2 (ami={made['ami']}"
                    f" subnet={made['subnet']} security_groups={made['sg']} key_name=deploy"
                    f" root={root})\n"
                )
                out = gun.ok(
                    "app:groupme", "instances.create:app", "count=3", "instance_type=c1.xlarge",
                    "availability_zone=us-east-1a", timeout=660,
                )  # fmt: skip
                assert re.fullmatch(r"(i-[0-9a-f]{8}  app  online\n){3}", out), out
                assert not cloud.errors, cloud.errors
                assert all(b.returncode == 0 for b in cloud.booted.values()), cloud.booted

                instances = gun.json("app:groupme", "instances")
                ids = [i["id"] for i in instances]
                assert [(i["provider"], i["state"], i["cloud_state"]) for i in instances] == [
                    ("ec2", "online", "running")
                ] * 3
                host_of = {i["id"]: cloud.hosts[i["cloud_id"]] for i in instances}
                table = gun.ok("app:groupme", "instances")
                assert table.splitlines()[0].split()[-2:] == ["EC2", "HEARD"]

                gun.ok("app:groupme", "deploy", f"dir={app}", timeout=300)
                gun.ok("app:groupme", "scale", "web=3", "worker=2", timeout=300)
                ps = gun.json("app:groupme", "ps")
                assert sorted((p["name"], p["state"]) for p in ps) == [
                    ("web.1", "up"), ("web.2", "up"), ("web.3", "up"),
                    ("worker.1", "up"), ("worker.2", "up"),
                ]  # fmt: skip
                webs = [(host_of[p["instance"]], p["port"]) for p in ps if p["type"] == "web"]
                assert sorted(h.name for h, _ in webs) == ["ec2-0", "ec2-1", "ec2-2"]
                for host, port in webs:
                    assert get(fleet, f"http://{host.address}:{port}/") == host.name
                # meta routes to each web process at its host's address, as its agent reported
                backends = routes(fleet, url)["groupme"]
                assert sorted(backends) == sorted((h.address, port) for h, port in webs)
                assert set(gun.ok("app:groupme", "ps").split()) >= set(ids)  # ps shows hosts

                tokens = {
                    cid: json.loads(re.search(r"^(\{.*\})$", ud, re.M)[1])  # type: ignore[index]
                    for cid, ud in cloud.user_data.items()
                }
                for i in ids:
                    gun.ok("app:groupme", f"instances.delete:{i}", timeout=120)
                deadline = time.monotonic() + 150
                while len(cloud.inspected) < 3 and time.monotonic() < deadline:
                    time.sleep(0.5)
                assert not cloud.errors, cloud.errors
                assert cloud.inspected == dict.fromkeys(cloud.hosts, ("", set()))
                assert gun.json("app:groupme", "instances") == []
                for config in tokens.values():
                    assert refused(fleet, url, config["instance"], config["token"]) == 401
        finally:
            if isolation.can_switch():
                for i in ids:
                    isolation.remove(isolation.instance_user_name(root / "instances" / i))
