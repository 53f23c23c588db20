"""Routes for log drains, the ingest URL, and where to read logs.

route                                                  CLI command / caller
GET    /v1/apps/{app}/drains                           drains
POST   /v1/apps/{app}/drains                           drains.add
DELETE /v1/apps/{app}/drains/{id}                      drains.remove
GET    /v1/apps/{app}/drains/ingest?resolution=S       drains.ingest
POST   /v1/apps/{app}/drains/ingest?resolution=S       drains.ingest rotate=true
GET    /v1/apps/{app}/log-session                      logs, metrics (where the drain is)
GET    /v1/log-session?apps=A,B                        the drain, asking for the dashboard's
                                                       apps page which of many apps a user
                                                       token may read (as the route above)
GET    /v1/drain/ingest-tokens/{token}                 the drain, checking a token it got
                                                       (a drain token only; no other route
                                                       takes one)
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import StrictStr

from gun.api.auth import DrainWho, Gun, Who
from gun.api.fleet_routes import Strict
from gun.errors import InvalidParams
from gun.model import Drain

router = APIRouter(prefix="/v1")


class DrainCreate(Strict):
    url: StrictStr  # the Platform's rule bounds it (2000 characters)


def drain_json(d: Drain) -> dict[str, Any]:
    return {"id": d.id, "url": d.url, "token": d.token, "created_at": d.created_at.isoformat()}


@router.get("/apps/{app}/drains")
def drains(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    return [drain_json(d) for d in gun.drains.all(who, app)]


@router.post("/apps/{app}/drains", status_code=201)
def add_drain(app: str, body: DrainCreate, who: Who, gun: Gun) -> dict[str, Any]:
    return drain_json(gun.drains.add(who, app, body.url))


@router.delete("/apps/{app}/drains/{drain_id}", status_code=204)
def remove_drain(
    app: str, drain_id: Annotated[int, Path(ge=1, le=2**31 - 1)], who: Who, gun: Gun
) -> Response:
    gun.drains.remove(who, app, drain_id)
    return Response(status_code=204)


@router.get("/apps/{app}/drains/ingest")
def ingest(
    app: str, who: Who, gun: Gun, resolution: int | None = Query(None, ge=1, le=3600)
) -> dict[str, str]:
    return {"url": gun.drains.ingest_url(who, app, resolution)}


@router.post("/apps/{app}/drains/ingest")
def rotate_ingest(
    app: str, who: Who, gun: Gun, resolution: int | None = Query(None, ge=1, le=3600)
) -> dict[str, str]:
    """A new ingest token: the old URL is refused from now on."""
    return {"url": gun.drains.rotate_ingest(who, app, resolution)}


@router.get("/apps/{app}/log-session")
def log_session(app: str, who: Who, gun: Gun) -> dict[str, str]:
    return {"url": gun.drains.log_session(who, app)}


MAX_APPS = 200  # apps in one /v1/log-session?apps= (the drain asks in batches of this)


@router.get("/log-session")
def log_session_many(who: Who, gun: Gun, apps: str = Query("", max_length=7000)) -> dict[str, Any]:
    names = [a for a in apps.split(",") if a]
    if len(names) > MAX_APPS:
        raise InvalidParams(f"apps= names {len(names)} apps; ask for at most {MAX_APPS} at once")
    return {"url": gun.shipping.drain_base(), "apps": gun.drains.readable(who, names)}


@router.get("/drain/ingest-tokens/{token:path}")  # any path under it: the Platform judges it
def ingest_token(token: str, who: DrainWho, gun: Gun) -> dict[str, str]:
    return {"app": gun.drains.app_of_ingest_token(who, token)}
