"""A log drain's URL taken apart for the shipper (pure): where to POST, the token it is known
by, its Basic auth, how to show it without its secrets, and how state/ names it."""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from gun.errors import InvalidParams
from gun.logs.access import is_ingest_token


def drain_key(url: str) -> str:
    """How state/ names a drain: a digest of its URL (which may hold a secret)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Target:
    """Where and how to POST: a drain URL taken apart."""

    url: str
    https: bool
    host: str
    port: int | None
    path: str  # with the query
    token: str  # Logplex-Drain-Token
    auth: dict[str, str]  # the Authorization header, if the URL has user:password@
    display: str  # the URL without its secrets, for logs


def target(url: str, app: str) -> Target:
    """The drain at url. Its token is the URL's password, else TOKEN in a path ending
    `/logs/TOKEN` (gun's ingest URLs), else `d.UUID`, the same for the same app and URL."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    printable = url.isascii() and url.isprintable() and " " not in url
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or not printable:
        raise InvalidParams(
            f"drain URL {url!r} is not http(s)://[USER:TOKEN@]HOST[:PORT]/PATH "
            "(printable ASCII, %-encoded): fix the drain"
        )
    segments = parts.path.split("/")
    path_token = len(segments) >= 3 and segments[-2] == "logs" and segments[-1] != ""
    token = unquote(parts.password or "") or (unquote(segments[-1]) if path_token else "")
    if not token.isprintable():  # it goes in a header
        raise InvalidParams(f"the token of drain URL {url!r} has control characters: fix it")
    auth = {}
    if parts.username is not None or parts.password is not None:
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        auth["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    shown = "/".join([*segments[:-1], "***"]) if path_token else parts.path
    return Target(
        url=url,
        https=parts.scheme == "https",
        host=parts.hostname,
        port=parts.port,
        path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        token=token or f"d.{uuid.uuid5(uuid.NAMESPACE_URL, f'{url}#{app}')}",
        auth=auth,
        display=f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{shown}",
    )


def replaces(new: str, old: str) -> bool:
    """Whether `new` is `old` with another ingest token: the platform's drain after
    `drains.ingest rotate=true` (`.../logs/gdi_...`), the same drain under a new name."""
    base, _, token = new.rpartition("/")
    old_base, _, old_token = old.rpartition("/")
    return (
        base == old_base
        and base.endswith("/logs")
        and is_ingest_token(token)
        and is_ingest_token(old_token)
        and token != old_token
    )
