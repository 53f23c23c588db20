"""Group commit of config changes: concurrent calls for one app share a transaction, each
gets its own release, and a change that breaks the size limit fails alone."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import httpx
import pytest

from gun.core import Platform
from gun.core.batch import Batcher
from gun.errors import InvalidParams
from gun.model import Principal, Release
from tests.meta import MetaServer


def test_concurrent_calls_are_batched_and_each_gets_its_own_result() -> None:
    batcher: Batcher[int, int] = Batcher()
    batches: list[list[int]] = []
    threads: set[int] = set()

    def apply(payloads: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(payloads))
        threads.add(threading.get_ident())
        time.sleep(0.05)
        return [p * 10 if p != 3 else ValueError("three") for p in payloads]

    async def main() -> list[int | BaseException]:
        first = asyncio.create_task(batcher.run("app", 0, apply))
        await asyncio.sleep(0.01)  # 0 is being applied: 1..7 queue behind it
        rest = [batcher.run("app", n, apply) for n in range(1, 8)]
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(main())
    assert batches == [[0], [1, 2, 3, 4, 5, 6, 7]]
    assert threading.get_ident() not in threads  # the batch ran off the event loop
    assert [r for n, r in enumerate(results) if n != 3] == [n * 10 for n in range(8) if n != 3]
    assert str(results[3]) == "three"


def test_a_batch_takes_at_most_its_most_and_the_rest_follow_in_order() -> None:
    """Heartbeats are batched 100 at a time: a batch holds its apps' rows, and a scale waits
    for one batch at most."""
    batcher: Batcher[int, int] = Batcher(most=3)
    batches: list[list[int]] = []

    def apply(payloads: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(payloads))
        time.sleep(0.02)
        return [p + 100 for p in payloads]

    async def main() -> list[int]:
        first = asyncio.create_task(batcher.run("all", 0, apply))
        await asyncio.sleep(0.01)
        rest = [batcher.run("all", n, apply) for n in range(1, 8)]
        return await asyncio.gather(first, *rest)

    assert asyncio.run(main()) == [n + 100 for n in range(8)]
    assert batches == [[0], [1, 2, 3], [4, 5, 6], [7]]


def test_a_batch_failure_reaches_every_caller_and_a_gone_caller_is_skipped() -> None:
    batcher: Batcher[int, int] = Batcher()
    release = threading.Event()

    def slow(payloads: Sequence[int]) -> list[int | BaseException]:
        release.wait(5)
        return [p + 1 for p in payloads]

    def boom(payloads: Sequence[int]) -> list[int | BaseException]:
        raise RuntimeError("store down")

    async def main() -> None:
        first = asyncio.create_task(batcher.run("app", 1, slow))
        await asyncio.sleep(0.01)
        gone = asyncio.create_task(batcher.run("app", 2, slow))  # queued, then cancelled
        kept = asyncio.create_task(batcher.run("app", 3, slow))
        await asyncio.sleep(0.01)
        gone.cancel()
        release.set()
        assert await first == 2
        assert await kept == 4  # its batch still ran, with the gone caller's payload unanswered
        with pytest.raises(asyncio.CancelledError):
            await gone
        with pytest.raises(RuntimeError, match="store down"):
            await batcher.run("app", 4, boom)
        assert await batcher.run("app", 5, slow) == 6  # the app's queue drains again

    asyncio.run(main())


def test_concurrent_patches_over_http_lose_nothing(meta: MetaServer) -> None:
    """The API's PATCH goes through the event-loop batcher: 40 clients at once, one version each."""
    headers = {"Authorization": f"Bearer {meta.admin_token}"}

    async def main() -> list[int]:
        async with httpx.AsyncClient(base_url=meta.url, headers=headers, timeout=30) as c:
            assert (await c.post("/v1/apps", json={"name": "crowd"})).status_code == 201
            answers = await asyncio.gather(
                *(c.patch("/v1/apps/crowd/config-vars", json={f"K{n}": str(n)}) for n in range(40))
            )
            assert [a.status_code for a in answers] == [200] * 40
            return [a.json()["release"]["version"] for a in answers]

    versions = asyncio.run(main())
    assert sorted(versions) == list(range(2, 42))
    with httpx.Client(base_url=meta.url, headers=headers) as c:
        assert c.get("/v1/apps/crowd/config-vars").json() == {f"K{n}": str(n) for n in range(40)}
        listed = c.get("/v1/apps/crowd/releases").json()
        assert sorted(r["version"] for r in listed) == list(range(1, 42))
        latest = c.get("/v1/apps/crowd/releases/41").json()
        assert latest["config"] == {f"K{n}": str(n) for n in range(40)}


def test_in_one_batch_a_change_over_the_limit_fails_alone(
    platform: Platform, admin: Principal
) -> None:
    platform.apps.create(admin, "grouped")
    out = platform.config.apply(
        "grouped",
        [(admin, {"A": "1"}), (admin, {"BIG": "x" * 33_000}), (admin, {"B": "2", "A": None})],
    )
    assert isinstance(out[0], Release) and out[0].version == 2
    assert isinstance(out[1], InvalidParams) and "over the limit" in out[1].message
    assert isinstance(out[2], Release) and out[2].version == 3
    assert out[2].description == "Set B and unset A config vars"
    assert platform.config.get(admin, "grouped") == {"B": "2"}
    assert [r.version for r in platform.releases.all(admin, "grouped")] == [3, 2, 1]
    assert platform.releases.get(admin, "grouped", 2).config == {"A": "1"}
