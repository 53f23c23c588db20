"""A small certificate authority of the team's own, for meta's and the drain's HTTPS (`gun server
certs`): a CA certificate that agents and the CLI pin, and a server certificate signed by it for
the names and addresses meta and the drain are reached at.

Keys are ECDSA P-256. The CA lives 10 years and signs only server certificates (path length 0);
a server certificate lives 825 days (the most browsers accept) and is for serverAuth only.
Making certificates is pure (`new_ca`, `new_server`); `write` puts them in a directory:

    DIR/ca.pem        the CA's certificate: what agents and `gun login --ca` pin
    DIR/ca-key.pem    the CA's key (0600): needed only to sign again
    DIR/server.pem    the server's certificate, then the CA's (GUN_TLS_CERT, GUN_DRAIN_TLS_CERT)
    DIR/server-key.pem  its key (0600; GUN_TLS_KEY, GUN_DRAIN_TLS_KEY)

An existing CA in DIR is kept and signs the new server certificate, so agents that pinned it
go on trusting meta after `gun server certs` is run again for a new name.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gun import atomic
from gun.errors import InvalidParams

CA_DAYS = 3650
SERVER_DAYS = 825
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")


@dataclass(frozen=True)
class Pair:
    cert: bytes  # PEM
    key: bytes  # PEM, PKCS#8, unencrypted


def check_name(name: str) -> x509.GeneralName:
    """A DNS name (`meta.example.com`, `localhost`) or an IP address; else InvalidParams."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    lowered = name.lower().rstrip(".")
    if 0 < len(lowered) <= 253 and all(_LABEL.match(p) for p in lowered.split(".")):
        return x509.DNSName(lowered)
    raise InvalidParams(f"{name!r} is neither a host name nor an IP address")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_ca(name: str = "gun CA") -> Pair:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def new_server(ca: Pair, names: list[str]) -> Pair:
    """A server certificate for `names` (the first is its common name), signed by `ca`; the
    certificate file holds the chain: it, then the CA's."""
    if not names:
        raise InvalidParams("give the names meta and the drain are reached at, e.g. meta.lan")
    alt = [check_name(n) for n in names]
    try:
        ca_cert = x509.load_pem_x509_certificate(ca.cert)
        ca_key = serialization.load_pem_private_key(ca.key, password=None)
    except ValueError:
        raise InvalidParams("the CA's certificate or key is not PEM") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise InvalidParams("the CA's key is not an ECDSA key made by gun server certs")
    key = _key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM) + ca.cert, _pem_key(key))


@dataclass(frozen=True)
class Written:
    ca: Path
    ca_made: bool  # False: an existing CA signed the new certificate
    cert: Path
    key: Path


def write(directory: Path, names: list[str]) -> Written:
    """The CA (kept if DIR has one) and a new server certificate for `names`, in `directory`."""
    for n in names:
        check_name(n)
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, ca_key_path = directory / "ca.pem", directory / "ca-key.pem"
    made = not ca_path.exists()
    if made:
        if ca_key_path.exists():
            raise InvalidParams(f"{ca_key_path} is there without {ca_path}: move it away first")
        ca = new_ca()
        atomic.write(ca_key_path, ca.key, 0o600)
        atomic.write(ca_path, ca.cert)
    else:
        if not ca_key_path.exists():
            raise InvalidParams(f"{ca_path} is there without its key {ca_key_path}")
        ca = Pair(ca_path.read_bytes(), ca_key_path.read_bytes())
    server = new_server(ca, names)
    cert_path, key_path = directory / "server.pem", directory / "server-key.pem"
    atomic.write(key_path, server.key, 0o600)
    atomic.write(cert_path, server.cert)
    return Written(ca_path, made, cert_path, key_path)
