"""The Heroku Platform API's account and apps (REFERENCE.md §6), from the Platform's methods.

route                              heroku CLI                      heroku3
GET    /account                    auth:whoami                     account()
GET    /account/rate-limits                                        from_key()
GET    /apps                       apps -A                         apps()
GET    /users/~/apps               apps
POST   /apps                       apps:create                     create_app()
GET    /apps/{app}                 apps:info                       app()
PATCH  /apps/{app}                                                 app.update()
DELETE /apps/{app}                 apps:destroy                    app.delete()
GET    /apps/{app}/collaborators   apps:info                       app.collaborators()
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr

from gun.api.auth import Gun, Who
from gun.api.heroku.common import app_json, find_app, paged, user_json
from gun.errors import Conflict, InvalidParams
from gun.heroku_ids import app_uuid

router = APIRouter()


class Lenient(BaseModel):
    """A body of Heroku's: fields gun has no use for (`stack`, `region`) are ignored."""

    model_config = ConfigDict(extra="ignore")


class AppCreate(Lenient):
    name: StrictStr | None = None


class AppUpdate(Lenient):
    name: StrictStr | None = None
    maintenance: StrictBool | None = None


@router.get("/account")
def account(who: Who) -> dict[str, Any]:
    return {
        **user_json(who.name),
        "name": who.name,
        "allow_tracking": False,
        "beta": False,
        "two_factor_authentication": False,
        "verified": True,
        "federated": False,
        "default_organization": None,
        "default_team": None,
        "sms_number": None,
        "suspended_at": None,
        "delinquent_at": None,
        "last_login": None,
        "created_at": None,
        "updated_at": None,
        "identity_provider": None,
    }


@router.get("/account/rate-limits")
def rate_limits(who: Who) -> dict[str, int]:
    del who
    return {"remaining": 4500}


@router.get("/apps")
@router.get("/users/~/apps")
def apps(request: Request, response: Response, who: Who, gun: Gun) -> list[dict[str, Any]]:
    found = gun.apps.all(who)
    keys = {
        "id": lambda a: app_uuid(a.id, a.created_at),
        "name": lambda a: a.name,
        "created_at": lambda a: a.created_at.isoformat(),
    }
    return [app_json(a, gun, who.name) for a in paged(request, response, found, list(keys), keys)]


@router.post("/apps", status_code=201)
def create_app(body: AppCreate, who: Who, gun: Gun) -> dict[str, Any]:
    name = body.name or f"app-{secrets.token_hex(4)}"
    try:
        made = gun.apps.create(who, name)
    except Conflict:
        raise InvalidParams(f"Name is already taken: app {name!r} exists") from None
    return app_json(made, gun, who.name)


@router.get("/apps/{app}")
def app(app: str, who: Who, gun: Gun) -> dict[str, Any]:
    return app_json(find_app(gun, who, app), gun, who.name)


@router.patch("/apps/{app}")
def update_app(app: str, body: AppUpdate, who: Who, gun: Gun) -> dict[str, Any]:
    found = find_app(gun, who, app)
    if body.name is not None and body.name != found.name:
        raise InvalidParams("gun does not rename apps: make a new one and deploy it there")
    if body.maintenance:
        raise InvalidParams("gun has no maintenance mode: scale web=0 to take an app down")
    return app_json(found, gun, who.name)


@router.get("/apps/{app}/collaborators")
def collaborators(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    """gun has tokens, not collaborators: none, of an app that exists."""
    find_app(gun, who, app)
    return []


@router.delete("/apps/{app}")
def destroy_app(app: str, who: Who, gun: Gun) -> dict[str, Any]:
    found = find_app(gun, who, app)
    shown = app_json(found, gun, who.name)
    gun.apps.destroy(who, found.name)
    return shown
