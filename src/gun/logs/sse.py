"""Log lines as Server-Sent Events (pure): how meta streams the drain's lines to a browser or
a client, for the Heroku API's log sessions (api/heroku/logs.py) and the dashboard's live tail
(dashboard/logs_pages.py), both through api/drainread.py.

One line, one event: `id: ID\\ndata: LINE\\n\\n`, LINE as `gun logs` writes it. ID is the
line's time in microseconds since the epoch, `.K` appended for the K-th further line of the
same microsecond; a client that reconnects with `Last-Event-ID: ID` gets the lines after it.
A comment (KEEPALIVE) says the stream is alive when there is nothing to send.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime

from gun.logs.filters import STAMP_WIDTH, stamp

KEEPALIVE = b": keepalive\n\n"
_LAST_ID = re.compile(r"([0-9]{1,17})(?:\.([0-9]{1,9}))?\Z")


def micros_of(line: str) -> int | None:
    """The time of a line `gun logs` wrote, in microseconds; None if it has no stamp."""
    try:
        t = datetime.fromisoformat(line[:STAMP_WIDTH])
    except ValueError:
        return None
    return round(t.timestamp() * 1_000_000)


def since_of(micros: int) -> str:
    """The drain's `since` option for lines from that microsecond on."""
    return stamp(micros / 1_000_000)


@dataclass(frozen=True)
class EventId:
    micros: int
    nth: int = 0  # how many lines of the same microsecond came before it

    def __str__(self) -> str:
        return f"{self.micros}.{self.nth}" if self.nth else str(self.micros)

    def after(self, other: EventId) -> bool:
        return (self.micros, self.nth) > (other.micros, other.nth)


def parse_last_id(header: str | None) -> EventId | None:
    """A Last-Event-ID the stream gave; None for none or one it never gives (then from the
    start)."""
    m = _LAST_ID.match((header or "").strip())
    return None if m is None else EventId(int(m[1]), int(m[2] or 0))


class Ids:
    """Numbers the lines of one stream in the order they are sent."""

    def __init__(self) -> None:
        self.last: EventId | None = None

    def next(self, line: str) -> EventId:
        micros = micros_of(line)
        if micros is None:  # no stamp: the last one's, one further
            micros = self.last.micros if self.last else round(time.time() * 1_000_000)
        nth = self.last.nth + 1 if self.last and self.last.micros == micros else 0
        self.last = EventId(micros, nth)
        return self.last


def event(eid: EventId, line: str) -> bytes:
    return f"id: {eid}\ndata: {line}\n\n".encode()
