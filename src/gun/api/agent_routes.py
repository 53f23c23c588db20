"""Routes of the agent protocol: what an instance's agent calls, with its own token.

route                                                  caller
POST   /v1/agent/instances/{id}/register               agent, at start
GET    /v1/agent/instances/{id}/desired?after=GEN      agent, long-poll
PUT    /v1/agent/instances/{id}/observed               agent, heartbeat + process states
GET    /v1/agent/instances/{id}/slugs/{sha256}         agent, slug download
GET    /v1/agent/instances/{id}/bundle                 ec2 user-data, the agent's wheels (a tar)
POST   /v1/agent/instances/{id}/replacements           agent, before taking processes down

They speak gun.protocol: the agent names its protocol in the Gun-Protocol header of every call
(heard first, api/agentwire.py), registers with a Registration, reports with a Report and is
answered a Slice. meta's hottest routes (1,000 agents long-poll and heartbeat): their router
comes first, so a call is matched before the rest are tried.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import Field, StrictStr

from gun import protocol
from gun.api import agentwire
from gun.api.agentwire import SPEAKS
from gun.api.auth import Gun, Who
from gun.api.fleet_routes import Strict, instance_json
from gun.api.longpoll import Generations

router = APIRouter(prefix="/v1")
LONG_POLL_SECONDS = 25.0


@router.post("/agent/instances/{instance_id}/register", dependencies=SPEAKS)
async def register(
    instance_id: str,
    body: Annotated[Any, agentwire.body(protocol.Registration)],
    who: Who,
    gun: Gun,
) -> dict[str, Any]:
    """Group-committed with the registrations that arrive meanwhile (core/batch.py)."""
    registration = agentwire.read(protocol.read_registration, body, who, instance_id)
    return instance_json(
        await gun.agents.registered(who, instance_id, registration.address, registration.ip)
    )


@router.get(
    "/agent/instances/{instance_id}/desired",
    dependencies=SPEAKS,
    response_class=Response,
    responses=agentwire.answer(protocol.Slice),
)
async def desired(
    request: Request,
    instance_id: str,
    who: Who,
    gun: Gun,
    after: int = Query(-1, ge=-1, le=2**62),
    wait: float = Query(LONG_POLL_SECONDS, ge=0, le=60),
) -> Response:
    """Answers at once if the app's generation is past `after`, else when it is, or at `wait`
    (api/longpoll.py waits). Once this meta knows the instance's app and its generation, a
    long-poll costs no query: the generation is the one meta's long-polls share, and the slice
    is built from the app's snapshot (core/slices.py)."""
    generations: Generations = request.app.state.generations
    home = gun.agents.home(who, instance_id)
    shared = generations.known.get(home) if home is not None else None
    if home is not None and shared is not None:
        app_id, known = home, shared
    else:
        app_id, known = await to_thread.run_sync(gun.agents.generation, who, instance_id)
    if known <= after:
        await generations.wait_past(app_id, after, wait)
        known = max(known, generations.known.get(app_id, known))
    state = await gun.agents.slice_at(who, instance_id, known)
    return Response(json.dumps(protocol.to_json(state)), media_type="application/json")


@router.put("/agent/instances/{instance_id}/observed", status_code=204, dependencies=SPEAKS)
async def observed(
    instance_id: str, body: Annotated[Any, agentwire.body(protocol.Report)], who: Who, gun: Gun
) -> None:
    """The heartbeat: a Report of every process the agent runs, group-committed with the
    reports that arrive meanwhile (core/reports.py)."""
    report = agentwire.read(protocol.read_report, body, who, instance_id)
    await gun.agents.reported(who, instance_id, report)


class Replacements(Strict):
    names: list[StrictStr] = Field(max_length=10_000)


@router.post("/agent/instances/{instance_id}/replacements", dependencies=SPEAKS)
def replacements(instance_id: str, body: Replacements, who: Who, gun: Gun) -> dict[str, list[str]]:
    """Rollout leases: which of these processes the agent may take down now."""
    return {"granted": gun.agents.lease_replacements(who, instance_id, body.names)}


@router.get("/agent/instances/{instance_id}/bundle", response_class=Response)
def agent_bundle(instance_id: str, who: Who, gun: Gun) -> Response:
    """The agent's wheels in one tar (bundle.py), for the instance's own bootstrap: its
    user-data knows the sha256. Not an agent protocol call: it needs no Gun-Protocol."""
    archive = gun.agents.bundle(who, instance_id)
    return Response(
        archive.data,
        media_type="application/x-tar",
        headers={"X-Gun-Bundle-Sha256": archive.sha256},
    )


@router.get("/agent/instances/{instance_id}/slugs/{sha256}", dependencies=SPEAKS)
def slug(instance_id: str, sha256: str, who: Who, gun: Gun) -> StreamingResponse:
    f = gun.agents.slug(who, instance_id, sha256)

    def chunks() -> Iterator[bytes]:
        with f:
            yield from iter(lambda: f.read(256 * 1024), b"")

    return StreamingResponse(chunks(), media_type="application/gzip")
