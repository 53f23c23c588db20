"""Where finished archive hours go when the archive is shared: an S3-compatible bucket.

Names are the archive's own relative paths, `APP/YYYY-MM-DD/HH.ID.log.gz`, under the URL's
prefix. An object is written once, whole (as S3 objects are), and never changed: a late line for
an hour already shipped goes out later as another object of that hour.
"""

from __future__ import annotations

from typing import Any, Protocol

from gun import s3
from gun.errors import Unavailable, UsageError


class RemoteArchive(Protocol):
    def put(self, name: str, data: bytes) -> None: ...

    def get(self, name: str) -> bytes:
        """The object's bytes; b"" if it is gone (pruned meanwhile)."""
        ...

    def names(self, under: str) -> list[str]:
        """Every stored name that starts with `under`."""
        ...

    def delete(self, names: list[str]) -> None: ...


class S3Archive:
    def __init__(self, bucket: str, prefix: str = "", *, client: Any) -> None:
        self.bucket = bucket
        self.prefix = s3.prefix_of(prefix)
        self.client = client

    def put(self, name: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + name, Body=data, ContentType="application/gzip"
        )

    def get(self, name: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
            data: bytes = response["Body"].read()
        except Exception as e:
            if s3.is_missing(e):
                return b""
            raise self._unreachable(e) from None
        return data

    def names(self, under: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + under
        )
        n = len(self.prefix)
        try:
            return [o["Key"][n:] for page in pages for o in page.get("Contents", [])]
        except Exception as e:
            raise self._unreachable(e) from None

    def _unreachable(self, e: Exception) -> Unavailable:
        return Unavailable(f"the log archive's bucket {self.bucket!r} did not answer: {e}")

    def delete(self, names: list[str]) -> None:
        for at in range(0, len(names), 1000):  # DeleteObjects takes at most 1,000 keys
            objects = [{"Key": self.prefix + name} for name in names[at : at + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})


def remote_archive_from_url(url: str) -> RemoteArchive | None:
    """The bucket GUN_LOG_ARCHIVE_S3 names (s3://BUCKET[/PREFIX]); None when it is empty."""
    if not url:
        return None
    bucket = s3.parse_url(url)
    if bucket is None:
        raise UsageError(
            f"GUN_LOG_ARCHIVE_S3={url!r} is not a URL gun accepts: use s3://BUCKET[/PREFIX],"
            " or leave it empty to keep archives only in GUN_LOG_ARCHIVE"
        )
    return S3Archive(*bucket, client=s3.client())
