"""Routes for one-off processes (the attachment itself is at meta's rendezvous door,
api/rendezvous.py).

route                                  CLI command
POST   /v1/apps/{app}/runs             run, run:detached, console, console.db
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field, StrictBool, StrictInt, StrictStr

from gun.api.auth import Gun, Who
from gun.api.fleet_routes import Strict
from gun.core.runs import RunRequest
from gun.model import Run
from gun.rendezvous import Framing

router = APIRouter(prefix="/v1")

Dimension = Annotated[StrictInt, Field(ge=1, le=65535)]


class RunCreate(Strict):
    command: StrictStr = ""
    console: StrictBool = False  # the app's console: meta chooses the command
    attach: StrictBool = True
    tty: StrictBool = False
    term: StrictStr | None = None
    size: tuple[Dimension, Dimension] | None = None  # [columns, lines]
    layer: StrictStr | None = None


def run_json(run: Run, attach_url: str | None = None) -> dict[str, Any]:
    return {
        "name": run.name,
        "command": run.command,
        "state": run.state,
        "instance": run.instance,
        "release": run.release,
        "owner": run.owner,
        "attach_url": attach_url,
        "created_at": run.created_at.isoformat(),
    }


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
    )
    started = gun.runs.start(who, app, req)
    return run_json(started.run, started.attach_url)
