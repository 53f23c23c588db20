"""Log sessions (pure): what `POST /apps/{app}/log-sessions` may ask, the token its
`logplex_url` carries, and the Server-Sent Events the URL streams (REFERENCE.md §6).

The ask. `lines` 1 to 1500 (Heroku's most; a number or a string of one, default 100), `tail`
(true/false, or the strings), `dyno` a process type (`web`) or process (`web.1`), `source`
`app` or `heroku`: dyno and source are judged by `gun logs`'s own rule (logs/filters.py).

The token. The URL is fetched without credentials, so it carries them: the session (app,
filters, tail, expiry) and the API token of whoever asked, sealed with meta's key
(`GUN_SECRET_KEY`, Fernet: AES-128-CBC, authenticated by HMAC-SHA256). Nothing is stored:
any meta with the key can open it, nobody without the key can read or forge one. What it
grants is exactly the session: meta's `/log-sessions/TOKEN` reads that app's lines with those
filters from the drain, as the asker (the drain asks meta whether that token may read the
app's logs, so a token revoked, or an app it may no longer see, ends the session: a live tail
within a second). It opens a stream until SESSION_SECONDS after it was made; a stream once open
lasts as long as the client holds it, and the same meta takes a reconnection (Last-Event-ID)
within RECONNECT_SECONDS of the last stream's end even past that. The trade-off: whoever holds
a URL and meta's key can recover the asker's API token from it; the key alone already opens
every config var.

Events. One line, one event, as logs/sse.py says: a client that reconnects with
`Last-Event-ID: ID` gets the lines after it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Protocol

from gun.errors import GunError, InvalidParams, NotFound, Unavailable, UsageError
from gun.logs.filters import Filter

MAX_LINES = 1500  # Heroku's most for `heroku logs -n`
DEFAULT_LINES = 100
SESSION_SECONDS = 300.0  # a URL opens a stream for 5 minutes after it was made
RECONNECT_SECONDS = 60.0
KIND = "gun-log-session/1"
TOKEN = re.compile(r"[A-Za-z0-9_-]{60,4000}={0,2}\Z")  # the form of a sealed session
GONE = "no such log session, or it has expired: ask for a new one (`heroku logs` does)"
_TRUE = {True: True, False: False, "true": True, "false": False, "1": True, "0": False}


@dataclass(frozen=True)
class Ask:
    """A log session's filters, validated."""

    lines: int = DEFAULT_LINES
    tail: bool = False
    dyno: str | None = None
    source: str | None = None

    def query(self, lines: int | None = None) -> dict[str, str]:
        """The drain's `/v1/apps/APP/logs` options for it (`lines` instead of its own)."""
        q = {"n": str(self.lines if lines is None else lines)}
        if self.dyno is not None:
            q["ps"] = self.dyno
        if self.source is not None:
            q["source"] = self.source
        return q


def ask_of(
    lines: int | str | None, tail: bool | str | None, dyno: str | None, source: str | None
) -> Ask:
    """The Ask a request body makes, as the clients send it (numbers or strings); InvalidParams
    naming the first bad value."""
    n = DEFAULT_LINES
    if lines is not None:
        text = str(lines).strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LINES:
            raise InvalidParams(f"lines {lines!r} is not a number of lines from 1 to {MAX_LINES}")
        n = int(text)
    follow = _TRUE.get(tail.lower() if isinstance(tail, str) else tail)
    if tail is not None and follow is None:
        raise InvalidParams(f"tail {tail!r} is neither true nor false")
    try:
        Filter.parse({"ps": dyno} if dyno is not None else {})
    except UsageError:
        raise InvalidParams(
            f"dyno {dyno!r} is not a process type like web nor a process like web.1"
        ) from None
    try:
        Filter.parse({"source": source} if source is not None else {})
    except UsageError:
        raise InvalidParams(f"source {source!r} is neither app nor heroku") from None
    return Ask(n, bool(follow), dyno, source)


@dataclass(frozen=True)
class Session:
    """What a log-session token grants: `ask` of app `app`'s lines, read as `token` until
    `expires` (epoch seconds)."""

    app: str
    ask: Ask
    token: str
    expires: float


class Sealer(Protocol):
    """What seals and opens: meta's Box (gun.crypto)."""

    def seal(self, value: str) -> str: ...

    def open(self, sealed: str) -> str: ...


def seal(box: Sealer, session: Session) -> str:
    data: dict[str, object] = {"kind": KIND, "app": session.app, "ask": asdict(session.ask)}
    data |= {"token": session.token, "expires": session.expires}
    return box.seal(json.dumps(data, separators=(",", ":")))


def open_session(box: Sealer, token: str) -> Session:
    """The session a token from a URL is; NotFound(GONE) for anything not sealed by this key
    as a session, whatever its form (its expiry is the caller's to judge)."""
    if TOKEN.match(token) is None:
        raise NotFound(GONE)
    try:
        data = json.loads(box.open(token))
        if data["kind"] != KIND:
            raise ValueError(data["kind"])
        ask = Ask(**data["ask"])
        session = Session(str(data["app"]), ask, str(data["token"]), float(data["expires"]))
    except (Unavailable, ValueError, KeyError, TypeError):  # Unavailable: not this key's
        raise NotFound(GONE) from None
    return session


def expired(session: Session, now: float) -> GunError | None:
    if now < session.expires:
        return None
    ago = now - session.expires
    return NotFound(f"this log session expired {ago:.0f} s ago: ask for a new one")
