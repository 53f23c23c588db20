"""Heroku's router lines from HAProxy's log lines (pure).

HAProxy sends one RFC 5424 syslog datagram per request, its message in LOG_FORMAT
(gun.router.haproxy). `read(datagram)` gives the app and its router line, as Heroku's router
writes it (REFERENCE.md §4):

    at=info method=GET path="/" host=shop.localhost request_id=6d1e... fwd="127.0.0.1"
    dyno=web.2 connect=0ms service=12ms status=200 bytes=1234 protocol=http

and for errors `at=error code=H12 desc="Request timeout" ...`, values HAProxy never had left
empty (`dyno= connect=`). Which H code, from HAProxy's termination state (its first letter:
who ended the request, its second: at which step) and whether a process was chosen:

  sH H12 Request timeout (503)            SC, no process  H14 No web processes running (503)
  SH H13 Connection closed without response (503)   sC H19 Backend connection timeout (503)
  SC H19 Backend connection refused (503)            SD/sD H18 Server Request Interrupted
  PH H17 Poorly formatted HTTP response (503)        C?/c? H27 Client Request Interrupted (499)
  other errors (I, R, K, D) H99 Platform error

Anything else HAProxy says (a server going down, a reload) is None: the router's own log.
A field that does not read as expected makes the datagram None too, never an exception: the
datagrams come from HAProxy, but what they quote came from the internet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gun.model import APP_NAME, PROCESS_NAME

_HEADER = re.compile(rb"^<\d{1,3}>1 \S+ \S+ \S+ \S+ \S+ \S+ ")
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_UNESCAPE = re.compile(r"\\(.)")
_METHOD = re.compile(r"^[A-Z][A-Z0-9_-]{0,31}\Z")
_STATE = re.compile(r"^[A-Za-z-][A-Za-z-]\Z")
_SAFE = re.compile(r'[^\x21-\x7e]|["\\]')  # what a quoted value of a router line may not hold
FIELDS = 14
APP_BACKEND = "app-"

ERRORS = {
    "H12": "Request timeout",
    "H13": "Connection closed without response",
    "H14": "No web processes running",
    "H17": "Poorly formatted HTTP response",
    "H18": "Server Request Interrupted",
    "H19": "Backend connection timeout",
    "H27": "Client Request Interrupted",
    "H99": "Platform error",
}


@dataclass(frozen=True, slots=True)
class Request:
    """One request as HAProxy logged it."""

    app: str
    server: str | None  # web.1; None: no process was chosen
    method: str
    path: str
    host: str
    request_id: str
    fwd: str
    connect: int | None  # ms; None: never connected
    service: int | None  # ms from the request sent to the end of the response
    status: int | None
    bytes: int | None
    state: str  # HAProxy's termination state, 2 letters
    tls: bool


def code_of(r: Request) -> tuple[str | None, str | None, int | None]:
    """(H code, desc, status the client got) for a request; (None, None, status) if it went
    well."""
    cause, step = r.state[0], r.state[1]
    if cause == "-":
        return None, None, r.status
    if cause == "s" and step == "H":
        return "H12", ERRORS["H12"], 503
    if cause == "S" and step == "C" and r.server is None:
        return "H14", ERRORS["H14"], 503
    if cause == "S" and step == "C":
        return "H19", "Backend connection refused", 503
    if cause == "s" and step == "C":
        return "H19", ERRORS["H19"], 503
    if cause == "S" and step == "H":
        return "H13", ERRORS["H13"], 503
    if cause in "Ss" and step == "D":
        return "H18", ERRORS["H18"], r.status
    if cause == "P" and step == "H":
        return "H17", ERRORS["H17"], 503
    if cause in "Cc":
        return "H27", ERRORS["H27"], 499
    if cause in "PL":  # the router answered itself: a refused request (413), not an error
        return None, None, r.status
    return "H99", ERRORS["H99"], r.status


def _ms(text: str) -> int | None:
    n = int(text)
    return None if n < 0 else n


def _quoted(text: str) -> str:
    """A value fit to stand between quotes in a logfmt line: printable ASCII, `"` and `\\`
    and anything else as %XX (as a URL would have it)."""
    return _SAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)


def parse(message: str) -> Request | None:
    """A request from HAProxy's message (LOG_FORMAT), or None if it is not one."""
    tokens = [
        _UNESCAPE.sub(r"\1", m.group(1)) if m.group(1) is not None else m.group(2)
        for m in _TOKEN.finditer(message)
    ]
    if len(tokens) != FIELDS or not tokens[0].startswith(APP_BACKEND):
        return None
    be, server, method, path, host, rid, fwd, tc, tr, td, st, size, state, ssl = tokens
    app = be[len(APP_BACKEND) :]
    if not APP_NAME.match(app) or not _METHOD.match(method) or not _STATE.match(state):
        return None
    if ssl not in ("0", "1"):
        return None
    if server != "<NOSRV>" and not PROCESS_NAME.match(server):
        return None
    try:
        connect, response, data = _ms(tc), _ms(tr), _ms(td)
        status, sent = _ms(st), _ms(size)
    except ValueError:
        return None
    service = response + (data or 0) if response is not None else None
    return Request(
        app=app,
        server=None if server == "<NOSRV>" else server,
        method=method,
        path=path,
        host=host,
        request_id=rid,
        fwd=fwd,
        connect=connect,
        service=service,
        status=status,
        bytes=sent,
        state=state,
        tls=ssl == "1",
    )


def router_line(r: Request) -> str:
    """Heroku's router line of a request."""
    code, desc, status = code_of(r)
    head = f'at=error code={code} desc="{desc}"' if code else "at=info"

    def n(v: int | None, unit: str = "") -> str:
        return "" if v is None else f"{v}{unit}"

    return (
        f'{head} method={r.method} path="{_quoted(r.path)}" host={_quoted(r.host)}'
        f' request_id={_quoted(r.request_id)} fwd="{_quoted(r.fwd)}" dyno={r.server or ""}'
        f" connect={n(r.connect, 'ms')} service={n(r.service, 'ms')} status={n(status)}"
        f" bytes={n(r.bytes)} protocol={'https' if r.tls else 'http'}"
    )


def read(datagram: bytes) -> tuple[str, str] | None:
    """(app, router line) from one of HAProxy's syslog datagrams, or None if it is not a
    request of an app's."""
    head = _HEADER.match(datagram)
    if head is None:
        return None
    message = datagram[head.end() :].decode("utf-8", "replace").rstrip("\n")
    try:
        r = parse(message)
    except (ValueError, IndexError):
        return None
    return (r.app, router_line(r)) if r is not None else None
