"""Reads and writes logplex frames, the RFC 6587 octet-counted syslog messages that Heroku's
HTTPS drains POST (REFERENCE.md §3), strictly and without I/O.

A body is repeated `LEN SP MSG` with nothing between frames. LEN is a positive decimal number
without leading zeros (at most 10 digits) counting the bytes of MSG including one optional
trailing LF, which is stripped. MSG is `<PRI>1 TIMESTAMP HOST APPNAME PROCID - TEXT`: PRI 0 to
191, version 1, an RFC 3339 TIMESTAMP with `T`, seconds, 0 to 6 fraction digits and `Z` or
`±hh:mm`, non-empty HOST (`host` from Heroku; any token is accepted), APPNAME and PROCID, MSGID
`-` and no structured data. Every problem is said in one sentence; nothing is guessed.

What is bad, and what the drain answers:

- A frame is delimited when LEN does not run past the end of the body, the bytes after it are
  the end of the body or the next frame's LEN and space, and MSG has no LF but the optional
  last one (logplex and gun's shipper send one line per frame, so an LF inside MSG means LEN
  swallowed the end of this line and the start of the next). These are the checks that catch
  a LEN that does not match: one too short leaves the LF in front of the next LEN (l2met took
  such a frame and silently dropped the rest), one too long swallows the LF and the next LEN's
  first digits. A truncated or merged message is never turned into metrics. (What octet
  counting cannot see: a frame that lost its final LF ends on the next LEN's first digit,
  which then reads as part of its message; the frames after it are bad.)
- **400, nothing kept** (`read` raises FrameError): not even the first frame can be
  delimited: the body is empty, does not start with a LEN, or its first LEN runs past the end,
  is not followed by the end or a next LEN, or covers an LF before the end of its message.
- **2xx with a count** (each bad frame one sentence in `Frames.bad`), otherwise:
  - a delimited frame that cannot be read: MSG is not UTF-8, lacks the header fields (or has a
    MSGID other than `-`), or has a TIMESTAMP that is not RFC 3339 with an offset. It is
    skipped and reading goes on with the next frame;
  - a later frame that cannot be delimited: frames cannot be resynchronised after a bad LEN,
    so the rest of the body from that frame on counts as this one bad frame, and the sentence
    says so.

`read` first tries a fast path (the body decoded once as Latin-1, one regular expression per
frame, a frame with non-ASCII bytes decoded as UTF-8 on its own) that accepts only bodies in
which every frame is good, and otherwise reads the body again one frame at a time, naming
each problem; both accept exactly the same frames (a property test checks it).

Writing: `frame` writes one message exactly as Heroku sends it and refuses what `read` would
not take back; `safe_frames` writes any text, for a sender that must never refuse a line (the
agent's log shipper), and `read` takes back all it writes.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from dataclasses import dataclass

from gun.errors import InvalidParams
from gun.lines import split_lines
from gun.logs.model import Line

HEADER = "`<PRI>1 TIMESTAMP host APPNAME PROCID - MSG`"
_FRAMES = f"logplex frames (`LEN {HEADER[1:]})"
_EXAMPLE_TS = "2022-06-13T14:52:23.622778+00:00"

_MAX_LEN_DIGITS = 10  # a 10-digit LEN is already gigabytes past any body a drain takes
_PRIS = frozenset(f"<{pri}>1" for pri in range(192))  # RFC 5424 PRI 0..191, VERSION 1
_SHOW = 40  # characters of bad input quoted in a sentence

_fromisoformat = _dt.datetime.fromisoformat

# The fast path's LEN and header of one good frame: the rules above, and no LF in the header.
_FRAME = re.compile(
    r"([1-9][0-9]{0,9}) <(?:[0-9]|[1-9][0-9]|1[0-8][0-9]|19[01])>1"
    r" ([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})) ([^ \n]+) ([^ \n]+) ([^ \n]+) - "
)


class FrameError(InvalidParams):
    """The body is not logplex frames at all (see the module docstring): HTTP 400."""

    id = "bad_request"
    status = 400


@dataclass(slots=True)
class Frames:
    """What one body held: the lines read, and one sentence per bad frame."""

    lines: list[Line]
    bad: list[str]


def epoch(ts: str) -> float:
    """Epoch seconds of a TIMESTAMP (the rules in the module docstring); ValueError if it is
    not one, or OverflowError at the very edges of the years 1 and 9999."""
    n = len(ts)
    z = 1 if ts[-1:] == "Z" else 6
    if ts[4:17:3] != "--T::":
        raise ValueError(ts)
    if n != 19 + z and (ts[19:20] != "." or not 21 + z <= n <= 26 + z):
        raise ValueError(ts)
    if z == 6 and (ts[-6] not in "+-" or ts[-3] != ":"):
        raise ValueError(ts)
    return _fromisoformat(ts).timestamp()


def rfc3339(time: float | _dt.datetime) -> str:
    """The TIMESTAMP Heroku writes for epoch seconds or a datetime (naive is UTC): UTC,
    microseconds, `+00:00`."""
    if not isinstance(time, _dt.datetime):
        when = _dt.datetime.fromtimestamp(time, _dt.UTC)
    elif time.tzinfo is None:
        when = time.replace(tzinfo=_dt.UTC)
    else:
        when = time.astimezone(_dt.UTC)
    return when.isoformat(timespec="microseconds")


def _show(data: bytes) -> str:
    """Quote the start of some bad bytes for a sentence."""
    return repr(data[:_SHOW].decode("utf-8", "backslashreplace"))


def _len(body: bytes, at: int) -> tuple[int, int]:
    """The LEN starting at `at` and the index of the space after it, or (-1, -1)."""
    sp = body.find(b" ", at, at + _MAX_LEN_DIGITS + 1)
    token = body[at:sp]
    if sp <= at or not token.isdigit() or token[0] == 48:  # ASCII digits, no leading 0
        return -1, -1
    return int(token), sp


def _header_problem(index: int, text: str) -> str:
    """Say why a message is not `<PRI>1 TIMESTAMP HOST APPNAME PROCID - MSG`."""
    fields = text.split(" ", 6)
    if fields[0] not in _PRIS:
        reason = "does not start with <PRI>1 (PRI 0 to 191, version 1)"
    elif len(fields) < 6 or not all(fields[1:5]):
        reason = "lacks header fields"
    else:
        reason = f"has MSGID {fields[5]!r} where logplex sends '-' and no structured data"
    return f"frame {index}: the message {reason}; expected {HEADER} (found {text[:_SHOW]!r})"


def _unsynced(index: int, problem: str, remaining: int) -> str:
    return (
        f"frame {index}: {problem}, so the rest of the body from frame {index} on"
        f" ({remaining} bytes) cannot be resynchronised and counts as one bad frame"
    )


def read(body: bytes) -> Frames:
    """The lines of a logplex body and one sentence per bad frame; FrameError when the body
    cannot be parsed at all (see the module docstring)."""
    if body:
        lines = _read_clean(body)
        if lines is not None:
            return Frames(lines, [])
    return _read_careful(body)


def _read_clean(body: bytes) -> list[Line] | None:
    """The lines of a body whose frames are all good, or None at the first that is not.

    The body is decoded as Latin-1, one character per byte, so that positions in the text are
    positions in the body and ASCII stays ASCII (a UTF-8 decode of the whole body would make
    every string of it wide once one character is); each frame's LEN and header are one
    regular expression match. A frame with non-ASCII bytes is decoded as UTF-8 on its own,
    by the careful path's code."""
    text = body.decode("latin-1")
    wide = not body.isascii()
    n = len(body)
    lines: list[Line] = []
    append = lines.append
    match = _FRAME.match
    fromiso = _fromisoformat
    pos = 0
    while pos < n:
        m = match(text, pos)
        if m is None:
            return None
        size, ts, host, appname, procid = m.groups()
        start = pos + len(size) + 1
        end = start + int(size)
        at = m.end()
        if end > n or at > end:  # LEN runs past the body, or the header past LEN
            return None
        stop = end - 1 if text[end - 1] == "\n" else end
        msg = text[at:stop]
        if wide and not (
            msg.isascii() and host.isascii() and appname.isascii() and procid.isascii()
        ):
            raw = body[start:stop]
            if b"\n" in raw:
                return None
            try:
                line = _line(0, raw.decode())
            except UnicodeDecodeError:
                return None
            if isinstance(line, str):
                return None
            append(line)
        else:
            if "\n" in msg:
                return None
            try:
                time = fromiso(ts).timestamp()
            except (ValueError, OverflowError):
                return None
            append(Line(time, ts, appname, procid, msg))
        pos = end
    return lines


