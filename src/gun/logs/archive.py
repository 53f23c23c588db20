"""The log archive: every app's lines kept per hour in gzip files, read back newest first.

Layout: `ROOT/APP/YYYY-MM-DD/HH.log.gz`, the hour of each line's own time in UTC. A file holds
one text line per log line, as `filters.format_line` writes it, so `zcat` shows a readable log.

Writes. Each `append` compresses what it got for one hour into one gzip member and adds it to
that hour's file with a single `write` on a file opened O_APPEND (a file of several members is
a valid gzip file). Nothing already in a file is ever rewritten, so a crash mid-append can
leave at most that append's member incomplete; readers skip a damaged member and go on at the
next whole one. One lock per app keeps appends from this process whole even when the kernel
writes short; several processes appending to one archive interleave whole members. There is no
fsync per append (it would cost milliseconds): a crash of the machine, not just the process,
can lose what the kernel had not yet written out.

Reads. `read` walks the hour files newest first, from the hour `until` is in (default: the
newest), stopping at `since` (default: the retention) or once an hour has brought the matches
to n; lines of one hour are in arrival order, so the matches are sorted by time (ties keep
arrival order) and the newest n returned, oldest first.

`prune` deletes hour files wholly older than the retention, then empty directories
(`prune_local` on this disk, `prune_remote` in the remote archive; `prune` both).

Cap (optional, GUN_LOG_ARCHIVE_MAX_MB). `cap` deletes each app's oldest hours on this disk
while that app's files here add up to more than `max_bytes`, and says which. The hour now going
on (and any later one) is never deleted, so an app can go over its cap by what it logs in one
hour. The remote archive is not capped here (a bucket's own lifecycle rules do that).

Sharing (optional, GUN_LOG_ARCHIVE_S3). With a remote archive, `ship` sends every hour that
ended SHIP_AFTER ago to it and deletes it here: it first renames `HH.log.gz` to a name of its
own, `HH.ID.log.gz` (appends then start a new `HH.log.gz`), uploads that file under its
relative path and unlinks it. A crash in between leaves the renamed file, uploaded again (to
the same name) next time: nothing is lost or stored twice. A late line for a shipped hour
lands in a new `HH.log.gz`, shipped later as one more object of that hour. `read` merges each
hour's local files and remote objects; `prune` deletes both.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from isal import isal_zlib  # type: ignore[import-untyped]

from gun import isolation
from gun.errors import UsageError
from gun.logs.filters import KEY_WIDTH, Filter, format_line, stamp
from gun.logs.model import Line
from gun.logs.remote import RemoteArchive
from gun.model import APP_NAME, check_app_name

DAY = 86400
HOUR = 3600
SUFFIX = ".log.gz"
# Members are compressed by ISA-L (python-isal) at its level 1: on bench/mixes.py's production
# mix 0.5 us a line and 3.8x smaller than the text, where zlib took 1.7 us at level 1 (3.7x)
# and 3.4 us at level 6 (4.4x), a third of the drain's whole budget. The output is plain gzip.
LEVEL = 1
SHIP_AFTER = 600.0  # seconds after an hour ends before it goes to the remote archive

_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_HOUR = re.compile(r"^([01][0-9]|2[0-3])(\.[0-9a-f]{8})?\.log\.gz\Z")  # open, or sealed
# How each member we write starts: magic, deflate, no flags, mtime 0.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00"
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Capped:
    """What `cap` deleted of one app: its hours (`YYYY-MM-DDTHH`, UTC, oldest first)."""

    app: str
    held: int  # bytes the app's hours here added up to
    freed: int  # bytes deleted
    hours: list[str]


class Archive:
    """Log lines of every app under `root`, kept `retention_days` days and, if `max_bytes`
    is set, at most about that many bytes per app on this disk."""

    def __init__(
        self,
        root: Path,
        retention_days: int = 30,
        remote: RemoteArchive | None = None,
        max_bytes: int | None = None,
    ) -> None:
        if isinstance(retention_days, bool) or not isinstance(retention_days, int):
            raise UsageError(f"log retention {retention_days!r} is not a whole number of days")
        if retention_days < 1:
            raise UsageError(f"log retention of {retention_days} days is too short: keep 1 or more")
        self.root = root
        self.retention_days = retention_days
        self.remote = remote
        self.max_bytes = max_bytes
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def append(self, app: str, lines: Sequence[Line]) -> None:
        """Store `lines` of `app`: one gzip member per hour they fall in, each in one write."""
        check_app_name(app)
        hours: dict[str, list[str]] = {}
        for line in lines:
            text = format_line(line)
            hours.setdefault(text[:13], []).append(text)  # YYYY-MM-DDTHH
        if not hours:
            return
        with self._lock(app):
            for hour, texts in hours.items():
                texts.append("")
                data = "\n".join(texts).encode("utf-8", "backslashreplace")
                _append(
                    self._path(app, hour[:10], hour[11:13]), isal_zlib.compress(data, LEVEL, 31)
                )

    def read(self, app: str, flt: Filter, now: float) -> list[str]:
        """The newest `flt.n` stored lines that `flt` matches, oldest first."""
        check_app_name(app)
        cutoff = now - self.retention_days * DAY
        if flt.since is not None:
            cutoff = max(cutoff, flt.since)
        key = stamp(max(cutoff, 0.0))[:KEY_WIDTH]
        until = math.inf if flt.until is None else flt.until
        end = stamp(max(until, 0.0))[:KEY_WIDTH] if flt.until is not None else ""
        found: list[str] = []
        for start, sources in self._hours(app):
            if start + HOUR <= cutoff:
                break
            if start >= until:
                continue  # wholly at or after `until`: not opened
            text = "".join(load() for load in sources)
            if flt.grep is not None and flt.grep not in text:
                continue
            texts = text.split("\n")[:-1]
            if start < cutoff:
                texts = [t for t in texts if t[:KEY_WIDTH] >= key]
            if start + HOUR > until:
                texts = [t for t in texts if t[:KEY_WIDTH] < end]
            narrow = flt.ps is not None or flt.source is not None or flt.grep is not None
            found += filter(flt.matches_text, texts) if narrow else texts
            if len(found) >= flt.n:
                break
        found.sort(key=lambda t: t[:KEY_WIDTH])
        return found[-flt.n :]

    def prune(self, now: float) -> list[Path]:
        """`prune_local`, then `prune_remote`; returns what was deleted."""
        return self.prune_local(now) + self.prune_remote(now)

    def prune_local(self, now: float) -> list[Path]:
        """Delete hour files here wholly older than the retention, then empty day and app
        directories; returns what was deleted. Files and directories it did not make stay."""
        cutoff = now - self.retention_days * DAY
        removed: list[Path] = []
        for app in _names(self.root):
            if not APP_NAME.match(app):
                continue
            with self._lock(app):
                app_dir = self.root / app
                for day in _names(app_dir):
                    day_dir = app_dir / day
                    if not _DAY.match(day) or not day_dir.is_dir():
                        continue
                    for name in _names(day_dir):
                        start = _hour_start(day, name)
                        if start is not None and start + HOUR <= cutoff:
                            _unlink(day_dir / name, removed)
                    _rmdir(day_dir, removed)
                _rmdir(app_dir, removed)
        return removed

    def prune_remote(self, now: float) -> list[Path]:
        """Delete the remote archive's hours wholly older than the retention (it lists the
        whole bucket: the drain does this hourly); returns what was deleted."""
        if self.remote is None:
            return []
        cutoff = now - self.retention_days * DAY
        old = [n for n in self.remote.names("") if _remote_hour(n, cutoff)]
        self.remote.delete(old)
        return [Path(n) for n in old]

    def cap(self, now: float) -> list[Capped]:
        """Delete each app's oldest hours here while its files add up to more than
        `max_bytes`, but not the hour `now` is in nor later ones; returns what went, per app."""
        if self.max_bytes is None:
            return []
        current = now // HOUR * HOUR
        capped = []
        for app in sorted(filter(APP_NAME.match, _names(self.root))):
            hours = self._sizes(app)
            held = total = sum(size for files in hours.values() for _, size in files)
            gone: list[str] = []
            for start in sorted(hours):
                if total <= self.max_bytes or start >= current:
                    break
                with self._lock(app):  # not while an append writes to the file
                    for path, size in hours[start]:
                        path.unlink(missing_ok=True)
                        total -= size
                    _rmdir(path.parent, [])
                gone.append(time.strftime("%Y-%m-%dT%H", time.gmtime(start)))
            if gone:
                capped.append(Capped(app, held, held - total, gone))
        return capped

    def _sizes(self, app: str) -> dict[float, list[tuple[Path, int]]]:
        """The files of each hour of `app` here, with their sizes."""
        hours: dict[float, list[tuple[Path, int]]] = {}
        app_dir = self.root / app
        for day in filter(_DAY.match, _names(app_dir)):
            for name in _names(app_dir / day):
                start = _hour_start(day, name)
                if start is None:
                    continue
                try:
                    size = (app_dir / day / name).stat().st_size
                except FileNotFoundError:
                    continue
                hours.setdefault(start, []).append((app_dir / day / name, size))
        return hours

    def ship(self, now: float, after: float = SHIP_AFTER) -> list[str]:
        """Send every local hour that ended `after` seconds ago to the remote archive, then
        delete it here; returns the names sent. Hours past the retention are left to prune."""
        if self.remote is None:
            return []
        cutoff = now - self.retention_days * DAY
        shipped = []
        for app in sorted(filter(APP_NAME.match, _names(self.root))):
            app_dir = self.root / app
            for day in sorted(filter(_DAY.match, _names(app_dir))):
                for name in sorted(_names(app_dir / day)):
                    start = _hour_start(day, name)
                    if start is None or start + HOUR + after > now or start + HOUR <= cutoff:
                        continue
                    path = self._seal(app, app_dir / day / name)
                    if path is None:
                        continue
                    self.remote.put(f"{app}/{day}/{path.name}", path.read_bytes())
                    path.unlink()
                    shipped.append(f"{app}/{day}/{path.name}")
                with self._lock(app):  # not while an append makes it again
                    _rmdir(app_dir / day, [])
        return shipped

    def _seal(self, app: str, path: Path) -> Path | None:
        """An open hour file renamed to a name of its own, so that appends go elsewhere;
        a sealed one as it is; None if it is gone."""
        if _is_sealed(path.name):
            return path
        sealed = path.with_name(f"{path.name[:2]}.{secrets.token_hex(4)}{SUFFIX}")
        with self._lock(app):
            try:
                os.rename(path, sealed)
            except FileNotFoundError:
                return None
        return sealed

    def _path(self, app: str, day: str, hour: str) -> Path:
        return self.root / app / day / f"{hour}{SUFFIX}"

    def _hours(self, app: str) -> list[tuple[float, list[Callable[[], str]]]]:
        """(start, sources) of each hour of `app`, newest first: a source gives the text of
        one local file or remote object. A file shipped since it was listed is read remotely."""
        hours: dict[float, dict[str, Callable[[], str]]] = {}
        app_dir = self.root / app
        for day in filter(_DAY.match, _names(app_dir)):
            for name in _names(app_dir / day):
                start = _hour_start(day, name)
                if start is not None:
                    hours.setdefault(start, {})[f"{day}/{name}"] = self._local(app, day, name)
        if self.remote is not None:
            for full in self.remote.names(f"{app}/"):
                parts = full.split("/")
                if len(parts) != 3:  # not one of ours
                    continue
                _, day, name = parts
                start = _hour_start(day, name) if _DAY.match(day) else None
                if start is not None:
                    hours.setdefault(start, {}).setdefault(f"{day}/{name}", self._fetch(full))
        return [(start, list(hours[start].values())) for start in sorted(hours, reverse=True)]

    def _local(self, app: str, day: str, name: str) -> Callable[[], str]:
        def load() -> str:
            try:
                return _text((self.root / app / day / name).read_bytes())
            except FileNotFoundError:  # shipped (if sealed) or pruned meanwhile
                shipped = self.remote is not None and _is_sealed(name)
                return self._fetch(f"{app}/{day}/{name}")() if shipped else ""

        return load

    def _fetch(self, name: str) -> Callable[[], str]:
        def load() -> str:
            assert self.remote is not None
            return _text(self.remote.get(name))

        return load

    def _lock(self, app: str) -> threading.Lock:
        lock = self._locks.get(app)
        if lock is None:
            with self._locks_lock:
                lock = self._locks.setdefault(app, threading.Lock())
        return lock


def members(data: bytes) -> Iterator[bytes]:
    """The contents of each whole gzip member in `data`, in order. A damaged member (cut short
    by a crash, or corrupt) is skipped: reading goes on at the next member header after it."""
    view = memoryview(data)
    pos, size = 0, 1024
    while pos < len(data):
        d = zlib.decompressobj(wbits=31)
        parts: list[bytes] = []
        at = pos
        try:
            while not d.eof and at < len(data):
                parts.append(d.decompress(view[at : at + size]))
                at += size
                size *= 2
        except zlib.error:
            pass
        if d.eof:
            yield b"".join(parts)
            end = min(at, len(data)) - len(d.unused_data)
            size = max(1024, 2 * (end - pos))  # members of one file are much alike in size
            pos = end
        else:
            pos = data.find(_HEADER, pos + 1)
            if pos < 0:
                return


def _text(data: bytes) -> str:
    """The text of an hour file's bytes, its lines each ending in LF."""
    return b"".join(members(data)).decode("utf-8", "replace")


