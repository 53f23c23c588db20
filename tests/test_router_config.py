"""HAProxy's configuration from the routing table (gun.router.haproxy): what `render` writes is
loaded by the real HAProxy (`haproxy -c`), the hosts map, and `plan`'s runtime commands from
one table to the next as a table of cases."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import gun
from gun import atomic, certs
from gun.errors import Unavailable
from gun.router import haproxy
from gun.router.haproxy import Settings, files, gone, hosts_map, plan, render
from gun.router.runner import Router, binary, self_signed_pem
from gun.router.table import Backend, Certificate, Route, Table


@pytest.fixture
def home() -> Iterator[Path]:
    """A short directory: the admin socket's path must fit in 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="gunrt", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def settings(home: Path) -> Settings:
    return Settings(listen="127.0.0.1:18080", home=home, syslog="127.0.0.1:9")


def b(name: str, port: int, host: str = "127.0.0.1") -> Backend:
    return Backend(name, host, port)


def route(app: str, *backends: Backend, hostnames: tuple[str, ...] = ()) -> Route:
    return Route(app, (f"{app}.localhost", *hostnames), tuple(backends), ())


TABLES = {
    "empty": Table(()),
    "no backends": Table((route("shop"),)),
    "backends": Table(
        (
            route("blog", b("web.1", 6001), b("web.2", 6002, "2001:db8::2")),
            route(
                "shop",
                b("web.1", 5001, "::1"),
                b("web.10", 5010, "10.0.0.7"),
                b("web.2", 5002, "node-3.internal"),
                hostnames=("*.shop.example.com", "shop.example.com"),
            ),
            route("shop-", b("worker_x.7", 7007)),
        )
    ),
}


def tls_table() -> Table:
    """An app with a certificate of its own, for www.shop.example.com."""
    pair = certs.new_server(certs.new_ca("test CA"), ["www.shop.example.com"])
    cert = Certificate(
        "shop", ("www.shop.example.com",), "ab" * 32, pair.cert.decode() + pair.key.decode()
    )
    shop = Route("shop", ("shop.localhost", "www.shop.example.com"), (), (), https_only=True)
    return Table((route("blog"), shop), (cert,))


def write(written: dict[Path, tuple[str, int]]) -> None:
    for path, (text, mode) in written.items():
        atomic.write(path, text, mode)


