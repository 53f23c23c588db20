"""Routes for builds (deploy) and the agent's side of the release phase.

route                                                     CLI command / caller
POST   /v1/apps/{app}/builds?commit=&commit_description=  deploy (the body is the source)
POST   /v1/apps/{app}/builds?strategy=git&ref=REF         deploy strategy=git
GET    /v1/apps/{app}/builds                              builds, newest first
GET    /v1/apps/{app}/builds/{id}                         deploy (how it ended)
GET    /v1/apps/{app}/builds/{id}/output?offset=N         deploy (output, streamed as it grows)
POST   /v1/agent/instances/{id}/releases/{v}/output       agent running the release command
POST   /v1/agent/instances/{id}/releases/{v}/result       agent, when the release command ended
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field, StrictInt, StrictStr

from gun.api.agentwire import SPEAKS
from gun.api.auth import Gun, Who
from gun.api.fleet_routes import Strict, received
from gun.api.gate import upload
from gun.errors import InvalidParams
from gun.model import Build

router = APIRouter(prefix="/v1")
ID = Path(ge=1, le=2**31 - 1)  # what the store's integer columns hold
OUTPUT_POLL = 0.2  # seconds between looks at a growing build output
COMMIT = r"^[0-9a-f]{40}([0-9a-f]{24})?$"  # Rust regex: $ is the end of the text


def build_json(b: Build) -> dict[str, Any]:
    return {
        "id": b.id,
        "app": b.app,
        "status": b.status,
        "strategy": b.strategy,
        "ref": b.ref,
        "commit": b.commit,
        "commit_description": b.commit_description,
        "release": b.release,
        "error": b.error,
        "actor": b.actor,
        "created_at": b.created_at.isoformat(),
        "finished_at": b.finished_at.isoformat() if b.finished_at else None,
    }


@router.post("/apps/{app}/builds", status_code=201)
@upload
async def create_build(
    app: str,
    request: Request,
    who: Who,
    gun: Gun,
    commit: str | None = Query(None, pattern=COMMIT),
    commit_description: str | None = Query(None, max_length=500),
    strategy: Literal["slug", "git"] = "slug",
    ref: str | None = Query(None, min_length=1, max_length=250),
) -> dict[str, Any]:
    """strategy=slug: the body is the app's source as a gzipped tarball of ./app (`git archive`
    or a packed directory). strategy=git: no body; `ref` names what to deploy from the app's
    repository. The build is queued; read its output from `/output`."""
    # refuse before reading a large body
    await to_thread.run_sync(
        lambda: gun.builds.may_create(who, app, ref=ref, commit_description=commit_description)
    )
    if strategy == "git":
        if ref is None:
            raise InvalidParams("strategy=git needs ref: the branch, tag or commit to deploy")
        build = await to_thread.run_sync(
            lambda: gun.builds.create(who, app, strategy="git", ref=ref)
        )
        gun.builds.start(who, build, None)
        return build_json(build)
    if ref is not None:
        raise InvalidParams("ref is for strategy=git: a slug deploy sends its source as the body")
    scratch = gun.builds.scratch()
    async with received(request, "source", scratch) as (path, _, _):
        build = await to_thread.run_sync(
            lambda: gun.builds.create(
                who, app, commit=commit, commit_description=commit_description
            )
        )
        kept = path.with_name(f"source-{build.id}-{path.name}")
        path.rename(kept)  # the build's now: it deletes it when done
    gun.builds.start(who, build, kept)
    return build_json(build)


@router.get("/apps/{app}/builds")
def builds(
    app: str, who: Who, gun: Gun, limit: int = Query(20, ge=1, le=1000)
) -> list[dict[str, Any]]:
    """The app's builds, newest first."""
    return [build_json(b) for b in gun.builds.all(who, app, limit)]


@router.get("/apps/{app}/builds/{build_id}")
def build_info(app: str, build_id: Annotated[int, ID], who: Who, gun: Gun) -> dict[str, Any]:
    return build_json(gun.builds.get(who, app, build_id))


@router.get("/apps/{app}/builds/{build_id}/output", response_class=StreamingResponse)
async def build_output(
    app: str,
    build_id: Annotated[int, ID],
    who: Who,
    gun: Gun,
    offset: int = Query(0, ge=0, le=2**40),
) -> StreamingResponse:
    """The output from character `offset` on, streamed as it grows until the build ends."""
    await to_thread.run_sync(gun.builds.get, who, app, build_id)  # authorised, and it exists

    async def chunks() -> AsyncIterator[bytes]:
        at = offset
        while True:
            text, status = await to_thread.run_sync(gun.builds.output, who, app, build_id, at)
            if text:
                at += len(text)
                yield text.encode()
            elif status in ("succeeded", "failed"):
                return
            else:
                await asyncio.sleep(OUTPUT_POLL)

    return StreamingResponse(chunks(), media_type="text/plain; charset=utf-8")


class PhaseOutput(Strict):
    text: StrictStr = Field(max_length=1_000_000)


class PhaseResult(Strict):
    exit_code: StrictInt | None = None
    error: StrictStr | None = Field(default=None, max_length=1000)


@router.post(
    "/agent/instances/{instance_id}/releases/{version}/output",
    status_code=204,
    dependencies=SPEAKS,
)
def phase_output(
    instance_id: str, version: Annotated[int, ID], body: PhaseOutput, who: Who, gun: Gun
) -> None:
    gun.release_phase.output(who, instance_id, version, body.text)


@router.post(
    "/agent/instances/{instance_id}/releases/{version}/result",
    dependencies=SPEAKS,
)
def phase_result(
    instance_id: str, version: Annotated[int, ID], body: PhaseResult, who: Who, gun: Gun
) -> dict[str, Any]:
    status = gun.release_phase.done(who, instance_id, version, body.exit_code, body.error)
    return {"release": version, "status": status}
