"""Buckets: Heroku router, runtime-metric and app lines replayed through read -> parse ->
aggregate with every bucket checked, l2met's statistics, late data, resolutions."""

from __future__ import annotations

import dataclasses
import math
from array import array
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.errors import InvalidParams
from gun.logs import frames, parse
from gun.logs.aggregate import Aggregator, order_statistics
from gun.logs.model import Bucket, Key, Measurement, MetricType

MINUTE = 1655131920  # 2022-06-13T14:52:00Z, a multiple of 60


def ts(seconds: float) -> str:
    """The TIMESTAMP `seconds` after 14:52:00."""
    return frames.rfc3339(MINUTE + seconds)


def key(name: str, type: MetricType, unit: str = "", source: str | None = None) -> Key:
    return Key("shop", name, source, unit, type, MINUTE, 60)


ROUTER = [
    (
        1,
        'at=info method=GET path="/" host=shop.example.com request_id=5a4f2b1c fwd="1.2.3.4"'
        " dyno=web.1 connect=0ms service=3ms status=200 bytes=6979 protocol=https",
    ),
    (
        2,
        'at=info method=GET path="/orders/7" host=shop.example.com request_id=6b1c'
        ' fwd="1.2.3.4, 10.0.0.1" dyno=web.2 connect=1ms service=18ms status=200 bytes=13'
        " protocol=https",
    ),
    (
        3,
        'at=info method=GET path="/logo.png" host=shop.example.com request_id=7c2d'
        ' fwd="1.2.3.4" dyno=web.1 connect=0ms service=7ms status=304 bytes=0 protocol=https',
    ),
    (
        4,
        'at=error code=H12 desc="Request timeout" method=GET path="/" host=x request_id=y'
        ' fwd="1.2.3.4" dyno=web.1 connect=1ms service=30001ms status=503 bytes=0'
        " protocol=https",
    ),
    (
        5,
        'at=error code=H10 desc="App crashed" method=GET path="/" host=x request_id=z'
        ' fwd="1.2.3.4" dyno= connect= service= status=503 bytes= protocol=https',
    ),
    (
        6,
        'at=info method=POST path="/a b" host=shop.example.com request_id=8e3f fwd="1.2.3.4"'
        " dyno=web.2 connect=2ms service=120ms status=404 bytes=512 protocol=https",
    ),
]
DYNO = "dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456"
RUNTIME = [
    # Delivered out of order: the sample with the latest TIMESTAMP wins, not the last to come.
    (30, "web.1", f"source=web.1 {DYNO} sample#load_avg_1m=1.50 sample#load_avg_5m=1.10"),
    (10, "web.1", f"source=web.1 {DYNO} sample#load_avg_1m=2.46 sample#load_avg_5m=1.06"),
    (
        10,
        "web.1",
        f"source=web.1 {DYNO} sample#memory_rss=21.22MB sample#memory_pgpgin=348836pages"
        " sample#memory_quota=512.00MB",
    ),
    (11, "web.2", f"source=web.2 {DYNO} sample#memory_rss=30.00MB"),
]
APP = [
    (20, "measure#db.query=12ms count#orders=1 at=info"),
    (21, 'at=info msg="order placed" measure#db.query=4ms count#orders=2 unique#users=u1'),
    (22, "unique#users=u2 unique#users=u1"),
    (23, "Started GET /orders/7 for 1.2.3.4"),
    (24, "measure#db.query=-5ms"),  # invalid: counted by parse, not aggregated
    (65, "count#orders=1"),  # the next minute: still open at 14:53:01
]


def bodies() -> list[bytes]:
    first = [frames.frame(158, ts(s), "heroku", "router", msg) for s, msg in ROUTER]
    second = [frames.frame(45, ts(s), "heroku", dyno, msg) for s, dyno, msg in RUNTIME]
    second += [frames.frame(190, ts(s), "app", "web.1", msg) for s, msg in APP]
    bad = b"29 <190>1 - host app web.1 - hi\n"  # a bad TIMESTAMP, counted by read
    return [b"".join(first), b"".join(second[:3]) + bad + b"".join(second[3:])]


