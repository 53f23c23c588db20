"""What every route of the Heroku Platform API shares: headers, `{app}` by name or UUID, the
shapes the stock clients read (REFERENCE.md §6: a missing field crashes them), paging."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gun.api.heroku.paging import page, parse_range
from gun.core import Platform
from gun.errors import NotFound
from gun.heroku_ids import app_uuid, is_uuid, release_uuid, user_uuid
from gun.model import App, Principal, Release

T = TypeVar("T")
REGION = {"id": "59accabd-516d-4f0e-83e6-6e3757701145", "name": "local"}
STACK = {"id": "ee582d3c-717d-4a57-ba5f-8b3a39f3a817", "name": "gun"}
RATE_LIMIT = "4500"  # gun does not limit rates: the most Heroku ever says
_REQUEST_ID = re.compile(r"[A-Za-z0-9+/=_.-]{20,200}\Z")


class HerokuHeaders:
    """Every answer at the API's root (the Heroku subset) carries `Request-Id` (the client's,
    if it sent a sane one) and `RateLimit-Remaining`, which heroku3 reads at once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/v1"):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else str(uuid.uuid4())

        async def send_with(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"request-id", rid.encode()))
                headers.append((b"ratelimit-remaining", RATE_LIMIT.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with)


def find_app(gun: Platform, who: Principal, ref: str) -> App:
    """`{app}`: a name, or the UUID of one `who` may see."""
    if is_uuid(ref):
        for a in gun.apps.all(who):
            if app_uuid(a.id, a.created_at) == ref.lower():
                return a
        raise NotFound(f"app {ref!r} does not exist")
    return gun.apps.get(who, ref)


def user_json(who_name: str) -> dict[str, Any]:
    return {"id": user_uuid(who_name), "email": email(who_name)}


def email(name: str) -> str:
    """The email a token shows as (Heroku's clients print one): its name, if it is one."""
    return name if "@" in name else f"{name}@gun"


def app_json(a: App, gun: Platform, owner: str = "admin") -> dict[str, Any]:
    created = a.created_at.isoformat()
    return {
        "id": app_uuid(a.id, a.created_at),
        "name": a.name,
        "owner": user_json(owner),
        "organization": None,
        "team": None,
        "region": REGION,
        "stack": STACK,
        "build_stack": STACK,
        "git_url": a.repo or "",
        "web_url": f"http://{gun.domains.default(a.name)}/",
        "repo_size": None,
        "slug_size": None,
        "create_status": "complete",
        "space": None,
        "internal_routing": None,
        "maintenance": False,
        "acm": False,
        "buildpack_provided_description": None,
        "archived_at": None,
        "released_at": created,
        "created_at": created,
        "updated_at": created,
    }


def release_json(a: App, r: Release, built: bool | None = None) -> dict[str, Any]:
    """`built`: whether the app's current release has a build (unknown: as `r`). The CLI rolls
    back to the second release eligible for rollback (the current one is the first): one gun
    would roll back to, so neither a failed one nor, once the app has a build, one without."""
    if built is None:
        built = r.has_build
    when = r.created_at.isoformat()
    return {
        "id": release_uuid(app_uuid(a.id, a.created_at), r.version),
        "version": r.version,
        "description": r.description,
        "status": r.status,
        "current": r.current,
        "eligible_for_rollback": r.status != "failed" and (r.has_build or not built),
        "user": user_json(r.actor),
        "app": {"id": app_uuid(a.id, a.created_at), "name": a.name},
        "slug": None,
        "addon_plan_names": [],
        "output_stream_url": None,
        "created_at": when,
        "updated_at": when,
    }


def paged(
    request: Request,
    response: Response,
    items: Sequence[T],
    fields: Sequence[str],
    keys: dict[str, Callable[[T], int | str]],
) -> list[T]:
    """The page of `items` the request's Range asks for; 206 and Next-Range if more remain."""
    r = parse_range(request.headers.get("range"), fields)
    got, more = page(items, r, keys[r.field])
    if more is not None:
        response.status_code = 206
        response.headers["next-range"] = more
    return got
