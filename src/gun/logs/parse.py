"""Turns one log line into measurements by l2met's conventions (REFERENCE.md §4), with one
sentence for each metric it could not use; it never raises and does no I/O.

The message body is logfmt: whitespace-separated `key=value` tokens, values optionally
double-quoted (`path="/a b"`, `desc="Request timeout"`, backslash escapes inside quotes); a
token without `=` is a key with an empty value; text that is not logfmt is skipped.

- `measure#NAME=VAL`, `sample#NAME=VAL`, `count#NAME=VAL` and legacy `measure.NAME=VAL` give
  one measurement each; NAME is the text after `#` (or `measure.`) as written, with the drain's
  `prefix` prepended verbatim (prefix "shop." gives "shop.db.query").
- VAL is ASCII digits with at most one `.`, then an optional unit of ASCII letters: `12ms`,
  `40.9MB`, `348836pages`, `.5s`. An empty VAL (`count#hits`, `measure#x=`) means 1 for every
  numeric type, as l2met's `measure.hello` did. A negative VAL is dropped (l2met did too) and
  reported; so are `abc`, `1e3`, `1.2.3`, `12 ms` split by a space, `12µs` (non-ASCII unit).
- `unique#NAME=VAL` (Librato's): VAL is kept as text (Measurement.text; value 0.0, unit "")
  and the aggregator counts distinct texts; an empty VAL is reported, there is nothing to count.
- `source=X` (the first one) is the source of every measurement of the line; absent or empty,
  the source is None.
- Router lines (APPNAME `heroku`, PROCID `router`) give the measures `router.service` and
  `router.connect` (unit as written, else ms) and `router.bytes` (unit bytes), the counters
  `router.status.2xx` (from `status=`, classes 1xx to 5xx) and `router.error.H12` (from
  `code=`), each 1. Empty values (`dyno= connect= service=`) are skipped silently: Heroku writes
  them when a request never reached a process. Router measurements have no source, as in
  l2met: `dyno=` is empty exactly on the error lines, and one series per process would multiply
  the router's series by the number of web processes. Other keys of router lines are ignored.
- Heroku's runtime error lines of a process (APPNAME `heroku`, PROCID not `router`, the
  message starting `Error R14 ` as in `Error R14 (Memory quota exceeded)`, R and 1 to 3
  digits) give the counter `error.R14`, 1, without a source (as the router's error counters).
- A problem is reported as "TOKEN: why", e.g. "measure#x=abc: the value 'abc' is not a number
  ...". A line without `#`, without `measure.` and not from the router is skipped at once.

`parse(line)` gives Measurements. The drain's hot path, `parse_lines(lines)`, gives rows
instead (`Row`: a Measurement's fields as a plain tuple) for `Aggregator.add_rows`: building a
frozen dataclass costs about five times a tuple. Router lines in Heroku's field order take a
fast path (one regular expression) that gives what the general logfmt path gives.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from gun.logs.model import Line, Measurement, MetricType

_KINDS: dict[str, MetricType] = {
    "measure": "measure",
    "sample": "sample",
    "count": "count",
    "unique": "unique",
}
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_NOT_A_NUMBER = (
    "is not a number with an optional unit (digits with at most one '.', then letters,"
    " e.g. 12ms or 40.9MB)"
)
_ROUTER_MEASURES = {
    "service": ("router.service", "ms"),
    "connect": ("router.connect", "ms"),
    "bytes": ("router.bytes", "bytes"),
}
_ROUTER_KEYS = frozenset(("service", "connect", "bytes", "status", "code"))
_STATUS_NAMES = {str(s): f"router.status.{s // 100}xx" for s in range(100, 600)}
# Heroku's router fields in Heroku's order, none quoted.
_ROUTER_TAIL = re.compile(
    r' dyno=([^\s"]*) connect=([^\s"]*) service=([^\s"]*) status=([^\s"]*) bytes=([^\s"]*)(?:\s|$)'
)
_R_CODE = re.compile(r"Error (R[0-9]{1,3}) ")
_ROUTER_CODE = re.compile(r'at=error code=([^\s"]*)(?:\s|$)')
_CACHE_SIZE = 4096  # distinct values remembered by _value (they repeat: 0ms, 1, 21.00MB ...)

# A logfmt token when the message has backslash escapes: a stray quoted string (skipped), or
# a key with an optional `=` and a quoted or bare value.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|([^\s="]+)(?:=(?:"((?:[^"\\]|\\.)*)"?|([^\s"]*)))?', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)


Row = tuple[str, str | None, str, MetricType, float, float, str | None]
"""A Measurement's fields in order, as a plain tuple: `Measurement(*row)`. The hot path
(`parse_lines` -> `Aggregator.add_rows`) passes rows, which cost a fifth of a Measurement."""

_Key = tuple[str, MetricType] | str  # (name, type) of a metric key, a sentence why not, or ""


class Parsed(NamedTuple):
    """What one line gave: its measurements, and one sentence per metric it could not use."""

    measurements: Sequence[Measurement]
    invalid: Sequence[str]


class Rows(NamedTuple):
    """What many lines gave: their measurements as rows, and the sentences, in line order."""

    rows: list[Row]
    invalid: list[str]


NOTHING = Parsed((), ())

_values: dict[str, tuple[float, str] | str] = {}  # VAL -> (value, unit), or why not
_keys: dict[str, _Key] = {}  # a token's key -> what it names


def _parse_value(v: str) -> tuple[float, str] | str:
    """(value, unit) of a VAL, or why it is not one."""
    if not v:
        return 1.0, ""
    number = v.rstrip(_LETTERS)
    unit = v[len(number) :]
    if number.isascii() and (number.isdecimal() or number.replace(".", "", 1).isdecimal()):
        value = float(number)
        if value == math.inf:
            return f"the value {v!r} is too large"
        return value, unit
    if number[:1] == "-" and len(number) > 1 and _parse_value(v[1:]).__class__ is tuple:
        return f"the value {v!r} is negative; negative values are dropped"
    return f"the value {v!r} {_NOT_A_NUMBER}"


def _value(v: str) -> tuple[float, str] | str:
    """_parse_value, remembered: the same values come back line after line."""
    r = _values.get(v)
    if r is None:
        r = _parse_value(v)
        if len(_values) >= _CACHE_SIZE:
            _values.clear()
        _values[v] = r
    return r


def _unescape(m: re.Match[str]) -> str:
    return m.group(1)


def _tokens(msg: str) -> list[str]:
    """The logfmt tokens of a message as `key=value` strings, quotes removed."""
    if '"' not in msg:
        return msg.split()
    tokens: list[str] = []
    if "\\" in msg:
        for m in _TOKEN.finditer(msg):
            key, quoted, bare = m.groups()
            if key is None:
                continue
            if quoted is not None:
                tokens.append(key + "=" + _ESCAPE.sub(_unescape, quoted))
            elif bare is not None:
                tokens.append(key + "=" + bare)
            else:
                tokens.append(key)
        return tokens
    # No escapes: even parts are outside quotes, odd parts inside. A quoted part is the value
    # of the token right before it when that token ends with `=`; otherwise it is skipped.
    parts = msg.split('"')
    last = len(parts) - 1
    for i in range(0, last + 1, 2):
        segment = parts[i]
        words = segment.split()
        if i < last and segment[-1:] == "=":
            words[-1] += parts[i + 1]
        tokens += words
    return tokens


def _metric_key(key: str) -> _Key:
    """What the key of a token with `#` or `measure.` names: (name, type) of a metric, a
    sentence saying why it names none, or "" when it is no metric key (`Controller#show`)."""
    kind, sep, name = key.partition("#")
    metric: MetricType | None
    if sep:
        metric = _KINDS.get(kind)
        mark = kind + "#"
    elif key[:8] == "measure.":
        metric, name, mark = "measure", key[8:], "measure."
    else:
        return ""
    if metric is None:
        return ""
    if not name:
        return f"the metric has no name after {mark!r}"
    return name, metric


def _metrics(msg: str, time: float, prefix: str, rows: list[Row], invalid: list[str]) -> None:
    """The measure#/sample#/count#/unique#/measure. tokens of a message."""
    tokens = msg.split() if '"' not in msg else _tokens(msg)
    source = None
    if "source=" in msg:
        for tok in tokens:
            if tok[:7] == "source=":
                source = tok[7:] or None
                break
    legacy = "measure." in msg
    keys = _keys
    values = _values
    for tok in tokens:
        if "#" not in tok and (not legacy or tok[:8] != "measure."):
            continue
        key, _, v = tok.partition("=")
        spec = keys.get(key)
        if spec is None:
            spec = _metric_key(key)
            if len(keys) >= _CACHE_SIZE:
                keys.clear()
            keys[key] = spec
        if not spec:
            continue
        if isinstance(spec, str):
            invalid.append(f"{tok}: {spec}")
            continue
        name, metric = spec
        if metric == "unique":
            if v:
                rows.append((prefix + name, source, "", metric, 0.0, time, v))
            else:
                invalid.append(f"{tok}: a unique# metric needs a value to count")
            continue
        r = values.get(v) or _value(v)
        if isinstance(r, str):
            invalid.append(f"{tok}: {r}")
        else:
            rows.append((prefix + name, source, r[1], metric, r[0], time, None))


