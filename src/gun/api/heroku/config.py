"""The Heroku Platform API's config vars, formation and releases (REFERENCE.md §6).

route                                        heroku CLI                  heroku3
GET    /apps/{app}/config-vars               config                      app.config()
PATCH  /apps/{app}/config-vars               config:set, config:unset    config[K] = V, del
GET    /apps/{app}/formation                 ps                          app.process_formation()
GET    /apps/{app}/formation/{type}
PATCH  /apps/{app}/formation                 ps:scale                    batch_scale_formation_...()
PATCH  /apps/{app}/formation/{type}          ps:scale web=2              formation.scale()
GET    /apps/{app}/releases                  releases                    app.releases()
GET    /apps/{app}/releases/{id_or_version}  releases:info
GET    /apps/{app}/releases/{id_or_version}/config-vars  releases:info
POST   /apps/{app}/releases                  releases:rollback           app.rollback()
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import StrictInt, StrictStr

from gun.api.auth import Gun, Who
from gun.api.heroku.apps import Lenient
from gun.api.heroku.common import find_app, paged, release_json
from gun.core import Platform
from gun.errors import InvalidParams, NotFound
from gun.formation import Change
from gun.heroku_ids import app_uuid, formation_uuid, is_uuid, release_uuid
from gun.model import App, Principal, Release
from gun.protocol import INT32

router = APIRouter()
_QUANTITY = re.compile(r"([+-]?)([0-9]{1,9})\Z")


@router.get("/apps/{app}/config-vars")
def config_vars(app: str, who: Who, gun: Gun) -> dict[str, str | None]:
    return gun.config.get(who, find_app(gun, who, app).name)


@router.patch("/apps/{app}/config-vars")
async def set_config_vars(app: str, body: dict[str, Any], who: Who, gun: Gun) -> dict[str, Any]:
    """Set what has a value, unset what is null; a new release; the whole map back."""
    name = find_app(gun, who, app).name
    changes: dict[str, str | None] = {}
    for key, value in body.items():
        if value is not None and not isinstance(value, str | int | float):
            raise InvalidParams(f"config var {key!r}: give a string, or null to unset it")
        changes[key] = None if value is None else str(value)
    if changes:
        await gun.config.achange(who, name, changes)
    return gun.config.get(who, name)


# -- formation -------------------------------------------------------------------------------


class FormationUpdate(Lenient):
    type: StrictStr
    quantity: StrictInt | StrictStr
    size: StrictStr | None = None


class FormationBatch(Lenient):
    updates: list[FormationUpdate]


class FormationOne(Lenient):
    quantity: StrictInt | StrictStr
    size: StrictStr | None = None


def change_of(ptype: str, quantity: int | str) -> Change:
    """`2`, `"2"`, `"+1"` or `"-1"`, as the CLI sends quantities."""
    m = _QUANTITY.match(str(quantity).strip())
    if m is None:
        raise InvalidParams(f"quantity {quantity!r} of {ptype} is not a whole number, +N or -N")
    n = int(m.group(2))
    if m.group(1) == "-":
        return Change(ptype, -n, relative=True)
    return Change(ptype, n, relative=m.group(1) == "+")


def formation_json(a: App, ptype: str, quantity: int, command: str) -> dict[str, Any]:
    when = a.created_at.isoformat()
    return {
        "id": formation_uuid(app_uuid(a.id, a.created_at), ptype),
        "type": ptype,
        "quantity": quantity,
        "size": "standard-1X",
        "command": command,
        "app": {"id": app_uuid(a.id, a.created_at), "name": a.name},
        "created_at": when,
        "updated_at": when,
    }


def formation_of(gun: Platform, who: Principal, a: App) -> list[dict[str, Any]]:
    """Every process type of the current release (and any scaled), with its quantity."""
    totals, _ = gun.formation.get(who, a.name)
    release = _current(gun, who, a)
    commands = {t: c for t, c in ((release.process_types or {}) if release else {}).items()}
    types = sorted((set(commands) | set(totals)) - {"release"})
    return [formation_json(a, t, totals.get(t, 0), commands.get(t, "")) for t in types]


def _current(gun: Platform, who: Principal, a: App) -> Release | None:
    return next((r for r in gun.releases.all(who, a.name, limit=10) if r.current), None)


@router.get("/apps/{app}/formation")
def formation(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    return formation_of(gun, who, find_app(gun, who, app))


@router.get("/apps/{app}/formation/{ptype}")
def formation_type(app: str, ptype: str, who: Who, gun: Gun) -> dict[str, Any]:
    a = find_app(gun, who, app)
    for f in formation_of(gun, who, a):
        if f["type"] == ptype:
            return f
    raise NotFound(f"app {a.name!r} has no process type {ptype!r}")


@router.patch("/apps/{app}/formation")
def scale(app: str, body: FormationBatch, who: Who, gun: Gun) -> list[dict[str, Any]]:
    a = find_app(gun, who, app)
    gun.formation.scale(who, a.name, [change_of(u.type, u.quantity) for u in body.updates])
    named = {u.type for u in body.updates}
    return [f for f in formation_of(gun, who, a) if f["type"] in named]


@router.patch("/apps/{app}/formation/{ptype}")
def scale_one(app: str, ptype: str, body: FormationOne, who: Who, gun: Gun) -> dict[str, Any]:
    a = find_app(gun, who, app)
    gun.formation.scale(who, a.name, [change_of(ptype, body.quantity)])
    return formation_type(a.name, ptype, who, gun)


# -- releases --------------------------------------------------------------------------------


class Rollback(Lenient):
    release: StrictStr | StrictInt


def version_of(gun: Platform, who: Principal, a: App, ref: str | int) -> int:
    """`{release}`: a version (3, "3", "v3") or a release's UUID."""
    text = str(ref).strip()
    if is_uuid(text):
        aid = app_uuid(a.id, a.created_at)
        for r in gun.releases.all(who, a.name, limit=100_000):
            if release_uuid(aid, r.version) == text.lower():
                return r.version
        raise NotFound(f"release {text!r} of app {a.name!r} does not exist")
    digits = text.removeprefix("v")
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= INT32:
        raise InvalidParams(f"release {text!r} is not a version (1 to {INT32}) or a release id")
    return int(digits)


