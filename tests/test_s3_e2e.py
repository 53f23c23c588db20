"""`gun up` with its slugs and log archives in an S3 bucket: a deploy stores the slug there,
agents run it, and `gun logs` reads the archive with the bucket beside it. A real
`moto_server` on 127.0.0.1 stands in for S3, which these machines cannot reach."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx

from tests.up import running

EXAMPLE = Path(__file__).parent.parent / "examples" / "python-web"


def test_a_deploy_with_slugs_and_logs_in_a_bucket(
    tmp_path: Path, moto: str, bucket: tuple[Any, str]
) -> None:
    client, name = bucket
    repo = tmp_path / "python-web"
    shutil.copytree(EXAMPLE, repo)
    with running(
        tmp_path,
        instances=1,
        GUN_SLUG_STORE=f"s3://{name}/slugs",
        GUN_LOG_ARCHIVE_S3=f"s3://{name}/logs",
        GUN_S3_ENDPOINT_URL=moto,
    ) as up:
        up.ok("apps.create", "shop")
        up.ok("app:shop", "deploy", f"dir={repo}")

        keys = [o["Key"] for o in client.list_objects_v2(Bucket=name)["Contents"]]
        assert len(keys) == 1 and keys[0].startswith("slugs/shop/")
        assert keys[0].endswith(".tar.gz")
        assert not list((up.home / "slugs").rglob("*.tar.gz"))  # not on meta's disk

        (web,) = [p for p in up.processes("shop") if p["type"] == "web"]
        answer = httpx.get(f"http://127.0.0.1:{web['port']}/", timeout=5).json()
        assert answer["message"] == "hello from gun"
        up.until(
            lambda: "State changed from starting to up" in up.ok("app:shop", "logs"),
            10,
            "the web process's start in gun logs",
        )
