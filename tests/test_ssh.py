"""Reaching a host over ssh (gun/providers/ssh.py): what `hosts.add` checks, against a real
sshd on 127.0.0.1, and each way it can fail said in one sentence naming the host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.errors import InvalidParams, Unavailable
from gun.providers.ssh import Ssh, Target, check, explain, parse_target
from tests.sshd import Sshd, keygen, login_user, sshd_running


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with sshd_running(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def host(sshd: Sshd, **kw: str) -> Ssh:
    return Ssh("web1", Target("root", "127.0.0.1", sshd.port), **{"key": sshd.key, **kw})


def test_a_host_with_python_311_or_newer_is_checked_and_its_key_pinned(sshd: Sshd) -> None:
    facts = check(host(sshd))
    assert facts.python[:2] >= (3, 11)
    algorithm, key = sshd.host_key.read_text().split()[:2]
    assert facts.known_host == f"[127.0.0.1]:{sshd.port} {algorithm} {key}"
    done, _ = host(sshd, known_host=facts.known_host).run("echo pinned")
    assert done.stdout == b"pinned\n"


def test_a_key_the_host_refuses(sshd: Sshd, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other")
    with pytest.raises(Unavailable) as e:
        check(host(sshd, key=other))
    assert e.value.message == (
        f"host web1 (root@127.0.0.1:{sshd.port}) refused the key (permission denied for user root)"
    )


def test_a_host_whose_key_is_not_the_pinned_one(sshd: Sshd, tmp_path: Path) -> None:
    keygen(tmp_path / "impostor")
    algorithm, key = (tmp_path / "impostor.pub").read_text().split()[:2]
    pinned = f"[127.0.0.1]:{sshd.port} {algorithm} {key}"
    with pytest.raises(Unavailable) as e:
        check(host(sshd, known_host=pinned))
    assert e.value.message == (
        f"host web1 (root@127.0.0.1:{sshd.port}) presented a host key other than the one pinned"
        " when it was added"
    )


def test_nothing_listening(sshd: Sshd) -> None:
    dead = Ssh("web1", Target("root", "127.0.0.1", 9), key=sshd.key)
    with pytest.raises(Unavailable) as e:
        check(dead)
    assert e.value.message == (
        "host web1 (root@127.0.0.1:9) refuses connections on port 9 (is sshd running?)"
    )


def test_python_too_old_or_missing(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "python3").write_text("#!/bin/sh\necho 3 9 2\n")
    (old / "python3").chmod(0o755)
    with login_user(tmp_path) as user:
        for i, (path, said) in enumerate(
            [
                (f"{old}:/usr/bin:/bin", "has Python 3.9.2; gun's agent needs 3.11 or newer"),
                ("/nowhere", "has no python3 (gun's agent needs Python 3.11 or newer)"),
            ]
        ):
            with sshd_running(tmp_path / f"sshd{i}", path=path) as server:
                target = Target(user, "127.0.0.1", server.port)
                with pytest.raises(InvalidParams) as e:
                    check(Ssh("web1", target, key=server.key))
                assert e.value.message == f"host web1 ({target}) {said}"


@pytest.mark.parametrize(
    ("text", "port", "target"),
    [
        ("root@203.0.113.5", 22, Target("root", "203.0.113.5", 22)),
        ("deploy@web-1.example.com", 2222, Target("deploy", "web-1.example.com", 2222)),
        ("root@[2001:db8::1]", 22, Target("root", "2001:db8::1", 22)),
        ("root@2001:db8::1", 22, Target("root", "2001:db8::1", 22)),
    ],
)
def test_targets(text: str, port: int, target: Target) -> None:
    assert parse_target(text, port) == target


@pytest.mark.parametrize(
    ("text", "port", "said"),
    [
        ("203.0.113.5", 22, "'203.0.113.5' is not USER@ADDRESS (for example root@203.0.113.5)"),
        ("@203.0.113.5", 22, "'@203.0.113.5' is not USER@ADDRESS (for example root@203.0.113.5)"),
        ("ro ot@host", 22, "'ro ot' is not a Unix user name"),
        ("root@", 22, "'' is not a host name or an IP address"),
        ("root@300.1.1.1", 22, "'300.1.1.1' is not a host name or an IP address"),
        ("root@-x.example", 22, "'-x.example' is not a host name or an IP address"),
        ("root@a b", 22, "'a b' is not a host name or an IP address"),
        ("root@host", 0, "port 0 is not a port number (1 to 65535)"),
        ("root@host", 65536, "port 65536 is not a port number (1 to 65535)"),
    ],
)
def test_bad_targets(text: str, port: int, said: str) -> None:
    with pytest.raises(InvalidParams) as e:
        parse_target(text, port)
    assert e.value.message == said


@given(st.text(max_size=60), st.integers(-5, 70000))
def test_any_target_text_is_read_or_refused_in_one_sentence(text: str, port: int) -> None:
    try:
        target = parse_target(text, port)
    except InvalidParams as e:
        assert e.message.count("\n") == 0
        return
    assert parse_target(f"{target.user}@{target.address}", port) == target


@pytest.mark.parametrize(
    ("stderr", "said"),
    [
        ("ssh: connect to host 10.0.0.9 port 22: Connection timed out", "did not answer on port 22 within 10 s"),  # noqa: E501
        ("ssh: connect to host 10.0.0.9 port 22: No route to host", "cannot be reached (no route to host)"),  # noqa: E501
        ("ssh: Could not resolve hostname nope: Name or service not known", "has a name that does not resolve"),  # noqa: E501
        ("Connection closed by 10.0.0.9 port 22", "closed the connection"),
        ("kex_exchange_identification: read: Connection reset by peer", "closed the connection"),
        ("something new\n", "cannot be reached over ssh: something new"),
    ],
)  # fmt: skip
def test_what_ssh_says_becomes_one_sentence(stderr: str, said: str) -> None:
    assert explain("db", Target("root", "10.0.0.9"), stderr) == f"host db (root@10.0.0.9) {said}"
