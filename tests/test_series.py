"""series.py: what the drain reads back from whisper files the real WhisperOutlet wrote, and the
names, stats, sources and ranges it refuses (one sentence each, never a path off the tree)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.errors import InvalidParams, NotFound
from gun.logs import series
from gun.logs.model import Bucket, Key, MetricType
from gun.logs.outlets.whisper import WhisperOutlet

NOW = int(time.time()) // 60 * 60


def bucket(name: str, kind: MetricType, at: int, source: str | None = None, **v: float) -> Bucket:
    return Bucket(Key("demo", name, source, "", kind, at, 60), **v)  # type: ignore[arg-type]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    outlet = WhisperOutlet(tmp_path / "whisper")
    at = NOW - 300
    outlet.emit(
        [
            bucket("router.status.2xx", "count", at, sum=120),
            bucket("router.status.2xx", "count", at + 60, sum=60),
            bucket("router.status.5xx", "count", at + 60, sum=3),
            bucket("router.error.H12", "count", at + 60, sum=2),
            bucket(
                "router.service",
                "measure",
                at,
                count=120,
                sum=600,
                min=1,
                max=40,
                mean=5,
                median=4,
                p95=20,
                p99=35,
            ),
            bucket(
                "router.service",
                "measure",
                at + 60,
                count=60,
                sum=600,
                min=1,
                max=90,
                mean=10,
                median=8,
                p95=45,
                p99=80,
            ),
            bucket("memory_rss", "sample", at, "web.1", last=40),
            bucket("memory_rss", "sample", at, "web.2", last=50),
            bucket(
                "db.query",
                "measure",
                at,
                count=1,
                sum=3,
                min=3,
                max=3,
                mean=3,
                median=3,
                p95=3,
                p99=3,
            ),
        ]
    )
    assert outlet.errors == 0
    return tmp_path / "whisper"


def test_the_listing_names_every_series_with_its_source_and_stats(root: Path) -> None:
    got = [(s.name, s.source, s.stats) for s in series.listing(root, "demo")]
    measure = ("count", "max", "mean", "median", "min", "p95", "p99", "sum")
    assert got == [
        ("db.query", None, measure),
        ("memory_rss", "web.1", ("last",)),
        ("memory_rss", "web.2", ("last",)),
        ("router.error.H12", None, ("sum",)),
        ("router.service", None, measure),
        ("router.status.2xx", None, ("sum",)),
        ("router.status.5xx", None, ("sum",)),
    ]
    assert series.listing(root, "nothing") == []


def test_a_read_gives_a_point_per_step_with_nulls_where_nothing_was_written(root: Path) -> None:
    got = series.read(root, "demo", "router.status.2xx", "sum", None, (NOW - 600, NOW))
    assert got.step == 60
    values = dict(got.points)
    assert values[NOW - 300] == 120 and values[NOW - 240] == 60
    assert values[NOW - 420] is None
    assert all(t % 60 == 0 for t, _ in got.points)
    rss = series.read(root, "demo", "memory_rss", "last", "web.2", (NOW - 600, NOW))
    assert dict(rss.points)[NOW - 300] == 50
    every = series.read_sources(root, "demo", "memory_rss", "last", (NOW - 600, NOW))
    assert sorted(every) == ["web.1", "web.2"]
    assert dict(every["web.1"].points)[NOW - 300] == 40


def test_the_summary_counts_requests_and_errors_once_and_keeps_the_worst_p95(root: Path) -> None:
    got = series.summary(root, "demo", (NOW - 3600, NOW))
    assert (got.requests, got.errors, got.p95) == (183, 3, 45)
    assert series.summary(root, "nothing", (NOW - 3600, NOW)) == series.Summary(0, 0, None)


def test_summaries_are_read_once_per_app_per_10_seconds(root: Path) -> None:
    kept = series.Summaries(root)
    first = kept.of("demo", 3600, NOW)
    assert first.requests == 183
    WhisperOutlet(root).emit([bucket("router.status.2xx", "count", NOW - 120, sum=17)])
    assert kept.of("demo", 3600, NOW + 9.9) == first  # kept: the files not read
    assert kept.of("demo", 3600, NOW + 10).requests == 200  # read anew
    assert kept.of("demo", 60, NOW + 10) != first  # another span is its own


def test_a_series_without_a_file_is_not_found_in_one_sentence(root: Path) -> None:
    with pytest.raises(NotFound) as e:
        series.read(root, "demo", "router.status.4xx", "sum", None, (NOW - 600, NOW))
    assert e.value.message == "app 'demo' has no series 'router.status.4xx' with stat sum"


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "../../etc",
        "a..b",
        ".a",
        "a.",
        "",
        "a/b",
        "%2e%2e",
        "a\\b",
        "a b",
        "é",
        "a;b",
        "x" * 65,
        ".".join(["a"] * 11),
        "a\x00",
    ],
)
def test_names_that_are_not_dotted_safe_parts_are_refused(root: Path, name: str) -> None:
    with pytest.raises(InvalidParams) as e:
        series.read(root, "demo", name, "sum", None, (NOW - 600, NOW))
    assert e.value.message.endswith("as GET /v1/apps/APP/series lists them")
    assert e.value.message.count(". ") == 0


@pytest.mark.parametrize("source", ["..", "web", "web.1/..", "web_1", "web.1.2", "../x.1", ""])
def test_sources_that_are_not_process_names_are_refused(source: str) -> None:
    if source == "":
        assert series.source_part(None) is None
        return
    with pytest.raises(InvalidParams, match="is not a process name like web.1"):
        series.source_part(source)


@pytest.mark.parametrize("stat", ["", "p50", "../sum", "SUM", "sum.wsp"])
def test_stats_outside_the_known_ones_are_refused(stat: str) -> None:
    with pytest.raises(InvalidParams, match="is not one of count, last, max"):
        series.check_stat(stat)


@pytest.mark.parametrize(
    ("start", "until", "why"),
    [
        ("100", "100", "from=100 is not before until=100"),
        ("-5", None, "from='-5' is not a time in whole seconds since 1970"),
        ("1e9", None, "from='1e9' is not a time in whole seconds since 1970"),
        ("0", "9999999", "from=0 to until=9999999 is longer than 31 days"),
        (None, str(NOW + 7200), f"until={NOW + 7200} is more than an hour ahead"),
    ],
)
def test_ranges_out_of_bounds_are_refused(start: str | None, until: str | None, why: str) -> None:
    with pytest.raises(InvalidParams) as e:
        series.time_range(start, until, NOW)
    assert e.value.message.startswith(why)


def test_a_range_defaults_to_the_last_hour() -> None:
    assert series.time_range(None, None, NOW + 0.5) == (NOW - 3600, NOW)


@given(st.text(max_size=80))
def test_any_accepted_name_stays_under_the_app_directory(name: str) -> None:
    try:
        parts = series.name_parts(name)
    except InvalidParams:
        return
    top = Path("/r/gun/demo")
    path = top.joinpath(*parts)
    assert path.resolve().is_relative_to(top) and ".." not in parts


@given(st.text(max_size=40))
def test_any_accepted_source_is_one_safe_directory(source: str) -> None:
    try:
        got = series.source_part(source)
    except InvalidParams:
        return
    assert got is not None and (got == "*" or ("/" not in got and "." not in got))
