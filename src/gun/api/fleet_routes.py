"""Routes for instances, processes, slugs and deploys (the agent protocol's: agent_routes.py).

route                                                  CLI command / caller
GET    /v1/apps/{app}/instances                        instances
POST   /v1/apps/{app}/instances                        instances.create
DELETE /v1/apps/{app}/instances/{id}                   instances.delete
GET    /v1/apps/{app}/shell?target=web.1               ssh.host
GET    /v1/apps/{app}/processes                        ps
POST   /v1/apps/{app}/processes/restart                ps.restart, ps.stop
POST   /v1/apps/{app}/slugs                            deploy (upload)
POST   /v1/apps/{app}/releases                         deploy (release the slug)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from gun.api import bodies
from gun.api.auth import Gun, Who
from gun.api.bodies import run_json
from gun.api.gate import upload
from gun.core.slugs import SLUG_MAX_BYTES
from gun.errors import InvalidParams, PayloadTooLarge
from gun.model import Instance, Process

router = APIRouter(prefix="/v1")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstancesCreate(Strict):
    # layer, instance_type and availability_zone: the Platform's rules bound their length
    layer: StrictStr
    count: StrictInt = 1
    instance_type: StrictStr | None = None
    availability_zone: StrictStr | None = None
    provider: StrictStr | None = Field(default=None, max_length=100)  # None: the layer's
    host: StrictStr | None = Field(default=None, max_length=100)


class Restart(Strict):
    target: bodies.Text | None = Field(default=None, max_length=100)


class ReleaseCreate(Strict):
    slug: StrictInt
    description: bodies.Text | None = Field(default=None, max_length=200)


def instance_json(i: Instance) -> dict[str, Any]:
    return {
        "id": i.id,
        "layer": i.layer,
        "state": i.state,
        "provider": i.provider,
        "instance_type": i.instance_type,
        "availability_zone": i.availability_zone,
        "address": i.address,
        "host": i.host,
        "cloud_id": i.cloud_id,
        "cloud_state": i.cloud_state,
        "last_heartbeat": i.last_heartbeat.isoformat() if i.last_heartbeat else None,
        "problem": i.problem,
        "setup": i.setup,  # the layer's setup when it was made: its agent runs it once
        "setup_state": i.setup_state,  # running, succeeded, failed, or null
        "setup_output": i.setup_output,
    }


def process_json(p: Process) -> dict[str, Any]:
    return {
        "name": p.name,
        "type": p.type,
        "state": p.state if p.desired else "stopping",
        "instance": p.instance,
        "port": p.port,
        "release": p.release,
        "restarts": p.restarts,
        "since": p.since.isoformat() if p.since else None,
        "exit_code": p.exit_code,
        "pid": p.pid,
    }


@router.get("/apps/{app}/instances")
def instances(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    return [instance_json(i) for i in gun.instances.all(who, app)]


@router.post("/apps/{app}/instances", status_code=201)
def create_instances(app: str, body: InstancesCreate, who: Who, gun: Gun) -> list[dict[str, Any]]:
    made = gun.instances.create(
        who,
        app,
        body.layer,
        body.count,
        instance_type=body.instance_type,
        availability_zone=body.availability_zone,
        provider=body.provider,
        host=body.host,
    )
    return [instance_json(i) for i in made]


@router.get("/apps/{app}/shell")
def shell(app: str, who: Who, gun: Gun, target: str | None = None) -> dict[str, Any]:
    """Where `gun ssh.host[:TARGET]` opens a shell: the instance, its directory, and how to
    reach its host (provider ssh; the host's pinned key, never a private key)."""
    inst, host = gun.instances.shell(who, app, target)
    ssh = None
    if host is not None:
        ssh = {
            "user": host.user,
            "address": host.address,
            "port": host.port,
            "known_host": host.known_host,
        }
    return {"instance": inst.id, "provider": inst.provider, "dir": inst.address, "ssh": ssh}


@router.delete("/apps/{app}/instances/{instance_id}")
def delete_instance(app: str, instance_id: str, who: Who, gun: Gun) -> dict[str, Any]:
    said = gun.instances.delete(who, app, instance_id)
    return {"id": instance_id, "teardown_output": said}


@router.get("/apps/{app}/processes")
def processes(app: str, who: Who, gun: Gun) -> dict[str, Any]:
    procs = sorted(gun.processes.all(who, app), key=lambda p: (p.type, p.name))
    return {
        "processes": [process_json(p) for p in procs],
        "runs": [run_json(r) for r in gun.runs.active(who, app)],
        "unplaceable": gun.formation.unplaceable(who, app),
        "release": gun.apps.status(who, app).release,
        "problems": {i.id: i.problem for i in gun.instances.all(who, app) if i.problem},
    }


@router.post("/apps/{app}/processes/restart")
def restart(app: str, body: Restart, who: Who, gun: Gun) -> dict[str, Any]:
    return {"restarting": gun.processes.restart(who, app, body.target)}


def upload_limit() -> int:
    """The cap on an uploaded slug or source, compressed: GUN_SLUG_MAX_BYTES (500 MiB)."""
    return int(os.environ.get("GUN_SLUG_MAX_BYTES", SLUG_MAX_BYTES))


@contextlib.asynccontextmanager
async def received(
    request: Request, what: str, scratch: Path | None
) -> AsyncIterator[tuple[Path, str, int]]:
    """Stream the body to a file in `scratch` (meta's, emptied at its start), capped at
    GUN_SLUG_MAX_BYTES; (path, sha256, size). The file is removed on leaving unless it was
    moved away."""
    limit = upload_limit()
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the {what} is over the limit of {limit} bytes set by GUN_SLUG_MAX_BYTES"
        )
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".tar.gz", dir=scratch)
    path = Path(name)
    try:
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(
                            f"the {what} is over the limit of {limit} bytes set by "
                            "GUN_SLUG_MAX_BYTES"
                        )
                    digest.update(chunk)
                    f.write(chunk)
        except OSError as e:
            e.filename = e.filename or name  # a full disk says where
            raise
        if size == 0:
            raise InvalidParams(f"the upload is empty: send the {what} as the request body")
        yield path, digest.hexdigest(), size
    finally:
        path.unlink(missing_ok=True)


@router.post("/apps/{app}/slugs", status_code=201)
@upload
async def upload_slug(app: str, request: Request, who: Who, gun: Gun) -> dict[str, Any]:
    """The body is the slug (a gzipped tarball of ./app); `X-Gun-Sha256` is checked if sent."""
    async with received(request, "slug", gun.builds.scratch()) as (path, sha256, size):
        slug_id, types = await to_thread.run_sync(
            lambda: gun.slugs.add(who, app, path, sha256, size, request.headers.get("x-gun-sha256"))
        )
    return {"id": slug_id, "sha256": sha256, "size": size, "process_types": types}


@router.post("/apps/{app}/releases", status_code=201)
def create_release(app: str, body: ReleaseCreate, who: Who, gun: Gun) -> dict[str, Any]:
    return bodies.release_json(gun.deploys.release(who, app, body.slug, body.description))
