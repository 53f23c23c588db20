"""The CLI's end of a run: dial meta's rendezvous with the run's secret, then this terminal's
input goes to the run and its output comes back (gun.rendezvous's frames).

With a terminal on both ends the terminal is put in raw mode (keys such as Ctrl-C reach the
run, not the CLI) and its size follows SIGWINCH; without one, the end of input is sent as
such. The run's exit code is returned, to be gun's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import ssl
import sys
import termios
import threading
import tty
from collections.abc import Iterator
from urllib.parse import urlsplit

from gun import rendezvous as rv
from gun.errors import Unavailable


def terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def size() -> tuple[int, int]:
    got = shutil.get_terminal_size()
    return got.columns, got.lines


@contextlib.contextmanager
def raw(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def context(tls: bool, ca: str | None, api_ca: str | None) -> ssl.SSLContext | None:
    """How to dial the rendezvous: plain, or TLS verified against the CA meta named with the
    run's secret (`ca`; no weaker than the secret's own way here), else against the system's
    CAs and the one meta's API is pinned to (`api_ca`)."""
    if not tls:
        return None
    if ca:
        return ssl.create_default_context(cadata=ca)
    made = ssl.create_default_context()
    if api_ca:
        made.load_verify_locations(cadata=api_ca)
    return made


def attach(url: str, ctx: ssl.SSLContext | None, *, tty_mode: bool) -> int:
    """Join the run at `url` (rendezvous://HOST:PORT/SECRET) until it ends; its exit code."""
    where = urlsplit(url)
    secret = where.path.lstrip("/")
    host, port = where.hostname or "127.0.0.1", where.port or 0
    if tty_mode:
        with raw(sys.stdin.fileno()):
            return asyncio.run(_session(host, port, secret, ctx, tty_mode))
    return asyncio.run(_session(host, port, secret, ctx, tty_mode))


async def _session(
    host: str, port: int, secret: str, ctx: ssl.SSLContext | None, tty_mode: bool
) -> int:
    try:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ctx, server_hostname=host if ctx else None
        )
    except OSError as e:
        raise Unavailable(f"cannot reach meta's rendezvous at {host}:{port}: {e}") from None
    writer.write(secret.encode() + b"\r\n")
    try:
        greeting = await asyncio.wait_for(reader.readexactly(len(rv.GREETING)), 60)
    except (asyncio.IncompleteReadError, TimeoutError):
        greeting = b""
    if greeting != rv.GREETING:
        raise Unavailable("meta's rendezvous did not take the run's secret: start the run again")
    loop = asyncio.get_running_loop()

    async def put(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    def pump_stdin() -> None:  # a thread: stdin may be a file, a pipe or a terminal
        fd = sys.stdin.fileno()
        try:
            while chunk := os.read(fd, rv.READ_CHUNK):
                asyncio.run_coroutine_threadsafe(put(rv.frame(rv.Kind.STDIN, chunk)), loop).result()
            asyncio.run_coroutine_threadsafe(put(rv.frame(rv.Kind.STDIN_END)), loop).result()
        except (OSError, RuntimeError, ConnectionError):
            return  # the run ended (the loop with it) or stdin went

    threading.Thread(target=pump_stdin, name="stdin", daemon=True).start()
    if tty_mode:
        loop.add_signal_handler(signal.SIGWINCH, lambda: writer.write(rv.resize(*size())))
    code: int | None = None
    try:
        while (got := await rv.read_frame(reader)) is not None:
            kind, payload = got
            if kind is rv.Kind.STDOUT:
                _write_all(sys.stdout.fileno(), payload)
            elif kind is rv.Kind.STDERR:
                _write_all(sys.stderr.fileno(), payload)
            elif kind is rv.Kind.EXIT:
                code = rv.read_exit(payload)
    except (OSError, ssl.SSLError) as e:
        raise Unavailable(f"the connection to the run broke: {e}") from None
    finally:
        if tty_mode:
            loop.remove_signal_handler(signal.SIGWINCH)
        writer.close()
    if code is None:
        raise Unavailable("the connection to the run ended before the run did: no exit code")
    return code


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
