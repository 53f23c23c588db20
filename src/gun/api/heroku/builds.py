"""The Heroku Platform API's builds (REFERENCE.md §6): a build from a `source_blob.url`, by
gun's own Builds service, and its output streamed from an `output_stream_url`.

route                                 caller
POST   /apps/{app}/builds             heroku-builds plugin, heroku3 app.create_build()
GET    /apps/{app}/builds             builds
GET    /apps/{app}/builds/{id}        builds:info; clients polling for the end
GET    /build-output/{build}/{token}  output_stream_url (no Authorization: the URL is the key)

The source is fetched before the build is queued, so a URL meta may not read, a checksum that
does not match or a source over GUN_SLUG_MAX_BYTES is refused at once, in one sentence naming
the field (api/heroku/blobs.py says which URLs meta reads). `output_stream_url` carries an
HMAC of the build's id under a key meta draws when it starts: it opens that build's output
and nothing else, and a restarted meta (which fails the builds it was running) gives new URLs.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field, StrictStr

from gun.api.auth import Gun, Who
from gun.api.build_routes import ID
from gun.api.fleet_routes import upload_limit
from gun.api.heroku import blobs
from gun.api.heroku.apps import Lenient
from gun.api.heroku.common import STACK, find_app, paged, user_json
from gun.api.heroku.sources import Sources, may_build
from gun.core import Platform
from gun.errors import InvalidParams, NotFound
from gun.heroku_ids import app_uuid, build_uuid, is_uuid, release_uuid
from gun.model import App, Build, Principal

router = APIRouter()
OUTPUT_POLL = 0.2  # seconds between looks at a growing build output
_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")
_OWN = re.compile(r"/sources/([A-Za-z0-9_-]{43})\Z")
_DETECTED = {"heroku/python", "heroku/nodejs", "heroku/node"}  # gun's own detection does these
_KEY_LOCK = threading.Lock()


class SourceBlob(Lenient):
    url: StrictStr = Field(min_length=1, max_length=4096)
    checksum: StrictStr | None = Field(default=None, max_length=100)
    version: StrictStr | None = Field(default=None, max_length=200)
    version_description: StrictStr | None = Field(default=None, max_length=500)


class Buildpack(Lenient):
    url: StrictStr | None = Field(default=None, max_length=2000)
    name: StrictStr | None = Field(default=None, max_length=200)


class BuildCreate(Lenient):
    source_blob: SourceBlob
    buildpacks: list[Buildpack] | None = Field(default=None, max_length=20)


def _key(request: Request) -> bytes:
    """The key output URLs are signed with, drawn once per meta."""
    state = request.app.state
    with _KEY_LOCK:
        if getattr(state, "heroku_output_key", None) is None:
            state.heroku_output_key = secrets.token_bytes(32)
        key: bytes = state.heroku_output_key
    return key


def _sign(key: bytes, build_id: int) -> str:
    return hmac.new(key, f"build-output/{build_id}".encode(), "sha256").hexdigest()


def stream_url(request: Request, build_id: int) -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}/build-output/{build_id}/{_sign(_key(request), build_id)}"


def heroku_status(b: Build) -> str:
    return b.status if b.status in ("succeeded", "failed") else "pending"


def build_json(
    request: Request, a: App, b: Build, given: BuildCreate | None = None
) -> dict[str, Any]:
    """Heroku's build. The source's URL and checksum are not stored: only the answer to the
    POST that sent them shows them (the URL may hold a token the app's viewers should not see)."""
    aid = app_uuid(a.id, a.created_at)
    blob = given.source_blob if given else None
    packs = given.buildpacks if given and given.buildpacks else []
    return {
        "id": build_uuid(aid, b.id),
        "app": {"id": aid, "name": a.name},
        "buildpacks": [{"url": p.url or p.name, "name": p.name or p.url} for p in packs],
        "created_at": b.created_at.isoformat(),
        "updated_at": (b.finished_at or b.created_at).isoformat(),
        "output_stream_url": stream_url(request, b.id),
        "release": {"id": release_uuid(aid, b.release)} if b.release is not None else None,
        "slug": None,
        "source_blob": {
            "checksum": blob.checksum if blob else None,
            "url": blob.url if blob else None,
            "version": blob.version if blob else b.commit,
            "version_description": b.commit_description,
        },
        "stack": STACK["name"],
        "status": heroku_status(b),
        "user": user_json(b.actor),
    }


def _check_buildpacks(packs: list[Buildpack] | None) -> None:
    for i, p in enumerate(packs or []):
        named = p.url or p.name
        if named is None:
            raise InvalidParams(f"buildpacks[{i}].url: give the buildpack's URL or name")
        if named.lower() not in _DETECTED:
            raise InvalidParams(
                f"buildpacks[{i}].url: gun builds with the buildpack it detects (python, node) "
                "or the one the app's BUILDPACK config var names: set BUILDPACK to "
                f"{named} instead"
            )


def _version(blob: SourceBlob) -> tuple[str | None, str | None]:
    """(commit, commit description) for gun's build from the source's version."""
    version = blob.version.strip() if blob.version else None
    commit = version.lower() if version and _COMMIT.match(version.lower()) else None
    described = blob.version_description or (version if commit is None else None)
    return commit, described


def fetch(
    gun: Platform, request: Request, url: str, checksum: str | None, rules: blobs.SourceRules
) -> Path:
    """The source at `url` as gun's build takes it, in meta's scratch directory."""
    sources = Sources.of(gun)
    assert gun.builds.options is not None  # Sources.of refuses a meta without builds
    scratch = sources.root.parent
    parts = urlsplit(url)
    fd, raw_name = tempfile.mkstemp(prefix="heroku-fetch-", suffix=".tar", dir=scratch)
    raw = Path(raw_name)
    try:
        with open(fd, "wb") as f:
            out = blobs.Capped(f, upload_limit())
            own = _OWN.match(parts.path) if parts.scheme in ("http", "https") else None
            blob = sources.blob(own.group(1)) if own else None
            if blob is not None:
                with open(blob, "rb") as src:
                    while chunk := src.read(1024 * 1024):
                        out.write(chunk)
            elif own and parts.netloc == request.headers.get("host"):
                raise blobs.refused(
                    "no such source of this meta: it is mistyped or over an hour old"
                )
            elif parts.scheme == "file":
                blobs.copy_file(url, rules, out)
            elif parts.scheme in ("http", "https"):
                blobs.download(url, rules, out)
            else:
                raise blobs.refused("give an http(s):// URL, or file:/// where meta allows it")
        out.check(checksum)
        made = scratch / f"heroku-source-{secrets.token_hex(8)}.tar.gz"
        try:
            blobs.reroot(raw, made, gun.builds.options.slug_limits)
        except BaseException:
            made.unlink(missing_ok=True)
            raise
        return made
    finally:
        raw.unlink(missing_ok=True)


def _rules(request: Request) -> blobs.SourceRules:
    """The settings, read once per meta (GUN_HEROKU_SOURCE_DIR, GUN_HEROKU_SOURCE_HOSTS)."""
    state = request.app.state
    rules = getattr(state, "heroku_source_rules", None)
    if rules is None:
        rules = state.heroku_source_rules = blobs.SourceRules.resolve()
    assert isinstance(rules, blobs.SourceRules)
    return rules


@router.post("/apps/{app}/builds", status_code=201)
async def create_build(
    app: str, body: BuildCreate, request: Request, who: Who, gun: Gun
) -> dict[str, Any]:
    checksum = blobs.parse_checksum(body.source_blob.checksum)
    _check_buildpacks(body.buildpacks)
    name = await to_thread.run_sync(may_build, gun, who, app)
    commit, described = _version(body.source_blob)
    await to_thread.run_sync(lambda: gun.builds.may_create(who, name, commit_description=described))
    rules = _rules(request)
    source = await to_thread.run_sync(fetch, gun, request, body.source_blob.url, checksum, rules)
    try:
        build = await to_thread.run_sync(
            lambda: gun.builds.create(who, name, commit=commit, commit_description=described)
        )
        kept = source.with_name(f"source-{build.id}-{source.name}")
        source.rename(kept)  # the build's now: it deletes it when done
    except BaseException:
        source.unlink(missing_ok=True)
        raise
    gun.builds.start(who, build, kept)
    a = await to_thread.run_sync(find_app, gun, who, name)
    return build_json(request, a, build, body)


def _builds(gun: Platform, who: Principal, a: App) -> list[Build]:
    return list(reversed(gun.builds.all(who, a.name, 1000)))


@router.get("/apps/{app}/builds")
def builds(
    app: str, request: Request, response: Response, who: Who, gun: Gun
) -> list[dict[str, Any]]:
    a = find_app(gun, who, app)
    keys = {"id": lambda b: b.id, "created_at": lambda b: b.created_at.isoformat()}
    found = paged(request, response, _builds(gun, who, a), list(keys), keys)
    return [build_json(request, a, b) for b in found]


@router.get("/apps/{app}/builds/{build}")
def build_info(app: str, build: str, request: Request, who: Who, gun: Gun) -> dict[str, Any]:
    """`{build}`: the build's UUID, or gun's number for it."""
    a = find_app(gun, who, app)
    if build.isascii() and build.isdigit() and len(build) < 10:
        return build_json(request, a, gun.builds.get(who, a.name, int(build)))
    if is_uuid(build):
        aid = app_uuid(a.id, a.created_at)
        for b in _builds(gun, who, a):
            if build_uuid(aid, b.id) == build.lower():
                return build_json(request, a, b)
    raise NotFound(f"build {build!r} of app {a.name!r} does not exist")


@router.get("/build-output/{build_id}/{token}", response_class=StreamingResponse)
async def build_output(
    build_id: Annotated[int, ID], token: str, request: Request, gun: Gun
) -> StreamingResponse:
    """The build's output from its start, streamed as it is printed, until the build ends."""
    if not hmac.compare_digest(token.encode(), _sign(_key(request), build_id).encode()):
        raise NotFound("no such build output: the URL is mistyped, or from before meta restarted")
    await to_thread.run_sync(gun.builds.output_of, build_id, 0)  # it exists

    async def chunks() -> AsyncIterator[bytes]:
        at = 0
        while True:
            text, status = await to_thread.run_sync(gun.builds.output_of, build_id, at)
            if text:
                at += len(text)
                yield text.encode()
            elif status in ("succeeded", "failed"):
                return
            else:
                await asyncio.sleep(OUTPUT_POLL)

    return StreamingResponse(chunks(), media_type="text/plain; charset=utf-8")
