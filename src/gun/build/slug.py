"""Slugs: pack an app directory into a deterministic gzipped tar of ./app, and unpack one safely.

Unpacking trusts nothing: it checks the sha256, then reads every member header and refuses the
whole slug if any member could land outside the app root (REFERENCE.md §7), and only then
extracts, with tarfile's "data" filter as a second guard, into a temporary directory that is
renamed into place. A refused slug leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gun import atomic
from gun.errors import InvalidParams
from gun.settings import SlugLimits

ROOT = "app"
MAX_BYTES = SlugLimits.max_unpacked_bytes  # GUN_SLUG_MAX_UNPACKED_BYTES: 1 GiB
MAX_MEMBERS = SlugLimits.max_members  # GUN_SLUG_MAX_MEMBERS: 100,000
MAX_NAME_BYTES = 4096
MAX_COMPONENT_BYTES = 255
MAX_SYMLINK_HOPS = 40  # Linux's limit on links followed in one lookup
SKIPPED = ".git"
# Tar headers, long-name and pax records and padding around each member, beyond its data.
_HEADER_ALLOWANCE = 12 * 1024
_CHUNK = 1024 * 1024
_HEX = frozenset("0123456789abcdef")
_SPECIAL_FILES = {
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}
_SPECIAL = {
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "FIFO",
}

Parts = tuple[str, ...]
_Signature = tuple[str, bytes, int, str]


class SlugError(InvalidParams):
    """A directory that cannot be packed or a slug that must not be unpacked."""


@dataclass(frozen=True)
class Slug:
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class _Entry:
    """One path of the tree a slug holds, relative to the app root (`()` is the root itself)."""

    parts: Parts
    kind: str  # "dir", "file" or "symlink"
    shown: str  # how messages name it
    linkname: str = ""


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# -- packing ---------------------------------------------------------------------------------


def pack(src: Path, dest: Path) -> Slug:
    """Write `src`'s contents as `./app/...` to the gzipped tar `dest`, byte-for-byte repeatable.

    Members are sorted, owners zeroed, mtimes kept to the second, `.git` skipped at any depth.
    Only regular files, directories and symlinks that resolve inside `src` are allowed.
    """
    if not src.is_dir():
        raise SlugError(f"cannot pack {str(src)!r}: it is not a directory")
    if dest.resolve().is_relative_to(src.resolve()):
        raise SlugError(f"cannot write the slug {str(dest)!r} inside {str(src)!r}, which it packs")
    found = [(_Entry((), "dir", repr(str(src))), src.stat())]
    _walk(src, (), found)
    _check_tree([entry for entry, _ in found])
    with (
        atomic.writer(dest, mode=0o600) as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for entry, st in found:
            _add(tar, src, entry, st)
    return Slug(dest, sha256_of(dest), dest.stat().st_size)


def _walk(directory: Path, parts: Parts, found: list[tuple[_Entry, os.stat_result]]) -> None:
    with os.scandir(directory) as it:
        children = sorted(it, key=lambda child: child.name)
    for child in children:
        if child.name == SKIPPED:
            continue
        here = (*parts, child.name)
        st = child.stat(follow_symlinks=False)
        shown = repr(child.path)
        if stat.S_ISDIR(st.st_mode):
            found.append((_Entry(here, "dir", shown), st))
            _walk(Path(child.path), here, found)
        elif stat.S_ISREG(st.st_mode):
            found.append((_Entry(here, "file", shown), st))
        elif stat.S_ISLNK(st.st_mode):
            found.append((_Entry(here, "symlink", shown, os.readlink(child.path)), st))
        else:
            kind = _SPECIAL_FILES.get(stat.S_IFMT(st.st_mode), "special file")
            raise SlugError(
                f"cannot pack {child.path!r}: it is a {kind}, and slugs hold only regular files,"
                " directories and symlinks"
            )


def _add(tar: tarfile.TarFile, src: Path, entry: _Entry, st: os.stat_result) -> None:
    info = tarfile.TarInfo("/".join((".", ROOT, *entry.parts)))
    info.mtime = int(st.st_mtime)
    info.mode = stat.S_IMODE(st.st_mode) & 0o777
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.linkname
        tar.addfile(info)
    else:
        info.size = st.st_size
        fd = os.open(src.joinpath(*entry.parts), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            tar.addfile(info, f)


# -- unpacking -------------------------------------------------------------------------------


def unpack(
    tarball: Path,
    dest: Path,
    expected_sha256: str,
    *,
    max_bytes: int = MAX_BYTES,
    max_members: int = MAX_MEMBERS,
) -> None:
    """Unpack the slug's `./app` into the new directory `dest`, or refuse and write nothing.

    `dest`'s parent is created if missing (once the slug has passed its checks).
    `max_bytes` caps the total size of the files and `max_members` the number of members
    (the settings GUN_SLUG_MAX_UNPACKED_BYTES and GUN_SLUG_MAX_MEMBERS, which refusals name).
    A write that fails (a full disk) raises OSError naming `dest`, and leaves nothing.
    """
    expected = expected_sha256.lower()
    if len(expected) != 64 or not _HEX.issuperset(expected):
        raise SlugError(f"expected sha256 {expected_sha256!r} is not 64 hex digits")
    if os.path.lexists(dest):
        raise SlugError(f"cannot unpack into {str(dest)!r}: it already exists")
    got = sha256_of(tarball)
    if got != expected:
        raise SlugError(
            f"slug {tarball.name!r} has sha256 {got}, expected {expected}; refusing to unpack it"
        )
    plan = _scan(tarball, max_bytes, max_members)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".unpack", dir=dest.parent))
    try:
        _extract(tarball, tmp, plan, max_bytes, max_members)
        os.rename(tmp / ROOT, dest)
    except OSError as e:
        if e.filename is None:
            e.filename = str(dest)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _scan(tarball: Path, max_bytes: int, max_members: int) -> list[_Signature]:
    """Check every member header before anything is written; return what extraction must see."""
    entries: list[_Entry] = []
    plan: list[_Signature] = []
    total = 0
    with _reading(tarball, max_bytes, max_members) as tar:
        for count, member in enumerate(tar, start=1):
            shown = f"slug member {member.name!r}"
            if count > max_members:
                raise SlugError(
                    f"{shown} is past the cap of {max_members} members set by "
                    "GUN_SLUG_MAX_MEMBERS: raise it, or ship fewer files"
                )
            parts = _parts(member.name, shown)
            kind = _kind(member, shown)
            if kind == "file":
                total += member.size
                if total > max_bytes:
                    raise SlugError(
                        f"{shown} takes the slug past {max_bytes} bytes unpacked, the cap set "
                        "by GUN_SLUG_MAX_UNPACKED_BYTES: raise it, or make the app smaller"
                    )
            entries.append(_Entry(parts, kind, shown, member.linkname))
            plan.append(_signature(member))
    if not entries:
        raise SlugError(f"slug {tarball.name!r} is empty: it has no ./app directory")
    _check_tree(entries)
    return plan


def _extract(
    tarball: Path, into: Path, plan: list[_Signature], max_bytes: int, max_members: int
) -> None:
    changed = SlugError(f"slug {tarball.name!r} changed while it was being unpacked")
    expected = iter(plan)

    def only_planned(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        if next(expected, None) != _signature(member):
            raise changed
        return tarfile.data_filter(member, path)

    with _reading(tarball, max_bytes, max_members) as tar:
        tar.extractall(into, filter=only_planned)
    if next(expected, None) is not None:
        raise changed


def _signature(member: tarfile.TarInfo) -> _Signature:
    return (member.name, member.type, member.size, member.linkname)


def _parts(name: str, shown: str) -> Parts:
    """The member's path below the app root, refusing anything but a plain `./app/...` path."""
    if "\x00" in name:
        raise SlugError(f"{shown} has a NUL byte in its name")
    if name.startswith("/"):
        raise SlugError(f"{shown} is an absolute path")
    parts = name.split("/")
    if parts[0] == "." and len(parts) > 1:
        parts = parts[1:]
    if ".." in parts:
        raise SlugError(f"{shown} has a '..' component")
    if parts[0] != ROOT:
        raise SlugError(f"{shown} is not under ./{ROOT}")
    if "" in parts or "." in parts:
        raise SlugError(f"{shown} has an empty or '.' component")
    try:
        encoded = [os.fsencode(part) for part in parts]
    except UnicodeEncodeError:
        raise SlugError(f"{shown} is not a valid file name") from None
    if sum(len(part) + 1 for part in encoded) > MAX_NAME_BYTES:
        raise SlugError(f"{shown} is longer than {MAX_NAME_BYTES} bytes")
    if any(len(part) > MAX_COMPONENT_BYTES for part in encoded):
        raise SlugError(f"{shown} has a component longer than {MAX_COMPONENT_BYTES} bytes")
    return tuple(parts[1:])


