"""Slug stores: one contract, run against the local directory store and the S3 store.

The S3 store talks to a real `moto_server` on 127.0.0.1. Moto stands in for S3 because AWS is
unreachable from the machines these tests run on; the store makes the same calls to AWS or MinIO.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gun.build.slug import SlugError, sha256_of
from gun.build.slugstore import (
    LocalSlugStore,
    S3SlugStore,
    SlugStore,
    slug_key,
    slug_store_from_url,
)
from gun.errors import InvalidParams, NotFound, UsageError
from gun.settings import MetaSettings

ZEROS = "0" * 64


@pytest.fixture(params=["local", "s3"])
def slugs(request: pytest.FixtureRequest, tmp_path: Path) -> SlugStore:
    if request.param == "local":
        return LocalSlugStore(tmp_path / "slugs")
    client, name = request.getfixturevalue("bucket")
    return S3SlugStore(name, "gun/slugs", client=client)


def write_slug(directory: Path, data: bytes, name: str = "slug.tar.gz") -> tuple[Path, str]:
    path = directory / name
    path.write_bytes(data)
    return path, sha256_of(path)


# -- the contract, for both stores ------------------------------------------------------------


def test_put_then_open_gives_back_the_bytes(slugs: SlugStore, tmp_path: Path) -> None:
    data = random.Random(7).randbytes(9 * 1024 * 1024)  # past boto3's 8 MiB multipart threshold
    path, sha256 = write_slug(tmp_path, data)

    key = slugs.put("demo", path, sha256)

    assert key == slug_key("demo", sha256) == f"demo/{sha256}.tar.gz"
    assert slugs.exists(key)
    with slugs.open(key) as f:
        assert f.read() == data


def test_a_slug_whose_sha256_is_wrong_is_not_stored(slugs: SlugStore, tmp_path: Path) -> None:
    path, sha256 = write_slug(tmp_path, b"a slug")

    with pytest.raises(SlugError) as e:
        slugs.put("demo", path, ZEROS)

    assert e.value.message == (
        f"slug 'slug.tar.gz' has sha256 {sha256}, expected {ZEROS}; it was not stored"
    )
    assert not slugs.exists(slug_key("demo", ZEROS))
    assert not slugs.exists(slug_key("demo", sha256))
    assert slugs.keys("demo") == []


def test_opening_a_missing_slug_raises_not_found(slugs: SlugStore) -> None:
    key = slug_key("demo", ZEROS)
    with pytest.raises(NotFound) as e:
        slugs.open(key)
    assert e.value.message == f"slug {key!r} is not in the slug store"
    assert not slugs.exists(key)


def test_delete_is_idempotent(slugs: SlugStore, tmp_path: Path) -> None:
    path, sha256 = write_slug(tmp_path, b"a slug")
    key = slugs.put("demo", path, sha256)

    slugs.delete(key)
    slugs.delete(key)
    slugs.delete(slug_key("demo", ZEROS))

    assert not slugs.exists(key)
    assert slugs.keys("demo") == []
    with pytest.raises(NotFound):
        slugs.open(key)


def test_keys_lists_only_that_apps_slugs(slugs: SlugStore, tmp_path: Path) -> None:
    one, one_sha = write_slug(tmp_path, b"one", "one.tar.gz")
    two, two_sha = write_slug(tmp_path, b"two", "two.tar.gz")
    slugs.put("demo", one, one_sha)
    slugs.put("demo", two, two_sha)
    slugs.put("demo-two", one, one_sha)

    assert slugs.keys("demo") == sorted([f"demo/{one_sha}.tar.gz", f"demo/{two_sha}.tar.gz"])
    assert slugs.keys("demo-two") == [f"demo-two/{one_sha}.tar.gz"]
    assert slugs.keys("other") == []
    with pytest.raises(InvalidParams, match="app name '../etc' is invalid"):
        slugs.keys("../etc")


def test_a_second_put_of_the_same_slug_is_fine(slugs: SlugStore, tmp_path: Path) -> None:
    path, sha256 = write_slug(tmp_path, b"a slug")
    again, _ = write_slug(tmp_path, b"a slug", "again.tar.gz")

    key = slugs.put("demo", path, sha256)

    assert slugs.put("demo", again, sha256) == key
    assert slugs.keys("demo") == [key]
    with slugs.open(key) as f:
        assert f.read() == b"a slug"


# -- the S3 store's layout --------------------------------------------------------------------


def test_s3_store_keeps_slugs_under_its_prefix(bucket: tuple[Any, str], tmp_path: Path) -> None:
    client, name = bucket
    store = S3SlugStore(name, "/gun/slugs/", client=client)
    path, sha256 = write_slug(tmp_path, b"a slug")
    client.put_object(Bucket=name, Key="gun/slugs/demo/notes.txt", Body=b"not a slug")
    client.put_object(Bucket=name, Key=f"elsewhere/demo/{ZEROS}.tar.gz", Body=b"not ours")

    key = store.put("demo", path, sha256)

    listed = client.list_objects_v2(Bucket=name)["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        f"elsewhere/demo/{ZEROS}.tar.gz",
        f"gun/slugs/demo/{sha256}.tar.gz",
        "gun/slugs/demo/notes.txt",
    ]
    assert store.keys("demo") == [key]


# -- choosing a store from GUN_SLUG_STORE -----------------------------------------------------


def test_an_empty_url_is_the_local_store_in_gun_home(tmp_path: Path) -> None:
    store = slug_store_from_url("", tmp_path / "home")
    assert isinstance(store, LocalSlugStore)
    assert store.root == tmp_path / "home" / "slugs"


def test_a_file_url_is_a_local_store_in_that_directory(tmp_path: Path) -> None:
    store = slug_store_from_url(f"file://{tmp_path}/my%20slugs", tmp_path / "home")
    assert isinstance(store, LocalSlugStore)
    assert store.root == tmp_path / "my slugs"


def test_an_s3_url_is_an_s3_store_at_gun_s3_endpoint_url(
    moto: str, bucket: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, name = bucket
    monkeypatch.setenv("GUN_S3_ENDPOINT_URL", moto)

    store = slug_store_from_url(f"s3://{name}/gun/slugs", tmp_path / "home")

    assert isinstance(store, S3SlugStore)
    assert (store.bucket, store.prefix) == (name, "gun/slugs/")
    assert store.client.meta.endpoint_url == moto
    assert store.client.meta.region_name == "us-east-1"
    path, sha256 = write_slug(tmp_path, b"a slug")
    store.put("demo", path, sha256)
    assert client.get_object(Bucket=name, Key=f"gun/slugs/demo/{sha256}.tar.gz")["Body"].read() == (
        b"a slug"
    )


def test_an_s3_url_without_a_prefix_takes_its_region_from_aws_env(
    aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    store = slug_store_from_url("s3://my-slugs", tmp_path / "home")
    assert isinstance(store, S3SlugStore)
    assert (store.bucket, store.prefix) == ("my-slugs", "")
    assert store.client.meta.region_name == "eu-west-1"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x",
        "s3://",
        "s3:///gun/slugs",
        "s3://Not_A_Bucket/gun",
        "s3://my-slugs?versioned=1",
        "file://relative/dir",
        "/an/absolute/path",
        "slugs",
    ],
)
def test_other_urls_are_refused_with_the_accepted_forms(url: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        slug_store_from_url(url, tmp_path / "home")
    assert e.value.message == (
        f"slug store {url!r} is not a URL gun accepts: use file:///ABSOLUTE/DIR or"
        " s3://BUCKET[/PREFIX], or leave GUN_SLUG_STORE empty for GUN_HOME/slugs"
    )


def test_meta_settings_read_gun_slug_store(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MetaSettings.resolve().slug_store == ""
    monkeypatch.setenv("GUN_SLUG_STORE", "s3://my-slugs/gun")
    assert MetaSettings.resolve().slug_store == "s3://my-slugs/gun"


def test_importing_the_slug_store_does_not_import_boto3() -> None:
    """Agents import this module; boto3 is loaded only when an S3 store is made."""
    out = subprocess.run(
        [sys.executable, "-c", "import sys, gun.build.slugstore; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'boto3'" not in out and "'botocore'" not in out
    assert "'gun.build.slugstore'" in out
