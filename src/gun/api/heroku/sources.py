"""Sources uploaded to meta for a build, as Heroku's `POST /sources` gives them: a `put_url`
the client PUTs its tarball to and a `get_url` to build from (`source_blob.url`).

route                            caller
POST   /sources                  heroku-builds plugin, scripts: where to upload a source
POST   /apps/{app}/sources       the same, for one app (a developer of it)
PUT    /sources/{put token}      the client uploads (no Authorization: the URL is the key)
GET    /sources/{get token}      the source back (no Authorization: the URL is the key)

Each URL holds its own random token (32 bytes): the put URL writes, the get URL reads, neither
gives the other. Meta keeps only the tokens' SHA-256 as file names in `$GUN_HOME/builds/work/
heroku-sources` (0700; meta empties builds/work when it starts), and each URL lasts an hour
(SOURCE_TTL), like Heroku's. A PUT is capped at GUN_SLUG_MAX_BYTES.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from gun import isolation
from gun.api.auth import Gun, Who
from gun.api.fleet_routes import received
from gun.api.gate import upload
from gun.api.heroku.common import find_app
from gun.core import Platform
from gun.core.access import authorize
from gun.errors import InvalidParams, NotFound
from gun.model import Principal

router = APIRouter()
SOURCE_TTL = 3600.0  # seconds a put or get URL lasts
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}\Z")
_GONE = "no such source URL: it is mistyped, or over an hour old (POST /sources for another)"


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sources:
    """The uploaded sources in `root`: `KEY.put` (a put token's, naming its source) and
    `KEY.tar.gz` (a get token's source), KEY the SHA-256 of the token."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, gun: Platform) -> Sources:
        scratch = gun.builds.scratch()
        if scratch is None:
            raise InvalidParams("this meta runs no builds: it was started without a build home")
        return cls(isolation.make_dir(scratch / "heroku-sources", isolation.PRIVATE_DIR))

    def create(self) -> tuple[str, str]:
        """A new (get token, put token)."""
        self.sweep()
        get, put = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        fd = os.open(self.root / f"{_key(put)}.put", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(_key(get))
        return get, put

    def upload_target(self, put: str) -> Path | None:
        """Where the source of put token `put` goes (None: no such live token)."""
        marker = self._live(put, ".put")
        return None if marker is None else self.root / f"{marker.read_text().strip()}.tar.gz"

    def blob(self, get: str) -> Path | None:
        """The source of get token `get`, once it was uploaded (None: none live)."""
        return self._live(get, ".tar.gz")

    def _live(self, token: str, suffix: str) -> Path | None:
        if not _TOKEN.match(token):
            return None
        path = self.root / f"{_key(token)}{suffix}"
        try:
            made = path.stat().st_mtime if suffix == ".tar.gz" else path.lstat().st_mtime
        except OSError:
            return None
        return path if time.time() - made < SOURCE_TTL else None

    def sweep(self) -> None:
        """Remove what is over an hour old."""
        cutoff = time.time() - SOURCE_TTL
        for path in self.root.iterdir():
            try:
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                pass  # gone meanwhile


def source_json(request: Request, get: str, put: str) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {"source_blob": {"get_url": f"{base}/sources/{get}", "put_url": f"{base}/sources/{put}"}}


def _create(request: Request, gun: Platform) -> dict[str, Any]:
    get, put = Sources.of(gun).create()
    return source_json(request, get, put)


@router.post("/sources", status_code=201)
def create_source(request: Request, who: Who, gun: Gun) -> dict[str, Any]:
    authorize(who, "developer", who.app)
    return _create(request, gun)


@router.post("/apps/{app}/sources", status_code=201)
def create_app_source(app: str, request: Request, who: Who, gun: Gun) -> dict[str, Any]:
    may_build(gun, who, app)
    return _create(request, gun)


def may_build(gun: Platform, who: Principal, app: str) -> str:
    """The app's name, if `who` may build it (a developer of it)."""
    name = find_app(gun, who, app).name
    authorize(who, "developer", name)
    return name


@router.put("/sources/{token}")
@upload
async def put_source(token: str, request: Request, gun: Gun) -> Response:
    sources = Sources.of(gun)
    target = sources.upload_target(token)
    if target is None:
        raise NotFound(_GONE)
    async with received(request, "source", sources.root) as (path, _, _):
        os.replace(path, target)
    return Response(status_code=200)


@router.get("/sources/{token}", response_class=FileResponse)
def get_source(token: str, gun: Gun) -> FileResponse:
    found = Sources.of(gun).blob(token)
    if found is None:
        raise NotFound(_GONE)
    return FileResponse(found, media_type="application/octet-stream")
