"""A build's `source_blob.url`: which URLs meta fetches, how, and how the tarball becomes the
source gun's builds take (a gzipped tar of `./app`).

Three kinds of URL, each refused with one sentence naming `source_blob.url`:
- meta's own sources (`POST /sources`, api/heroku/sources.py): read from meta's disk;
- `file:///PATH`: only when GUN_HEROKU_SOURCE_DIR is set, and only a regular file under it
  (symbolic links are followed, then the file opened must still be under it);
- `http(s)://HOST[:PORT]/...`: only when HOST (or HOST:PORT) is in GUN_HEROKU_SOURCE_HOSTS.
  Every address HOST resolves to must be an ordinary one: a loopback, link-local, unspecified
  or multicast address is refused unless the URL names that address itself and the list holds
  it (`127.0.0.1:8000`). The connection goes to the address that was checked (no second
  lookup to rebind), without proxies, without following redirects, with timeouts.

Whatever the kind, at most GUN_SLUG_MAX_BYTES are read (more refuses the build), and a
`checksum` (`SHA256:HEX`) is checked against what was read.

Heroku's tarballs hold the app at their top, or inside one top directory (GitHub's archives);
`reroot` rewrites either into `./app/...`. The build unpacks that with the slug checks
(build/slug.py), so nothing here needs to trust a member's name.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import ipaddress
import lzma
import os
import re
import socket
import tarfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

import httpx

from gun.errors import InvalidParams, UsageError
from gun.settings import SlugLimits

FIELD = "source_blob.url"
CONNECT_TIMEOUT = 10.0  # seconds to connect
READ_TIMEOUT = 30.0  # seconds without a byte
FETCH_DEADLINE = 600.0  # seconds for the whole download
_CHUNK = 1024 * 1024
_CHECKSUM = re.compile(r"SHA256:([0-9a-fA-F]{64})\Z")


@dataclass(frozen=True)
class SourceRules:
    """What `source_blob.url` may name beyond meta's own sources (both off by default)."""

    file_dir: Path | None = None  # GUN_HEROKU_SOURCE_DIR: file:// URLs under it
    hosts: frozenset[str] = frozenset()  # GUN_HEROKU_SOURCE_HOSTS: HOST or HOST:PORT, comma-sep

    @classmethod
    def resolve(cls) -> SourceRules:
        raw_dir = os.environ.get("GUN_HEROKU_SOURCE_DIR") or None
        file_dir = None
        if raw_dir is not None:
            path = Path(raw_dir)
            if not path.is_absolute() or not path.is_dir():
                raise UsageError(f"GUN_HEROKU_SOURCE_DIR={raw_dir} is not an absolute directory")
            file_dir = path.resolve()
        hosts = set()
        for entry in (os.environ.get("GUN_HEROKU_SOURCE_HOSTS") or "").split(","):
            entry = entry.strip().lower()
            if entry:
                parts = urlsplit(f"//{entry}")
                try:
                    ok = bool(parts.hostname) and not parts.path and parts.username is None
                    _ = parts.port
                except ValueError:
                    ok = False
                if not ok:
                    raise UsageError(
                        f"GUN_HEROKU_SOURCE_HOSTS entry {entry!r} is not HOST or HOST:PORT"
                    )
                hosts.add(entry)
        return cls(file_dir, frozenset(hosts))


def refused(why: str) -> InvalidParams:
    return InvalidParams(f"{FIELD}: {why}")


def parse_checksum(checksum: str | None) -> str | None:
    """`SHA256:HEX` -> the hex digest, lowercase (None: none given)."""
    if checksum is None:
        return None
    m = _CHECKSUM.match(checksum.strip())
    if m is None:
        raise InvalidParams("source_blob.checksum: give it as SHA256: and 64 hex digits")
    return m.group(1).lower()


class Capped:
    """Writes to `out`, hashing and counting, refusing past `limit` bytes."""

    def __init__(self, out: IO[bytes], limit: int) -> None:
        self.out, self.limit = out, limit
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise too_big(self.limit)
        self.digest.update(chunk)
        self.out.write(chunk)

    def check(self, expected: str | None) -> None:
        got = self.digest.hexdigest()
        if expected is not None and not hmac.compare_digest(got, expected):
            raise InvalidParams(
                f"source_blob.checksum: the source has SHA256:{got}, not SHA256:{expected}"
            )
        if self.size == 0:
            raise refused("the source it names is empty")


def too_big(limit: int) -> InvalidParams:
    return refused(f"the source is over the limit of {limit} bytes set by GUN_SLUG_MAX_BYTES")


def copy_file(url: str, rules: SourceRules, out: Capped) -> None:
    """A `file://` URL's file, if GUN_HEROKU_SOURCE_DIR allows it."""
    parts = urlsplit(url)
    if rules.file_dir is None:
        raise refused("file:// URLs are off on this meta (GUN_HEROKU_SOURCE_DIR is not set)")
    if parts.netloc not in ("", "localhost"):
        raise refused("a file:// URL names no host: write file:///PATH")
    path = Path(unquote(parts.path))
    if "\x00" in str(path) or not path.is_absolute():
        raise refused("a file:// URL needs an absolute path")
    outside = refused(f"{path} is not a file under GUN_HEROKU_SOURCE_DIR ({rules.file_dir})")
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise outside from None
    if not real.is_relative_to(rules.file_dir):
        raise outside
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        raise outside from None
    with os.fdopen(fd, "rb") as f:
        # what was opened, wherever a link swapped meanwhile would have led
        opened = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if not opened.is_relative_to(rules.file_dir) or not os.path.isfile(f"/proc/self/fd/{fd}"):
            raise outside
        while chunk := f.read(_CHUNK):
            out.write(chunk)


