"""Group commit of config changes: concurrent calls for one app share a transaction, each
gets its own release, and a change that breaks the size limit fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from gun.core import Platform
from gun.core.batch import Batcher
from gun.errors import InvalidParams
from gun.model import Principal, Release


def test_concurrent_calls_are_batched_and_each_gets_its_own_result() -> None:
    batcher: Batcher[int, int] = Batcher()
    batches: list[list[int]] = []

    def apply(payloads: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(payloads))
        time.sleep(0.05)  # long enough for the others to queue behind this batch
        return [p * 10 if p != 3 else ValueError("three") for p in payloads]

    results: dict[int, object] = {}

    def call(n: int) -> None:
        try:
            results[n] = batcher.run("app", n, apply)
        except ValueError as e:
            results[n] = e

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(p for b in batches for p in b) == list(range(8))
    assert len(batches) < 8  # some calls shared a batch
    assert {n: r for n, r in results.items() if n != 3} == {n: n * 10 for n in range(8) if n != 3}
    assert str(results[3]) == "three"


def test_a_whole_batch_failure_reaches_every_caller() -> None:
    batcher: Batcher[int, int] = Batcher()

    def boom(payloads: Sequence[int]) -> list[int | BaseException]:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError, match="store down"):
        batcher.run("app", 1, boom)
    assert batcher.run("app", 2, lambda ps: [p + 1 for p in ps]) == 3  # the lead was released


def test_in_one_batch_a_change_over_the_limit_fails_alone(
    platform: Platform, admin: Principal
) -> None:
    platform.create_app(admin, "grouped")
    out = platform._change_configs(
        "grouped",
        [(admin, {"A": "1"}), (admin, {"BIG": "x" * 33_000}), (admin, {"B": "2", "A": None})],
    )
    assert isinstance(out[0], Release) and out[0].version == 2
    assert isinstance(out[1], InvalidParams) and "over the limit" in out[1].message
    assert isinstance(out[2], Release) and out[2].version == 3
    assert out[2].description == "Set B and unset A config vars"
    assert platform.config(admin, "grouped") == {"B": "2"}
    assert [r.version for r in platform.releases(admin, "grouped")] == [3, 2, 1]
    assert platform.release(admin, "grouped", 2).config == {"A": "1"}
