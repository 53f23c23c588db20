"""Native /v1 routes. Each handler calls one Platform method; errors go to the one mapper.

route                                       CLI command
GET    /v1/whoami                           whoami
GET    /v1/tokens                           tokens
POST   /v1/tokens                           tokens.create
DELETE /v1/tokens/{name}                    tokens.revoke
GET    /v1/apps                             apps
POST   /v1/apps                             apps.create
GET    /v1/apps/{app}                       (info)
DELETE /v1/apps/{app}                       apps.destroy
GET    /v1/apps/{app}/status                status
GET    /v1/apps/{app}/config-vars           config, config.get
PATCH  /v1/apps/{app}/config-vars           config.set, config.unset
GET    /v1/apps/{app}/formation             formation
PATCH  /v1/apps/{app}/formation             scale, ps.scale
GET    /v1/apps/{app}/releases              releases
GET    /v1/apps/{app}/releases/{version}    releases.info
POST   /v1/apps/{app}/rollback              rollback
GET    /v1/apps/{app}/layers                layers
PUT    /v1/apps/{app}/layers/{layer}        layers.set
GET    /v1/apps/{app}/events                (audit log)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Response

from gun import formation as formations
from gun.api import bodies
from gun.api.auth import Gun, Who
from gun.errors import InvalidParams
from gun.model import parse_version

router = APIRouter(prefix="/v1")


def formation_change(u: bodies.FormationUpdate) -> formations.Change:
    q = u.quantity
    if isinstance(q, int):
        if q < 0:
            raise InvalidParams(f"formation '{u.type}={q}': quantity must not be negative")
        word = f"{u.type}={q}"
    else:
        word = f"{u.type}{q}" if q[:1] in ("+", "-") else f"{u.type}={q}"
    return formations.parse_word(word)


@router.get("/whoami")
def whoami(who: Who) -> dict[str, Any]:
    return bodies.principal_json(who)


@router.get("/tokens")
def tokens(who: Who, gun: Gun) -> list[dict[str, Any]]:
    return [bodies.token_json(t) for t in gun.tokens.live(who)]


@router.post("/tokens", status_code=201)
def create_token(body: bodies.TokenCreate, who: Who, gun: Gun) -> dict[str, Any]:
    value, made = gun.tokens.create(who, body.name, body.role, body.app, body.expires)
    return {
        "token": value,
        **bodies.principal_json(made),
        "kind": made.kind,
        "expires_at": made.expires_at.isoformat() if made.expires_at else None,
    }


@router.delete("/tokens/{name:path}")
def revoke_token(name: str, who: Who, gun: Gun) -> dict[str, Any]:
    """The token revoked. `{name:path}`: names made before they were checked may hold a `/`."""
    return bodies.token_json(gun.tokens.revoke(who, name))


@router.get("/apps")
def list_apps(who: Who, gun: Gun) -> list[dict[str, Any]]:
    return [bodies.app_json(a) for a in gun.apps.all(who)]


@router.post("/apps", status_code=201)
def create_app(body: bodies.AppCreate, who: Who, gun: Gun) -> dict[str, Any]:
    return bodies.app_json(gun.apps.create(who, body.name, body.repo))


@router.get("/apps/{app}")
def show_app(app: str, who: Who, gun: Gun) -> dict[str, Any]:
    return bodies.app_json(gun.apps.get(who, app))


@router.delete("/apps/{app}", status_code=204)
def destroy_app(app: str, who: Who, gun: Gun) -> Response:
    gun.apps.destroy(who, app)
    return Response(status_code=204)


@router.get("/apps/{app}/status")
def status(app: str, who: Who, gun: Gun) -> dict[str, Any]:
    return bodies.status_json(gun.apps.status(who, app))


@router.get("/apps/{app}/config-vars")
async def config(app: str, who: Who, gun: Gun) -> dict[str, str | None]:
    """On the event loop: one small query, and the decrypted values are cached. A viewer
    gets the names with null values."""
    return gun.config.get(who, app)


@router.patch("/apps/{app}/config-vars")
async def change_config(
    app: str,
    who: Who,
    gun: Gun,
    changes: bodies.ConfigChanges = Body(  # noqa: B008
        description="KEY: value to set, KEY: null to unset"
    ),
) -> dict[str, Any]:
    release = await gun.config.achange(who, app, changes)
    return {"release": bodies.release_json(release), "config": release.config}


@router.get("/apps/{app}/formation")
def formation(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    totals, _ = gun.formation.get(who, app)
    return bodies.formation_rows(totals, gun.formation.shares(who, app))


@router.patch("/apps/{app}/formation")
def scale(app: str, body: bodies.FormationPatch, who: Who, gun: Gun) -> dict[str, Any]:
    """`formation`: the rows `GET` answers; `warnings`: `{"type", "message"}` for each type
    scaled that no instance can run yet (scaled all the same)."""
    scaled = gun.formation.scale(who, app, [formation_change(u) for u in body.updates])
    rows = bodies.formation_rows(scaled.totals, gun.formation.shares(who, app))
    warnings = [{"type": t, "message": m} for t, m in scaled.warnings.items()]
    return {"formation": rows, "warnings": warnings}


@router.get("/apps/{app}/releases")
def releases(
    app: str, who: Who, gun: Gun, limit: int = Query(200, ge=1, le=1000)
) -> list[dict[str, Any]]:
    return [bodies.release_json(r) for r in gun.releases.all(who, app, limit)]


@router.get("/apps/{app}/releases/{version}")
def release(app: str, version: str, who: Who, gun: Gun) -> dict[str, Any]:
    info = gun.releases.info(who, app, parse_version(version))
    return bodies.release_json(info.release, config=info.config)


@router.post("/apps/{app}/rollback", status_code=201)
def rollback(app: str, body: bodies.Rollback, who: Who, gun: Gun) -> dict[str, Any]:
    version = None if body.version is None else parse_version(body.version)
    return bodies.release_json(gun.releases.rollback(who, app, version))


@router.get("/apps/{app}/layers")
def layers(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    return [bodies.layer_json(la) for la in gun.layers.all(who, app)]


@router.put("/apps/{app}/layers/{layer}")
def set_layer(app: str, layer: str, body: bodies.LayerPut, who: Who, gun: Gun) -> dict[str, Any]:
    made = gun.layers.set(
        who,
        app,
        layer,
        body.types,
        setup=body.setup,
        teardown=body.teardown,
        provider=body.provider,
        settings=body.settings,
    )
    return bodies.layer_json(made)


@router.get("/apps/{app}/events")
def events(
    app: str, who: Who, gun: Gun, limit: int = Query(100, ge=1, le=1000)
) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "actor": e.actor,
            "action": e.action,
            "detail": e.detail,
            "created_at": e.created_at.isoformat(),
        }
        for e in gun.apps.events(who, app, limit)
    ]