def _is_sealed(name: str) -> bool:
    m = _HOUR.match(name)
    return bool(m and m[2])


def _remote_hour(name: str, cutoff: float) -> bool:
    """Whether a remote name `APP/DAY/HH[.ID].log.gz` is an hour wholly older than cutoff."""
    parts = name.split("/")
    if len(parts) != 3 or not APP_NAME.match(parts[0]) or not _DAY.match(parts[1]):
        return False
    start = _hour_start(parts[1], parts[2])
    return start is not None and start + HOUR <= cutoff


def _append(path: Path, member: bytes) -> None:
    try:
        fd = os.open(path, _FLAGS, isolation.PRIVATE_FILE)
    except FileNotFoundError:
        isolation.make_dir(path.parent, isolation.PRIVATE_DIR)
        fd = os.open(path, _FLAGS, isolation.PRIVATE_FILE)
    try:
        view = memoryview(member)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _hour_start(day: str, name: str) -> float | None:
    """The epoch second an hour file `DAY/HH.log.gz` starts at; None if it is not one."""
    m = _HOUR.match(name)
    try:
        return datetime.fromisoformat(f"{day}T{m[1]}:00:00+00:00").timestamp() if m else None
    except ValueError:
        return None


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _unlink(path: Path, removed: list[Path]) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    removed.append(path)


def _rmdir(path: Path, removed: list[Path]) -> None:
    try:
        path.rmdir()
    except OSError:  # not empty, gone, or not a directory
        return
    removed.append(path)
