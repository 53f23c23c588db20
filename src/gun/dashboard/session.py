"""The dashboard's session: a cookie holding the API token sealed with meta's key, and the
CSRF token every form carries.

The cookie. `gun_session` = the token of whoever signed in, sealed with meta's Box (Fernet,
as log sessions seal theirs: api/heroku/log_sessions.py), `HttpOnly`, `SameSite=Strict`,
`Path=/`, `Secure` over https. Nothing is stored: each request opens it and authenticates the
token inside again, so a revoked or expired token ends every session of it at once. Drain
and agent tokens are refused at the door: they serve only their own APIs.

CSRF. Every form carries `csrf` = HMAC(meta's key, the sealed cookie): only a page meta served
to that session knows it, and every POST but the sign-in itself is refused (403) without it.
The sign-in has no session to bind to; a cross-site one is refused by its Origin header.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field

from fastapi import Request, Response

from gun.core import Platform
from gun.crypto import Box
from gun.errors import Forbidden, GunError, Unauthorized
from gun.model import Principal

COOKIE = "gun_session"
KIND = "gun-dashboard-session/1"
CSRF_PURPOSE = "gun-dashboard-csrf"
BAD_CSRF = "the form is stale or was not sent by the dashboard: reload the page and try again"
CROSS_SITE = "a sign-in posted from another site is refused: sign in at this site's /login"


@dataclass(frozen=True)
class Session:
    """Who a request's session is, and the CSRF token its forms carry; `token` is its API
    token, for what meta reads as it elsewhere (the drain: the logs page), never shown."""

    who: Principal
    csrf: str
    token: str = field(default="", repr=False)


def box_of(platform: Platform) -> Box:
    return platform.store.box


def sign_in(platform: Platform, token: str) -> Principal:
    """Who `token` is, if it may use the dashboard; else the error saying why."""
    who = platform.tokens.authenticate(token.strip() or None)
    if who.kind == "drain":
        raise Forbidden(f"token {who.name!r} is a drain token: it cannot sign in to the dashboard")
    if who.kind == "instance" or who.instance is not None:
        raise Forbidden(
            f"token {who.name!r} belongs to an instance's agent: it cannot sign in to the dashboard"
        )
    return who


def seal(box: Box, token: str) -> str:
    return box.seal(json.dumps({"kind": KIND, "token": token}, separators=(",", ":")))


def csrf_of(box: Box, sealed: str) -> str:
    return box.mac(CSRF_PURPOSE, sealed)


def current(request: Request) -> Session | None:
    """The request's session: None without a cookie, or with one that no longer opens (another
    key, garbled) or whose token is revoked, expired, or not for the dashboard."""
    sealed = request.cookies.get(COOKIE)
    token = token_of(request)
    if not sealed or token is None:
        return None
    platform: Platform = request.app.state.platform
    box = box_of(platform)
    try:
        who = sign_in(platform, token)
    except (Unauthorized, Forbidden):
        return None
    return Session(who, csrf_of(box, sealed), token)


def token_of(request: Request) -> str | None:
    """The token the request's session cookie holds; None when there is no cookie or it does
    not open. Whether the token is still good is `current`'s question."""
    sealed = request.cookies.get(COOKIE)
    if not sealed:
        return None
    platform: Platform = request.app.state.platform
    try:
        data = json.loads(box_of(platform).open(sealed))
    except (GunError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        return None
    token = data.get("token")
    return token if isinstance(token, str) else None


def check_csrf(session: Session, given: str | None) -> None:
    # bytes: compare_digest refuses a str that is not ASCII with a TypeError (a 500)
    if not given or not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise Forbidden(BAD_CSRF)


def check_same_origin(request: Request) -> None:
    """A sign-in posted by a page of another site (its Origin names another host) is refused."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin.partition("://")[2] != host:
        raise Forbidden(CROSS_SITE)


def start(request: Request, response: Response, token: str) -> None:
    """Set the session cookie for `token` (signed in already) on `response`."""
    platform: Platform = request.app.state.platform
    response.set_cookie(
        COOKIE,
        seal(box_of(platform), token),
        httponly=True,
        samesite="strict",
        path="/",
        secure=request.url.scheme == "https",
    )


def end(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
