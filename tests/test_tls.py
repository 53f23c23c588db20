"""HTTPS for meta and the drain with a CA of the team's own: `gun server certs` makes it, meta
serves with GUN_TLS_CERT/KEY and hands GUN_TLS_CA to its agents, which pin it; the CLI pins it
with `gun login --ca` or GUN_API_CA, and the drain with GUN_TLS_CA."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from gun import certs
from gun.agent.uninstall import uninstall
from gun.errors import InvalidParams
from tests.drain import DRAIN, LOGPLEX, drain_env, drain_running, send_raw
from tests.meta import GUN, MetaServer, free_port

ADMIN = "gun_test_admin_token_for_tls"


def run_gun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
    e.update(env or {})
    return subprocess.run([*GUN, *args], env=e, capture_output=True, text=True, timeout=60)


def make_certs(where: Path, *names: str) -> Path:
    done = run_gun("server", "certs", "--dir", str(where), *names)
    assert done.returncode == 0, done.stderr
    return where


def test_a_server_certificate_is_signed_by_the_ca_for_its_names() -> None:
    ca = certs.new_ca()
    server = certs.new_server(ca, ["meta.lan", "10.200.0.1", "::1"])
    leaf, chained = x509.load_pem_x509_certificates(server.cert)
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    assert chained == ca_cert  # the file holds the chain
    leaf.verify_directly_issued_by(ca_cert)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["meta.lan"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.200.0.1", "::1"]
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad name", "'bad name' is neither a host name nor an IP address"),
        ("-meta", "'-meta' is neither a host name nor an IP address"),
        ("a..b", "'a..b' is neither a host name nor an IP address"),
        ("x" * 64 + ".lan", "is neither a host name nor an IP address"),
        ("", "'' is neither a host name nor an IP address"),
    ],
)
def test_names_that_are_not_host_names_or_addresses_are_refused(name: str, message: str) -> None:
    with pytest.raises(InvalidParams, match=message.replace("(", r"\(").replace(".", r"\.")):
        certs.check_name(name)


@given(st.text(max_size=300))
def test_any_name_is_taken_or_refused_in_one_sentence(name: str) -> None:
    try:
        made = certs.check_name(name)
    except InvalidParams as e:
        assert e.message.endswith("is neither a host name nor an IP address")
    else:
        assert isinstance(made, x509.DNSName | x509.IPAddress)


def test_gun_server_certs_makes_a_ca_once_and_signs_again_with_it(tmp_path: Path) -> None:
    where = tmp_path / "certs"
    first = run_gun("server", "certs", "--dir", str(where), "127.0.0.1", "meta.lan")
    assert first.returncode == 0, first.stderr
    assert f"CA made: {where / 'ca.pem'}" in first.stderr
    assert f"GUN_TLS_CA={where / 'ca.pem'}" in first.stderr
    for key in ("ca-key.pem", "server-key.pem"):
        assert (where / key).stat().st_mode & 0o777 == 0o600
    ca = (where / "ca.pem").read_bytes()

    again = run_gun("server", "certs", "--dir", str(where), "meta.example.com")
    assert again.returncode == 0, again.stderr
    assert "CA kept" in again.stderr
    assert (where / "ca.pem").read_bytes() == ca  # agents that pinned it still trust meta
    leaf = x509.load_pem_x509_certificates((where / "server.pem").read_bytes())[0]
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))

    bad = run_gun("server", "certs", "--dir", str(tmp_path / "other"), "meta.lan", "no way")
    assert (bad.returncode, bad.stderr) == (
        2,
        "gun: 'no way' is neither a host name nor an IP address\n",
    )
    assert not (tmp_path / "other").exists()  # nothing half made


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GUN_TLS_CERT": "server.pem"}, "set both GUN_TLS_CERT and GUN_TLS_KEY, or neither"),
        (
            {"GUN_TLS_CERT": "server.pem", "GUN_TLS_KEY": "missing.pem"},
            "GUN_TLS_KEY={dir}/missing.pem is not a file",
        ),
        (
            {"GUN_TLS_CA": "server-key.pem"},
            "GUN_TLS_CA={dir}/server-key.pem holds no PEM certificate",
        ),
        (
            {
                "GUN_TLS_CERT": "server.pem",
                "GUN_TLS_KEY": "server-key.pem",
                "GUN_PUBLIC_URL": "http://meta.lan:5100",
            },
            "GUN_PUBLIC_URL=http://meta.lan:5100 is http:// but meta serves HTTPS",
        ),
    ],
)
def test_meta_refuses_tls_settings_that_do_not_fit(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    where = make_certs(tmp_path / "certs", "127.0.0.1")
    paths = {k: v if v.startswith("http") else str(where / v) for k, v in env.items()}
    done = run_gun(
        "server", "meta", "--listen", f"127.0.0.1:{free_port()}",
        env={"GUN_HOME": str(tmp_path / "home"), **paths},
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (2, f"gun: {message.format(dir=where)}\n")


def test_meta_over_https_with_the_teams_ca(tmp_path: Path) -> None:
    """The CLI, an agent of the local provider and the drain all reach meta over HTTPS, each
    pinning the team's CA; without it, or with another CA, they are refused."""
    where = make_certs(tmp_path / "certs", "127.0.0.1")
    other = make_certs(tmp_path / "other", "127.0.0.1")
    drain_port = free_port()
    meta = MetaServer(tmp_path / "home", f"sqlite:///{tmp_path / 'meta.db'}", ADMIN)
    meta.serve_tls(where)
    meta.extra_env.update(GUN_DRAIN_URL=f"http://127.0.0.1:{drain_port}", GUN_DRAIN_TOKEN=DRAIN)
    stray: subprocess.Popen[bytes] | None = None
    with_ca = {"GUN_API_CA": str(where / "ca.pem")}
    try:
        meta.start()
        assert f"meta listening on https://127.0.0.1:{meta.port}" in meta.log.read_text()

        # the CLI: without the CA, one sentence; with GUN_API_CA, or as saved by login --ca
        refused = meta.gun("apps")
        assert refused.code == 1
        assert refused.err.startswith(
            f"gun: meta at {meta.url} has a certificate this CLI does not trust ("
        )
        assert refused.err.endswith("give its CA with `gun login --ca PATH` or GUN_API_CA\n")
        assert meta.gun("apps.create", "shop", env=with_ca).code == 0
        config = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
        login = run_gun(
            "login", "--api", meta.url, "--token", ADMIN, "--ca", str(where / "ca.pem"), env=config
        )
        assert login.returncode == 0, login.stderr
        assert login.stdout == f"Logged in to {meta.url} as admin (role admin)\n"
        listed = run_gun("apps", "--json", env=config)
        assert [a["name"] for a in json.loads(listed.stdout)] == ["shop"]
        wrong = run_gun(
            "login", "--api", meta.url, "--token", ADMIN, "--ca", str(other / "ca.pem"), env=config
        )
        assert wrong.returncode == 1 and "does not trust" in wrong.stderr

        # an agent of the local provider pins the CA meta handed it
        made = meta.gun("app:shop", "instances.create:default", "--json", env=with_ca)
        assert made.code == 0, made.err
        [instance] = json.loads(made.out)
        assert instance["state"] == "online"
        agent_json = Path(instance["address"]) / "etc" / "agent.json"
        saved = json.loads(agent_json.read_text())
        assert saved["ca"] == (where / "ca.pem").read_text()
        assert saved["meta"] == meta.url
        assert agent_json.stat().st_mode & 0o777 == 0o600

        # an agent that pins another CA does not talk to this meta
        root = tmp_path / "stray"
        (root / "etc").mkdir(parents=True)
        saved.update(instance="i-00000000", ca=(other / "ca.pem").read_text())
        (root / "etc" / "agent.json").write_text(json.dumps(saved))
        with open(tmp_path / "stray.log", "wb") as out:
            stray = subprocess.Popen(
                [*GUN[:1], "-m", "gun.agent", "--root", str(root)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while "CERTIFICATE_VERIFY_FAILED" not in (tmp_path / "stray.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "stray.log").read_text()
            time.sleep(0.2)

        # the drain asks meta for ingest tokens over HTTPS, pinned to GUN_TLS_CA
        with meta.http() as api:
            ingest = api.get("/v1/apps/shop/drains/ingest").json()["url"]
        env = drain_env(meta.url, tmp_path / "drain", GUN_TLS_CA=str(where / "ca.pem"))
        with httpx.Client(timeout=10) as http, drain_running(env, drain_port, http, tmp_path):
            frame = b"<190>1 2026-12-05T03:00:00+00:00 host app web.1 - hello over tls\n"
            body = b"%d %s" % (len(frame), frame)
            answer = send_raw(
                f"http://127.0.0.1:{drain_port}", b"POST", httpx.URL(ingest).raw_path,
                {**LOGPLEX, "Logplex-Frame-Id": "tls-1"}, body,
            )  # fmt: skip
            assert answer.status == 200, answer.body
            assert answer.json()["lines"] == 1
        deleted = meta.gun("app:shop", "instances.delete:" + instance["id"], env=with_ca)
        assert deleted.code == 0, deleted.err
    finally:
        if meta.proc is not None:  # the local agents outlive meta: stop them through it
            meta.gun("apps.destroy", "shop", "confirm=shop", env=with_ca)
        if stray is not None:
            os.killpg(stray.pid, signal.SIGKILL)
            stray.wait(10)
            uninstall(tmp_path / "stray")
        meta.stop()


HTTPS_FROM_AN_AGENT_WITHOUT_SSL = """
import sys
sys.modules["ssl"] = None  # as __main__ does for an agent of an http:// meta
import http.client
assert not hasattr(http.client, "HTTPSConnection")
from gun.agent import tls
ca = open(sys.argv[1]).read()
context = tls.context(ca, system=True)
conn = tls.HTTPSConnection("127.0.0.1", int(sys.argv[2]), timeout=10, context=context)
conn.request("GET", "/")
print(conn.getresponse().status)
"""


def test_an_agent_started_without_ssl_reaches_an_https_drain(tmp_path: Path) -> None:
    """An agent of an http:// meta starts without OpenSSL; an https drain added later loads it."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    where = make_certs(tmp_path / "certs", "127.0.0.1")

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Ok)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(where / "server.pem", where / "server-key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = str(server.server_address[1])
        done = subprocess.run(
            [*GUN[:1], "-c", HTTPS_FROM_AN_AGENT_WITHOUT_SSL, str(where / "ca.pem"), port],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert (done.returncode, done.stdout) == (0, "204\n"), done.stderr
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
