"""What keeps the drain going and what its `/health` says: a task that ends is started again
and named meanwhile; a failing step is logged and the loop goes on; a full disk (a real tmpfs)
makes ingest answer 503 and /health say so until space is freed, and nothing is lost."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gun.logs import health as health_module
from gun.logs.archive import Archive
from gun.logs.drain import Drain
from gun.logs.frames import frame
from gun.logs.health import Health, Steps, supervise
from gun.logs.meta import Meta
from gun.logs.remote import S3Archive
from gun.logs.server import DrainApp
from tests.drain import COMPILED, Site, site_running


def test_a_task_that_ends_is_started_again_with_backoff_and_named_meanwhile(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = Health()
    starts: list[float] = []
    seen: list[list[str]] = []

    async def run() -> None:
        starts.append(time.monotonic())
        if len(starts) == 1:
            raise RuntimeError("boom")
        if len(starts) == 2:
            return
        await asyncio.Event().wait()

    async def scenario() -> None:
        task = asyncio.create_task(supervise("the test loop", run, health, first=0.4, most=0.8))
        for _ in range(3):  # during each backoff, and once it runs
            await asyncio.sleep(0.2)
            seen.append(health.problems())
            await asyncio.sleep(0.2 if len(seen) == 1 else 0.6)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.INFO, "gun.drain"):
        asyncio.run(scenario())
    assert seen == [
        ["the test loop stopped (RuntimeError: boom); the drain starts it again in 0.4 s"],
        ["the test loop stopped (it returned); the drain starts it again in 0.8 s"],
        [],
    ]
    assert len(starts) == 3
    assert 0.4 <= starts[1] - starts[0] < 0.6 and 0.8 <= starts[2] - starts[1] < 1.0
    records = [(r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert records == [
        ("the test loop stopped", True),
        ("starting the test loop again", False),
        ("the test loop stopped: it returned", False),
        ("starting the test loop again", False),
    ]


def test_a_failing_step_is_logged_once_then_each_minute_and_when_it_works_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    steps = Steps(clock=lambda: now[0])
    outcomes = iter([OSError(errno.EIO, "Input/output error")] * 3 + [None])

    async def step() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    async def passes() -> list[dict[str, str]]:
        failing = []
        for advance in (0, 30, 31, 1):
            now[0] += advance
            await steps.run("sending hours", step)
            failing.append(steps.failing())
        return failing

    with caplog.at_level(logging.INFO, "gun.drain"):
        failing = asyncio.run(passes())
    error = "OSError: [Errno 5] Input/output error"
    assert failing == [
        {"sending hours": f"{error} (once in 0 s)"},
        {"sending hours": f"{error} (2 times in 30 s)"},
        {"sending hours": f"{error} (3 times in 61 s)"},
        {},
    ]
    assert [(r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        ("sending hours failed; the drain tries again on its next pass", True),
        (f"sending hours still fails (3 times): {error}", False),
        ("sending hours works again", False),
    ]
    assert health_module.REPEAT_LOG == 60


def test_the_upkeep_goes_on_past_a_failing_bucket_and_the_flush_is_not_held_up(
    tmp_path: Path, moto: str, aws_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    import boto3  # type: ignore[import-untyped]

    client = boto3.client("s3", endpoint_url=moto, region_name="us-east-1")
    remote = S3Archive("not-made-yet", client=client)
    drain = Drain(Archive(tmp_path, remote=remote), [], default_resolution=1)
    app = DrainApp(drain, Meta("http://127.0.0.1:9", "unused"), None, ship_every=0.2)
    now = time.time()
    drain.accept("shop", frame(190, now - 7200, "app", "web.1", "two hours ago"))

    async def scenario() -> tuple[httpx.Response, httpx.Response, int]:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[Any] = asyncio.Queue()
        life = asyncio.create_task(app({"type": "lifespan"}, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        await outbox.get()
        asgi = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://drain")
        drain.accept("shop", frame(190, time.time(), "app", "web.1", "count#paid=1"))
        await asyncio.sleep(3.5)
        failing = await asgi.get("/health")
        buckets = len(drain.metrics("shop", "paid", 0))  # flushed meanwhile
        client.create_bucket(Bucket="not-made-yet")
        await asyncio.sleep(0.5)
        healed = await asgi.get("/health")
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await life
        return failing, healed, buckets

    with caplog.at_level(logging.INFO, "gun.drain"):
        failing, healed, buckets = asyncio.run(scenario())
    assert failing.status_code == 200
    assert failing.json()["status"] == "ok"
    shipping = failing.json()["failing"]["sending hours to the remote archive"]
    assert "NoSuchBucket" in shipping and int(shipping.split("(")[-1].split()[0]) >= 10
    assert "NoSuchBucket" in failing.json()["failing"]["pruning the remote log archive"]
    assert buckets == 1
    # shipping works again; the hourly prune of the bucket says it failed until its next pass
    assert healed.status_code == 200
    assert list(healed.json()["failing"]) == ["pruning the remote log archive"]
    messages = [r.getMessage() for r in caplog.records]
    once = "sending hours to the remote archive failed; the drain tries again on its next pass"
    assert messages.count(once) == 1
    assert "sending hours to the remote archive works again" in messages
    objects = client.list_objects_v2(Bucket="not-made-yet")["Contents"]
    assert [o["Key"].split("/")[0] for o in objects] == ["shop"]


# a full disk, for real: a 2 MB tmpfs ----------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "small"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """A file that takes every free byte of `disk`."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def health(site: Site) -> tuple[int, Any]:
    r = site.http.get(f"{site.drain.url}/health")
    return r.status_code, r.json()


