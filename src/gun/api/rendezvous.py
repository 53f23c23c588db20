"""Meta's rendezvous door: where an attached run's client and its agent both dial in and are
joined (the wire: gun.rendezvous). One asyncio server on meta's loop, TLS when the API is.

Each caller says who it is in its first line; a client's secret is good once (core/runs.py), an
agent must hold the token of the instance the run is on. Whoever comes first waits up to
WAIT seconds for the other; then bytes are copied both ways, untouched, until either end
closes, and the other is closed too. The run is `up` while joined and `complete` after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field

from anyio import to_thread

from gun import rendezvous as rv
from gun.core import Platform
from gun.errors import GunError, NotFound
from gun.model import Run

log = logging.getLogger("gun.meta.rendezvous")

WAIT = 120.0  # seconds one end waits for the other
COPY_CHUNK = 256 * 1024


@dataclass
class _End:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    ahead: bytes  # what it sent after its first line, before the greeting


@dataclass
class _Slot:
    """The first end of a run to come, waiting for the other."""

    side: str
    end: _End
    paired: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # the copying ended


class Rendezvous:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._waiting: dict[tuple[str, int], _Slot] = {}  # by (app, run number)
        self.server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None) -> int:
        """Listen; the port (the one asked for, or the one the system chose for 0)."""
        self.server = await asyncio.start_server(self._handle, host, port, ssl=tls)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._handlers):
            task.cancel()
        for task in list(self._handlers):
            with contextlib.suppress(BaseException):
                await task

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._meet(reader, writer)
        except (GunError, OSError, asyncio.IncompleteReadError, ssl.SSLError) as e:
            log.info("rendezvous: %s", getattr(e, "message", e))
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _meet(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, ahead = await rv.read_line(reader)
        hello = rv.read_hello(line)
        runs = self.platform.runs
        run: Run
        if isinstance(hello, rv.ClientHello):
            run = await to_thread.run_sync(runs.claim_client, hello.secret)
            side, other = "client", "agent"
            if run.state == "complete" and (run.app, run.number) not in self._waiting:
                raise NotFound(f"{run.name} of {run.app} ended before its client came")
        else:
            who = await to_thread.run_sync(self.platform.tokens.authenticate, hello.token)
            run = await to_thread.run_sync(runs.claim_agent, who, hello.instance, hello.run)
            side, other = "agent", "client"
        writer.write(rv.GREETING)  # a write of its own: clients drop their whole first read
        await writer.drain()
        me = _End(reader, writer, ahead)
        key = (run.app, run.number)
        slot = self._waiting.get(key)
        if slot is None:  # the first: wait for the other end, then for the copying to end
            slot = _Slot(side, me)
            self._waiting[key] = slot
            try:
                await asyncio.wait_for(slot.paired.wait(), WAIT)
            except TimeoutError:
                log.info("rendezvous: %s of %s: no %s came in %gs", run.name, run.app, other, WAIT)
                await to_thread.run_sync(runs.ended, run.app, run.number)
                return
            finally:
                if self._waiting.get(key) is slot:
                    del self._waiting[key]
            await slot.done.wait()
            return
        if slot.side == side:
            raise GunError(f"{run.name} of {run.app} has a {side} already")
        del self._waiting[key]
        slot.paired.set()
        try:
            await to_thread.run_sync(runs.joined, run.app, run.number)
            await asyncio.gather(_copy(me, slot.end), _copy(slot.end, me))
        finally:
            slot.done.set()
            await to_thread.run_sync(runs.ended, run.app, run.number)


async def _copy(src: _End, dst: _End) -> None:
    """src's bytes to dst until src ends; then dst is closed (and so is src, for the copy the
    other way to end too)."""
    try:
        if src.ahead:
            dst.writer.write(src.ahead)
        while chunk := await src.reader.read(COPY_CHUNK):
            dst.writer.write(chunk)
            await dst.writer.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        for end in (dst, src):
            end.writer.close()
