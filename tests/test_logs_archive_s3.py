"""The log archive shared through an S3 bucket (GUN_LOG_ARCHIVE_S3): finished hours go to the
bucket, `gun logs` reads both, nothing is lost or shown twice. The bucket is a real
`moto_server` on 127.0.0.1, standing in for S3, which these machines cannot reach."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import pytest

from gun.errors import Unavailable, UsageError
from gun.logs.archive import Archive
from gun.logs.filters import Filter
from gun.logs.remote import S3Archive, remote_archive_from_url
from tests.meta import free_port
from tests.test_logs_archive import NOW, at, lines, log, logs

EARLIER = """
    2026-11-26T22:10:00+00:00 app[web.1]: at ten past ten
    2026-11-26T22:50:00+00:00 app[web.1]: at ten to eleven
    2026-11-26T23:05:00+00:00 app[worker.1]: at five past eleven
"""
NOW_LINE = "2026-11-27T00:20:00+00:00 app[web.1]: in the hour still going"


@pytest.fixture
def remote(bucket: tuple[Any, str]) -> S3Archive:
    client, name = bucket
    return S3Archive(name, "team/logs", client=client)


@pytest.fixture
def archive(tmp_path: Path, remote: S3Archive) -> Archive:
    return Archive(tmp_path / "logs", remote=remote)


def local_files(archive: Archive) -> list[str]:
    return sorted(str(p.relative_to(archive.root)) for p in archive.root.rglob("*.log.gz"))


def objects(remote: S3Archive) -> list[str]:
    return sorted(remote.names(""))


SEALED = r"[0-9a-f]{8}\.log\.gz"


def test_finished_hours_go_to_the_bucket_and_gun_logs_reads_them_there(
    archive: Archive, remote: S3Archive
) -> None:
    archive.append("demo", lines(EARLIER + "    " + NOW_LINE))
    before = logs(archive)

    shipped = archive.ship(NOW)

    # 22:00-23:00 ended 90 min ago, 23:00-24:00 30 min ago (over SHIP_AFTER, 10 min); the
    # hour going on stays here
    assert [re.sub(SEALED, "ID.log.gz", n) for n in shipped] == [
        "demo/2026-11-26/22.ID.log.gz",
        "demo/2026-11-26/23.ID.log.gz",
    ]
    assert objects(remote) == sorted(shipped)
    assert local_files(archive) == ["demo/2026-11-27/00.log.gz"]
    assert logs(archive) == before
    # each object is a plain gzip file of the hour's lines, as the local files are
    text = gzip.decompress(remote.get(shipped[0])).decode()
    assert text == (
        "2026-11-26T22:10:00.000000+00:00 app[web.1]: at ten past ten\n"
        "2026-11-26T22:50:00.000000+00:00 app[web.1]: at ten to eleven\n"
    )
    # stored under the URL's prefix
    client, bucket = remote.client, remote.bucket
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert all(k.startswith("team/logs/demo/2026-11-26/") for k in keys)


def test_an_hour_is_shipped_only_once_it_ended_ship_after_ago(archive: Archive) -> None:
    archive.append("demo", lines("2026-11-26T23:59:00+00:00 app[web.1]: just before midnight"))
    assert archive.ship(at("2026-11-27T00:09:59+00:00")) == []
    assert len(archive.ship(at("2026-11-27T00:10:00+00:00"))) == 1
    assert local_files(archive) == []


def test_a_late_line_for_a_shipped_hour_goes_as_another_object_of_that_hour(
    archive: Archive, remote: S3Archive
) -> None:
    archive.append("demo", lines(EARLIER))
    archive.ship(NOW)
    archive.append("demo", lines("2026-11-26T22:30:00+00:00 app[web.2]: late, from a slow agent"))
    assert len(archive.ship(NOW)) == 1
    assert len([n for n in objects(remote) if "/22." in n]) == 2
    assert logs(archive) == log(
        """
        2026-11-26T22:10:00.000000+00:00 app[web.1]: at ten past ten
        2026-11-26T22:30:00.000000+00:00 app[web.2]: late, from a slow agent
        2026-11-26T22:50:00.000000+00:00 app[web.1]: at ten to eleven
        2026-11-26T23:05:00.000000+00:00 app[worker.1]: at five past eleven
        """
    )


class Flaky:
    """The bucket, but its puts fail while `down` is set."""

    def __init__(self, remote: S3Archive) -> None:
        self.remote, self.down = remote, True

    def put(self, name: str, data: bytes) -> None:
        if self.down:
            raise ConnectionError("bucket unreachable")
        self.remote.put(name, data)

    def get(self, name: str) -> bytes:
        return self.remote.get(name)

    def names(self, under: str) -> list[str]:
        return self.remote.names(under)

    def delete(self, names: list[str]) -> None:
        self.remote.delete(names)


def test_an_unreachable_bucket_loses_nothing_and_the_hour_goes_next_time(
    tmp_path: Path, remote: S3Archive
) -> None:
    flaky = Flaky(remote)
    archive = Archive(tmp_path / "logs", remote=flaky)
    archive.append("demo", lines(EARLIER))
    with pytest.raises(ConnectionError):
        archive.ship(NOW)
    # the hour was set aside under its own name: it is still here and still shown
    assert [re.sub(SEALED, "ID.log.gz", f) for f in local_files(archive)] == [
        "demo/2026-11-26/22.ID.log.gz",
        "demo/2026-11-26/23.log.gz",
    ]
    shown = logs(archive)
    assert shown.count("\n") == 2
    flaky.down = False
    assert len(archive.ship(NOW)) == 2
    assert local_files(archive) == []
    assert logs(archive) == shown


def test_a_crash_after_the_upload_sends_the_same_object_again_not_a_copy(
    archive: Archive, remote: S3Archive
) -> None:
    archive.append("demo", lines(EARLIER))
    shown = logs(archive)
    # what a drain killed between the upload and the unlink leaves: the sealed file, uploaded
    open_file = archive.root / "demo/2026-11-26/22.log.gz"
    sealed = open_file.with_name("22.0123abcd.log.gz")
    open_file.rename(sealed)
    remote.put("demo/2026-11-26/22.0123abcd.log.gz", sealed.read_bytes())
    assert logs(archive) == shown  # here and there: shown once

    archive.ship(NOW)
    assert [n for n in objects(remote) if "/22." in n] == ["demo/2026-11-26/22.0123abcd.log.gz"]
    assert logs(archive) == shown


def test_a_read_racing_a_ship_shows_every_line_once(archive: Archive, remote: S3Archive) -> None:
    """`gun logs` lists the local files, then the bucket; a ship in between moves the hours."""
    archive.append("demo", lines(EARLIER))
    # one hour already set aside by a failed ship, one still open
    (archive.root / "demo/2026-11-26/22.log.gz").rename(
        archive.root / "demo/2026-11-26/22.0123abcd.log.gz"
    )
    shown = logs(archive)
    listing = remote.names

    def names_after_a_ship(under: str) -> list[str]:
        archive.ship(NOW)
        return listing(under)

    remote.names = names_after_a_ship  # type: ignore[method-assign]
    assert logs(archive) == shown
    assert local_files(archive) == []


def test_prune_deletes_hours_past_the_retention_in_the_bucket_too(
    tmp_path: Path, remote: S3Archive
) -> None:
    archive = Archive(tmp_path / "logs", retention_days=1, remote=remote)
    archive.append(
        "demo",
        lines(
            """
            2026-11-25T22:59:00+00:00 app[web.1]: over a day old
            2026-11-26T01:10:00+00:00 app[web.1]: within the day
            """
        ),
    )
    archive.append("other", lines("2026-11-25T23:30:00+00:00 app[web.1]: over a day old too"))
    archive.ship(at("2026-11-26T02:30:00+00:00"))
    old = [n for n in objects(remote) if "/2026-11-25/" in n]
    assert len(old) == 2 and len(objects(remote)) == 3
    remote.put("not-gun/readme.txt", b"someone else's object")
    remote.put("demo/2026-11-26/01.log.gz/x", b"not one of ours either")

    removed = archive.prune(NOW)

    assert sorted(str(p) for p in removed if str(p).endswith(".log.gz")) == old
    assert [re.sub(SEALED, "ID.log.gz", n) for n in objects(remote)] == [
        "demo/2026-11-26/01.ID.log.gz",
        "demo/2026-11-26/01.log.gz/x",
        "not-gun/readme.txt",
    ]
    assert logs(archive) == "2026-11-26T01:10:00.000000+00:00 app[web.1]: within the day"


def test_a_filtered_read_takes_only_the_hours_it_needs_from_the_bucket(
    archive: Archive, remote: S3Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive.append("demo", lines(EARLIER + "    " + NOW_LINE))
    archive.ship(NOW)
    fetched: list[str] = []
    get = remote.get

    def counted(name: str) -> bytes:
        fetched.append(name.split("/")[2][:2])
        return get(name)

    monkeypatch.setattr(remote, "get", counted)
    assert archive.read("demo", Filter(n=2), NOW) == [
        "2026-11-26T23:05:00.000000+00:00 app[worker.1]: at five past eleven",
        "2026-11-27T00:20:00.000000+00:00 app[web.1]: in the hour still going",
    ]
    assert fetched == ["23"]


def test_gun_log_archive_s3_names_the_bucket(
    moto: str, bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, name = bucket
    monkeypatch.setenv("GUN_S3_ENDPOINT_URL", moto)
    remote = remote_archive_from_url(f"s3://{name}/logs")
    assert isinstance(remote, S3Archive)
    assert (remote.bucket, remote.prefix) == (name, "logs/")
    assert remote.client.meta.endpoint_url == moto
    assert remote_archive_from_url("") is None


@pytest.mark.parametrize(
    "url", ["file:///srv/logs", "s3://", "s3://UPPER/logs", "s3://b/x", "s3://bucket/p?x=1"]
)
def test_other_urls_are_refused_with_the_accepted_form(url: str) -> None:
    with pytest.raises(UsageError) as e:
        remote_archive_from_url(url)
    assert e.value.message == (
        f"GUN_LOG_ARCHIVE_S3={url!r} is not a URL gun accepts: use s3://BUCKET[/PREFIX],"
        " or leave it empty to keep archives only in GUN_LOG_ARCHIVE"
    )


def test_gun_logs_says_so_when_the_bucket_does_not_answer(tmp_path: Path, aws_env: None) -> None:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    nobody = f"http://127.0.0.1:{free_port()}"
    client = boto3.client(
        "s3",
        endpoint_url=nobody,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}),
    )
    archive = Archive(tmp_path / "logs", remote=S3Archive("team-logs", client=client))
    archive.append("demo", lines(EARLIER))
    with pytest.raises(Unavailable) as e:
        logs(archive)
    assert e.value.message.startswith(
        "the log archive's bucket 'team-logs' did not answer: Could not connect to the endpoint URL"
    )
