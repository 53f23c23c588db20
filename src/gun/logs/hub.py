"""The hub of the drain's workers: with GUN_DRAIN_WORKERS=N > 1, `gun server drain` is a parent
process (workers.py) holding the listening socket, the hub and the outlets, and N worker
processes that serve HTTP on that socket. Workers talk to the hub over a Unix socket:

- **reports**: every REPORT_EVERY seconds each worker hands over what it took since its last
  report (`Drain.report`: its aggregators' shares, the growth of its figures, lines per app);
  the hub's drain merges them (`Drain.absorb`), flushes buckets to the outlets and keeps them,
  so a bucket's statistics are those one drain seeing every line would give;
- **asks**: `gun metrics` and `/metrics` at any worker are answered by the hub's drain
  (partial buckets as of the workers' last reports), and each worker's `/health` adds the
  problems of the parent's tasks (the metrics flush, the archive's upkeep);
- **tails**: a worker says which apps its live tails follow; the hub tells each worker which
  apps the others follow; a worker sends the lines of those apps it takes, and the hub passes
  them to the workers that follow them.

Messages are pickled tuples with a 4-byte length before each, between processes of the same
user only: the socket is made in a 0700 directory and is itself 0600. A worker whose hub goes
away stops (its parent is gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import signal
import time
from typing import Any

from gun.logs.drain import Drain, Report
from gun.logs.health import Health, Steps
from gun.logs.model import Line
from gun.logs.outlets.prometheus import PrometheusOutlet

log = logging.getLogger("gun.drain")
REPORT_EVERY = 0.5  # seconds between a worker's reports
FOLLOW_EVERY = 0.1  # seconds between a worker's looks at what its tails follow
ASK_TIMEOUT = 10.0

Message = tuple[Any, ...]


def _frame(message: Message) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(4, "big") + data


async def _read(reader: asyncio.StreamReader) -> Message:
    size = int.from_bytes(await reader.readexactly(4), "big")
    message: Message = pickle.loads(await reader.readexactly(size))
    return message


def metrics_answer(drain: Drain, app: str, name: str | None, since: float) -> Message:
    """(the buckets' JSON, the sentence when there are none) of `gun metrics`."""
    buckets = drain.metrics(app, name, since)
    return ([b.json() for b in buckets], None if buckets else drain.why_no_metrics(app, name))


class Hub:
    """The parent's side: one drain that merges every worker's reports, and the tails' relay."""

    def __init__(
        self, drain: Drain, prometheus: PrometheusOutlet | None, health: Health, steps: Steps
    ) -> None:
        self.drain, self.prometheus = drain, prometheus
        self.health, self.steps = health, steps  # the parent's tasks'; workers' /health says them
        self._follows: dict[asyncio.StreamWriter, set[str]] = {}
        self._server: asyncio.AbstractServer | None = None

    async def start(self, path: str) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path)
        os.chmod(path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._follows):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._follows[writer] = set()
        self._announce()  # a worker (re)started learns what the others follow
        try:
            while True:
                message = await _read(reader)
                self._handle(writer, message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            del self._follows[writer]
            self._announce()
            writer.close()

    def _handle(self, writer: asyncio.StreamWriter, message: Message) -> None:
        kind = message[0]
        if kind == "report":
            report: Report = message[1]
            self.drain.absorb(report, time.time())
        elif kind == "lines":
            _, app, lines = message
            data = _frame(("lines", app, lines))
            for other, apps in self._follows.items():
                if other is not writer and app in apps:
                    other.write(data)
        elif kind == "follow":
            self._follows[writer] = set(message[1])
            self._announce()
        elif kind == "ask":
            _, ask_id, what, args = message
            if what == "metrics":
                answer: Any = metrics_answer(self.drain, *args)
            elif what == "health":
                answer = (self.health.problems(), self.steps.failing())
            else:
                answer = self.prometheus.render() if self.prometheus is not None else None
            writer.write(_frame(("answer", ask_id, answer)))
        else:
            log.warning("the hub got a message it does not know: %r", kind)

    def _announce(self) -> None:
        """Tell each worker which apps the others' tails follow."""
        for writer in self._follows:
            others = set().union(*(a for w, a in self._follows.items() if w is not writer))
            writer.write(_frame(("followed", sorted(others))))


class HubClient:
    """A worker's side: reports, asks, and the tails' lines both ways."""

    def __init__(self, drain: Drain, path: str) -> None:
        self.drain, self.path = drain, path
        self.followed: frozenset[str] = frozenset()  # apps others follow
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._answers: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._following: set[str] = set()

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(self.path)
        self.drain.on_lines = self._lines

    def _send(self, message: Message) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(_frame(message))

    def _lines(self, app: str, lines: list[Line]) -> None:
        if app in self.followed:
            self._send(("lines", app, lines))

    def report(self) -> None:
        """Hand the hub what this worker took since its last report."""
        self._send(("report", self.drain.report()))

    async def report_loop(self) -> None:
        """Reports every REPORT_EVERY seconds; what this worker's tails follow, as it changes."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(FOLLOW_EVERY)
            following = self.drain.followed()
            if following != self._following:
                self._following = following
                self._send(("follow", sorted(following)))
            if time.monotonic() - last >= REPORT_EVERY:
                last = time.monotonic()
                self.report()
                if self._writer is not None:
                    await self._writer.drain()

    async def listen(self) -> None:
        """Read what the hub sends until it goes away; then stop this worker."""
        assert self._reader is not None
        try:
            while True:
                message = await _read(self._reader)
                kind = message[0]
                if kind == "answer":
                    future = self._answers.pop(message[1], None)
                    if future is not None and not future.done():
                        future.set_result(message[2])
                elif kind == "lines":
                    self.drain.deliver(message[1], message[2])
                elif kind == "followed":
                    self.followed = frozenset(message[1])
        except (asyncio.IncompleteReadError, ConnectionError):
            log.error("the drain's hub went away: this worker stops")
            os.kill(os.getpid(), signal.SIGTERM)

    async def ask(self, what: str, *args: Any) -> Any:
        ask_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._answers[ask_id] = future
        self._send(("ask", ask_id, what, args))
        try:
            return await asyncio.wait_for(future, ASK_TIMEOUT)
        finally:
            self._answers.pop(ask_id, None)

    async def close(self) -> None:
        """The last report, then goodbye."""
        self.report()
        if self._writer is not None:
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()
            self._writer.close()
