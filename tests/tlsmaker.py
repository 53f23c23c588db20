"""Real certificates for tests, made with `cryptography`: self-signed, CA-issued chains,
expired or not yet valid, RSA or EC keys, PEM with or without a password."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_key(kind: Literal["rsa", "ec"] = "ec") -> Key:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(
    names: Sequence[str],
    key: Key,
    *,
    cn: str | None = None,
    issuer: tuple[x509.Certificate, Key] | None = None,
    days: tuple[int, int] = (-1, 90),
    ca: bool = False,
) -> x509.Certificate:
    """A certificate for `names` (subjectAltName DNS), valid from now+days[0] to now+days[1],
    signed by `issuer` (a certificate and its key), else self-signed."""
    at = datetime.now(UTC)
    subject = _name(cn or (names[0] if names else "no-names"))
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(at + timedelta(days=days[0]))
        .not_valid_after(at + timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    return b.sign(signer, hashes.SHA256())


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def key_pem(key: Key, password: bytes | None = None) -> str:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, enc
    ).decode()


def self_signed(
    names: Sequence[str], kind: Literal["rsa", "ec"] = "ec", **kw: object
) -> tuple[str, str]:
    """(chain PEM, key PEM) of a self-signed certificate for `names`."""
    key = new_key(kind)
    return pem(make_cert(names, key, **kw)), key_pem(key)  # type: ignore[arg-type]


def chained(names: Sequence[str]) -> tuple[str, str, x509.Certificate]:
    """(chain PEM: leaf then intermediate, leaf key PEM, root) of a three-level chain."""
    root_key, mid_key, leaf_key = new_key(), new_key(), new_key("rsa")
    root = make_cert([], root_key, cn="Test Root CA", ca=True)
    mid = make_cert([], mid_key, cn="Test Intermediate", issuer=(root, root_key), ca=True)
    leaf = make_cert(names, leaf_key, issuer=(mid, mid_key))
    return pem(leaf, mid), key_pem(leaf_key), root
