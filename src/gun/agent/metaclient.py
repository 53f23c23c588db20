"""The agent's client for meta: stdlib http.client run in threads.

An agent makes a few kinds of call (register, long-poll, report, slug download, leases, the
release phase's output); httpx would add ~11 MiB to every agent's RSS for them
(bench/converge.py compares agents with supervisord). Every call names the agent's protocol in
the Gun-Protocol header; the protocol's messages go through gun.protocol both ways, so what
`desired` returns is a typed Slice, read (or refused) as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit

from gun import protocol
from gun.agent import tls


class Unreachable(Exception):
    """meta did not answer (connection refused, reset, timed out)."""


class Refused(Exception):
    """meta answered with an error status; `message` is its sentence (the body's `message`
    when the body is gun's `{"id", "message"}`, else the start of the body)."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.message = body[:300]
        with contextlib.suppress(ValueError):
            answer = json.loads(body)
            if isinstance(answer, dict) and isinstance(answer.get("message"), str):
                self.message = answer["message"][:1000]
        super().__init__(f"meta answered {status}: {self.message}")


class _Local(Exception):
    """Writing a download to the local disk failed: not meta's doing."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _save(response: http.client.HTTPResponse, into: BinaryIO) -> None:
    """The response body into the file `into`; a local failure (a full disk) is _Local."""
    while chunk := response.read(256 * 1024):
        try:
            into.write(chunk)
        except OSError as e:
            raise _Local(e) from e


class Call:
    """A handle on one call in flight, to end it early from the event loop (`end`): a
    long-poll stuck on a connection that a partition broke, say."""

    def __init__(self) -> None:
        self.conn: http.client.HTTPConnection | None = None
        self.ended = False

    def end(self) -> None:
        self.ended = True
        conn = self.conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)


class MetaClient:
    def __init__(self, base: str, token: str, timeout: float = 10.0, ca: str | None = None) -> None:
        url = urlsplit(base)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"meta URL {base!r} is not http(s)://HOST[:PORT]")
        self.scheme = url.scheme
        self.host = url.hostname
        self.port = url.port
        self.prefix = url.path.rstrip("/")
        self.timeout = timeout
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            protocol.HEADER: str(protocol.VERSION),
        }
        self._open: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()
        self._tls = tls.context(ca, system=False) if url.scheme == "https" else None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._tls is not None:
            return tls.HTTPSConnection(self.host, self.port, timeout=timeout, context=self._tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        into: BinaryIO | None = None,
        call: Call | None = None,
    ) -> Any:
        target = self.prefix + path + (f"?{urlencode(params)}" if params else "")
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = self._connection(timeout or self.timeout)
        with self._lock:
            self._open.add(conn)
        if call is not None:
            call.conn = conn
        try:
            if call is not None and call.ended:
                raise Unreachable("the call was ended before it was made")
            conn.request(method, target, body=data, headers=headers)
            r = conn.getresponse()
            if r.status >= 300:
                raise Refused(r.status, r.read().decode("utf-8", "replace"))
            if into is not None:
                _save(r, into)
                return None
            raw = r.read()
            return json.loads(raw) if raw else None
        except _Local as e:
            raise e.error from None
        except (OSError, http.client.HTTPException) as e:
            raise Unreachable(f"{type(e).__name__}: {e}") from None
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()

    def abort(self) -> None:
        """End every call in flight (a long-poll's thread must not keep the agent alive)."""
        with self._lock:
            for conn in self._open:
                if conn.sock is not None:
                    with contextlib.suppress(OSError):
                        conn.sock.shutdown(socket.SHUT_RDWR)

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        return await asyncio.to_thread(self._call, method, path, **kw)

    # the protocol's messages (api: the instance's prefix of meta's agent API)

    async def register(self, api: str, registration: protocol.Registration) -> None:
        await self.call("POST", f"{api}/register", body=protocol.to_json(registration))

    async def desired(
        self, api: str, after: int, wait: float, give_up: asyncio.Event | None = None
    ) -> protocol.Slice | None:
        """The long-poll: the slice once its generation is past `after` (or at `wait`); one
        that does not read (another protocol's, say) raises ProtocolError. None if `give_up`
        is set first: the call is ended (a long-poll a partition left hanging, say)."""
        call = Call()
        params = {"after": after, "wait": wait}
        request = asyncio.ensure_future(
            self.call("GET", f"{api}/desired", params=params, timeout=wait + 10, call=call)
        )
        if give_up is not None:
            stop = asyncio.ensure_future(give_up.wait())
            try:
                await asyncio.wait({request, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
            if not request.done():
                call.end()
                request.add_done_callback(_ignore)
                return None
        return protocol.read_slice(await request)

    async def report(self, api: str, report: protocol.Report, timeout: float | None = None) -> None:
        await self.call("PUT", f"{api}/observed", body=protocol.to_json(report), timeout=timeout)


def _ignore(task: asyncio.Future[Any]) -> None:
    """A call given up on: whatever it ends with is of no use."""
    if not task.cancelled():
        task.exception()
