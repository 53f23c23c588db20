"""Who may use the drain, judged on the request as sent, before anything is looked up (pure).

The drain is the endpoint meant to face the internet (Heroku posts to it), so a request is
judged on its path as it came over the wire (ASGI `raw_path`: nothing percent-decoded, no
`..` resolved) and on the exact form of its token; only then is meta asked about the token.

Ingest. The only paths are exactly `/logs/TOKEN` and `/logs` (TOKEN then the password of a
Basic `Authorization`). An ingest token is `gdi_` and 32 url-safe base64 characters
[A-Za-z0-9_-], as core/shipping.py makes them (`INGEST_PREFIX + secrets.token_urlsafe(24)`).
Every other path under `/logs/` (an empty, short, long or non-ASCII token, `..`, `%2F`,
`%2e%2e`, `//`, more segments, `;params`, `%00`, a backslash) and every Basic password not
of that form is an invalid token: `Forbidden(INVALID_INGEST)`, the very answer a well-formed
token that no app has gets, so the answer tells nothing about why. `Unauthorized` only when no
token was sent at all (`/logs` without a password).

Reading. The only paths are exactly `/v1/apps/APP/logs`, `/v1/apps/APP/logs/tail` and
`/v1/apps/APP/metrics`, APP an app name (model.APP_NAME, so no `%`, `.` or `/`); the user token
is a Bearer token of 1 to MAX_USER_TOKEN visible ASCII characters (anything longer or stranger
is no token gun ever made or accepts, and is refused without a lookup).

Series (series.py). `/v1/apps/APP/series` and `/v1/apps/APP/series/NAME`, NAME one segment
of at most 400 bytes without `/` (series.py judges it: a `..`, a `%2e` or anything else not a
series name is a 400 saying so); `/v1/summaries?apps=A,B` takes the same user token.
"""

from __future__ import annotations

import base64
import binascii
import re

from gun.errors import Forbidden, Unauthorized

INGEST = b"/logs"
INGEST_TOKEN = re.compile(r"gdi_[A-Za-z0-9_-]{32}\Z")
MAX_USER_TOKEN = 512
MAX_BASIC = 1024  # bytes of a Basic credential worth decoding: a token and a short user name
INVALID_INGEST = (
    "this is not an ingest token of any app: post to the URL `gun app:APP drains.ingest` prints"
)
NO_INGEST = "no ingest token: post to the URL `gun app:APP drains.ingest` prints"
NO_USER = "no token: send the one `gun login` saved as a Bearer token"
UNKNOWN_USER = "the token is unknown or revoked: `gun login` gets one"

_READ = re.compile(rb"/v1/apps/([a-z][a-z0-9-]{1,29})/(logs|logs/tail|metrics)\Z")
_SERIES = re.compile(rb"/v1/apps/([a-z][a-z0-9-]{1,29})/series(?:/([^/]{1,400}))?\Z")
SUMMARIES = b"/v1/summaries"
_USER_TOKEN = re.compile(rf"[\x21-\x7e]{{1,{MAX_USER_TOKEN}}}\Z")


def is_ingest_token(token: str) -> bool:
    """Whether `token` has the exact form of an ingest token (see the module docstring)."""
    return INGEST_TOKEN.match(token) is not None


def is_ingest_path(raw_path: bytes) -> bool:
    """Whether a request is for the ingest door: `/logs` or anything under `/logs/`."""
    return raw_path == INGEST or raw_path.startswith(b"/logs/")


def ingest_token(raw_path: bytes, authorization: bytes) -> str:
    """The ingest token of a request to the ingest door (`is_ingest_path`), of the exact form;
    raises Forbidden(INVALID_INGEST) for any other token, Unauthorized when none was sent."""
    if raw_path != INGEST:
        token = raw_path[len(INGEST) + 1 :].decode("latin-1")
        if not is_ingest_token(token):
            raise Forbidden(INVALID_INGEST)
        return token
    password = basic_password(authorization)
    if password is None:
        raise Unauthorized(NO_INGEST)
    if not is_ingest_token(password):
        raise Forbidden(INVALID_INGEST)
    return password


def basic_password(authorization: bytes) -> str | None:
    """The password of a Basic `Authorization` value; None when there is none. A value too
    long to hold a token, or not base64 of UTF-8, gives "" (a token was sent, and is bad)."""
    scheme, _, encoded = authorization.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    encoded = encoded.strip()
    if not encoded:
        return None
    if len(encoded) > MAX_BASIC:
        return ""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2] or None


def read_route(raw_path: bytes) -> tuple[str, str] | None:
    """(app, what) of a path of the reading routes, what one of `logs`, `logs/tail`,
    `metrics`; None for any other path."""
    m = _READ.match(raw_path)
    return None if m is None else (m[1].decode(), m[2].decode())


def series_route(raw_path: bytes) -> tuple[str, str | None] | None:
    """(app, NAME or None) of a path of the series routes; None for any other path."""
    m = _SERIES.match(raw_path)
    if m is None:
        return None
    return m[1].decode(), None if m[2] is None else m[2].decode("latin-1")


def user_token(authorization: bytes) -> str:
    """The Bearer token of a reading request; Unauthorized when there is none, or when it is
    not 1 to MAX_USER_TOKEN visible ASCII characters (then as for a token meta does not know)."""
    scheme, _, value = authorization.partition(b" ")
    token = value.strip().decode("latin-1")
    if scheme.lower() != b"bearer" or not token:
        raise Unauthorized(NO_USER)
    if _USER_TOKEN.match(token) is None:
        raise Unauthorized(UNKNOWN_USER)
    return token