def address_of(host: str, port: int, rules: SourceRules, listed: str) -> str:
    """The address to connect to for HOST, checked (see the module's docstring)."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise refused(f"host {host} does not resolve") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for a in addresses:
        special = a.is_loopback or a.is_link_local or a.is_unspecified or a.is_multicast
        if special and (literal is None or a != literal or listed not in rules.hosts):
            raise refused(
                f"{host} is at {a}, a loopback or link-local address: list the address "
                "itself in GUN_HEROKU_SOURCE_HOSTS to allow it"
            )
    return str(addresses[0])


def download(url: str, rules: SourceRules, out: Capped) -> None:
    """An http(s) URL on GUN_HEROKU_SOURCE_HOSTS."""
    parts = urlsplit(url)
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise refused("its port is not a number from 1 to 65535") from None
    if not host:
        raise refused("an http(s) URL needs a host")
    shown = f"[{host}]" if ":" in host else host
    named = (shown, f"{shown}:{port}")
    if not rules.hosts:
        raise refused("http(s) URLs are off on this meta (GUN_HEROKU_SOURCE_HOSTS is empty)")
    listed = next((n for n in named if n in rules.hosts), None)
    if listed is None:
        raise refused(f"host {shown}:{port} is not in GUN_HEROKU_SOURCE_HOSTS")
    address = address_of(host, port, rules, listed)
    netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    target = parts._replace(netloc=netloc).geturl()
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    deadline = time.monotonic() + FETCH_DEADLINE
    try:
        with (
            httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client,
            client.stream(
                "GET",
                target,
                headers={"Host": parts.netloc.rpartition("@")[2]},
                extensions={"sni_hostname": host},
            ) as r,
        ):
            if r.status_code != 200:
                raise refused(f"{shown}:{port} answered {r.status_code}, not 200")
            declared = r.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > out.limit:
                raise too_big(out.limit)
            for chunk in r.iter_bytes(_CHUNK):
                out.write(chunk)
                if time.monotonic() > deadline:
                    raise refused(f"the download took over {FETCH_DEADLINE:g} seconds")
    except httpx.HTTPError as e:
        raise refused(f"fetching it from {shown}:{port} failed ({type(e).__name__})") from None


def reroot(src: Path, dest: Path, limits: SlugLimits) -> None:
    """Rewrite Heroku's source tarball at `src` (the app at its top, or in its one top
    directory) as gun's: a gzipped tar of `./app/...`, at `dest`."""
    try:
        _reroot(src, dest, limits)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError):
        raise refused("what it names is not a whole tarball (tar or tar.gz)") from None


def _reroot(src: Path, dest: Path, limits: SlugLimits) -> None:
    names = _names(src, limits)
    tops = {n.split("/", 1)[0] for n in names if n}
    strip = ""
    if len(tops) == 1:
        (top,) = tops
        if any(n.startswith(f"{top}/") for n in names):  # a directory, not one file
            strip = top
    total = 0
    with _open(src) as tar, tarfile.open(dest, "w:gz", format=tarfile.PAX_FORMAT) as out:
        for member in tar:
            name = _rename(_plain(member.name), strip)
            if member.islnk():
                member.linkname = _rename(_plain(member.linkname), strip)
            member.name = name
            data = None
            if member.isfile():
                total += member.size
                if total > limits.max_unpacked_bytes:
                    raise refused(
                        f"the source unpacks to over {limits.max_unpacked_bytes} bytes, "
                        "the cap set by GUN_SLUG_MAX_UNPACKED_BYTES"
                    )
                data = tar.extractfile(member)
            out.addfile(member, data)


def _names(src: Path, limits: SlugLimits) -> list[str]:
    names = []
    with _open(src) as tar:
        for count, member in enumerate(tar, start=1):
            if count > limits.max_members:
                raise refused(
                    f"the source holds over {limits.max_members} members, the cap set by "
                    "GUN_SLUG_MAX_MEMBERS"
                )
            name = _plain(member.name)
            if name.startswith("/") or ".." in name.split("/"):
                raise refused(f"the source's member {member.name!r} leaves its directory")
            names.append(name)
    return names


def _open(src: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(src, "r:*")
    except tarfile.ReadError:
        raise refused("what it names is not a tarball (tar or tar.gz)") from None


def _plain(name: str) -> str:
    """A member's name without `./` prefixes or a trailing `/`."""
    while name.startswith("./"):
        name = name[2:]
    return "" if name == "." else name.rstrip("/")


def _rename(name: str, strip: str) -> str:
    if strip:
        name = "" if name == strip else name.removeprefix(f"{strip}/")
    return f"app/{name}" if name else "app"
