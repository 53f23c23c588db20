"""One log drain's sender: a bounded buffer of frames, a daemon thread, a keep-alive connection.

Each drain has its own daemon thread with a keep-alive http.client connection. Threads rather
than asyncio.to_thread: a drain that hangs for its whole timeout would hold the default
executor's workers, which the agent's calls to meta need, and a thread of its own keeps one
drain's trouble away from the event loop and from the other drains.

Delivery follows logplex. Any 2xx delivers a batch. 429, any other status, a timeout or a
connection error is retried, doubling a backoff up to a cap (with jitter; Retry-After is
honoured), for as long as it takes; a 4xx other than 429 drops the batch (counted as failed). A
batch keeps its Logplex-Frame-Id on retries, so the drain can deduplicate. When a buffer is
full its oldest lines go (counted); the next batch then starts with Heroku's own line
`heroku logplex - Error L10 (output buffer overflow): N messages dropped since T.`, PRI 172
(local5.warning, as logplex sends).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from gun.agent import tls
from gun.agent.applog import Position
from gun.agent.drainurl import Target, drain_key
from gun.logs.frames import safe_frames

PRI_L10 = 172
CONTENT_TYPE = "application/logplex-1"
USER_AGENT = "gun-logship"
L10 = (  # logplex's words, its timestamp to the second
    "Error L10 (output buffer overflow): {n} messages dropped since "
    "{since:%Y-%m-%dT%H:%M:%S}+00:00."
)

Clock = Callable[[], datetime]
logger = logging.getLogger("gun.agent.logship")


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class DrainStats:
    """What a drain's sender has done so far."""

    sent: int  # lines the drain accepted
    dropped: int  # lines dropped from a full buffer (reported to the drain by an L10 line)
    retries: int  # requests that failed and were tried again
    failed: int  # lines in batches the drain refused (4xx other than 429): not retried
    buffered: int  # lines waiting to be sent
    error: str | None  # why the last request failed; None once one succeeds


class Queued(NamedTuple):
    """One frame in a drain's buffer."""

    seq: int  # this drain's sequence number: a retried batch is known by its first
    frame: bytes
    order: int  # the shipper's: which line came first, across drains
    resume: Position | None  # where app.log must be read from again if this is not delivered


@dataclass(frozen=True)
class _Batch:
    frame_id: str
    body: bytes
    count: int  # messages, the L10 line included
    lines: list[Queued]  # taken from the buffer
    reported: int  # drops its L10 line reports
    built: datetime


@dataclass(frozen=True)
class Settings:
    batch: int
    interval: float
    buffer: int
    timeout: float
    backoff: float
    backoff_cap: float
    clock: Clock
    ca: str | None = None  # PEM: the team's CA, trusted beside the system's for https drains