def _read_careful(body: bytes) -> Frames:
    """`read`, one frame at a time, naming each problem."""
    n = len(body)
    if n == 0:
        raise FrameError(f"the body is empty; expected {_FRAMES}")
    length, sp = _len(body, 0)
    if length < 0:
        raise FrameError(
            f"the body does not start with a frame length (found {_show(body)}); expected {_FRAMES}"
        )
    lines: list[Line] = []
    bad: list[str] = []
    index = 0
    begin = 0  # where the frame's LEN starts
    while True:
        index += 1
        start = sp + 1
        end = start + length
        problem = ""
        following = -1
        if end > n:
            problem = f"frame {index}: LEN {length} runs past the end of the body"
            problem += f" ({n - start} bytes left)"
        elif end < n:
            following, sp = _len(body, end)
            if following < 0:
                problem = _unsynced(
                    index,
                    f"LEN {length} is followed by neither the end of the body nor the next"
                    f" frame's LEN (found {_show(body[end:])})",
                    n - begin,
                )
        if not problem:
            raw = body[start : end - 1] if body[end - 1] == 10 else body[start:end]
            lf = raw.find(b"\n")
            if lf >= 0:
                following = -1
                problem = _unsynced(
                    index,
                    f"the message has a line feed at byte {lf} of {length}: LEN {length} is"
                    " not this frame's length (logplex sends one line per frame)",
                    n - begin,
                )
        if problem:
            if index == 1:
                raise FrameError(problem)
            bad.append(problem)
            break
        try:
            text = raw.decode()
        except UnicodeDecodeError as e:
            bad.append(
                f"frame {index}: the message is not valid UTF-8"
                f" (byte 0x{raw[e.start]:02x} at offset {e.start})"
            )
        else:
            line = _line(index, text)
            if isinstance(line, str):
                bad.append(line)
            else:
                lines.append(line)
        if following < 0:
            break
        length = following
        begin = end
    return Frames(lines, bad)


