"""Which log lines `gun logs` shows, and how it shows them (pure).

`Filter.parse` turns the command's options into a Filter; each bad value raises UsageError
naming it. The options, as the CLI and the drain's `/v1/apps/APP/logs` take them:

    n=100        how many lines: the newest N that match, shown oldest first (1 to 10000)
    ps=web       a process type (web.1, web.2, ...) or, with a dot, one process (web.1)
    source=app   app (process output) or heroku (router, runtime metrics, platform)
    since=2h     a duration (30s, 15m, 2h, 7d) before now, or an RFC 3339 time
    until=TIME   lines before it (not at it), as `since`: the dashboard's search by hour
                 asks for `since=HH:00 until=HH+1:00` (the drain takes it; the CLI has no flag)
    grep=TEXT    a plain, case-sensitive substring of the line as `format_line` writes it

grep sees the whole shown line (time, `app[web.1]:` and message), as `gun logs | grep -F TEXT`
would; the server-side filter is that pipe done before `-n` counts lines.

`format_line` writes Heroku's `heroku logs` form,
`2026-11-26T18:47:38.123456+00:00 app[web.1]: message`: the time from `Line.time` in UTC with
microseconds (fixed width, so text order is time order), whatever offset the sender wrote.
A shown line never spans two lines: LF and CR in a message are written as the two characters
`\\n` and `\\r` (other characters, backslashes included, stay as they are).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Literal

from gun.errors import UsageError
from gun.logs.model import Line

MAX_LINES = 10_000
DEFAULT_LINES = 100
OPTIONS = ("n", "ps", "source", "since", "until", "grep")
STAMP_WIDTH = 32  # len("2026-11-26T18:47:38.123456+00:00")
KEY_WIDTH = 26  # the part of a stamp that orders it (the offset is always +00:00)

Source = Literal["app", "heroku"]

_COUNT = re.compile(r"^[0-9]{1,6}\Z")
_PS = re.compile(r"^[A-Za-z0-9_-]{1,64}(\.[0-9]{1,9})?\Z")
_DURATION = re.compile(r"^([0-9]{1,9})([smhd])\Z")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)


@dataclass(frozen=True, slots=True)
class Filter:
    """The options of one `gun logs`; `since` and `until` are epoch seconds, already resolved
    against now."""

    n: int = DEFAULT_LINES
    ps: str | None = None
    source: Source | None = None
    since: float | None = None
    grep: str | None = None
    until: float | None = None
    _since_key: str = field(init=False, repr=False, compare=False, default="")
    _until_key: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if self.since is not None and self.since >= 0:  # before 1970: every line is newer
            object.__setattr__(self, "_since_key", stamp(self.since)[:KEY_WIDTH])
        if self.until is not None and self.until >= 0:  # before 1970: no line is older
            object.__setattr__(self, "_until_key", stamp(self.until)[:KEY_WIDTH])

    @classmethod
    def parse(cls, query: Mapping[str, str], now: float | None = None) -> Filter:
        """The Filter the options ask for; a duration `since` counts back from `now`
        (default: the clock). Unknown options and bad values raise UsageError naming them."""
        for key in query:
            if key not in OPTIONS:
                raise UsageError(
                    f"{key!r} is not an option of logs: use n, ps, source, since, until or grep"
                )
        n, ps, source, since, until, grep = (query.get(key) for key in OPTIONS)
        at = time.time() if now is None else now
        return cls(
            n=DEFAULT_LINES if n is None else _count(n),
            ps=None if ps is None else _ps(ps),
            source=None if source is None else _source(source),
            since=None if since is None else _time("since", since, at),
            grep=None if grep is None else _grep(grep),
            until=None if until is None else _time("until", until, at),
        )

    def matches(self, line: Line) -> bool:
        """Whether `gun logs` with these options shows this line (n aside)."""
        if self.since is not None and _micros(line.time) < _micros(self.since):
            return False
        if self.until is not None and _micros(line.time) >= _micros(self.until):
            return False
        if self.source is not None and line.appname != self.source:
            return False
        if self.ps is not None and not _ps_matches(self.ps, line.procid):
            return False
        return self.grep is None or self.grep in format_line(line)

    def matches_text(self, text: str) -> bool:
        """`matches` for a line already written by `format_line` (as the archive stores it)."""
        if self.since is not None and text[:KEY_WIDTH] < self._since_key:
            return False
        if self.until is not None and text[:KEY_WIDTH] >= self._until_key:
            return False
        if self.source is not None or self.ps is not None:
            start = text.find("[", STAMP_WIDTH + 1)
            end = text.find("]: ", start)
            if start < 0 or end < 0:
                return False
            if self.source is not None and text[STAMP_WIDTH + 1 : start] != self.source:
                return False
            if self.ps is not None and not _ps_matches(self.ps, text[start + 1 : end]):
                return False
        return self.grep is None or self.grep in text


def format_line(line: Line) -> str:
    """`2026-11-26T18:47:38.123456+00:00 app[web.1]: message`, always one line. A TIMESTAMP
    already written that way (Heroku's and gun's senders do) is used as it is: it is what
    `stamp(line.time)` gives."""
    msg = line.msg
    if "\n" in msg or "\r" in msg:
        msg = msg.replace("\n", "\\n").replace("\r", "\\r")
    ts = line.timestamp
    if len(ts) != STAMP_WIDTH or ts[19] != "." or ts[26:] != "+00:00":
        ts = stamp(line.time)
    return f"{ts} {line.appname}[{line.procid}]: {msg}"


def stamp(t: float) -> str:
    """Epoch seconds as `2026-11-26T18:47:38.123456+00:00` (UTC, rounded to microseconds)."""
    seconds, micros = divmod(_micros(t), 1_000_000)
    return f"{_second(seconds)}.{micros:06d}+00:00"


def _micros(t: float) -> int:
    return round(t * 1_000_000)


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    u = time.gmtime(seconds)
    return (
        f"{u.tm_year:04d}-{u.tm_mon:02d}-{u.tm_mday:02d}"
        f"T{u.tm_hour:02d}:{u.tm_min:02d}:{u.tm_sec:02d}"
    )


def _ps_matches(ps: str, procid: str) -> bool:
    return procid == ps or ("." not in ps and procid.startswith(ps + "."))


def _count(value: str) -> int:
    if not _COUNT.match(value) or not 1 <= int(value) <= MAX_LINES:
        raise UsageError(f"-n {value!r} is not a number of lines from 1 to {MAX_LINES}")
    return int(value)


def _ps(value: str) -> str:
    if not _PS.match(value):
        raise UsageError(f"ps={value!r} is not a process type like web nor a process like web.1")
    return value


def _source(value: str) -> Source:
    if value == "app":
        return "app"
    if value == "heroku":
        return "heroku"
    raise UsageError(f"source={value!r} is neither app nor heroku")


def _time(option: str, value: str, now: float) -> float:
    """A duration before `now` or an RFC 3339 time, as epoch seconds; `option` names it."""
    if m := _DURATION.match(value):
        seconds = int(m[1]) * _UNIT[m[2]]
        if seconds == 0:
            raise UsageError(
                f"{option}={value!r} is no time at all: give one like 30s, 15m, 2h or 7d"
            )
        return now - seconds
    if _RFC3339.match(value):
        try:
            return datetime.fromisoformat(value.upper()).timestamp()
        except ValueError:
            pass
    raise UsageError(
        f"{option}={value!r} is not a duration like 30s, 15m, 2h or 7d, nor an RFC 3339 time"
    )


def _grep(value: str) -> str:
    if not value:
        raise UsageError("grep='' is empty: give the text the lines must contain")
    return value
