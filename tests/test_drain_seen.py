"""Frame ids taken once: across a restart, and across the drain's workers (seen.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gun.logs import seen
from gun.logs.seen import Seen


def test_a_frame_id_is_remembered_across_a_restart(tmp_path: Path) -> None:
    first = Seen(tmp_path)
    assert ("shop", "F1") not in first
    assert first.remember("shop", "F1") is None
    assert ("shop", "F1") in Seen(tmp_path)
    assert ("beta", "F1") not in Seen(tmp_path)  # ids are per app


def test_a_worker_sees_what_the_others_took_as_they_take_it(tmp_path: Path) -> None:
    zero, one = Seen(tmp_path, 0, 2), Seen(tmp_path, 1, 2)
    zero.remember("shop", "A")
    assert ("shop", "A") in one
    one.remember("shop", "B")
    assert ("shop", "B") in zero
    assert sorted(p.name for p in tmp_path.iterdir()) == [".frame-ids", ".frame-ids.1"]
    again = Seen(tmp_path, 1, 2)  # a worker restarted reads every worker's file
    assert ("shop", "A") in again and ("shop", "B") in again


def test_a_half_written_line_waits_for_its_end(tmp_path: Path) -> None:
    reader = Seen(tmp_path, 1, 2)
    with open(tmp_path / ".frame-ids", "a") as f:
        f.write("shop\tHAL")
        f.flush()
        assert ("shop", "HAL") not in reader
        f.write("F\n")
    assert ("shop", "HALF") in reader and ("shop", "HAL") not in reader


def test_a_file_rewritten_by_its_worker_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seen, "SEEN_FRAMES", 3)
    zero, one = Seen(tmp_path, 0, 2), Seen(tmp_path, 1, 2)
    for i in range(7):  # over twice the memory: zero rewrites its file with the last 3
        zero.remember("shop", f"id{i}")
    assert len((tmp_path / ".frame-ids").read_text().splitlines()) < 7
    for _ in range(100):  # the check for a replaced file comes every 100 lookups
        ("shop", "x") in one  # noqa: B015
    zero.remember("shop", "after")
    assert ("shop", "after") in one


def test_one_process_remembers_what_the_workers_of_an_earlier_run_took(tmp_path: Path) -> None:
    Seen(tmp_path, 1, 2).remember("shop", "taken by worker 1")
    assert ("shop", "taken by worker 1") in Seen(tmp_path)