def _line(index: int, text: str) -> Line | str:
    """The Line of a delimited message, or the sentence saying why it is none."""
    f = text.split(" ", 6)
    if len(f) == 6:
        f.append("")
    if len(f) != 7 or f[0] not in _PRIS or f[5] != "-" or not (f[2] and f[3] and f[4]):
        return _header_problem(index, text)
    try:
        time = epoch(f[1])
    except (ValueError, OverflowError):
        return (
            f"frame {index}: TIMESTAMP {f[1][:_SHOW]!r} is not an RFC 3339 date-time with an"
            f" offset (e.g. {_EXAMPLE_TS})"
        )
    return Line(time, f[1], f[3], f[4], f[6])


def frame(
    pri: int,
    timestamp: str | float,
    appname: str,
    procid: str,
    msg: str,
    host: str = "host",
) -> bytes:
    """One frame exactly as Heroku sends it: `LEN <PRI>1 TIMESTAMP host APPNAME PROCID - MSG`
    and an LF, LEN counting the message and its LF. `timestamp` is a TIMESTAMP or epoch
    seconds (written in UTC with microseconds). InvalidParams for what `read` would not take
    back: a PRI outside 0 to 191, a bad TIMESTAMP, an empty field or one with a space or LF,
    an LF in the message (one line per frame)."""
    if isinstance(pri, bool) or not isinstance(pri, int) or not 0 <= pri <= 191:
        raise InvalidParams(f"syslog PRI {pri!r} must be a whole number from 0 to 191")
    if isinstance(timestamp, str):
        try:
            epoch(timestamp)
        except (ValueError, OverflowError):
            raise InvalidParams(
                f"TIMESTAMP {timestamp!r} is not an RFC 3339 date-time with an offset"
                f" (e.g. {_EXAMPLE_TS})"
            ) from None
        ts = timestamp
    else:
        ts = rfc3339(timestamp)
    for field, value in (("HOST", host), ("APPNAME", appname), ("PROCID", procid)):
        if not value or " " in value or "\n" in value:
            raise InvalidParams(f"{field} {value!r} must be non-empty, without spaces or LF")
    if "\n" in msg:
        raise InvalidParams("the message has a line feed; send one frame per line")
    try:
        data = f"<{pri}>1 {ts} {host} {appname} {procid} - {msg}\n".encode()
    except UnicodeEncodeError as e:
        raise InvalidParams(f"the message cannot be encoded as UTF-8 ({e.reason})") from None
    return _counted(data)


def safe_frames(
    pri: int, time: float | _dt.datetime, appname: str, procid: str, text: str
) -> list[bytes]:
    """The frames of any text, for a sender that must never refuse a line (the agent's log
    shipper): one frame per line of it, a line longer than MAX_LINE bytes in several (cut
    between UTF-8 sequences, gun.lines), a CR before an LF dropped, APPNAME and PROCID made
    printable ASCII without spaces (`-` when empty), what is not UTF-8 replaced. `read` takes
    every one back. PRI is not checked: the caller's are constants."""
    head = f"<{pri}>1 {rfc3339(time)} host {_field(appname)} {_field(procid)} - ".encode()
    data = text.encode("utf-8", "replace")
    pieces = split_lines(data, final=True)[0] if data else [b""]
    return [_counted(head + piece.removesuffix(b"\r") + b"\n") for piece in pieces]


@functools.lru_cache(maxsize=1024)
def _field(value: str) -> str:
    return "".join(c if "!" <= c <= "~" else "_" for c in value) or "-"


def _counted(msg: bytes) -> bytes:
    """`LEN SP MSG`: octet counting (RFC 6587), LEN the bytes of MSG and its LF."""
    return b"%d %s" % (len(msg), msg)