def test_a_full_archive_disk_answers_503_until_space_is_freed_and_loses_nothing(
    tmp_path: Path, small_disk: Path
) -> None:
    with site_running(tmp_path, ("shop",), GUN_LOG_ARCHIVE=str(small_disk)) as site:
        url = f"/logs/{site.tokens['shop']}"
        body = frame(190, time.time(), "app", "web.1", "kept through a full disk")
        filler = fill(small_disk)
        said = (
            f"no space left on {small_disk}, where the drain keeps the log archive "
            f"({small_disk}): free some space there; senders retry"
        )
        for _ in range(2):  # the sender retries while the disk stays full
            r = site.post(url, body, **{"Logplex-Frame-Id": "frame-1"})
            assert (r.status, r.json()) == (503, {"id": "unavailable", "message": said})
            assert health(site) == (
                503,
                {"status": "unavailable", "compiled": COMPILED, "problems": [said]},
            )
        assert "no space left on" in site.drain.said()
        filler.unlink()
        r = site.post(url, body, **{"Logplex-Frame-Id": "frame-1"})
        assert (r.status, r.json()["lines"]) == (200, 1)
        assert health(site) == (200, {"status": "ok", "compiled": COMPILED})
        assert site.lines("shop") == ["kept through a full disk"]
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        r = site.post(url, frame(190, time.time(), "app", "web.1", "read-only"))
        assert (r.status, r.json()["message"]) == (
            503,
            f"the drain cannot write the log archive at {small_disk}: Read-only file system",
        )
        assert health(site)[0] == 503


def test_a_full_disk_under_the_frame_ids_answers_503_and_the_retry_is_taken_once(
    tmp_path: Path, small_disk: Path
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / ".frame-ids").symlink_to(small_disk / "frame-ids")
    with site_running(
        tmp_path, ("shop",), GUN_LOG_ARCHIVE=str(archive), GUN_METRICS_RESOLUTION="1"
    ) as site:
        url = f"/logs/{site.tokens['shop']}"
        body = frame(190, time.time(), "app", "web.1", "count#paid=1")
        filler = fill(small_disk)
        r = site.post(url, body, **{"Logplex-Frame-Id": "frame-1"})
        said = (
            f"no space left on {small_disk}, where the drain keeps the frame ids of the bodies"
            f" it took ({archive / '.frame-ids'}): free some space there; senders retry"
        )
        assert (r.status, r.json()["message"]) == (503, said)
        assert health(site) == (
            503,
            {"status": "unavailable", "compiled": COMPILED, "problems": [said]},
        )
        r = site.post(url, body, **{"Logplex-Frame-Id": "frame-1"})  # the sender's retry
        assert (r.status, r.json()["lines"]) == (200, 0)
        filler.unlink()
        r = site.post(url, frame(190, time.time(), "app", "web.1", "later"))
        assert r.status == 200
        assert health(site) == (200, {"status": "ok", "compiled": COMPILED})
        assert site.lines("shop") == ["count#paid=1", "later"]
        deadline = time.monotonic() + 10
        while not (
            got := site.http.get(
                f"{site.drain.url}/v1/apps/shop/metrics?name=paid", headers=site.admin()
            ).json()
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert [b["sum"] for b in got] == [1.0]