def _router(msg: str, time: float, prefix: str, rows: list[Row], invalid: list[str]) -> None:
    """A Heroku router line: service/connect/bytes measures, status class and error counters.

    Lines in Heroku's field order (`... dyno= connect= service= status= bytes=` outside
    quotes; `code=` only as `at=error code=` at the start) take a fast path that gives what
    the general logfmt path gives."""
    m = _ROUTER_TAIL.search(msg)
    code = ""
    if m is not None and msg.count('"', 0, m.start()) & 1:
        m = None
    if m is not None and "code=" in msg:
        c = _ROUTER_CODE.match(msg)
        if c is None:
            m = None
        else:
            code = c.group(1)
    if m is None:
        _router_general(msg, time, prefix, rows, invalid)
        return
    if code:
        _router_value("code", code, time, prefix, rows, invalid)
    _, connect, service, status, nbytes = m.groups()
    values = _values
    if connect:
        r = values.get(connect) or _value(connect)
        if isinstance(r, str):
            invalid.append(f"connect={connect}: {r}")
        else:
            rows.append(
                (prefix + "router.connect", None, r[1] or "ms", "measure", r[0], time, None)
            )
    if service:
        r = values.get(service) or _value(service)
        if isinstance(r, str):
            invalid.append(f"service={service}: {r}")
        else:
            rows.append(
                (prefix + "router.service", None, r[1] or "ms", "measure", r[0], time, None)
            )
    if status:
        name = _STATUS_NAMES.get(status)
        if name is None:
            _router_value("status", status, time, prefix, rows, invalid)
        else:
            rows.append((prefix + name, None, "", "count", 1.0, time, None))
    if nbytes:
        if nbytes.isdecimal() and nbytes.isascii():
            rows.append(
                (prefix + "router.bytes", None, "bytes", "measure", float(nbytes), time, None)
            )
        else:
            _router_value("bytes", nbytes, time, prefix, rows, invalid)