def _kind(member: tarfile.TarInfo, shown: str) -> str:
    if member.isdir():
        return "dir"
    if member.isreg():
        return "file"
    if member.issym():
        if not member.linkname or "\x00" in member.linkname:
            raise SlugError(f"{shown} is a symlink with an empty or NUL-bearing target")
        return "symlink"
    if member.islnk():
        raise SlugError(f"{shown} is a hard link, which slugs may not contain")
    what = _SPECIAL.get(member.type, f"member of unknown type {member.type!r}")
    raise SlugError(
        f"{shown} is a {what}, and slugs hold only regular files, directories and symlinks"
    )


@contextlib.contextmanager
def _reading(tarball: Path, max_bytes: int, max_members: int) -> Iterator[tarfile.TarFile]:
    """The slug as a tar stream, its tar data capped, its format errors made SlugErrors.

    Once the caller has read every member, the rest of the stream is read too, so the gzip
    checksum is verified and a tar cut short (which tarfile takes for its end) is refused.
    """
    name = repr(tarball.name)
    limit = max_bytes + _HEADER_ALLOWANCE * (max_members + 2)
    try:
        with gzip.open(tarball, "rb") as gz:
            stream = _Capped(gz, limit, name)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                tar.errorlevel = 2
                yield tar
                end = tar.offset
            while stream.read(_CHUNK):
                pass
            if stream.last_nonzero >= end or stream.count < end + tarfile.BLOCKSIZE:
                raise SlugError(f"slug {name} is truncated or has data after its last member")
    except (gzip.BadGzipFile, zlib.error) as e:
        raise SlugError(f"slug {name} is not a valid gzip file ({e})") from None
    except EOFError:
        raise SlugError(f"slug {name} is truncated: its gzip stream ends early") from None
    except tarfile.FilterError as e:
        raise SlugError(f"slug member {e.tarinfo.name!r} was refused by tarfile ({e})") from None
    except tarfile.TarError as e:
        raise SlugError(f"slug {name} is not a valid tar archive ({e})") from None