def test_replay_router_runtime_and_app_lines() -> None:
    agg = Aggregator("shop", 60, grace=0)
    bad: list[str] = []
    invalid: list[str] = []
    now = MINUTE + 61.0
    for body in bodies():
        read = frames.read(body)
        rows = parse.parse_lines(read.lines)
        agg.add_rows(rows.rows, now)
        bad += read.bad
        invalid += rows.invalid
    assert len(bad) == 1 and bad[0].startswith("frame 4: TIMESTAMP '-'")
    assert invalid == [
        "measure#db.query=-5ms: the value '-5ms' is negative; negative values are dropped"
    ]

    assert agg.flush(now) == [
        Bucket(key("orders", "count"), sum=3.0),
        Bucket(key("router.error.H10", "count"), sum=1.0),
        Bucket(key("router.error.H12", "count"), sum=1.0),
        Bucket(key("router.status.2xx", "count"), sum=2.0),
        Bucket(key("router.status.3xx", "count"), sum=1.0),
        Bucket(key("router.status.4xx", "count"), sum=1.0),
        Bucket(key("router.status.5xx", "count"), sum=2.0),
        Bucket(
            key("db.query", "measure", "ms"),
            count=2,
            sum=16.0,
            min=4.0,
            max=12.0,
            mean=8.0,
            median=12.0,
            p95=12.0,
            p99=12.0,
        ),
        # 0, 0, 13, 512, 6979: the H10 request sent no bytes= value, so it is not counted.
        Bucket(
            key("router.bytes", "measure", "bytes"),
            count=5,
            sum=7504.0,
            min=0.0,
            max=6979.0,
            mean=1500.8,
            median=13.0,
            p95=6979.0,
            p99=6979.0,
        ),
        # 0, 0, 1, 1, 2
        Bucket(
            key("router.connect", "measure", "ms"),
            count=5,
            sum=4.0,
            min=0.0,
            max=2.0,
            mean=0.8,
            median=1.0,
            p95=2.0,
            p99=2.0,
        ),
        # 3, 7, 18, 120, 30001
        Bucket(
            key("router.service", "measure", "ms"),
            count=5,
            sum=30149.0,
            min=3.0,
            max=30001.0,
            mean=6029.8,
            median=18.0,
            p95=30001.0,
            p99=30001.0,
        ),
        Bucket(key("load_avg_1m", "sample", "", "web.1"), last=1.5),
        Bucket(key("load_avg_5m", "sample", "", "web.1"), last=1.1),
        Bucket(key("memory_pgpgin", "sample", "pages", "web.1"), last=348836.0),
        Bucket(key("memory_quota", "sample", "MB", "web.1"), last=512.0),
        Bucket(key("memory_rss", "sample", "MB", "web.1"), last=21.22),
        Bucket(key("memory_rss", "sample", "MB", "web.2"), last=30.0),
        Bucket(key("users", "unique"), unique=2),
    ]
    assert agg.late == 0
    assert agg.flush(now) == []  # handed out once
    assert agg.flush(MINUTE + 120) == [
        Bucket(Key("shop", "orders", None, "", "count", MINUTE + 60, 60), sum=1.0)
    ]


def test_bucket_json_is_the_metrics_shape() -> None:
    agg = Aggregator("shop", grace=0)
    agg.add(Measurement("db.query", "web.1", "ms", "measure", 12.0, MINUTE + 1), MINUTE + 1)
    (bucket,) = agg.flush(MINUTE + 60)
    assert bucket.json() == {
        "name": "db.query",
        "source": "web.1",
        "unit": "ms",
        "type": "measure",
        "time": MINUTE,
        "count": 1,
        "sum": 12.0,
        "min": 12.0,
        "max": 12.0,
        "mean": 12.0,
        "median": 12.0,
        "p95": 12.0,
        "p99": 12.0,
        "last": None,
        "unique": None,
        "partial": False,
    }


def measure(values: list[float]) -> Bucket:
    agg = Aggregator("shop", 60, grace=0)
    for v in values:
        agg.add(Measurement("x", None, "ms", "measure", v, MINUTE + 1), MINUTE + 1)
    (bucket,) = agg.flush(MINUTE + 60)
    return bucket


