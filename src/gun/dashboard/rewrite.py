"""Where a browser's page requests go: the dashboard lives under /dash, while the Heroku
Platform API answers JSON at the root (`GET /apps`, `GET /apps/{app}`). A `GET` or `HEAD` of
`/`, `/login`, `/apps` or `/apps/APP` that accepts `text/html` and carries no `Authorization`
header is a browser's: it goes to `/dash/...`. Every other request goes where it went (an API
client sends its token and asks for JSON)."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/dash"
_PAGE = re.compile(r"/(?:login|apps(?:/[^/]+)?)?\Z")


def page_of(method: str, path: str, headers: dict[bytes, bytes]) -> str | None:
    """The dashboard path a request is for, or None when it is not a browser's page."""
    if method not in ("GET", "HEAD") or not _PAGE.match(path):
        return None
    if b"authorization" in headers:
        return None
    if b"text/html" not in headers.get(b"accept", b"").lower():
        return None
    return PREFIX + path


class Rewrite:
    """Pure ASGI middleware: rewrites a browser's page requests to the dashboard's paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            page = page_of(scope["method"], scope["path"], dict(scope["headers"]))
            if page is not None:
                raw = scope.get("raw_path") or scope["path"].encode("utf-8")
                scope = {**scope, "path": page, "raw_path": PREFIX.encode() + raw}
        await self.app(scope, receive, send)
