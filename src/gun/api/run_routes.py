"""Routes for one-off processes (the attachment itself is at meta's rendezvous door,
api/rendezvous.py).

route                                  CLI command
POST   /v1/apps/{app}/runs             run, run:detached, console, console.db
DELETE /v1/apps/{app}/runs/{name}      ps.stop:run.N
(and `runs` in GET /v1/apps/{app}/processes: ps)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field, StrictBool, StrictInt, StrictStr

from gun.api.auth import Gun, Who
from gun.api.bodies import run_json
from gun.api.fleet_routes import Strict
from gun.core.runs import RunRequest
from gun.rendezvous import Framing

router = APIRouter(prefix="/v1")

Dimension = Annotated[StrictInt, Field(ge=1, le=65535)]


class RunCreate(Strict):
    command: StrictStr = ""
    console: StrictBool = False  # the app's console: meta chooses the command
    database: Literal["primary", "follower"] | None = None  # console.db: psql
    attach: StrictBool = True
    tty: StrictBool = False
    term: StrictStr | None = None
    size: tuple[Dimension, Dimension] | None = None  # [columns, lines]
    layer: StrictStr | None = None


@router.post("/apps/{app}/runs", status_code=201)
def create_run(app: str, body: RunCreate, who: Who, gun: Gun) -> dict[str, Any]:
    req = RunRequest(
        command=body.command,
        attached=body.attach,
        tty=body.tty,
        framing=Framing.GUN,
        term=body.term,
        size=body.size,
        layer=body.layer,
        console=body.console,
        database=body.database,
    )
    started = gun.runs.start(who, app, req)
    return run_json(started.run, started.attach_url, started.rendezvous)


@router.delete("/apps/{app}/runs/{name}")
def stop_run(app: str, name: str, who: Who, gun: Gun) -> dict[str, Any]:
    return run_json(gun.runs.stop(who, app, name))