@router.get("/apps/{app}/releases")
def releases(
    app: str, request: Request, response: Response, who: Who, gun: Gun
) -> list[dict[str, Any]]:
    a = find_app(gun, who, app)
    found = gun.releases.all(who, a.name, limit=100_000)
    built = _built(found)
    keys = {"version": lambda r: r.version, "id": lambda r: r.version}
    return [release_json(a, r, built) for r in paged(request, response, found, list(keys), keys)]


def _built(releases: list[Release]) -> bool:
    """Whether the current one of `releases` has a build."""
    return any(r.current and r.has_build for r in releases)


@router.get("/apps/{app}/releases/{release}")
def release(app: str, release: str, who: Who, gun: Gun) -> dict[str, Any]:
    a = find_app(gun, who, app)
    found = gun.releases.info(who, a.name, version_of(gun, who, a, release)).release
    current = _current(gun, who, a)
    return release_json(a, found, current is not None and current.has_build)


@router.get("/apps/{app}/releases/{release}/config-vars")
def release_config_vars(app: str, release: str, who: Who, gun: Gun) -> dict[str, str | None]:
    """The config vars of that release, as `who` may see them (a viewer: names only)."""
    a = find_app(gun, who, app)
    return gun.releases.info(who, a.name, version_of(gun, who, a, release)).config


@router.post("/apps/{app}/releases", status_code=201)
def rollback(app: str, body: Rollback, who: Who, gun: Gun) -> dict[str, Any]:
    a = find_app(gun, who, app)
    made = gun.releases.rollback(who, a.name, version_of(gun, who, a, body.release))
    return release_json(a, made, made.has_build)
