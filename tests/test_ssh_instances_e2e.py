"""Provider ssh, as a user runs it: a host registered with `gun hosts.add`, an instance put on
it with `instances.create provider=ssh host=NAME` (meta sends the agent's wheels over ssh, the
host makes a venv of its python3 and starts the agent under a keep-alive loop), a deploy
whose web process runs there, and `instances.delete` leaving nothing behind.

The host is a real sshd on 127.0.0.1 of this machine: the agent reaches meta over HTTP only,
but shares meta's filesystem (tests/hosts makes hosts of their own, for fleet tests)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from gun import isolation
from gun.agent.uninstall import uninstall
from tests.meta import MetaServer
from tests.sshd import Sshd, sshd_running

ADMIN = "gun_test_admin_token"


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    with sshd_running(tmp_path / "sshd") as server:
        yield server


@pytest.fixture
def meta(tmp_path: Path) -> Iterator[MetaServer]:
    server = MetaServer(tmp_path / "home", f"sqlite:///{tmp_path / 'meta.db'}", ADMIN)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def running_under(path: Path) -> list[str]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(p.info["cmdline"] or [])
        if str(path) in cmdline:
            found.append(f"{p.info['pid']}: {cmdline}")
    return found


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """The host's root for agents; whatever a failed test left running there is stopped."""
    root = tmp_path / "host-root"
    try:
        yield root
    finally:
        for pidfile in root.glob("instances/*/keepalive.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pidfile.read_text()), signal.SIGKILL)
            uninstall(pidfile.parent)


def test_an_instance_on_a_host_from_creation_to_deletion(
    meta: MetaServer, sshd: Sshd, tmp_path: Path, root: Path
) -> None:
    gun = meta.gun
    key = tmp_path / "id_ed25519"
    key.write_text(sshd.key)
    key.chmod(0o600)
    r = gun(
        "hosts.add", "web1", "root@127.0.0.1", f"port={sshd.port}", f"key={key}", f"root={root}"
    )
    assert r.code == 0, r.err
    assert gun("apps.create", "shop").code == 0

    r = gun("app:shop", "instances.create:default", "provider=ssh", "host=web1", "timeout=120")
    assert r.code == 0, r.err + meta.log.read_text()[-3000:]
    iid = r.out.split()[0]
    assert r.out == f"{iid}  default  online\n"
    with meta.http() as api:
        shown = api.get("/v1/apps/shop/instances").json()
    assert [(i["id"], i["state"], i["provider"], i["host"]) for i in shown] == [
        (iid, "online", "ssh", "web1")
    ]
    assert json.loads(gun("hosts", "--json").out)[0]["instances"] == 1
    there = root / "instances" / iid
    assert oct((there / "etc" / "agent.json").stat().st_mode & 0o777) == "0o600"
    token = json.loads((there / "etc" / "agent.json").read_text())["token"]

    agent = next(p for p in running_under(there) if " -m gun.agent " in p)
    os.kill(int(agent.split(":")[0]), signal.SIGKILL)  # its keep-alive loop starts it again
    deadline = time.monotonic() + 10
    while not [p for p in running_under(there) if " -m gun.agent " in p and p != agent]:
        assert time.monotonic() < deadline, "the agent was not started again"
        time.sleep(0.1)

    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_text("web: exec python3 -m http.server $PORT --bind 127.0.0.1\n")
    (app / "index.html").write_text("served from the host\n")
    r = gun("app:shop", "deploy", f"dir={app}")
    assert r.code == 0, r.err
    ps = json.loads(gun("app:shop", "ps", "--json").out)
    assert [(p["name"], p["state"], p["instance"]) for p in ps] == [("web.1", "up", iid)]
    assert httpx.get(f"http://127.0.0.1:{ps[0]['port']}/").text == "served from the host\n"

    r = gun("app:shop", "ssh.host:web.1", f"key={key}", input="pwd\nexit 3\n")
    assert r.code == 3, r.err
    assert r.out.splitlines()[-1] == f"{there}/current", "a shell in the release directory"
    r = gun("app:shop", f"ssh.host:{iid}", input="exit 0\n")  # no key: ssh's own are refused
    assert (r.code, r.err.splitlines()[-1]) == (
        255,
        "root@127.0.0.1: Permission denied (publickey).",
    )  # noqa: E501

    r = gun("hosts.remove:web1")
    assert (r.code, r.err) == (
        1,
        "gun: host web1 runs 1 instance(s): delete them first (gun instances.delete:ID -a APP)\n",
    )

    r = gun("app:shop", "instances.delete:" + iid)
    assert (r.code, r.out) == (0, f"Deleted instance {iid}\n"), r.err
    assert not root.exists(), "the last instance gone, the host's root goes too"
    deadline = time.monotonic() + 10
    while running_under(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running_under(root) == []
    user = isolation.instance_user_name(there)
    if os.geteuid() == 0:
        with pytest.raises(KeyError):
            pwd.getpwnam(user)
    with httpx.Client(base_url=meta.url, headers={"Authorization": f"Bearer {token}"}) as agent:
        assert agent.get(f"/v1/agent/instances/{iid}/desired").status_code == 401
    assert gun("hosts.remove:web1").out == "Removed host web1\n"


def test_a_shell_on_a_local_instance(meta: MetaServer) -> None:
    gun = meta.gun
    assert gun("apps.create", "shop").code == 0
    iid = gun("app:shop", "instances.create:default").out.split()[0]
    try:
        r = gun("app:shop", "ssh.host", input="pwd\nexit 4\n")
        assert r.code == 4, r.err
        assert r.out.splitlines()[-1] == str(meta.home / "instances" / iid)
        r = gun("app:shop", "ssh.host:web.9")
        assert (r.code, r.err) == (1, "gun: process 'web.9' of app 'shop' does not run anywhere\n")
    finally:
        gun("app:shop", f"instances.delete:{iid}")


def test_a_host_gone_since_it_was_added_makes_no_instance(meta: MetaServer, tmp_path: Path) -> None:
    gun = meta.gun
    key = tmp_path / "id_ed25519"
    with sshd_running(tmp_path / "gone") as server:
        key.write_text(server.key)
        key.chmod(0o600)
        r = gun("hosts.add", "web1", "root@127.0.0.1", f"port={server.port}", f"key={key}")
        assert r.code == 0, r.err
        port = server.port
    assert gun("apps.create", "shop").code == 0
    r = gun("app:shop", "instances.create:default", "count=2", "provider=ssh", "host=web1")
    assert (r.code, r.err) == (
        1,
        f"gun: host web1 (root@127.0.0.1:{port}) refuses connections on port {port} (is sshd"
        " running?)\n",
    )
    assert gun("app:shop", "instances", "--json").out == "[]\n", "nothing half-made"
    assert json.loads(gun("hosts", "--json").out)[0]["instances"] == 0


def test_provider_ssh_needs_a_registered_host(meta: MetaServer) -> None:
    gun = meta.gun
    assert gun("apps.create", "shop").code == 0
    for args, said in (
        (["provider=ssh"], "provider ssh needs host=NAME (gun hosts lists them)"),
        (
            ["provider=ssh", "host=nowhere"],
            "host 'nowhere' is not registered (gun hosts lists them)",
        ),  # noqa: E501
        (["host=web1"], "host= is for provider ssh only"),
    ):
        r = gun("app:shop", "instances.create:default", *args)
        assert (r.code, r.err) == (1, f"gun: {said}\n"), args
    assert gun("app:shop", "instances", "--json").out == "[]\n", "nothing half-made"
