"""The drain's core (`Drain`) on a real archive: lines dated in the future, and a disk that
refuses a write of the frame ids."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gun.logs.archive import Archive
from gun.logs.drain import FUTURE, SELF, Drain
from gun.logs.filters import Filter
from gun.logs.frames import frame
from gun.logs.model import Bucket
from gun.logs.outlets.memory import MemoryOutlet

NOW = 1_795_000_030.0  # 2026-11-18T08:27:10Z
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z
HOUR = 3600


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outlet() -> MemoryOutlet:
    return MemoryOutlet()


@pytest.fixture
def drain(tmp_path: Path, clock: Clock, outlet: MemoryOutlet) -> Drain:
    return Drain(Archive(tmp_path / "logs"), [outlet], default_resolution=10, clock=clock)


def stored(drain: Drain) -> list[str]:
    assert drain.archive is not None
    return drain.archive.read("shop", Filter(n=100), NOW + 2 * 86400)


def hours(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path / "logs/shop")) for p in tmp_path.rglob("*.log.gz"))


def own(outlet: MemoryOutlet, name: str) -> float:
    return sum(b.sum or 0 for b in outlet.buckets if b.key.app == SELF and b.key.name == name)


@pytest.mark.parametrize(
    ("sent", "kept_at", "future"),
    [
        (LATEST, NOW, 1),  # 9999-12-31T23:59:59Z
        (NOW + 25 * HOUR, NOW, 1),
        (NOW + FUTURE + 0.001, NOW, 1),
        (NOW + FUTURE, NOW + FUTURE, 0),  # a day ahead exactly: as it is
        (NOW + 23 * HOUR, NOW + 23 * HOUR, 0),
        (NOW - 5, NOW - 5, 0),
    ],
)
def test_a_line_over_a_day_ahead_is_kept_at_its_arrival(
    drain: Drain,
    outlet: MemoryOutlet,
    clock: Clock,
    tmp_path: Path,
    sent: float,
    kept_at: float,
    future: int,
) -> None:
    got = drain.accept("shop", frame(190, sent, "app", "web.1", "dated"))
    assert got.lines == 1
    shown = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(kept_at))
    assert [t[:19] for t in stored(drain)] == [shown]
    assert hours(tmp_path) == [time.strftime("%Y-%m-%d/%H.log.gz", time.gmtime(kept_at))]
    clock.now = NOW + 30
    drain.flush()
    assert own(outlet, "lines.future") == future
    assert drain.figures.future == future


def test_a_measurement_dated_far_ahead_goes_in_the_bucket_of_its_arrival(
    drain: Drain, outlet: MemoryOutlet, clock: Clock
) -> None:
    body = frame(190, LATEST, "app", "web.1", "count#signup=1 measure#db.query=12ms")
    body += frame(190, NOW + 25 * HOUR, "app", "web.1", "count#signup=2")
    body += frame(190, NOW + 23 * HOUR, "app", "web.2", "count#signup=4")
    body += frame(190, NOW, "app", "web.1", "count#signup=8")
    assert drain.accept("shop", body).lines == 4
    clock.now = NOW + 60
    drain.flush()
    mine: list[Bucket] = [b for b in outlet.buckets if b.key.app == "shop"]
    start = int(NOW // 10 * 10)
    assert {(b.key.name, b.key.time): (b.sum, b.count) for b in mine} == {
        ("signup", start): (11.0, None),
        ("db.query", start): (12.0, 1),
    }
    # the line 23 hours ahead keeps its time: its bucket closes when that time has come
    clock.now = NOW + 23 * HOUR + 60
    drain.flush()
    later = [b for b in outlet.buckets if b.key.app == "shop"][len(mine) :]
    assert [(b.key.name, b.key.time, b.sum) for b in later] == [
        ("signup", int((NOW + 23 * HOUR) // 10 * 10), 4.0)
    ]
    assert own(outlet, "lines.future") == 2


def test_lines_dated_ahead_are_not_the_newest_forever(drain: Drain, clock: Clock) -> None:
    drain.accept("shop", frame(190, LATEST, "app", "web.1", "from the year 9999"))
    clock.now = NOW + 60
    drain.accept("shop", frame(190, NOW + 60, "app", "web.1", "a minute later"))
    assert [t.split(": ", 1)[1] for t in stored(drain)] == ["from the year 9999", "a minute later"]


def test_metrics_show_the_open_bucket_then_the_complete_one_then_late_lines_in_it(
    drain: Drain, outlet: MemoryOutlet, clock: Clock
) -> None:
    start = int(NOW) // 10 * 10  # resolution 10 s, grace 2 s
    drain.accept("shop", frame(190, NOW, "app", "web.1", "count#signup=1"))
    (partial,) = drain.metrics("shop", None, 0)
    assert (partial.key.time, partial.sum, partial.partial) == (start, 1.0, True)
    clock.now = start + 11.9
    drain.flush()
    assert drain.metrics("shop", "signup", 0)[0].partial
    clock.now = start + 12
    drain.flush()
    (done,) = [b for b in outlet.buckets if b.key.app == "shop"]
    assert (done.sum, done.partial) == (1.0, False)
    assert drain.metrics("shop", None, 0) == [done]
    # a line of that interval, late: merged, counted, the bucket handed out again
    clock.now = start + 15
    drain.accept("shop", frame(190, start + 9, "app", "web.2", "count#signup=2"))
    clock.now = start + 22
    drain.flush()
    again = [b for b in outlet.buckets if b.key.app == "shop"][1]
    assert (again.key, again.sum, again.previous) == (done.key, 3.0, done)
    assert drain.metrics("shop", None, 0) == [again]
    # one too old: dropped, counted
    drain.accept("shop", frame(190, start - 1, "app", "web.2", "count#signup=5"))
    clock.now = start + 30
    drain.flush()
    assert (own(outlet, "lines.late"), own(outlet, "lines.dropped")) == (1, 1)
    assert [b.sum for b in drain.metrics("shop", None, 0)] == [3.0]
