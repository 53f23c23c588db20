"""app.log: every line of an instance's processes, written, rotated by size, and read back.

ROOT/log/app.log holds lines `2026-11-26T15:00:00.123456+00:00 app[web.1]: text`, written by
the agent alone. Once it reaches `max_bytes` it is renamed app.log.1 (app.log.1 becomes .2, and
so on; app.log.KEEP+1 is gone) and a new app.log begins: the instance keeps at most
(KEEP + 1) × max_bytes of lines, plus one write.

Every line also goes to a sink (the log shipper) with its Span, where it lies in app.log, so
that the shipper can say how far it has shipped as a Position: the file (its inode, and its first
bytes, since an inode number freed by a rotation is soon given to a new file) and an offset.
A line that cannot be written (a full disk) still goes to the sink, with no span: it is
shipped, and only a crash before it is shipped loses it. Writing never raises; the last
failure is kept in `error` until a write succeeds again.

`unshipped` reads back what app.log and its rotated files hold after each drain's Position,
oldest first: what a new agent ships after one that died. The Positions are kept in
ROOT/state/logship.json, by drain.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gun import atomic
from gun.loops import why
from gun.settings import AppLogLimits

logger = logging.getLogger(__name__)
LINE = re.compile(
    rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00) (app|heroku)\[([^\]\s]*)\]: (.*)\Z", re.S
)


HEAD = 32  # bytes that tell a file from another of the same inode: its first line's time


@dataclass(frozen=True)
class Position:
    """A place in app.log: the file (inode, first HEAD bytes in hex; "" while it was empty)
    and a byte offset in it."""

    ino: int
    head: str
    offset: int

    def names(self, ino: int, head: str) -> bool:
        """Whether this is a place in the file with that inode and head."""
        return ino == self.ino and (head == self.head or not self.head)


@dataclass(frozen=True)
class Span:
    """Where one line lies in app.log: bytes start to end of the file (inode, head)."""

    ino: int
    head: str
    start: int
    end: int

    @property
    def begin(self) -> Position:
        return Position(self.ino, self.head, self.start)

    @property
    def after(self) -> Position:
        return Position(self.ino, self.head, self.end)


DEFAULT_ROTATION = AppLogLimits()

LogSink = Callable[[str, str, Span | None], None]
"""Called as sink(source, text, span) for every line: source `app[web.1]` or `heroku[web.1]`,
text without timestamp, prefix or newline; span None if the line is not in app.log."""


@dataclass(frozen=True)
class Line:
    """A line read back from app.log."""

    when: datetime
    appname: str  # app | heroku
    procid: str  # web.1
    text: str
    span: Span


def path_of(root: Path) -> Path:
    return root / "log" / "app.log"


class AppLog:
    """ROOT/log/app.log, rotated by size; see the module docstring."""

    def __init__(
        self, path: Path, sink: LogSink | None = None, rotation: AppLogLimits = DEFAULT_ROTATION
    ) -> None:
        self.path = path
        self.rotation = rotation
        self._sink = sink
        self._fd: int | None = None
        self._ino = 0
        self._head = ""
        self._size = 0
        self._ragged = False  # the file ends inside a line (a write was cut short)
        self.error: str | None = None  # why the last write failed; None once one succeeds
        self.unwritten = 0  # lines that could not be written, in all

    def write(self, source: str, name: str, texts: Sequence[str]) -> None:
        """Append the lines, stamped now, and hand each to the sink. Never raises."""
        if not texts:
            return
        who = f"{source}[{name}]"
        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        encoded = [f"{stamp} {who}: {text}\n".encode() for text in texts]
        spans = self._append(encoded)
        sink = self._sink
        if sink is None:
            return
        for text, span in zip(texts, spans, strict=True):
            try:
                sink(who, text, span)
            except Exception:
                logger.exception("the log sink failed on a line of %s", who)

    def _append(self, encoded: list[bytes]) -> list[Span | None]:
        try:
            fd = self._open()
            lead = b"\n" if self._ragged else b""
            data = memoryview(lead + b"".join(encoded))
            start = self._size + len(lead)
            while data:
                written = os.write(fd, data)
                self._size += written
                data = data[written:]
        except OSError as e:
            self._failed(e, len(encoded))
            return [None] * len(encoded)
        self._ragged = False
        if not self._head:
            self._head = _head_of(fd)
        if self.error is not None:
            logger.warning("%s is written again (%d lines were not)", self.path, self.unwritten)
            self.error = None
        spans: list[Span | None] = []
        for line in encoded:
            spans.append(Span(self._ino, self._head, start, start + len(line)))
            start += len(line)
        if self.rotation.max_bytes and self._size >= self.rotation.max_bytes:
            self.rotate()
        return spans

    def _open(self) -> int:
        if self._fd is None:
            flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC  # read: its last byte
            fd = os.open(self.path, flags, 0o600)
            st = os.fstat(fd)
            self._fd, self._ino, self._size = fd, st.st_ino, st.st_size
            self._head = _head_of(fd)
            self._ragged = st.st_size > 0 and os.pread(fd, 1, st.st_size - 1) != b"\n"
        return self._fd

    def _failed(self, e: OSError, lines: int) -> None:
        if e.filename is None:
            e.filename = str(self.path)
        reason = why(e)
        if reason != self.error:
            logger.error("app.log: %s; its lines are still shipped", reason)
        self.error = reason
        self.unwritten += lines
        if self._fd is not None:  # what a cut-short write left: know the true size
            try:
                self._size = os.fstat(self._fd).st_size
                self._ragged = True
            except OSError:
                self.close()

    def position(self) -> Position | None:
        """The end of app.log as it is now; None if there is none."""
        if self._fd is not None:
            return Position(self._ino, self._head, self._size)
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                return Position(st.st_ino, _head_of(f.fileno()), st.st_size)
        except OSError:
            return None

    def rotate(self) -> None:
        """app.log becomes app.log.1, .1 becomes .2, ...; the oldest beyond KEEP goes."""
        self.close()
        keep = self.rotation.keep
        try:
            if keep == 0:
                self.path.unlink(missing_ok=True)
            for i in range(keep, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i - 1}") if i > 1 else self.path
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i}"))
        except OSError as e:
            logger.error("rotating %s failed: %s", self.path, e)

    def follow(self) -> None:
        """Write to a new app.log from now on if something renamed or removed this one."""
        if self._fd is not None:
            try:
                moved = os.stat(self.path).st_ino != self._ino
            except FileNotFoundError:
                moved = True
            if moved:
                self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _head_of(fd: int) -> str:
    return os.pread(fd, HEAD, 0).hex()


# -- reading back ------------------------------------------------------------------------------


def parse(raw: bytes) -> tuple[datetime, str, str, str] | None:
    """(time, app|heroku, process, text) of one app.log line (without its LF); None if it is
    not one."""
    m = LINE.match(raw)
    if m is None:
        return None
    when = datetime.fromisoformat(m[1].decode())
    return when, m[2].decode(), m[3].decode(), m[4].decode("utf-8", "replace")


def generations(path: Path) -> list[Path]:
    """app.log and its rotated files, oldest first: app.log.3, app.log.2, app.log.1, app.log."""
    rotated = []
    for p in path.parent.glob(f"{path.name}.*"):
        suffix = p.name[len(path.name) + 1 :]
        if suffix.isascii() and suffix.isdigit():
            rotated.append((int(suffix), p))
    return [p for _, p in sorted(rotated, reverse=True)] + [path]


@dataclass(frozen=True)
class Due:
    """A line read back, and the drains (by key) that have not yet had it."""

    line: Line
    drains: frozenset[str]


def unshipped(path: Path, since: Mapping[str, Position]) -> tuple[list[Due], list[str]]:
    """What app.log and its rotated files hold after each drain's Position, oldest first: each
    line with the drains it is due to. And a warning for each drain whose file was rotated away
    (its lines after its Position are lost; it gets every file left, whole)."""
    found: list[tuple[Path, int, str]] = []  # oldest file first
    for p in generations(path):
        try:
            with open(p, "rb") as f:
                found.append((p, os.fstat(f.fileno()).st_ino, _head_of(f.fileno())))
        except FileNotFoundError:
            continue
    warnings = []
    starts: dict[str, tuple[int, int]] = {}  # drain -> (file's order, offset) it is due from
    for key, where in since.items():
        index = next((i for i, (_, ino, head) in enumerate(found) if where.names(ino, head)), None)
        if index is not None:
            starts[key] = (index, where.offset)
        else:
            starts[key] = (-1, 0)
            if found:
                warnings.append(
                    f"app.log lines not yet shipped to drain {key} when the agent stopped were"
                    " rotated away; it gets what the rotated files left hold"
                )
    if not starts:
        return [], warnings
    first = min(starts.values())
    due: list[Due] = []
    for index, (p, _, _) in enumerate(found):
        if index < first[0]:
            continue
        offset = first[1] if index == first[0] else 0
        for line in _read(p, offset):
            here = (index, line.span.start)
            drains = frozenset(k for k, start in starts.items() if start <= here)
            if drains:
                due.append(Due(line, drains))
    return due, warnings


def _read(path: Path, offset: int) -> Iterator[Line]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - a generator holds it
    except FileNotFoundError:
        return
    with f:
        st = os.fstat(f.fileno())
        ino, size, head = st.st_ino, st.st_size, _head_of(f.fileno())
        if offset > size:  # truncated since: start over
            offset = 0
        f.seek(offset)
        at = offset
        for raw in f:
            start, at = at, at + len(raw)
            parsed = parse(raw.removesuffix(b"\n"))
            if parsed is not None:
                yield Line(*parsed, span=Span(ino, head, start, at))


# -- how far the shipper got -------------------------------------------------------------------


def state_path(root: Path) -> Path:
    return root / "state" / "logship.json"


def save_positions(root: Path, where: Mapping[str, Position]) -> None:
    """Each drain's Position (drains by key), in ROOT/state/logship.json."""
    data = {k: {"ino": p.ino, "head": p.head, "offset": p.offset} for k, p in sorted(where.items())}
    atomic.write(state_path(root), json.dumps({"drains": data}), mode=0o600)


def load_positions(root: Path) -> dict[str, Position] | None:
    """The saved Positions by drain; None if none were saved (or the file is unreadable: said
    in the log)."""
    path = state_path(root)
    try:
        data = json.loads(path.read_text())
        return {
            str(k): Position(int(v["ino"]), str(v["head"]), int(v["offset"]))
            for k, v in data["drains"].items()
        }
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        logger.warning("%s is unreadable (%s): lines before now are not shipped again", path, e)
        return None
