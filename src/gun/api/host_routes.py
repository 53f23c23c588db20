"""Routes for hosts, machines the team already has, reached over ssh.

GET    /v1/hosts               hosts
POST   /v1/hosts               hosts.add (checks the host over ssh first)
DELETE /v1/hosts/{name}        hosts.remove
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter
from pydantic import Field, StrictInt

from gun.api import bodies
from gun.api.auth import Gun, Who
from gun.core.hosts import NewHost
from gun.model import DEFAULT_HOST_ROOT, Host

router = APIRouter(prefix="/v1")


class HostAdd(bodies.Body):
    name: bodies.Text = Field(max_length=100)
    target: bodies.Text = Field(max_length=300)  # USER@ADDRESS
    port: StrictInt = 22
    root: bodies.Text = Field(default=DEFAULT_HOST_ROOT, max_length=300)
    key: bodies.Text | None = Field(default=None, max_length=20_000)  # a private key's text


def host_json(h: Host) -> dict[str, Any]:
    return {
        "name": h.name,
        "address": h.address,
        "user": h.user,
        "port": h.port,
        "root": h.root,
        "python": h.python,
        "key": "kept by meta" if h.has_key else "ssh's own",
        "instances": h.instances,
        "created_at": h.created_at.isoformat(),
    }


@router.get("/hosts")
def hosts(who: Who, gun: Gun) -> list[dict[str, Any]]:
    return [host_json(h) for h in gun.hosts.all(who)]


@router.post("/hosts", status_code=201)
async def add_host(body: HostAdd, who: Who, gun: Gun) -> dict[str, Any]:
    new = NewHost(body.name, body.target, body.port, body.root, body.key)
    return host_json(await to_thread.run_sync(gun.hosts.add, who, new))


@router.delete("/hosts/{name}", status_code=204)
def remove_host(name: str, who: Who, gun: Gun) -> None:
    gun.hosts.remove(who, name)
