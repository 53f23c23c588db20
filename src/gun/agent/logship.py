"""The log shipper: sends an app's lines to its drains in logplex batches, one sender per drain.

`add()` formats a line once as octet-counted syslog frames, `LEN <PRI>1 TIMESTAMP host APPNAME
PROCID - MSG` + LF (REFERENCE.md §3, gun.logs.frames.safe_frames), and appends them to each
drain's bounded buffer: it never waits for the network and never raises. Each drain's
`Sender` (gun.agent.logsender) delivers its buffer as logplex does, on a thread of its own.

PRI values vary and nothing should rely on them: app lines 190 (local7.info, as Heroku's),
heroku lines 45 (as Heroku's dyno manager sends).

How far shipping got survives the agent: each line comes with where it lies in app.log (a
Span), and `resume_points()` gives, for each drain, the app.log Position of the oldest line it
has not yet delivered, refused or dropped (the end of the last line when none is left). The
agent saves them in state/; the next agent ships app.log to each drain from its own Position
(gun.agent.applog.unshipped), so a drain that was down does not make the others get lines
twice. The in-memory buffers stay the path of every line: shipping does not wait for the disk,
and goes on when the disk is full (then a crash loses what was not yet delivered). Reading
app.log back happens only at start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable
from datetime import UTC, datetime

from gun.agent.applog import Position, Span
from gun.agent.drainurl import replaces, target
from gun.agent.logsender import Clock, DrainStats, Queued, Sender, Settings
from gun.errors import InvalidParams
from gun.logs.frames import safe_frames

PRI_APP = 190
PRI_HEROKU = 45

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LogShipper:
    """Ships one app's lines to its drains (URLs), each drain independent of the others.

    Use `sink` as the supervisor's log sink; `set_destinations` when meta changes the drains;
    `close` when the agent stops. `stats()` is keyed by URL, secrets included: print `display`
    of `target(url, app)` instead.
    """

    def __init__(
        self,
        app: str,
        destinations: Iterable[str] = (),
        *,
        batch: int = 100,
        interval: float = 0.5,
        buffer: int = 10_000,
        timeout: float = 5.0,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        clock: Clock = _utcnow,
        ca: str | None = None,
    ) -> None:
        checks = (
            ("batch", batch, batch >= 1),
            ("buffer", buffer, buffer >= 1),
            ("interval", interval, interval >= 0),
            ("timeout", timeout, timeout > 0),
            ("backoff", backoff, backoff > 0),
            ("backoff_cap", backoff_cap, backoff_cap >= backoff),
        )
        for name, value, ok in checks:
            if not ok:
                raise InvalidParams(f"log shipper {name} {value!r} is out of range")
        self.app = app
        self._settings = Settings(batch, interval, buffer, timeout, backoff, backoff_cap, clock, ca)
        self._clock = clock
        self._lock = threading.Lock()
        self._senders: dict[str, Sender] = {}
        self._active: tuple[Sender, ...] = ()  # what add() writes to; () once closed
        self._retired: list[Sender] = []
        self._closed = False
        self._failures = 0
        self._order = 0  # lines added so far
        self._last: Position | None = None  # where app.log ends after the last line added
        self.set_destinations(destinations)

    def add(
        self,
        appname: str,
        procid: str,
        text: str,
        when: datetime | None = None,
        span: Span | None = None,
        drains: Collection[str] | None = None,
    ) -> None:
        """Queue one line (APPNAME `app` or `heroku`, PROCID `web.1`) for every drain (or those
        whose keys are in `drains`); `span` is where it lies in app.log, if it is there. Call it
        from one thread at a time."""
        try:
            resume = span.begin if span is not None else self._last
            if span is not None:
                self._last = span.after
            self._order += 1
            pri = PRI_APP if appname == "app" else PRI_HEROKU
            items = safe_frames(pri, when or self._clock(), appname, procid, text)
            for sender in self._active:
                if drains is None or sender.key in drains:
                    sender.put(items, self._order, resume)
        except Exception:  # never into the supervisor: count it, say it once
            self._failures += 1
            if self._failures == 1:
                logger.exception("a log line could not be shipped (reported once)")

    def sink(self, source: str, text: str, span: Span | None = None) -> None:
        """The supervisor's log sink: source `app[web.1]` or `heroku[web.1]`."""
        appname, _, rest = source.partition("[")
        self.add(appname, rest.removesuffix("]"), text, span=span)

    def resume_from(self, where: Position | None) -> None:
        """Where app.log ends before any line is added (nothing before it is to be shipped)."""
        self._last = where

    def resume_points(self) -> dict[str, Position]:
        """For each drain (by key), the app.log Position to ship from again after a crash: that
        of the oldest line it still holds, else the end of the last line added. They hold after
        `close()` too: what was left unsent is after them."""
        with self._lock:
            senders = list(self._senders.values())
        out = {}
        for sender in senders:
            q = sender.oldest()
            where = q.resume if q is not None and q.resume is not None else self._last
            if where is not None:
                out[sender.key] = where
        return out

    def set_destinations(self, urls: Iterable[str]) -> None:
        """Ship to these URLs from now on: new ones start empty, kept ones keep their buffers,
        removed ones stop at once (what they buffered is lost), except that a new ingest URL of
        the same drain (its token rotated: `replaces`) takes over the old one's lines. Raises
        InvalidParams, changing nothing, if a URL is not http(s)."""
        wanted = {url: target(url, self.app) for url in dict.fromkeys(urls)}
        with self._lock:
            if self._closed:
                return
            unsent: dict[str, list[Queued]] = {}
            for url in list(self._senders):
                if url not in wanted:
                    old = self._senders.pop(url)
                    old.stop()
                    self._retired.append(old)
                    heir = next((new for new in wanted if replaces(new, url)), None)
                    if heir is not None and heir not in self._senders:
                        unsent[heir] = old.take_unsent()
            for url, t in wanted.items():
                if url not in self._senders:
                    sender = self._senders[url] = Sender(t, self._settings)
                    sender.adopt(unsent.get(url, ()))
                    sender.thread.start()
            self._senders = {url: self._senders[url] for url in wanted}
            self._active = tuple(self._senders.values())
            self._retired = [s for s in self._retired if s.thread.is_alive()]

    def stats(self) -> dict[str, DrainStats]:
        with self._lock:
            senders = dict(self._senders)
        return {url: s.stats() for url, s in senders.items()}

    def close(self, timeout: float = 5.0) -> None:
        """Send what can be sent within timeout seconds, then stop every thread. It blocks for
        up to timeout + 1 s: from the event loop, `await asyncio.to_thread(shipper.close)`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._active = ()
            senders = [*self._senders.values(), *self._retired]
        deadline = time.monotonic() + timeout
        for s in senders:
            s.finish(deadline)
        for s in senders:
            s.thread.join(max(0.0, deadline - time.monotonic()))
        for s in senders:
            s.stop()
        for s in senders:
            s.thread.join(1.0)
