"""The frame ids of the bodies the drain took, so that a retried body (same `Logplex-Frame-Id`)
is taken once, across restarts and across the drain's workers.

Each process keeps the last SEEN_FRAMES ids in memory and appends each new one to its own
file, `.frame-ids` (one worker, or worker 0) or `.frame-ids.W` (worker W), as `APP<TAB>ID`
lines; the write reaches the kernel after the archive's and before the answer. At start every
`.frame-ids*` file in the directory is read (also those of workers of an earlier run with more
workers); then, before each check, what the other workers appended since is read too (one
fstat per peer file when nothing is new). A process keeps its own file about as long as its
memory by rewriting it (atomically) when it has grown to twice that; a reader sees the file
replaced (another inode) and reads it again from the start.

What is not covered: the same id arriving at two workers at the same moment (logplex retries
a body only after its first try timed out, seconds later) is taken by both.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from pathlib import Path

from gun import atomic
from gun.logs.disk import CannotWrite, cannot_write

SEEN_FRAMES = 100_000  # frame ids remembered per process
PREFIX = ".frame-ids"


class _Peer:
    """Another worker's file, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1
        self.inode = 0
        self.offset = 0
        self.rest = b""  # a line not yet whole

    def new_lines(self) -> list[str]:
        if self.fd < 0 and not self._open():
            return []
        try:
            size = os.fstat(self.fd).st_size
            if size < self.offset:
                return self._reopen()
            if size == self.offset:
                return []
            data = os.pread(self.fd, size - self.offset, self.offset)
        except OSError:
            return []
        self.offset += len(data)
        data = self.rest + data
        whole, _, self.rest = data.rpartition(b"\n")
        return whole.decode(errors="replace").split("\n") if whole else []

    def replaced(self) -> bool:
        """Whether the file at `path` is no longer the one open (rewritten by its worker)."""
        try:
            return os.stat(self.path).st_ino != self.inode
        except OSError:
            return False

    def _open(self) -> bool:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        self.inode = os.fstat(self.fd).st_ino
        self.offset, self.rest = 0, b""
        return True

    def _reopen(self) -> list[str]:
        self.close()
        return self.new_lines()

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = -1


class Seen:
    """The frame ids this process and its peers took (see the module docstring); `directory`
    None keeps them in memory only."""

    def __init__(self, directory: Path | None, worker: int = 0, workers: int = 1) -> None:
        self._ids: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._file = None if directory is None else directory / _name(worker)
        self._lines = 0  # lines in our own file
        self._peers: list[_Peer] = []
        self._checked = 0
        if directory is None:
            return
        for path in sorted(directory.glob(f"{PREFIX}*")):
            if path.name == _name(worker):
                rows = _lines_of(path)
                self._add_lines(rows)
                self._lines = len(rows)
            elif workers > 1 and _is_ours(path.name):
                peer = _Peer(path)
                self._add_lines(peer.new_lines())
                self._peers.append(peer)
            elif _is_ours(path.name):  # a worker's of an earlier run with more workers
                self._add_lines(_lines_of(path))
        for w in range(workers):  # peers whose file does not exist yet
            path = directory / _name(w)
            if w != worker and all(p.path != path for p in self._peers):
                self._peers.append(_Peer(path))

    def __contains__(self, key: tuple[str, str]) -> bool:
        if self._peers:
            self._catch_up()
        return key in self._ids

    def remember(self, app: str, frame_id: str) -> CannotWrite | None:
        """Keep `frame_id` of `app`; the error (to raise after the answer is decided) when
        the file cannot be written."""
        self._keep((app, frame_id))
        if self._file is None or "\t" in frame_id or "\n" in frame_id:
            return None
        try:
            fd = os.open(self._file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, f"{app}\t{frame_id}\n".encode())
            finally:
                os.close(fd)
            self._lines += 1
            if self._lines > 2 * SEEN_FRAMES:  # keep the file about as long as the memory
                text = "".join(f"{a}\t{f}\n" for a, f in self._ids)
                atomic.write(self._file, text, mode=0o600)
                self._lines = len(self._ids)
        except OSError as e:
            return cannot_write(e, self._file, "the frame ids of the bodies it took")
        return None

    def close(self) -> None:
        for peer in self._peers:
            peer.close()

    def _catch_up(self) -> None:
        self._checked += 1
        for peer in self._peers:
            if self._checked % 100 == 0 and peer.replaced():
                peer.close()
            self._add_lines(peer.new_lines())

    def _add_lines(self, rows: list[str]) -> None:
        for row in rows[-SEEN_FRAMES:]:
            app, tab, frame_id = row.partition("\t")
            if tab:
                self._keep((app, frame_id))

    def _keep(self, key: tuple[str, str]) -> None:
        self._ids[key] = None
        if len(self._ids) > SEEN_FRAMES:
            self._ids.popitem(last=False)


def _name(worker: int) -> str:
    return PREFIX if worker == 0 else f"{PREFIX}.{worker}"


def _is_ours(name: str) -> bool:
    rest = name[len(PREFIX) :]
    return rest == "" or (rest[:1] == "." and rest[1:].isdecimal())


def _lines_of(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
