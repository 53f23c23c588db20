"""Routes for an app's domains and the TLS certificates served for them.

route                                                  CLI command
GET    /v1/apps/{app}/domains                          domains
POST   /v1/apps/{app}/domains                          domains.add
DELETE /v1/apps/{app}/domains/{hostname}               domains.remove
GET    /v1/apps/{app}/certs                            certs
POST   /v1/apps/{app}/certs                            certs.add
DELETE /v1/apps/{app}/certs/{hostname}                 certs.remove
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import StrictStr

from gun.api.auth import Gun, Who
from gun.api.fleet_routes import Strict
from gun.core.certs import taken_json
from gun.model import CertInfo, Domain

router = APIRouter(prefix="/v1")


class DomainCreate(Strict):
    hostname: StrictStr  # the Platform's rule bounds it (253 characters)


class CertCreate(Strict):
    certificate: StrictStr  # PEM: the leaf, then intermediates (64 KiB at most)
    key: StrictStr  # PEM, unencrypted (64 KiB at most)


def cert_json(c: CertInfo) -> dict[str, Any]:
    """A certificate as anyone who may see the app sees it: never its key."""
    return {
        "hostnames": list(c.hostnames),
        "expires_at": c.not_after.isoformat(),
        "not_before": c.not_before.isoformat(),
        "fingerprint": c.fingerprint,
        "issuer": c.issuer,
        "subject": c.subject,
        "created_at": c.created_at.isoformat(),
    }


def domain_json(d: Domain, cert: CertInfo | None) -> dict[str, Any]:
    return {
        "hostname": d.hostname,
        "kind": d.kind,
        "cert": cert_json(cert) if cert else None,
    }


@router.get("/apps/{app}/domains")
def domains(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    return [domain_json(s.domain, s.cert) for s in gun.domains.all(who, app)]


@router.post("/apps/{app}/domains", status_code=201)
def add_domain(app: str, body: DomainCreate, who: Who, gun: Gun) -> dict[str, Any]:
    return domain_json(gun.domains.add(who, app, body.hostname), None)


@router.delete("/apps/{app}/domains/{hostname}")
def remove_domain(app: str, hostname: str, who: Who, gun: Gun) -> dict[str, Any]:
    """The certificates that stopped serving it (removed when it was their last hostname)."""
    return {
        "hostname": hostname.lower(),
        "certs": taken_json(gun.domains.remove(who, app, hostname)),
    }


@router.get("/apps/{app}/certs")
def certs(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    return [cert_json(c) for c in gun.certs.all(who, app)]


@router.post("/apps/{app}/certs", status_code=201)
def add_cert(app: str, body: CertCreate, who: Who, gun: Gun) -> dict[str, Any]:
    """The new certificate, and what it took from the app's older ones (`replaced`)."""
    added = gun.certs.add(who, app, body.certificate, body.key)
    return {**cert_json(added.cert), "replaced": taken_json(added.replaced)}


@router.delete("/apps/{app}/certs/{hostname}", status_code=200)
def remove_cert(app: str, hostname: str, who: Who, gun: Gun) -> dict[str, Any]:
    return cert_json(gun.certs.remove(who, app, hostname))
