"""Routes for log drains, the ingest URL, and where to read logs.

route                                                  CLI command / caller
GET    /v1/apps/{app}/drains                           drains
POST   /v1/apps/{app}/drains                           drains.add
DELETE /v1/apps/{app}/drains/{id}                      drains.remove
GET    /v1/apps/{app}/drains/ingest?resolution=S       drains.ingest
GET    /v1/apps/{app}/log-session                      logs, metrics (where the drain is)
GET    /v1/drain/ingest-tokens/{token}                 the drain, checking a token it got
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field, StrictStr

from gun.api.auth import Gun, Who, the_platform, token_of
from gun.api.fleet_routes import Strict
from gun.errors import NotFound
from gun.logs.access import is_ingest_token
from gun.model import Drain, Principal

router = APIRouter(prefix="/v1")
NO_APP_HAS_IT = "no app has this ingest token"  # core/drains.py says the same


class DrainCreate(Strict):
    url: StrictStr = Field(max_length=2000)


def drain_json(d: Drain) -> dict[str, Any]:
    return {"id": d.id, "url": d.url, "token": d.token, "created_at": d.created_at.isoformat()}


@router.get("/apps/{app}/drains")
def drains(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    return [drain_json(d) for d in gun.drains(who, app)]


@router.post("/apps/{app}/drains", status_code=201)
def add_drain(app: str, body: DrainCreate, who: Who, gun: Gun) -> dict[str, Any]:
    return drain_json(gun.add_drain(who, app, body.url))


@router.delete("/apps/{app}/drains/{drain_id}", status_code=204)
def remove_drain(
    app: str, drain_id: Annotated[int, Path(ge=1, le=2**31 - 1)], who: Who, gun: Gun
) -> Response:
    gun.remove_drain(who, app, drain_id)
    return Response(status_code=204)


@router.get("/apps/{app}/drains/ingest")
def ingest(
    app: str, who: Who, gun: Gun, resolution: int | None = Query(None, ge=1, le=3600)
) -> dict[str, str]:
    return {"url": gun.ingest_url(who, app, resolution)}


@router.get("/apps/{app}/log-session")
def log_session(app: str, who: Who, gun: Gun) -> dict[str, str]:
    return {"url": gun.log_session(who, app)}


def _asking(request: Request, token: str) -> Principal:
    """Who asks about `token` (authenticated first: an anonymous caller learns nothing), once
    the token has the exact form of an ingest token; any other gets the very answer an unknown
    one gets, without a lookup (a NUL byte included, which `principal` would name)."""
    who = the_platform(request).authenticate(token_of(request.headers.get("authorization")))
    if not is_ingest_token(token):
        raise NotFound(NO_APP_HAS_IT)
    return who


@router.get("/drain/ingest-tokens/{token:path}")  # any path under it: see _asking
def ingest_token(
    token: str, who: Annotated[Principal, Depends(_asking)], gun: Gun
) -> dict[str, str]:
    return {"app": gun.app_of_ingest_token(who, token)}
