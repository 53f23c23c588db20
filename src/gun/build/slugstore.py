"""Slug stores keep built slugs by app and sha256: a local directory (default) or an S3 bucket."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast
from urllib.parse import unquote, urlsplit

from gun import atomic, s3
from gun.build.slug import SlugError, sha256_of
from gun.errors import InvalidParams, NotFound, UsageError
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

    def keys(self, app: str) -> list[str]:
        """The keys of every slug stored for `app`, sorted."""
        ...


def slug_key(app: str, sha256: str) -> str:
    """The key of app's slug with this sha256, after checking both."""
    check_app_name(app)
    if not _SHA256.match(sha256):
        raise SlugError(f"slug sha256 {sha256!r} is not 64 lowercase hex digits")
    return f"{app}/{sha256}{_SUFFIX}"


def _is_slug_file(name: str) -> bool:
    return name.endswith(_SUFFIX) and bool(_SHA256.match(name.removesuffix(_SUFFIX)))


def _wrong_sha256(path: Path, got: str, expected: str) -> SlugError:
    return SlugError(f"slug {path.name!r} has sha256 {got}, expected {expected}; it was not stored")


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
        digest = hashlib.sha256()
        with atomic.writer(final, mode=0o600) as out, open(path, "rb") as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != sha256:  # nothing is stored
                raise _wrong_sha256(path, digest.hexdigest(), sha256)
        atomic.fsync_dir(final.parent)
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

    def keys(self, app: str) -> list[str]:
        try:
            names = os.listdir(self.root / check_app_name(app))
        except FileNotFoundError:
            return []
        return sorted(f"{app}/{name}" for name in names if _is_slug_file(name))


class S3SlugStore:
    """Slugs as objects `PREFIX/APP/SHA256.tar.gz` in an S3-compatible bucket.

    `client` is a boto3 S3 client; uploads appear whole or not at all, as S3 objects do.
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: Any) -> None:
        self.bucket = bucket
        self.prefix = s3.prefix_of(prefix)
        self.client = client

    def object_key(self, key: str) -> str:
        parse_key(key)
        return self.prefix + key

    def put(self, app: str, path: Path, sha256: str) -> str:
        key = slug_key(app, sha256)
        if self.exists(key):
            return key
        got = sha256_of(path)
        if got != sha256:
            raise _wrong_sha256(path, got, sha256)
        self.client.upload_file(str(path), self.bucket, self.object_key(key))
        return key

    def open(self, key: str) -> BinaryIO:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except self.client.exceptions.NoSuchKey:
            raise NotFound(f"slug {key!r} is not in the slug store") from None
        return cast(BinaryIO, response["Body"])

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except self.client.exceptions.ClientError as e:
            if s3.is_missing(e):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def keys(self, app: str) -> list[str]:
        under = f"{self.prefix}{check_app_name(app)}/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=under
        )
        names = [o["Key"].removeprefix(under) for page in pages for o in page.get("Contents", [])]
        return sorted(f"{app}/{name}" for name in names if _is_slug_file(name))


def slug_store_from_url(url: str, home: Path) -> SlugStore:
    """The store GUN_SLUG_STORE names: empty for HOME/slugs, file:///DIR, or s3://BUCKET/PREFIX
    (see gun.s3 for the endpoint and credentials)."""
    if not url:
        return LocalSlugStore(home / "slugs")
    parts = urlsplit(url)
    plain = not (parts.query or parts.fragment)
    if parts.scheme == "file" and not parts.netloc and parts.path.startswith("/") and plain:
        return LocalSlugStore(Path(unquote(parts.path)))
    bucket = s3.parse_url(url)
    if bucket is not None:
        return S3SlugStore(*bucket, client=s3.client())
    raise UsageError(
        f"slug store {url!r} is not a URL gun accepts: use file:///ABSOLUTE/DIR or"
        " s3://BUCKET[/PREFIX], or leave GUN_SLUG_STORE empty for GUN_HOME/slugs"
    )
