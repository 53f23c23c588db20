"""Slug stores keep built slugs by app and sha256; a local directory is the default store."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from gun.build.slug import SlugError
from gun.errors import InvalidParams, NotFound
from gun.model import check_app_name

_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_SUFFIX = ".tar.gz"
_CHUNK = 1024 * 1024


class SlugStore(Protocol):
    """Where slugs live. Keys are `APP/SHA256.tar.gz`; a stored slug never changes."""

    def put(self, app: str, path: Path, sha256: str) -> str:
        """Store the slug file at `path`, checking it has `sha256`, and return its key."""
        ...

    def open(self, key: str) -> BinaryIO:
        """The stored slug's bytes; raises NotFound if there is no such slug."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the slug; removing one that is not there is not an error."""
        ...


def slug_key(app: str, sha256: str) -> str:
    """The key of app's slug with this sha256, after checking both."""
    check_app_name(app)
    if not _SHA256.match(sha256):
        raise SlugError(f"slug sha256 {sha256!r} is not 64 lowercase hex digits")
    return f"{app}/{sha256}{_SUFFIX}"


def parse_key(key: str) -> tuple[str, str]:
    """The app and sha256 a key names; refuses anything `slug_key` would not have made."""
    app, slash, file = key.partition("/")
    sha256 = file.removesuffix(_SUFFIX)
    if not slash or not file.endswith(_SUFFIX) or not _SHA256.match(sha256):
        raise InvalidParams(f"slug key {key!r} is not of the form APP/SHA256{_SUFFIX}")
    slug_key(app, sha256)
    return app, sha256


class LocalSlugStore:
    """Slugs as files `ROOT/APP/SHA256.tar.gz`, each written whole or not at all."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        app, sha256 = parse_key(key)
        return self.root / app / f"{sha256}{_SUFFIX}"

    def put(self, app: str, path: Path, sha256: str) -> str:
        key = slug_key(app, sha256)
        final = self.path(key)
        if final.exists():
            return key
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{sha256}.", suffix=".tmp", dir=final.parent)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise SlugError(
                    f"slug {path.name!r} has sha256 {digest.hexdigest()}, expected {sha256};"
                    " it was not stored"
                )
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(final.parent)
        return key

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.path(key), "rb")
        except FileNotFoundError:
            raise NotFound(f"slug {key!r} is not in the slug store") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