def test_l2met_percentiles() -> None:
    # Index floor(n * q) of the sorted values: the upper median of an even count.
    b = measure([float(v) for v in range(100, 0, -1)])
    assert (b.min, b.median, b.p95, b.p99, b.max) == (1.0, 51.0, 96.0, 100.0, 100.0)
    assert (b.count, b.sum, b.mean) == (100, 5050.0, 50.5)
    b = measure([5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 8.0, 7.0, 9.0, 10.0])
    assert (b.median, b.p95, b.p99) == (6.0, 10.0, 10.0)
    b = measure([7.0])
    assert (b.min, b.median, b.p95, b.p99, b.max, b.mean) == (7.0,) * 6
    # 20 values: 20 * 0.95 is 19 exactly in integers (in floats 18.999... would floor to 18).
    b = measure([float(v) for v in range(20)])
    assert (b.median, b.p95, b.p99) == (10.0, 19.0, 19.0)


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=300))
def test_measure_statistics_match_their_definition(ints: list[int]) -> None:
    values = [v / 8 for v in ints]  # exact in binary: sums are exact too
    b = measure(values)
    ordered = sorted(values)
    n = len(values)

    def at(q: Fraction) -> float:
        return ordered[min(math.floor(n * q), n - 1)]

    assert b.count == n
    assert b.sum == sum(values)
    assert b.mean == sum(values) / n
    assert (b.min, b.max) == (ordered[0], ordered[-1])
    assert b.median == at(Fraction(1, 2))
    assert b.p95 == at(Fraction(95, 100))
    assert b.p99 == at(Fraction(99, 100))


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=500))
def test_order_statistics_are_those_of_the_sorted_values(values: list[float]) -> None:
    ordered, n = sorted(values), len(values)
    ranks = [0, n // 2, min(n * 95 // 100, n - 1), min(n * 99 // 100, n - 1), n - 1]
    assert order_statistics(array("d", values)) == tuple(ordered[k] for k in ranks)


def test_types_are_separate_series() -> None:
    agg = Aggregator("shop", 10, grace=0)
    t = MINUTE + 3
    for m in [
        Measurement("x", None, "", "count", 2.0, t),
        Measurement("x", None, "", "count", 3.0, t + 1),
        Measurement("x", None, "", "sample", 9.0, t + 2),
        Measurement("x", None, "", "sample", 8.0, t + 2),  # same time: the greater value
        Measurement("x", None, "ms", "count", 1.0, t),  # another unit, another series
        Measurement("x", "web.1", "", "count", 1.0, t),  # another source too
        Measurement("x", None, "", "unique", 0.0, t, "a"),
        Measurement("x", None, "", "unique", 0.0, t, "a"),
    ]:
        agg.add(m, t)
    k = Key("shop", "x", None, "", "count", MINUTE, 10)
    assert agg.flush(MINUTE + 10) == [
        Bucket(k, sum=5.0),
        Bucket(Key("shop", "x", None, "ms", "count", MINUTE, 10), sum=1.0),
        Bucket(Key("shop", "x", "web.1", "", "count", MINUTE, 10), sum=1.0),
        Bucket(Key("shop", "x", None, "", "sample", MINUTE, 10), last=9.0),
        Bucket(Key("shop", "x", None, "", "unique", MINUTE, 10), unique=1),
    ]


def test_flush_hands_out_closed_intervals_only() -> None:
    agg = Aggregator("shop", 60, grace=0)
    for s in (0, 59.999, 60, 125):
        agg.add(Measurement("n", None, "", "count", 1.0, MINUTE + s), MINUTE + s)
    assert agg.flush(MINUTE + 59.999) == []
    assert [(b.key.time, b.sum) for b in agg.flush(MINUTE + 60)] == [(MINUTE, 2.0)]
    assert [(b.key.time, b.sum) for b in agg.flush(MINUTE + 180)] == [
        (MINUTE + 60, 1.0),
        (MINUTE + 120, 1.0),
    ]
    assert agg.late == 0


def test_an_interval_is_handed_out_grace_seconds_after_it_ends() -> None:
    agg = Aggregator("shop", 60, grace=2)
    agg.add(Measurement("n", None, "", "count", 1.0, MINUTE + 30), MINUTE + 30)
    assert agg.flush(MINUTE + 61.999) == []
    assert [b.key.time for b in agg.partial()] == [MINUTE]
    agg.add(Measurement("n", None, "", "count", 1.0, MINUTE + 59.5), MINUTE + 61)  # on its way
    assert [b.sum for b in agg.flush(MINUTE + 62)] == [2.0]
    assert agg.partial() == []
    assert (agg.late, agg.dropped) == (0, 0)


def test_the_open_intervals_show_as_partial_buckets() -> None:
    agg = Aggregator("shop", 10, grace=1)
    for value in (5.0, 1.0, 3.0):
        agg.add(Measurement("q", None, "ms", "measure", value, MINUTE + 1), MINUTE + 1)
    agg.add(Measurement("q", None, "ms", "measure", 7.0, MINUTE + 12), MINUTE + 12)
    (first, second) = agg.partial()
    assert first == Bucket(
        Key("shop", "q", None, "ms", "measure", MINUTE, 10),
        count=3, sum=9.0, min=1.0, max=5.0, mean=3.0, median=3.0, p95=5.0, p99=5.0, partial=True,
    )  # fmt: skip
    assert (second.key.time, second.count, second.partial) == (MINUTE + 10, 1, True)
    (done,) = agg.flush(MINUTE + 11)
    assert done == dataclasses.replace(first, partial=False)
    assert [b.key.time for b in agg.partial()] == [MINUTE + 10]


def test_late_measurements_are_merged_and_the_bucket_handed_out_again() -> None:
    agg = Aggregator("shop", 60, grace=2)
    agg.add(Measurement("n", None, "", "count", 1.0, MINUTE + 10), MINUTE + 10)
    agg.add(Measurement("q", None, "ms", "measure", 4.0, MINUTE + 10), MINUTE + 10)
    handed = agg.flush(MINUTE + 62)
    assert [(b.key.name, b.sum) for b in handed] == [("n", 1.0), ("q", 4.0)]
    agg.add(Measurement("n", None, "", "count", 2.0, MINUTE + 50), MINUTE + 70)  # late
    agg.add(Measurement("q", None, "ms", "measure", 6.0, MINUTE + 55), MINUTE + 70)
    assert (agg.late, agg.dropped) == (2, 0)
    n, q = agg.flush(MINUTE + 71)
    assert (n.key.time, n.sum, n.previous) == (MINUTE, 3.0, handed[0])
    assert (q.count, q.sum, q.max, q.previous) == (2, 10.0, 6.0, handed[1])
    assert agg.flush(MINUTE + 72) == []  # nothing new: not handed out again


def test_a_late_measurement_of_an_interval_never_handed_out_makes_a_new_bucket() -> None:
    agg = Aggregator("shop", 60, grace=2)
    agg.flush(MINUTE + 100)
    agg.add(Measurement("n", None, "", "count", 1.0, MINUTE + 10), MINUTE + 100)
    (b,) = agg.flush(MINUTE + 101)
    assert (b.key.time, b.sum, b.previous, agg.late) == (MINUTE, 1.0, None, 1)


def test_too_old_or_impossible_times_are_dropped_and_counted() -> None:
    agg = Aggregator("shop", 60, grace=2)
    now = MINUTE + 200.0

    def add(seconds: float, at: float = now) -> None:
        agg.add(Measurement("n", None, "", "count", 1.0, MINUTE + seconds), at)

    add(119)  # 60..120 ended 80 s ago: over a resolution after its grace (60 + 2)
    assert agg.dropped == 1
    add(120)  # 120..180 ended 20 s ago: open still (no flush yet)
    add(float("nan") - MINUTE)
    add(float("inf"))
    add(-MINUTE - 1)  # before 1970
    assert (agg.dropped, agg.late) == (4, 0)
    assert [b.key.time for b in agg.flush(now)] == [MINUTE + 120]
    add(130, at=now + 1)  # kept one more resolution after it was handed out: late
    assert (agg.dropped, agg.late) == (4, 1)
    assert [(b.key.time, b.sum) for b in agg.flush(now + 1)] == [(MINUTE + 120, 2.0)]
    add(130, at=MINUTE + 242)  # 120 + 2 * 60 + 2 <= 242: too old now
    assert (agg.dropped, agg.late) == (5, 1)
    assert agg.flush(MINUTE + 242) == []


@pytest.mark.parametrize(
    ("resolution", "message"),
    [
        (0, "resolution 0 must be a whole number of seconds from 1 to 3600"),
        (3601, "resolution 3601 must be a whole number of seconds from 1 to 3600"),
        (-60, "resolution -60 must be a whole number of seconds from 1 to 3600"),
        (1.5, "resolution 1.5 must be a whole number of seconds from 1 to 3600"),
        (True, "resolution True must be a whole number of seconds from 1 to 3600"),
        ("60s", "resolution '60s' must be a whole number of seconds from 1 to 3600"),
        ("", "resolution '' must be a whole number of seconds from 1 to 3600"),
        ("٦٠", "resolution '٦٠' must be a whole number of seconds from 1 to 3600"),
    ],
)
def test_resolution_must_be_1_to_3600_seconds(resolution: object, message: str) -> None:
    with pytest.raises(InvalidParams) as e:
        Aggregator("shop", resolution)  # type: ignore[arg-type]
    assert e.value.message == message


@pytest.mark.parametrize(("resolution", "seconds"), [(1, 1), (3600, 3600), ("10", 10)])
def test_resolutions(resolution: int | str, seconds: int) -> None:
    agg = Aggregator("shop", resolution, grace=0)
    agg.add(Measurement("n", None, "", "count", 1.0, MINUTE + 7.5), MINUTE + 8)
    (bucket,) = agg.flush(MINUTE + 3600)
    start = (MINUTE + 7) // seconds * seconds
    assert (bucket.key.time, bucket.key.resolution) == (start, seconds)
    assert isinstance(bucket.key.time, int)


_measurements = st.builds(
    Measurement,
    st.sampled_from(["a", "b"]),
    st.sampled_from([None, "web.1"]),
    st.sampled_from(["", "ms"]),
    st.sampled_from(["count", "sample", "measure", "unique"]),
    st.integers(0, 100).map(float),
    st.integers(0, 400).map(lambda s: MINUTE + s / 2),
    st.sampled_from([None, "u1", "u2"]),
)


@given(st.lists(st.tuples(_measurements, st.integers(0, 300)), max_size=60))
def test_add_and_add_rows_agree(steps: list[tuple[Measurement, int]]) -> None:
    """Measurements added one by one, or as rows a body at a time, with flushes between."""
    one, rows = Aggregator("shop", 30), Aggregator("shop", 30)
    got_one: list[Bucket] = []
    got_rows: list[Bucket] = []
    for i in range(0, len(steps), 7):
        batch = steps[i : i + 7]
        now = MINUTE + max(at for _, at in batch)
        for m, _ in batch:
            one.add(m, now)
        rows.add_rows(
            [(m.name, m.source, m.unit, m.type, m.value, m.time, m.text) for m, _ in batch], now
        )
        got_one += one.flush(now - 10)
        got_rows += rows.flush(now - 10)
    assert got_one == got_rows
    assert one.flush(math.inf) == rows.flush(math.inf)
    assert (one.late, one.dropped) == (rows.late, rows.dropped)


@given(
    st.lists(st.tuples(_measurements, st.integers(0, 1)), max_size=80),
    st.integers(1, 10),
)
def test_buckets_merged_from_two_workers_equal_those_of_one(
    items: list[tuple[Measurement, int]], every: int
) -> None:
    """The same measurements, each to one of two workers at random, handed over every few
    measurements and merged: every statistic of every bucket is what one aggregator gives."""
    one = Aggregator("shop", 30, grace=0)
    workers = [Aggregator("shop", 30), Aggregator("shop", 30)]
    merged = Aggregator("shop", 30, grace=0)
    now = MINUTE
    for i, (m, worker) in enumerate(items):
        one.add(m, now)
        workers[worker].add(m, now)
        if i % every == 0:
            for w in workers:
                merged.merge(w.take(), now)
    for w in workers:
        merged.merge(w.take(), now)
        assert w.take() == {}
    assert merged.flush(math.inf) == one.flush(math.inf)
    assert (merged.late, merged.dropped) == (one.late, one.dropped) == (0, 0)


def test_a_merged_share_can_be_late_or_too_old() -> None:
    worker, merged = Aggregator("shop", 60), Aggregator("shop", 60, grace=2)
    merged.add(Measurement("n", None, "", "count", 1.0, MINUTE + 1), MINUTE + 1)
    assert [b.sum for b in merged.flush(MINUTE + 62)] == [1.0]
    for s in (5, 6):
        worker.add(Measurement("n", None, "", "count", 1.0, MINUTE + s), MINUTE + 63)
    merged.merge(worker.take(), MINUTE + 63)
    assert merged.late == 2
    assert [(b.sum, b.previous is not None) for b in merged.flush(MINUTE + 63)] == [(3.0, True)]
    worker.add(Measurement("n", None, "", "count", 1.0, MINUTE + 7), MINUTE + 63)
    merged.merge(worker.take(), MINUTE + 122)  # 0 + 2 * 60 + 2: too old
    assert (merged.late, merged.dropped) == (2, 1)
