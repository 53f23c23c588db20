"""TLS certificates the router serves for apps' hostnames (pure; `now` is passed in).

(Not `certs.py`, which is meta's and the drain's own small CA.)

A certificate is given as PEM text: the leaf first, then any intermediates, each issued by the
next (all are kept, in that order, and served as the chain). Its private key is PEM too:

- RSA (2048 bits or more) or EC; not encrypted (the router must read it unattended);
- it must be the key of the leaf (the same public key).

The leaf must be valid now (not expired, not yet-to-be-valid) and name hosts in its
subjectAltName DNS names: those are the names it covers (browsers ignore the subject's common
name, so gun does too). Each of the PEM texts is at most MAX_PEM bytes, a chain at most
MAX_CHAIN certificates.

`what` arguments name the input in errors: the CLI passes a file's name ("cert.pem is not a
PEM certificate"); meta, which gets only text, says "the certificate" and "the key".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gun.domains import covers
from gun.errors import InvalidParams

MAX_PEM = 64 * 1024
MAX_CHAIN = 10
MIN_RSA_BITS = 2048
CERT = "the certificate"
KEY = "the key"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Parsed:
    """A certificate chain and its key, checked; the PEM texts normalised."""

    chain_pem: str  # every certificate, leaf first
    key_pem: str  # PKCS#8, unencrypted
    names: tuple[str, ...]  # the leaf's subjectAltName DNS names, lowercased
    not_before: datetime
    not_after: datetime
    fingerprint: str  # sha256 of the leaf's DER, hex
    issuer: str
    subject: str


def _sized(text: str, what: str) -> bytes:
    data = text.encode("utf-8", "replace")
    if len(data) > MAX_PEM:
        raise InvalidParams(f"{what} is {len(data)} bytes long: use at most {MAX_PEM} (64 KiB)")
    return data


def load_chain(text: str, what: str = CERT) -> list[x509.Certificate]:
    """The certificates of a PEM text, in order; else InvalidParams naming `what`."""
    data = _sized(text, what)
    if not text.isascii() or b"-----BEGIN CERTIFICATE-----" not in data:
        hint = (
            " (it holds a private key: give the certificate first, then the key)"
            if "PRIVATE KEY-----" in text
            else ""
        )
        raise InvalidParams(f"{what} is not a PEM certificate{hint}")
    try:
        chain = x509.load_pem_x509_certificates(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidParams(f"{what} is not a PEM certificate (its PEM does not parse)") from None
    if len(chain) > MAX_CHAIN:
        raise InvalidParams(f"{what} holds {len(chain)} certificates: use at most {MAX_CHAIN}")
    return chain


def load_key(text: str, what: str = KEY) -> PrivateKey:
    """The private key of a PEM text (RSA or EC, unencrypted); else InvalidParams."""
    data = _sized(text, what)
    encrypted = "ENCRYPTED PRIVATE KEY-----" in text or "Proc-Type: 4,ENCRYPTED" in text
    if encrypted:
        raise InvalidParams(_encrypted(what))
    if not text.isascii() or b"PRIVATE KEY-----" not in data:
        raise InvalidParams(f"{what} is not a PEM private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # a password is needed
        raise InvalidParams(_encrypted(what)) from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidParams(f"{what} is not a PEM private key (its PEM does not parse)") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidParams(
                f"{what} is a {key.key_size}-bit RSA key: use {MIN_RSA_BITS} bits or more"
            )
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key
    raise InvalidParams(f"{what} is a {type(key).__name__} key: use an RSA or EC key")


def _encrypted(what: str) -> str:
    return (
        f"{what} is encrypted: give it unencrypted "
        "(openssl pkey -in KEY.pem -out plain-key.pem decrypts it)"
    )


def _spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def common_name(name: x509.Name) -> str:
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = cns[0].value if cns else name.rfc4514_string()
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


def dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return tuple(dict.fromkeys(n.lower() for n in san.get_values_for_type(x509.DNSName)))


def parse(
    chain_text: str, key_text: str, now: datetime, *, cert_what: str = CERT, key_what: str = KEY
) -> Parsed:
    """A chain and its key checked as the module docstring says; else InvalidParams, one
    sentence naming what is wrong and with which input."""
    chain = load_chain(chain_text, cert_what)
    key = load_key(key_text, key_what)
    leaf = chain[0]
    try:
        leaf_key = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidParams(f"{cert_what} has a public key gun cannot read") from None
    if _spki(leaf_key) != _spki(key.public_key()):
        raise InvalidParams(
            f"{key_what} does not match {cert_what}: it is not the key of its first (leaf) "
            "certificate"
        )
    for i in range(len(chain) - 1):
        try:
            chain[i].verify_directly_issued_by(chain[i + 1])
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise InvalidParams(
                f"{cert_what} is not a chain in order: certificate {i + 2} did not issue "
                f"certificate {i + 1}; put the leaf first, then each intermediate after the one "
                "it issued"
            ) from None
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if not_after < now:
        raise InvalidParams(f"{cert_what} expired on {not_after:%Y-%m-%d %H:%M} UTC")
    if not_before > now:
        raise InvalidParams(f"{cert_what} is not valid until {not_before:%Y-%m-%d %H:%M} UTC")
    names = dns_names(leaf)
    if not names:
        raise InvalidParams(
            f"{cert_what} names no host: it has no subjectAltName DNS names (browsers ignore "
            "the subject's common name)"
        )
    return Parsed(
        chain_pem="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        names=names,
        not_before=not_before,
        not_after=not_after,
        fingerprint=hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest(),
        issuer=common_name(leaf.issuer),
        subject=common_name(leaf.subject),
    )


def covered(names: Iterable[str], hostnames: Iterable[str]) -> list[str]:
    """Those of `hostnames` (in their order) that one of the certificate's `names` covers."""
    names = list(names)
    return [h for h in hostnames if any(covers(n, h) for n in names)]


def listing(names: Iterable[str], most: int = 5) -> str:
    """Names for a sentence: `a, b, c`, or the first `most` and `and N more`."""
    names = list(names)
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
