"""What the logs page asks and shows (pure): its query judged by `gun logs`'s own rules
(logs/filters.py), the drain options it makes, and the rows of lines.

The query, as the page's GET form sends it (an empty field is no filter):

    ps=web        a process type, or a process (web.1)
    source=app    app or heroku
    grep=TEXT     a plain substring of the shown line (the drain's grep, live tail included)
    hour=2026-12-06T08    an hour of the archive, UTC: `YYYY-MM-DDTHH`, or `YYYY-MM-DDTHH:MM`
                  as a datetime-local field sends it (the hour that minute is in)

Without `hour` the page is the live tail: the archive's newest PAGE_LINES lines, then (with
JavaScript) new ones as they come. With it, the archive's lines of that hour,
`since=HH:00 until=HH+1:00`: the newest HOUR_LINES of them when the hour holds more, which the
page says (`clipped`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gun.errors import BadRequest, UsageError
from gun.logs import sse
from gun.logs.filters import MAX_LINES, STAMP_WIDTH, Filter, stamp

PAGE_LINES = 200  # the newest lines the live page starts with
HOUR_LINES = MAX_LINES  # the most of one hour shown: the drain's most
HOUR = 3600
FILTERS = ("ps", "source", "grep")
_HOUR = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2})(?::([0-9]{2}))?\Z")
HOUR_WORDS = "is not an hour like 2026-12-06T08 (a date and an hour, UTC)"


@dataclass(frozen=True)
class LogsAsk:
    """The page's filters (validated) and the hour searched (its start, epoch seconds)."""

    ps: str | None = None
    source: str | None = None
    grep: str | None = None
    hour: float | None = None

    def filters(self) -> dict[str, str]:
        """The filters as query options (the drain's, the stream URL's, the form's)."""
        given = {"ps": self.ps, "source": self.source, "grep": self.grep}
        return {k: v for k, v in given.items() if v is not None}

    def query(self) -> dict[str, str]:
        """The drain's `/logs` options for what the page shows."""
        if self.hour is None:
            return {"n": str(PAGE_LINES)} | self.filters()
        bounds = {"since": stamp(self.hour), "until": stamp(self.hour + HOUR)}
        return {"n": str(HOUR_LINES)} | bounds | self.filters()

    def hour_field(self) -> str:
        """The hour as the form's datetime-local field shows it; empty without one."""
        return "" if self.hour is None else hour_text(self.hour) + ":00"


def ask_of(query: Mapping[str, str]) -> LogsAsk:
    """The LogsAsk of a page's query; BadRequest naming the first bad value. Fields left empty
    are no filter; other fields are not the page's and are left out."""
    given = {k: query[k] for k in FILTERS if query.get(k)}
    try:
        flt = Filter.parse(given)
    except UsageError as e:
        raise BadRequest(e.message) from None
    raw = query.get("hour") or None
    return LogsAsk(flt.ps, flt.source, flt.grep, None if raw is None else hour_of(raw))


def hour_of(text: str) -> float:
    """The start of the hour `text` names (UTC, epoch seconds); BadRequest if it names none."""
    m = _HOUR.match(text.strip())
    try:
        if m is None or (m[3] is not None and int(m[3]) > 59):
            raise ValueError(text)
        return datetime.fromisoformat(f"{m[1]}T{m[2]}:00:00+00:00").timestamp()
    except ValueError:
        raise BadRequest(f"hour={text[:40]!r} {HOUR_WORDS}") from None


def hour_text(start: float) -> str:
    """`2026-12-06T08`: the hour starting at `start` as `hour=` takes it."""
    return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H")


def hour_now(now: float) -> str:
    return hour_text(now // HOUR * HOUR)


@dataclass(frozen=True)
class LineRow:
    """One shown line, split for the page: its event id (the live tail's), time, where it came
    from (`app[web.1]`) and message."""

    id: str
    time: str
    origin: str
    message: str


def line_rows(lines: Sequence[str]) -> list[LineRow]:
    """The rows of `lines` as `gun logs` writes them, numbered as the live stream numbers
    them (sse.Ids), so the stream can go on after the last."""
    ids = sse.Ids()
    return [_row(str(ids.next(t)), t) for t in lines]


def _row(eid: str, text: str) -> LineRow:
    rest = text[STAMP_WIDTH + 1 :]
    origin, sep, message = rest.partition(": ")
    if not sep or not origin.endswith("]"):  # not a line as gun writes them: all message
        return LineRow(eid, "", "", text)
    return LineRow(eid, text[:STAMP_WIDTH], origin, message)


def after_of(rows: Sequence[LineRow], read_at: float) -> str:
    """Where the live stream starts: after the last row shown, or, with none, from the moment
    the archive was read."""
    if rows:
        return rows[-1].id
    return str(sse.EventId(round(read_at * 1_000_000)))
