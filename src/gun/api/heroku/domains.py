"""The Heroku Platform API's domains, and the lists gun answers empty (REFERENCE.md §6), from
the Platform's methods.

A domain's `kind` is `heroku` for the app's default hostname (APP.<router domain>) and
`custom` for one a user added; a custom one's `cname` is the default hostname, the name to
point its DNS at (the router serves both).

route                                        heroku CLI              heroku3
GET    /apps/{app}/domains                   domains                 app.domains()
POST   /apps/{app}/domains                   domains:add HOST        app.add_domain()
GET    /apps/{app}/domains/{hostname_or_id}  domains:info, :wait
DELETE /apps/{app}/domains/{hostname_or_id}  domains:remove HOST     app.remove_domain()
GET    /apps/{app}/addons                    addons, apps:info       app.addons()
GET    /apps/{app}/addon-attachments         apps:info
GET    /oauth/authorizations                 authorizations
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import StrictStr

from gun.api.auth import Gun, Who
from gun.api.heroku.apps import Lenient
from gun.api.heroku.common import find_app, paged
from gun.core import Platform
from gun.errors import NotFound
from gun.heroku_ids import app_uuid
from gun.model import App, Domain, Principal

router = APIRouter()
Key = Callable[[dict[str, Any]], int | str]


class DomainCreate(Lenient):
    hostname: StrictStr  # `sni_endpoint` and the rest: ignored


def domain_uuid(app: str, hostname: str) -> str:
    """`app`: the app's UUID."""
    return str(uuid.uuid5(uuid.UUID(app), f"domain/{hostname}"))


def domain_json(gun: Platform, a: App, d: Domain) -> dict[str, Any]:
    aid = app_uuid(a.id, a.created_at)
    when = (d.created_at or a.created_at).isoformat()
    default = d.kind == "default"
    return {
        "id": domain_uuid(aid, d.hostname),
        "hostname": d.hostname,
        "kind": "heroku" if default else "custom",
        "cname": None if default else gun.domains.default(a.name),
        "status": "succeeded",
        "acm_status": None,
        "acm_status_reason": None,
        "sni_endpoint": None,
        "app": {"id": aid, "name": a.name},
        "created_at": when,
        "updated_at": when,
    }


def _find(gun: Platform, who: Principal, a: App, ref: str) -> Domain:
    aid = app_uuid(a.id, a.created_at)
    for s in gun.domains.all(who, a.name):
        if ref.lower() in (s.domain.hostname, domain_uuid(aid, s.domain.hostname)):
            return s.domain
    raise NotFound(f"app {a.name!r} has no domain {ref!r}: `heroku domains` lists them")


@router.get("/apps/{app}/domains")
def domains(
    app: str, request: Request, response: Response, who: Who, gun: Gun
) -> list[dict[str, Any]]:
    a = find_app(gun, who, app)
    found = [domain_json(gun, a, s.domain) for s in gun.domains.all(who, a.name)]
    keys: dict[str, Key] = {"hostname": lambda d: str(d["hostname"]), "id": lambda d: str(d["id"])}
    return paged(request, response, found, list(keys), keys)


@router.post("/apps/{app}/domains", status_code=201)
def add_domain(app: str, body: DomainCreate, who: Who, gun: Gun) -> dict[str, Any]:
    a = find_app(gun, who, app)
    return domain_json(gun, a, gun.domains.add(who, a.name, body.hostname))


@router.get("/apps/{app}/domains/{ref}")
def domain(app: str, ref: str, who: Who, gun: Gun) -> dict[str, Any]:
    a = find_app(gun, who, app)
    return domain_json(gun, a, _find(gun, who, a, ref))


@router.delete("/apps/{app}/domains/{ref}")
def remove_domain(app: str, ref: str, who: Who, gun: Gun) -> dict[str, Any]:
    a = find_app(gun, who, app)
    d = _find(gun, who, a, ref)
    gun.domains.remove(who, a.name, d.hostname)
    return domain_json(gun, a, d)


@router.get("/apps/{app}/addons")
def addons(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    """gun has no add-ons yet (its PostgreSQL will be the first)."""
    find_app(gun, who, app)
    return []


@router.get("/apps/{app}/addon-attachments")
def addon_attachments(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    find_app(gun, who, app)
    return []


@router.get("/oauth/authorizations")
def authorizations(who: Who) -> list[dict[str, Any]]:
    del who
    return []