@pytest.mark.parametrize("name", [*sorted(TABLES), "tls"])
def test_haproxy_loads_the_rendered_config(name: str, home: Path) -> None:
    s = settings(home)
    if name == "tls":
        s = replace(s, tls_listen="127.0.0.1:18443")
        default = certs.new_server(certs.new_ca("test CA"), ["shop.localhost"])
        written = files(tls_table(), s, default.cert.decode() + default.key.decode())
        assert (written[s.tls / "default.pem"][1], written[s.tls / f"{'ab' * 32}.pem"][1]) == (
            0o600,
            0o600,
        )  # private keys
        assert written[s.https_map][0] == "app-shop 1\n"
        assert written[s.tls / "certs.list"][0].endswith(" www.shop.example.com\n")
    else:
        written = files(TABLES[name], s)
    write(written)
    done = subprocess.run(
        [binary(), "-c", "-f", str(s.config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_config_names_every_app_and_process(home: Path) -> None:
    s = settings(home)
    text = render(TABLES["backends"], s)
    assert text.count("\nbackend ") == 4
    assert "\nbackend no-app\n" in text
    assert "\nbackend app-blog\n  balance roundrobin\n" in text
    assert "  server web.1 [::1]:5001 check inter 1000 fall 2 rise 1\n" in text
    assert "  server web.2 [2001:db8::2]:6002 check inter 1000 fall 2 rise 1\n" in text
    assert "  server web.2 node-3.internal:5002 check inter 1000 fall 2 rise 1\n" in text
    assert f"  stats socket {home}/admin.sock mode 600 level admin" in text
    assert "  log 127.0.0.1:9 len 8192 format rfc5424" in text
    assert "  bind 127.0.0.1:18080\n" in text
    assert "  timeout server 30000ms\n" in text
    assert set(files(TABLES["backends"], s)) == {
        home / "haproxy.cfg",
        home / "hosts.map",
        home / "https.map",
        home / "no-app.html",
        home / "no-web.http",
        home / "timeout.http",
        home / "closed.http",
    }


def test_every_error_page_is_a_503() -> None:
    for _, title in haproxy.ERROR_PAGES.values():
        page = haproxy.error_page(title)
        head, _, body = page.partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 503 Service Unavailable\r\n")
        assert f"Content-Length: {len(body.encode())}\r\n" in head
        assert title in body


def test_the_hosts_map() -> None:
    assert hosts_map(TABLES["backends"]) == (
        "*.shop.example.com app-shop\n"
        "blog.localhost app-blog\n"
        "shop-.localhost app-shop-\n"
        "shop.example.com app-shop\n"
        "shop.localhost app-shop\n"
    )
    assert hosts_map(Table(())) == ""


# -- plan: the runtime commands from one table to the next --------------------------------------

S = Settings(listen="127.0.0.1:18080", home=Path("/r"), syslog="127.0.0.1:9")
TWO = Table((route("blog"), route("shop", b("web.1", 5001), b("web.2", 5002))))


@pytest.mark.parametrize(
    ("new", "lingering", "commands", "gone_"),
    [
        (TWO, (), [], []),
        (
            Table(
                (
                    route("blog", b("web.1", 6001, "::1")),
                    route("shop", b("web.1", 5001), b("web.2", 5002), b("web.3", 5003)),
                )
            ),
            (),
            None,  # processes of new names: a reload (HAProxy 2.6 reuses no connection to a
            [],  # server added at runtime: bench/router.py)
        ),
        (
            Table((route("blog"), route("shop", b("web.1", 5001), b("web.2", 5102, "10.0.0.2")))),
            (),
            ["set server app-shop/web.2 addr 10.0.0.2 port 5102"],
            [],
        ),
        (
            Table((route("blog"), route("shop", b("web.2", 5002)))),
            (),
            ["set server app-shop/web.1 state maint"],
            [("app-shop", "web.1")],
        ),
        (
            Table((route("blog"), route("shop"))),
            (),
            ["set server app-shop/web.1 state maint", "set server app-shop/web.2 state maint"],
            [("app-shop", "web.1"), ("app-shop", "web.2")],
        ),
        (  # web.3 left a moment ago and is still in HAProxy: it is taken over
            Table(
                (route("blog"), route("shop", b("web.1", 5001), b("web.2", 5002), b("web.3", 5)))
            ),
            {("app-shop", "web.3")},
            [
                "set server app-shop/web.3 addr 127.0.0.1 port 5",
                "set server app-shop/web.3 state ready",
            ],
            [],
        ),
        (  # a lingering server of another app is not this one
            Table(
                (route("blog"), route("shop", b("web.1", 5001), b("web.2", 5002), b("web.3", 5)))
            ),
            {("app-blog", "web.3")},
            None,
            [],
        ),
    ],
)
def test_plan(
    new: Table,
    lingering: set[tuple[str, str]],
    commands: list[str] | None,
    gone_: list[tuple[str, str]],
) -> None:
    assert plan(TWO, new, S, lingering) == commands
    assert list(gone(TWO, new)) == gone_


@pytest.mark.parametrize(
    "new",
    [
        Table((route("shop", b("web.1", 5001), b("web.2", 5002)),)),  # an app gone
        Table((route("blog"), route("new"), route("shop", b("web.1", 5001), b("web.2", 5002)))),
        Table(
            (route("blog"), route("shop", b("web.1", 5001), b("web.2", 5002), hostnames=("a.b",)))
        ),
        Table((route("blog", hostnames=("blog.example.com",)), route("shop"))),
        Table(()),
    ],
)
def test_plan_asks_for_a_reload_when_apps_or_hostnames_change(new: Table) -> None:
    assert plan(TWO, new, S) is None


@pytest.mark.parametrize("cryptography", ["importable", "not importable"])
def test_a_routers_self_signed_default_certificate_comes_from_openssl(
    home: Path, monkeypatch: pytest.MonkeyPatch, cryptography: str
) -> None:
    """As on a fleet host, whose agent has no cryptography: the router makes its default
    certificate with openssl, and HAProxy loads it."""
    if cryptography == "not importable":
        monkeypatch.setitem(sys.modules, "gun.certs", None)
        monkeypatch.delattr(gun, "certs", raising=False)  # `from gun import certs` looks here
    s = replace(settings(home), tls_listen="127.0.0.1:18443")
    router = Router(s, "http://127.0.0.1:9", "unused")
    table = Table((route("shop"),))
    pem = router._default_pem(table)
    assert pem.startswith("-----BEGIN CERTIFICATE-----\n")
    assert pem.count("-----BEGIN CERTIFICATE-----") == 1
    assert "-----BEGIN PRIVATE KEY-----" in pem
    assert router._default_pem(table) is pem  # made once
    write(files(table, s, pem))
    done = subprocess.run(
        [binary(), "-c", "-f", str(s.config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert stat.S_IMODE((s.tls / "default.pem").stat().st_mode) == 0o600
    monkeypatch.undo()
    made = x509.load_pem_x509_certificate(pem.encode())
    assert made.subject.rfc4514_string() == "CN=gun-router" == made.issuer.rfc4514_string()
    san = made.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert (made.not_valid_after_utc - made.not_valid_before_utc).days == 825
    key = serialization.load_pem_private_key(pem.encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key() == made.public_key()


def test_without_openssl_a_router_says_what_to_install(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(home))  # no openssl there
    with pytest.raises(Unavailable) as e:
        self_signed_pem()
    assert e.value.message == (
        "HTTPS on this router needs the openssl command for its default certificate, and there"
        " is none: install it (Debian: apt-get install openssl), or unset ROUTER_TLS_PORT"
    )


def test_an_openssl_that_fails_is_one_sentence(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = home / "openssl"
    fake.write_text("#!/bin/sh\necho 'req: Unknown option or cipher: ec' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(home))
    with pytest.raises(Unavailable) as e:
        self_signed_pem()
    assert e.value.message == (
        "openssl could not make this router's default certificate (req: Unknown option or"
        " cipher: ec): install Debian's openssl package (openssl 1.1.1 or newer), or unset"
        " ROUTER_TLS_PORT"
    )
