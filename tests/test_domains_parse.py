"""Hostnames (gun.domains) and certificates (gun.tlscerts), pure: tables and hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from gun.domains import check_hostname, covers, default_hostname, is_under
from gun.errors import InvalidParams, UsageError
from gun.settings import MetaSettings
from gun.tlscerts import MAX_PEM, covered, parse
from tests.tlsmaker import chained, key_pem, make_cert, new_key, pem, self_signed

NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("www.example.com", "www.example.com"),
        ("WWW.Example.COM", "www.example.com"),
        ("a.b", "a.b"),
        ("*.example.com", "*.example.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("1-2.3", "1-2.3"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_hostnames_that_read(raw: str, name: str) -> None:
    assert check_hostname(raw) == name


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "com",
        "*.com",
        "*",
        "example.com.",
        ".example.com",
        "-a.example.com",
        "a-.example.com",
        "a..example.com",
        "a_b.example.com",
        "www.exämple.com",
        "a" * 64 + ".com",
        "w*.example.com",
        "www.*.example.com",
        "*.*.example.com",
        "example.com:443",
        "http://example.com",
        "exa mple.com",
        ".".join(["a" * 60] * 5),  # 304 characters
    ],
)
def test_hostnames_that_do_not(raw: str) -> None:
    with pytest.raises(InvalidParams) as e:
        check_hostname(raw)
    assert repr(raw[:20]).strip("'")[:10] in e.value.message
    assert "\n" not in e.value.message


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)


@given(st.lists(LABEL, min_size=2, max_size=5), st.booleans(), st.data())
def test_valid_hostnames_come_back_lowercased(
    labels: list[str], wildcard: bool, data: st.DataObject
) -> None:
    name = ("*." if wildcard else "") + ".".join(labels)
    if len(name) > 253:
        return
    mixed = "".join(c.upper() if data.draw(st.booleans()) else c for c in name)
    assert check_hostname(mixed) == name
    assert check_hostname(name) == name


@given(st.one_of(st.text(max_size=300), st.binary(max_size=20), st.integers(), st.none()))
def test_junk_is_refused_with_invalid_params_and_nothing_else(raw: object) -> None:
    try:
        name = check_hostname(raw)
    except InvalidParams as e:
        assert e.message and "\n" not in e.message
    else:
        assert isinstance(raw, str) and name == raw.lower() and len(name) <= 253


def test_the_default_hostname_and_the_router_domain() -> None:
    assert default_hostname("shop", "localhost") == "shop.localhost"
    assert default_hostname("shop", "apps.example.com") == "shop.apps.example.com"
    assert is_under("www.shop.localhost", "localhost")
    assert is_under("localhost", "localhost")
    assert is_under("*.localhost", "localhost")
    assert not is_under("notlocalhost", "localhost")
    assert not is_under("example.com", "localhost")


@pytest.mark.parametrize(
    ("name", "host", "yes"),
    [
        ("www.example.com", "www.example.com", True),
        ("*.example.com", "www.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", "*.example.com", True),
        ("www.example.com", "*.example.com", False),
        ("*.example.com", "www.example.org", False),
        ("example.com", "www.example.com", False),
    ],
)
def test_what_a_certificate_name_covers(name: str, host: str, yes: bool) -> None:
    assert covers(name, host) is yes


def test_covered_keeps_the_order_of_the_hostnames() -> None:
    hosts = ["shop.localhost", "www.example.com", "api.example.com", "example.com"]
    assert covered(["*.example.com"], hosts) == ["www.example.com", "api.example.com"]


# certificates --------------------------------------------------------------------------------


def test_a_self_signed_ec_certificate() -> None:
    chain, key = self_signed(["www.example.com", "Example.com"], cn="Example")
    p = parse(chain, key, NOW)
    assert p.names == ("www.example.com", "example.com")
    assert (p.subject, p.issuer) == ("Example", "Example")
    assert len(p.fingerprint) == 64 and p.not_before < NOW < p.not_after
    assert p.key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert p.chain_pem == chain


def test_a_chain_keeps_every_certificate_leaf_first() -> None:
    chain, key, _ = chained(["www.example.com"])
    p = parse(chain, key, NOW)
    assert p.chain_pem == chain and chain.count("BEGIN CERTIFICATE") == 2
    assert p.issuer == "Test Intermediate"


def test_a_chain_out_of_order_is_refused() -> None:
    chain, key, _ = chained(["www.example.com"])
    leaf, mid = chain.split("-----END CERTIFICATE-----\n")[:2]
    end = "-----END CERTIFICATE-----\n"
    with pytest.raises(InvalidParams) as e:
        parse(mid + end + leaf + end, key, NOW)
    # the key is the leaf's, which is now second: the key check speaks first
    assert e.value.message.startswith("the key does not match the certificate")
    other_key = new_key()
    stranger = make_cert([], other_key, cn="Stranger", ca=True)
    with pytest.raises(InvalidParams) as e:
        parse(leaf + end + pem(stranger), key, NOW)
    assert e.value.message.startswith(
        "the certificate is not a chain in order: certificate 2 did not issue certificate 1"
    )


def test_an_rsa_key_and_the_wrong_key() -> None:
    chain, key = self_signed(["www.example.com"], kind="rsa")
    assert parse(chain, key, NOW).names == ("www.example.com",)
    _, other = self_signed(["www.example.com"], kind="rsa")
    with pytest.raises(InvalidParams) as e:
        parse(chain, other, NOW, cert_what="cert.pem", key_what="key.pem")
    assert e.value.message == (
        "key.pem does not match cert.pem: it is not the key of its first (leaf) certificate"
    )


def test_expired_and_not_yet_valid() -> None:
    chain, key = self_signed(["www.example.com"], days=(-30, -1))
    with pytest.raises(InvalidParams) as e:
        parse(chain, key, NOW)
    assert e.value.message.startswith("the certificate expired on ")
    chain, key = self_signed(["www.example.com"], days=(2, 30))
    with pytest.raises(InvalidParams) as e:
        parse(chain, key, NOW)
    assert e.value.message.startswith("the certificate is not valid until ")
    assert parse(chain, key, NOW + timedelta(days=3)).names == ("www.example.com",)


def test_encrypted_keys_are_refused() -> None:
    k = new_key()
    chain = pem(make_cert(["www.example.com"], k))
    pkcs8 = k.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()
    for text in (key_pem(k, b"pw"), pkcs8):
        with pytest.raises(InvalidParams) as e:
            parse(chain, text, NOW, key_what="key.pem")
        assert e.value.message.startswith("key.pem is encrypted: give it unencrypted")


@pytest.mark.parametrize(
    ("cert", "message"),
    [
        ("garbage", "cert.pem is not a PEM certificate"),
        ("", "cert.pem is not a PEM certificate"),
        (
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
            "cert.pem is not a PEM certificate (its PEM does not parse)",
        ),
        ("x" * (MAX_PEM + 1), f"cert.pem is {MAX_PEM + 1} bytes long: use at most 65536 (64 KiB)"),
    ],
)
def test_garbage_certificates(cert: str, message: str) -> None:
    _, key = self_signed(["www.example.com"])
    with pytest.raises(InvalidParams) as e:
        parse(cert, key, NOW, cert_what="cert.pem")
    assert e.value.message == message


def test_a_key_given_as_the_certificate_says_so() -> None:
    chain, key = self_signed(["www.example.com"])
    with pytest.raises(InvalidParams) as e:
        parse(key, chain, NOW, cert_what="key.pem", key_what="cert.pem")
    assert e.value.message == (
        "key.pem is not a PEM certificate (it holds a private key: give the certificate first, "
        "then the key)"
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("garbage", "key.pem is not a PEM private key"),
        (
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
            "key.pem is not a PEM private key (its PEM does not parse)",
        ),
    ],
)
def test_garbage_keys(key: str, message: str) -> None:
    chain, _ = self_signed(["www.example.com"])
    with pytest.raises(InvalidParams) as e:
        parse(chain, key, NOW, key_what="key.pem")
    assert e.value.message == message


def test_keys_of_other_kinds_and_small_rsa_keys_are_refused() -> None:
    chain, _ = self_signed(["www.example.com"])
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidParams) as e:
        parse(chain, ed.decode(), NOW)
    assert e.value.message.startswith("the key is a ") and "use an RSA or EC key" in e.value.message
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidParams) as e:
        parse(chain, key_pem(small), NOW)
    assert e.value.message == "the key is a 1024-bit RSA key: use 2048 bits or more"


def test_a_certificate_without_dns_names_is_refused() -> None:
    chain, key = self_signed([], cn="www.example.com")
    with pytest.raises(InvalidParams) as e:
        parse(chain, key, NOW)
    assert e.value.message.startswith("the certificate names no host")


def test_the_router_domain_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MetaSettings.resolve().router_domain == "localhost"
    monkeypatch.setenv("GUN_ROUTER_DOMAIN", "Apps.Example.NET")
    assert MetaSettings.resolve().router_domain == "apps.example.net"
    for bad in ("-x.com", "a..b", "apps.example.net.", "ex ample.com"):
        monkeypatch.setenv("GUN_ROUTER_DOMAIN", bad)
        with pytest.raises(UsageError) as e:
            MetaSettings.resolve()
        assert e.value.message.startswith(f"GUN_ROUTER_DOMAIN={bad!r} is not a domain name")
