"""S3-compatible storage, shared by the slug store and the log archive.

URLs are `s3://BUCKET[/PREFIX]`. The endpoint is GUN_S3_ENDPOINT_URL when set (MinIO, Ceph,
...); credentials and region come from the usual AWS_* environment, the region defaulting to
us-east-1. boto3 is imported only when a client is made: agents import modules that use this
one and must not pay for it.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote, urlsplit

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")


def parse_url(url: str) -> tuple[str, str] | None:
    """(bucket, prefix) of an `s3://BUCKET[/PREFIX]` URL; None if it is not one."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not _BUCKET.match(parts.netloc) or parts.query or parts.fragment:
        return None
    return parts.netloc, unquote(parts.path)


def prefix_of(prefix: str) -> str:
    """A key prefix as stored: no leading slash, one trailing slash, or empty."""
    return f"{prefix.strip('/')}/" if prefix.strip("/") else ""


def client() -> Any:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=os.environ.get("GUN_S3_ENDPOINT_URL") or None,
        region_name=session.region_name or "us-east-1",
        config=Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3}),
    )


def is_missing(e: Exception) -> bool:
    """Whether a botocore ClientError says the object is not there."""
    code = getattr(e, "response", {}).get("Error", {}).get("Code")
    return code in ("404", "NoSuchKey")