class Sender:
    """One drain: its buffer, its thread, its connection."""

    def __init__(self, target: Target, s: Settings) -> None:
        self.target = target
        self.key = drain_key(target.url)
        self._s = s
        self._cond = threading.Condition(threading.Lock())
        self._buf: deque[Queued] = deque()
        self._seq = 0
        self._unreported = 0  # drops no delivered L10 line has reported yet
        self._since: datetime | None = None  # when the first of them was dropped
        self._failed_batch: _Batch | None = None  # tried and failed: retried as it is if it can be
        self._inflight: _Batch | None = None  # being posted: neither buffered nor settled
        self._closing_at: float | None = None  # close(): flush until then (time.monotonic)
        self._stopped = threading.Event()
        self._kick = threading.Event()  # ends a backoff pause early
        self._conn: http.client.HTTPConnection | None = None
        self._conn_lock = threading.Lock()
        self.sent = self.dropped = self.retries = self.failed = 0
        self.error: str | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"logship {target.display}", daemon=True
        )

    # called from other threads -------------------------------------------------------------

    def put(self, items: Iterable[bytes], order: int, resume: Position | None) -> None:
        with self._cond:
            buf = self._buf
            was_empty = not buf
            for frame in items:
                if len(buf) >= self._s.buffer:
                    buf.popleft()
                    self._drop(1)
                self._seq += 1
                buf.append(Queued(self._seq, frame, order, resume))
            if was_empty or len(buf) >= self._s.batch:
                self._cond.notify()

    def stats(self) -> DrainStats:
        with self._cond:
            return DrainStats(
                self.sent, self.dropped, self.retries, self.failed, len(self._buf), self.error
            )

    def oldest(self) -> Queued | None:
        """The oldest line not yet delivered, refused or dropped; None if there is none."""
        with self._cond:
            if self._inflight is not None and self._inflight.lines:
                return self._inflight.lines[0]
            return self._buf[0] if self._buf else None

    def take_unsent(self) -> list[Queued]:
        """Every line not yet delivered (the batch in flight too: it may arrive twice), oldest
        first, taken away; for the sender that replaces this one (see `replaces`)."""
        with self._cond:
            taken = list(self._inflight.lines) if self._inflight is not None else []
            taken += self._buf
            self._buf.clear()
            self._inflight = self._failed_batch = None
            return taken

    def adopt(self, lines: Iterable[Queued]) -> None:
        """Lines another sender had not delivered, ahead of anything of this one's own."""
        with self._cond:
            for q in lines:
                self._seq += 1
                self._buf.append(q._replace(seq=self._seq))
            self._cond.notify()

    def finish(self, deadline: float) -> None:
        """Send what is buffered without waiting for full batches, until deadline, then end."""
        with self._cond:
            self._closing_at = deadline
            self._cond.notify_all()
        self._kick.set()

    def stop(self) -> None:
        """End now: the request in flight is cut off, buffered lines are left."""
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()
        self._kick.set()
        with self._conn_lock:
            conn = self._conn
            if conn is not None and conn.sock is not None:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)

    # the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        try:
            while (batch := self._take(retrying=failures > 0)) is not None:
                outcome, why, wait = self._post(batch)
                self._settle(batch, outcome, why)
                if outcome != "retry":
                    failures = 0
                    continue
                failures += 1
                delay = min(self._s.backoff_cap, self._s.backoff * 2 ** (failures - 1))
                delay = max(delay * random.uniform(0.5, 1.0), min(wait, self._s.backoff_cap))
                self._pause(delay)
        except Exception:  # a bug: say so, and lose this drain rather than the agent
            logger.exception("the log sender for %s failed", self.target.display)
        finally:
            self._disconnect()
            with self._cond:
                left = len(self._buf)
            if left:
                logger.warning("%d log lines for %s were not sent", left, self.target.display)

    def _take(self, *, retrying: bool) -> _Batch | None:
        """The next batch: once `batch` lines are buffered or `interval` has passed since there
        was one; None when it is time to end."""
        s = self._s
        with self._cond:
            while True:
                if self._stopped.is_set() or self._past_deadline():
                    return None
                if self._buf:
                    break
                if self._closing_at is not None:
                    return None  # everything is sent
                self._cond.wait()
            if not retrying and len(self._buf) < s.batch and self._closing_at is None:
                self._cond.wait_for(
                    lambda: (
                        len(self._buf) >= s.batch
                        or self._closing_at is not None
                        or self._stopped.is_set()
                    ),
                    s.interval,
                )
                if self._stopped.is_set():
                    return None
            self._inflight = self._build()
            return self._inflight

    def _build(self) -> _Batch:
        reported = self._unreported
        room = self._s.batch - (1 if reported else 0)
        last = self._failed_batch
        if last is not None and last.reported == reported:
            # a retry: the same lines under the same Frame-Id, unless the buffer overflowed
            # since (then its oldest lines, the batch's first, are gone and an L10 line is due)
            n = len(last.lines)
            if n == 0 or self._buf[0].seq == last.lines[0].seq:
                for _ in range(n):
                    self._buf.popleft()
                return last
        lines = [self._buf.popleft() for _ in range(min(room, len(self._buf)))]
        now = self._s.clock()
        body = [q.frame for q in lines]
        if reported:
            since = _utc(self._since or now)
            text = L10.format(n=reported, since=since)
            body.insert(0, safe_frames(PRI_L10, now, "heroku", "logplex", text)[0])
        return _Batch(uuid.uuid4().hex.upper(), b"".join(body), len(body), lines, reported, now)

    def _settle(self, batch: _Batch, outcome: str, why: str | None) -> None:
        with self._cond:
            self._inflight = None
            if outcome == "retry":
                self.retries += 1
                self._failed_batch = batch
                self._buf.extendleft(reversed(batch.lines))  # back in front, oldest first
                excess = len(self._buf) - self._s.buffer
                for _ in range(excess):
                    self._buf.popleft()
                if excess > 0:
                    self._drop(excess)
            else:
                self._failed_batch = None
                if outcome == "sent":
                    self.sent += len(batch.lines)
                else:
                    self.failed += len(batch.lines)
                if batch.reported:
                    self._unreported -= batch.reported
                    self._since = batch.built if self._unreported else None
            changed, self.error = why != self.error, why
        if changed and why is None:
            logger.info("logs are delivered to %s again", self.target.display)
        elif changed and outcome == "retry":
            logger.warning(
                "logs to %s are not delivered (%s): retrying, keeping the newest %d lines",
                self.target.display,
                why,
                self._s.buffer,
            )
        elif changed:
            logger.warning("logs to %s: %s", self.target.display, why)

    def _drop(self, n: int) -> None:
        if not self._unreported:
            self._since = self._s.clock()
        self._unreported += n
        self.dropped += n

    def _past_deadline(self) -> bool:
        return self._closing_at is not None and time.monotonic() >= self._closing_at

    def _pause(self, delay: float) -> None:
        if self._closing_at is not None:
            delay = min(delay, self._closing_at - time.monotonic())
        if delay > 0:
            self._kick.wait(delay)
        self._kick.clear()

    # HTTP --------------------------------------------------------------------------------------

    def _post(self, batch: _Batch) -> tuple[str, str | None, float]:
        """("sent" | "refused" | "retry", why it failed, Retry-After in seconds)."""
        t = self.target
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Logplex-Msg-Count": str(batch.count),
            "Logplex-Frame-Id": batch.frame_id,
            "Logplex-Drain-Token": t.token,
            "User-Agent": USER_AGENT,
            **t.auth,
        }
        timeout = self._s.timeout
        if self._closing_at is not None:
            timeout = max(0.05, min(timeout, self._closing_at - time.monotonic()))
        for _ in range(2):
            conn, fresh = self._connection(timeout)
            try:
                conn.request("POST", t.path, body=batch.body, headers=headers)
                response = conn.getresponse()
                reply = response.read(300).decode("utf-8", "replace")
                response.read()  # the rest, so that the connection can be used again
            except (OSError, http.client.HTTPException) as e:
                self._disconnect()
                if fresh or isinstance(e, TimeoutError) or self._stopped.is_set():
                    return "retry", f"{type(e).__name__}: {e}".rstrip(": "), 0.0
                continue  # the drain had closed the kept-alive connection: once more, anew
            status = response.status
            if 200 <= status < 300:
                return "sent", None, 0.0
            why = f"the drain answered {status} {reply.strip()[:200]}".rstrip()
            if 400 <= status < 500 and status != 429:
                return "refused", f"{why}; a batch of {batch.count} lines was dropped", 0.0
            return "retry", why, _seconds(response.getheader("Retry-After"))
        raise AssertionError("unreachable")

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """The kept-alive connection (timeout updated) and whether it will connect anew."""
        with self._conn_lock:
            conn = self._conn
            if conn is None:
                t = self.target
                if t.https:
                    ctx = tls.context(self._s.ca, system=True)
                    conn = tls.HTTPSConnection(t.host, t.port, timeout=timeout, context=ctx)
                else:
                    conn = http.client.HTTPConnection(t.host, t.port, timeout=timeout)
                self._conn = conn
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            return conn, conn.sock is None

    def _disconnect(self) -> None:
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0  # an HTTP date: the backoff will do
