"""The rendezvous: how a one-off process (`run.N`) and whoever is attached to it meet.

Both ends dial meta's rendezvous port, so neither needs to reach the other: a CLI anywhere, an
agent behind any NAT. It is TLS when meta has a certificate for it (its own, or one of its own:
`Address`); whoever starts a run is told so, and which CA to trust, with the run's secret.
Heroku's protocol (REFERENCE.md §6), which the stock `heroku run` speaks (api/heroku/dynos.py):

1. The client sends its secret, `SECRET\\r\\n` (heroku3: no line end). The agent of the instance
   the run is on sends `agent INSTANCE RUN TOKEN\\r\\n` instead, TOKEN its instance's token.
2. Meta answers `rendezvous\\r\\n` as a write of its own, once it knows the caller.
3. Meta joins the two connections once both are there, and copies bytes both ways untouched
   until either end closes; then it closes the other.

What flows after the greeting is up to the two ends; meta never reads it. gun's CLI and agent
speak frames (`Framing.GUN`): a kind byte, a 4-byte big-endian length, the payload. The stock
clients speak raw bytes (`Framing.RAW`): the process's output (a pty's, stdout and stderr
merged), keys in, `\\x04` for end of input without a pty.

Frames, client to agent: STDIN data, STDIN_END (empty), RESIZE (cols, rows: two 2-byte
big-endian numbers). Agent to client: STDOUT data, STDERR data, EXIT (the exit code as ASCII
decimal; 128+N for a signal N, as a shell says it) and then the agent closes.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gun.errors import ProtocolError

if TYPE_CHECKING:  # asyncio imports ssl: an agent of a plain-http meta keeps it out
    import asyncio

GREETING = b"rendezvous\r\n"
LINE_MAX = 4096  # bytes of a caller's first line
FRAME_MAX = 1 << 20  # bytes of one frame's payload
READ_CHUNK = 64 * 1024  # bytes an end reads (and so frames) at a time
SCHEME = "rendezvous"
_HEADER = struct.Struct(">cI")
_SIZE = struct.Struct(">HH")
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}\Z")
_AGENT = re.compile(
    r"agent ([A-Za-z0-9_.:-]{1,64}) (run\.[1-9][0-9]{0,8}) ([A-Za-z0-9_.-]{8,200})\Z"
)


@dataclass(frozen=True)
class Address:
    """Where the rendezvous is, as both ends are told: `url` rendezvous://HOST:PORT, whether it
    is TLS, and the PEM of the CA its certificate is of (None: the system's CAs vouch for it).

    The CA travels with the run's secret (in meta's answer to whoever starts the run, in the
    slice to its agent): whoever could change that answer could take the secret itself, so
    trusting the CA it names costs nothing the secret did not already."""

    url: str
    tls: bool = False
    ca: str | None = None


class Framing(enum.StrEnum):
    GUN = "gun"  # gun's CLI: frames
    RAW = "raw"  # the stock clients: bytes


class Kind(bytes, enum.Enum):
    STDIN = b"i"
    STDIN_END = b"e"
    RESIZE = b"w"
    STDOUT = b"o"
    STDERR = b"r"
    EXIT = b"x"


@dataclass(frozen=True)
class ClientHello:
    secret: str


@dataclass(frozen=True)
class AgentHello:
    instance: str
    run: str  # run.N
    token: str


Hello = ClientHello | AgentHello


def read_hello(line: bytes) -> Hello:
    """Who dialled, from their first line (its `\\r\\n` or `\\n` already cut or not)."""
    try:
        text = line.rstrip(b"\r\n").decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("rendezvous: the first line is not ASCII") from None
    if text.startswith("agent "):
        m = _AGENT.match(text)
        if m is None:
            raise ProtocolError("rendezvous: an agent's line must be `agent INSTANCE RUN TOKEN`")
        return AgentHello(m.group(1), m.group(2), m.group(3))
    if not _SECRET.match(text):
        raise ProtocolError("rendezvous: the first line must be the run's secret")
    return ClientHello(text)


def agent_hello(instance: str, run: str, token: str) -> bytes:
    return f"agent {instance} {run} {token}\r\n".encode("ascii")


def frame(kind: Kind, payload: bytes = b"") -> bytes:
    if len(payload) > FRAME_MAX:
        raise ValueError(f"a frame holds at most {FRAME_MAX} bytes, not {len(payload)}")
    return _HEADER.pack(kind.value, len(payload)) + payload


def resize(cols: int, rows: int) -> bytes:
    return frame(Kind.RESIZE, _SIZE.pack(min(max(cols, 1), 65535), min(max(rows, 1), 65535)))


def read_size(payload: bytes) -> tuple[int, int]:
    """(cols, rows) of a RESIZE frame."""
    if len(payload) != _SIZE.size:
        raise ProtocolError("rendezvous: a resize frame holds 4 bytes")
    cols, rows = _SIZE.unpack(payload)
    return cols, rows


def exit_frame(code: int) -> bytes:
    return frame(Kind.EXIT, str(code).encode())


def read_exit(payload: bytes) -> int:
    try:
        code = int(payload.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("rendezvous: an exit frame holds a number") from None
    if not 0 <= code <= 255:
        raise ProtocolError(f"rendezvous: exit code {code} is not between 0 and 255")
    return code


async def read_frame(reader: asyncio.StreamReader) -> tuple[Kind, bytes] | None:
    """The next frame; None at a clean end of stream (between frames)."""
    import asyncio

    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise ProtocolError("rendezvous: the stream ended inside a frame") from None
    kind_byte, size = _HEADER.unpack(header)
    try:
        kind = Kind(kind_byte)
    except ValueError:
        raise ProtocolError(f"rendezvous: unknown frame kind {kind_byte!r}") from None
    if size > FRAME_MAX:
        raise ProtocolError(f"rendezvous: a frame of {size} bytes is over {FRAME_MAX}")
    try:
        payload = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise ProtocolError("rendezvous: the stream ended inside a frame") from None
    return kind, payload


async def read_line(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """A caller's first line (at most LINE_MAX bytes) and what came after it in the same reads
    (a client may type ahead of the greeting: it is passed on, not lost). heroku3 ends its
    secret with no line end, so what arrives before a pause of a second counts as the line."""
    import asyncio

    buf = b""
    while b"\n" not in buf and len(buf) <= LINE_MAX:
        try:
            chunk = await asyncio.wait_for(reader.read(LINE_MAX + 1 - len(buf)), 1.0 if buf else 30)
        except TimeoutError:
            if buf:
                break
            raise ProtocolError("rendezvous: nothing was said within 30 s") from None
        if not chunk:
            break
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    if len(line) > LINE_MAX:
        raise ProtocolError(f"rendezvous: the first line is over {LINE_MAX} bytes")
    return line, rest