class _Capped:
    """A read-only stream that refuses to yield over `limit` bytes: a decompression bomb guard.

    It also notes where its last non-zero byte was, to tell a tar's zero padding from data.
    """

    def __init__(self, inner: gzip.GzipFile, limit: int, name: str) -> None:
        self._inner = inner
        self._limit = limit
        self._name = name
        self.count = 0
        self.last_nonzero = -1

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size if 0 <= size <= _CHUNK else _CHUNK)
        if self.count + len(data) > self._limit:
            raise SlugError(
                f"slug {self._name} holds more than {self._limit} bytes of tar data,"
                " so it is corrupt or a decompression bomb"
            )
        nonzero = len(data.rstrip(b"\0"))
        if nonzero:
            self.last_nonzero = self.count + nonzero - 1
        self.count += len(data)
        return data

    def write(self, b: bytes, /) -> int:
        raise io.UnsupportedOperation("a slug is read-only here")

    def tell(self) -> int:
        return self.count

    def seek(self, pos: int, /) -> int:
        raise io.UnsupportedOperation("a slug is read as a stream")

    def close(self) -> None:
        self._inner.close()


# -- the tree a slug holds, checked the same way when packing and unpacking -----------------


def _check_tree(entries: Sequence[_Entry]) -> None:
    """Refuse duplicates, paths under a non-directory, and symlinks that leave the app root."""
    tree: dict[Parts, _Entry] = {}
    for entry in entries:
        if entry.parts in tree:
            raise SlugError(f"{entry.shown} appears twice")
        tree[entry.parts] = entry
    root = tree.get(())
    if root is not None and root.kind != "dir":
        raise SlugError(f"{root.shown} must be a directory, not a {root.kind}")
    for entry in entries:
        for depth in range(len(entry.parts)):
            above = tree.get(entry.parts[:depth])
            if above is not None and above.kind != "dir":
                raise SlugError(
                    f"{entry.shown} is under {above.shown}, a {above.kind}, not a directory"
                )
    links = {entry.parts: entry.linkname for entry in entries if entry.kind == "symlink"}
    for entry in entries:
        if entry.kind == "symlink":
            why = _leaves_root(links, entry.parts, entry.linkname)
            if why:
                raise SlugError(f"{entry.shown} is a symlink to {entry.linkname!r}, {why}")


class _Leaves(Exception):
    pass


def _leaves_root(links: Mapping[Parts, str], where: Parts, target: str) -> str:
    """Why the symlink at `where` leaves the app root, or "" if it stays inside.

    Resolves as the kernel would, following the slug's own symlinks, but counts any step above
    the root as leaving it, even if a later step would come back.
    """
    hops = 0

    def resolve(base: Parts, target: str) -> Parts:
        nonlocal hops
        if target.startswith("/"):
            raise _Leaves("which is outside the app")
        stack = list(base)
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not stack:
                    raise _Leaves("which is outside the app")
                stack.pop()
                continue
            stack.append(part)
            link = links.get(tuple(stack))
            if link is not None:
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise _Leaves(f"which follows more than {MAX_SYMLINK_HOPS} links (a loop?)")
                stack = list(resolve(tuple(stack[:-1]), link))
        return tuple(stack)

    try:
        resolve(where[:-1], target)
    except _Leaves as e:
        return str(e)
    return ""