def _router_general(
    msg: str, time: float, prefix: str, rows: list[Row], invalid: list[str]
) -> None:
    """A router line in any order: every logfmt token, as `_router`'s fast path would."""
    for tok in _tokens(msg):
        key, _, v = tok.partition("=")
        if v and key in _ROUTER_KEYS:
            _router_value(key, v, time, prefix, rows, invalid)


def _router_value(
    key: str, v: str, time: float, prefix: str, rows: list[Row], invalid: list[str]
) -> None:
    """The row of one non-empty router value, or a sentence why there is none."""
    spec = _ROUTER_MEASURES.get(key)
    if spec is not None:
        r = _value(v)
        if isinstance(r, str):
            invalid.append(f"{key}={v}: {r}")
        else:
            value, unit = r
            rows.append((prefix + spec[0], None, unit or spec[1], "measure", value, time, None))
    elif key == "status":
        name = _STATUS_NAMES.get(v)
        if name is None:
            invalid.append(f"status={v}: the status {v!r} is not an HTTP status code (100 to 599)")
        else:
            rows.append((prefix + name, None, "", "count", 1.0, time, None))
    elif v.isascii() and v.isalnum():  # code
        rows.append((prefix + "router.error." + v, None, "", "count", 1.0, time, None))
    else:
        invalid.append(f"code={v}: the error code {v!r} is not letters and digits (e.g. H12)")


def parse_lines(lines: Iterable[Line], prefix: str = "") -> Rows:
    """The rows of many lines (a body's) and one sentence per metric they could not use: the
    drain's hot path, which builds no Measurement."""
    rows: list[Row] = []
    invalid: list[str] = []
    metrics = _metrics
    router = _router
    for line in lines:
        msg = line.msg
        if line.procid == "router" and line.appname == "heroku":
            router(msg, line.time, prefix, rows, invalid)
        elif msg[:7] == "Error R" and line.appname == "heroku":
            m = _R_CODE.match(msg)
            if m is not None:
                rows.append((prefix + "error." + m[1], None, "", "count", 1.0, line.time, None))
        elif "#" in msg or "measure." in msg:
            metrics(msg, line.time, prefix, rows, invalid)
    return Rows(rows, invalid)


def parse(line: Line, prefix: str = "") -> Parsed:
    """The measurements of one line and one sentence per metric it could not use."""
    rows, invalid = parse_lines((line,), prefix)
    if not rows and not invalid:
        return NOTHING
    return Parsed([Measurement(*row) for row in rows], invalid)


def measurements(line: Line, prefix: str = "") -> list[Measurement]:
    """The measurements of one line; what `parse` could not use is left out."""
    return list(parse(line, prefix).measurements)
