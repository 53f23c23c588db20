"""Hosts as a user registers them: the real `gun` CLI against a real meta (both stores), which
checks each host over ssh against a real sshd on 127.0.0.1. A host that cannot be used is one
sentence naming it, and nothing is registered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.meta import MetaServer
from tests.sshd import Sshd, keygen, sshd_running

ADMIN = "gun_test_admin_token"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with sshd_running(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def meta(database_url: str, tmp_path: Path) -> Iterator[MetaServer]:
    server = MetaServer(tmp_path / "home", database_url, admin_token=ADMIN)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_a_host_from_registration_to_removal(
    meta: MetaServer, sshd: Sshd, tmp_path: Path, database_url: str
) -> None:
    gun = meta.gun
    key = tmp_path / "id_ed25519"
    key.write_text(sshd.key)
    assert gun("hosts", "--json").out == "[]\n"

    r = gun("hosts.add", "web1", "root@127.0.0.1", f"port={sshd.port}", f"key={key}")
    assert r.code == 0, r.err
    assert r.out.startswith(f"Added host web1 (root@127.0.0.1:{sshd.port}, Python 3.")
    assert r.out.endswith("); agents will live in /var/lib/gun\n")

    r = gun("hosts", "--json")
    assert json.loads(r.out) == [
        {
            "name": "web1",
            "address": "127.0.0.1",
            "user": "root",
            "port": sshd.port,
            "root": "/var/lib/gun",
            "instances": 0,
        }
    ]
    r = gun("hosts")
    assert r.out.splitlines()[0].split() == [
        "NAME", "ADDRESS", "USER", "PORT", "ROOT", "PYTHON", "KEY", "INSTANCES",
    ]  # fmt: skip
    assert r.out.splitlines()[1].split()[:5] == [
        "web1",
        "127.0.0.1",
        "root",
        str(sshd.port),
        "/var/lib/gun",
    ]  # noqa: E501

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as c:
            sealed, pinned = c.execute(sa.text("SELECT key_sealed, known_host FROM hosts")).one()
    finally:
        engine.dispose()
    assert "PRIVATE KEY" not in sealed, "the key is kept encrypted"
    assert pinned.split()[1:3] == sshd.host_key.read_text().split()[:2]

    r = gun("hosts.add", "web1", "root@127.0.0.1", f"port={sshd.port}", f"key={key}")
    assert (r.code, r.err) == (1, "gun: host web1 is already registered\n")

    assert gun("hosts.remove:web1").out == "Removed host web1\n"
    assert gun("hosts", "--json").out == "[]\n"
    r = gun("hosts.remove:web1")
    assert (r.code, r.err) == (1, "gun: host 'web1' is not registered\n")


def test_a_host_that_cannot_be_used_is_not_registered(
    meta: MetaServer, sshd: Sshd, tmp_path: Path
) -> None:
    gun = meta.gun
    keygen(tmp_path / "stranger")
    where = f"root@127.0.0.1:{sshd.port}"
    cases = [
        (
            ["web2", "root@127.0.0.1", f"port={sshd.port}", f"key={tmp_path / 'stranger'}"],
            f"host web2 ({where}) refused the key (permission denied for user root)",
        ),
        (
            ["web3", "root@127.0.0.1", "port=9", f"key={tmp_path / 'stranger'}"],
            "host web3 (root@127.0.0.1:9) refuses connections on port 9 (is sshd running?)",
        ),
        (["Web_4", "root@127.0.0.1"], "host name 'Web_4' is invalid: use up to 30 lowercase"
         " letters, digits and dashes, starting with a letter"),
        (["web5", "127.0.0.1"], "'127.0.0.1' is not USER@ADDRESS (for example root@203.0.113.5)"),
        (["web6", "root@127.0.0.1", "root=var/lib/gun"], "root 'var/lib/gun' is invalid: give an"
         " absolute directory other than /, of letters, digits, '.', '_', '-' and '/'"),
        (["web7", "root@127.0.0.1", "port=70000"], "port 70000 is not a port number (1 to 65535)"),
    ]  # fmt: skip
    for args, said in cases:
        r = gun("hosts.add", *args)
        assert (r.code, r.err) == (1, f"gun: {said}\n"), args
    assert gun("hosts", "--json").out == "[]\n", "nothing half-registered"

    r = gun("hosts.add", "web8", "root@127.0.0.1", f"key={tmp_path / 'nothing'}")
    assert (r.code, r.err) == (
        2,
        f"gun: key {tmp_path / 'nothing'} cannot be read: No such file or directory\n",
    )
    (tmp_path / "public").write_text((tmp_path / "stranger.pub").read_text())
    r = gun("hosts.add", "web8", "root@127.0.0.1", f"key={tmp_path / 'public'}")
    public = tmp_path / "public"
    assert r.err == f"gun: key {public} is not a private key (no -----BEGIN ... PRIVATE KEY-----)\n"


def test_only_an_admin_adds_or_removes_hosts(meta: MetaServer, sshd: Sshd) -> None:
    gun = meta.gun
    dev = gun("tokens.create", "dev", "role=developer").out.strip()
    r = gun("hosts.add", "web1", "root@127.0.0.1", f"port={sshd.port}", token=dev)
    assert (r.code, r.err) == (1, "gun: token 'dev' has role developer; this needs role admin\n")
    assert gun("hosts", token=dev).code == 0
    assert gun("hosts.remove:web1", token=dev).err == (
        "gun: token 'dev' has role developer; this needs role admin\n"
    )
