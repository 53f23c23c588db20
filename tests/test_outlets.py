"""Outlets, each against its real destination: whisper files read back with whisper.fetch,
statsd datagrams caught by a UDP socket, Prometheus text checked line by line."""

from __future__ import annotations

import math
import re
import socket
import time
from pathlib import Path

import pytest
import whisper  # type: ignore[import-untyped]

from gun.errors import InvalidParams
from gun.logs.model import Bucket, Key, MetricType
from gun.logs.outlets import (
    MemoryOutlet,
    Outlet,
    PrometheusOutlet,
    StatsdOutlet,
    WhisperOutlet,
)
from gun.logs.outlets.paths import series_path
from gun.logs.outlets.whisper import archives_for, parse_retentions

NOW = int(time.time()) // 60 * 60


def key(
    name: str,
    type_: MetricType,
    unit: str = "",
    source: str | None = None,
    t: int = NOW,
    resolution: int = 60,
    app: str = "demo",
) -> Key:
    return Key(app, name, source, unit, type_, t, resolution)


def measure(k: Key, *values: float) -> Bucket:
    """A measure bucket as l2met computes it (sorted values, index floor(n*q))."""
    v = sorted(values)

    def q(p: float) -> float:
        return v[math.floor(len(v) * p)]

    return Bucket(
        k, count=len(v), sum=sum(v), min=v[0], max=v[-1], mean=sum(v) / len(v),
        median=q(0.5), p95=q(0.95), p99=q(0.99),
    )  # fmt: skip


BUCKETS = [
    measure(key("db.query", "measure", "ms"), 12, 30),
    Bucket(key("signup", "count"), sum=3.0),
    Bucket(key("memory_rss", "sample", "MB", source="web.1"), last=21.22),
    Bucket(key("user", "unique"), unique=4),
]


def test_every_outlet_is_an_outlet(tmp_path: Path) -> None:
    outlets: list[Outlet] = [
        MemoryOutlet(),
        WhisperOutlet(tmp_path),
        StatsdOutlet("127.0.0.1", 9),
        PrometheusOutlet(),
    ]
    for outlet in outlets:
        outlet.close()


def test_memory_outlet_keeps_what_it_got() -> None:
    outlet = MemoryOutlet()
    outlet.emit(BUCKETS[:2])
    outlet.emit(BUCKETS[2:])
    outlet.close()
    assert outlet.buckets == BUCKETS
    assert outlet.batches == [BUCKETS[:2], BUCKETS[2:]]
    assert outlet.closed


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "name", "source", "path"),
    [
        ("demo", "db.query", None, "gun.demo.db.query"),
        ("demo", "memory_rss", "web.1", "gun.demo.memory_rss.web_1"),
        ("demo", "router.status.5xx", "router", "gun.demo.router.status.5xx.router"),
        ("my app", "a b/c:d|e", "x y", "gun.my_app.a_b_c_d_e.x_y"),
        ("demo", "../../etc/passwd", None, "gun.demo._._._._._etc_passwd"),
        ("demo", "a..b.", "", "gun.demo.a._.b._._"),
        ("demo", "Çé-ü_9", None, "gun.demo.__-__9"),
    ],
)
def test_graphite_paths_are_sanitised(app: str, name: str, source: str | None, path: str) -> None:
    assert series_path("gun", key(name, "count", source=source, app=app)) == path


# -- whisper -------------------------------------------------------------------------------


def fetch(path: Path, t: int = NOW) -> list[float | None]:
    (start, _, step), values = whisper.fetch(str(path), t - 60, t + 60)
    return [
        v
        for (when, v) in zip(range(start, start + step * len(values), step), values, strict=True)
        if when == t
    ]


def test_whisper_files_at_the_documented_paths_hold_the_values(tmp_path: Path) -> None:
    outlet = WhisperOutlet(tmp_path)
    outlet.emit(BUCKETS)
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.wsp"))
    assert files == [
        *(f"gun/demo/db/query/{s}.wsp" for s in sorted(
            ["count", "sum", "min", "max", "mean", "median", "p95", "p99"])),
        "gun/demo/memory_rss/web_1/last.wsp",
        "gun/demo/signup/sum.wsp",
        "gun/demo/user/unique.wsp",
    ]  # fmt: skip
    expect = {
        "db/query/count": 2, "db/query/sum": 42, "db/query/min": 12, "db/query/max": 30,
        "db/query/mean": 21, "db/query/median": 30, "db/query/p95": 30, "db/query/p99": 30,
        "memory_rss/web_1/last": 21.22, "signup/sum": 3, "user/unique": 4,
    }  # fmt: skip
    for name, value in expect.items():
        assert fetch(tmp_path / "gun" / "demo" / f"{name}.wsp") == [value], name
    assert (outlet.created, outlet.errors) == (11, 0)


def test_whisper_files_fit_the_bucket_resolution(tmp_path: Path) -> None:
    outlet = WhisperOutlet(tmp_path)
    outlet.emit([Bucket(key("a", "count", t=NOW, resolution=10), sum=1.0)])
    outlet.emit([measure(key("b", "measure", t=NOW, resolution=1), 5)])
    a = whisper.info(str(tmp_path / "gun/demo/a/sum.wsp"))
    assert [(x["secondsPerPoint"], x["points"]) for x in a["archives"]] == [(10, 8640), (60, 43200)]
    assert (a["aggregationMethod"], a["xFilesFactor"]) == ("sum", 0.0)
    b = whisper.info(str(tmp_path / "gun/demo/b/max.wsp"))
    assert [x["secondsPerPoint"] for x in b["archives"]] == [1, 10, 60]
    assert b["aggregationMethod"] == "max"
    assert whisper.info(str(tmp_path / "gun/demo/b/p95.wsp"))["aggregationMethod"] == "average"


@pytest.mark.parametrize(
    ("resolution", "archives"),
    [
        (1, [(1, 3600), (10, 8640), (60, 43200)]),
        (5, [(5, 720), (10, 8640), (60, 43200)]),
        (7, [(7, 515), (14, 6172), (70, 37029)]),
        (10, [(10, 8640), (60, 43200)]),
        (60, [(60, 43200)]),
        (3600, [(3600, 720)]),
    ],
)
def test_archives_for_a_resolution(resolution: int, archives: list[tuple[int, int]]) -> None:
    assert archives_for(resolution, parse_retentions("1s:1h,10s:1d,60s:30d")) == archives


def test_bad_retentions_are_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(InvalidParams, match="1s:1h,10s:1d,60s:30d"):
        WhisperOutlet(tmp_path, retentions="10s:1h,15s:1d")
    with pytest.raises(InvalidParams, match="'forever'"):
        WhisperOutlet(tmp_path, retentions="forever")


def test_whisper_writes_each_file_once_per_emit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int]] = []
    real = whisper.update_many

    def spy(path: str, points: list[tuple[int, float]]) -> None:
        calls.append((Path(path).name, len(points)))
        real(path, points)

    monkeypatch.setattr(whisper, "update_many", spy)
    outlet = WhisperOutlet(tmp_path)
    earlier = Bucket(key("signup", "count", t=NOW - 60), sum=1.0)
    outlet.emit([earlier, BUCKETS[1]])
    assert calls == [("sum.wsp", 2)]
    (start, _, step), values = whisper.fetch(
        str(tmp_path / "gun/demo/signup/sum.wsp"), NOW - 120, NOW + 60
    )
    assert [v for v in values if v is not None] == [1.0, 3.0]


def test_whisper_errors_are_counted_and_other_files_still_written(tmp_path: Path) -> None:
    outlet = WhisperOutlet(tmp_path)
    broken = tmp_path / "gun/demo/signup/sum.wsp"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not whisper")
    (tmp_path / "gun/demo/user").write_text("a file where a directory should be")
    outlet.emit(BUCKETS)
    assert outlet.errors == 2
    assert fetch(tmp_path / "gun/demo/memory_rss/web_1/last.wsp") == [21.22]
    assert fetch(tmp_path / "gun/demo/db/query/max.wsp") == [30]


# -- statsd --------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    return sock


def received(sock: socket.socket, count: int) -> list[str]:
    return [sock.recv(65535).decode() for _ in range(count)]


def test_statsd_lines_for_each_bucket_type(receiver: socket.socket) -> None:
    outlet = StatsdOutlet("127.0.0.1", receiver.getsockname()[1])
    outlet.emit(BUCKETS)
    outlet.close()
    assert received(receiver, 1) == [
        "gun.demo.db.query:2|c\n"
        "gun.demo.db.query.sum:42|c\n"
        "gun.demo.db.query.min:12|g\n"
        "gun.demo.db.query.max:30|g\n"
        "gun.demo.db.query.mean:21|g\n"
        "gun.demo.db.query.median:30|g\n"
        "gun.demo.db.query.p95:30|g\n"
        "gun.demo.db.query.p99:30|g\n"
        "gun.demo.signup:3|c\n"
        "gun.demo.memory_rss.web_1:21.22|g\n"
        "gun.demo.user:4|g"
    ]
    assert (outlet.sent, outlet.errors) == (1, 0)


def test_statsd_negative_gauges_are_not_deltas_and_odd_names_are_sanitised(
    receiver: socket.socket,
) -> None:
    outlet = StatsdOutlet("127.0.0.1", receiver.getsockname()[1], prefix="drain.gun")
    outlet.emit([
        Bucket(key("temp:c|g", "sample", app="my app"), last=-5.5),
        Bucket(key("x", "count", source="a\nb"), sum=-1),
        Bucket(key("nan", "sample"), last=math.nan),
    ])  # fmt: skip
    assert received(receiver, 1) == [
        "drain.gun.my_app.temp_c_g:0|g\ndrain.gun.my_app.temp_c_g:-5.5|g\ndrain.gun.demo.x.a_b:-1|c"
    ]


def test_statsd_packs_lines_into_datagrams_of_at_most_1400_bytes(receiver: socket.socket) -> None:
    outlet = StatsdOutlet("127.0.0.1", receiver.getsockname()[1])
    buckets = [Bucket(key(f"series{i:03}", "count"), sum=float(i)) for i in range(300)]
    outlet.emit(buckets)
    datagrams = received(receiver, outlet.sent)
    assert outlet.sent > 1 and outlet.errors == 0
    assert all(len(d.encode()) <= 1400 for d in datagrams)
    assert all(len(d.encode()) > 1400 - 30 for d in datagrams[:-1])  # full, not one per line
    lines = "\n".join(datagrams).split("\n")
    assert lines == [f"gun.demo.series{i:03}:{i}|c" for i in range(300)]


def test_statsd_socket_errors_are_counted_not_raised(receiver: socket.socket) -> None:
    port = receiver.getsockname()[1]
    outlet = StatsdOutlet("127.0.0.1", port)
    too_long = Bucket(key("x" * 70000, "count"), sum=1.0)  # more than a UDP datagram holds
    outlet.emit([too_long])
    assert (outlet.sent, outlet.errors) == (0, 1)
    outlet.emit(BUCKETS[1:2])
    assert received(receiver, 1) == ["gun.demo.signup:3|c"]

    receiver.close()  # nobody listens any more: the kernel answers "port unreachable"
    deadline = time.monotonic() + 5
    while outlet.errors < 2 and time.monotonic() < deadline:
        outlet.emit(BUCKETS[1:2])
        time.sleep(0.01)
    assert outlet.errors >= 2
    outlet.close()


# -- prometheus ----------------------------------------------------------------------------

EXPOSITION = """\
# HELP gun_db_query measure#db.query: quantiles of the latest bucket; _sum and _count of all buckets
# TYPE gun_db_query summary
gun_db_query{app="demo",unit="ms",quantile="0.5"} 7
gun_db_query{app="demo",unit="ms",quantile="0.95"} 7
gun_db_query{app="demo",unit="ms",quantile="0.99"} 7
gun_db_query_sum{app="demo",unit="ms"} 49
gun_db_query_count{app="demo",unit="ms"} 3
# HELP gun_db_query_max measure#db.query: maximum in the latest bucket
# TYPE gun_db_query_max gauge
gun_db_query_max{app="demo",unit="ms"} 7
# HELP gun_db_query_min measure#db.query: minimum in the latest bucket
# TYPE gun_db_query_min gauge
gun_db_query_min{app="demo",unit="ms"} 7
# HELP gun_memory_rss sample#memory_rss: last value in the latest bucket
# TYPE gun_memory_rss gauge
gun_memory_rss{app="demo",source="web\\"2\\\\\\n",unit="MB"} 0.5
gun_memory_rss{app="demo",source="web.1",unit="MB"} 21.22
# HELP gun_router_status_5xx_total count#router.status.5xx: sum of the values counted
# TYPE gun_router_status_5xx_total counter
gun_router_status_5xx_total{app="demo",source="router"} 1
# HELP gun_signup_total count#signup: sum of the values counted
# TYPE gun_signup_total counter
gun_signup_total{app="demo"} 5
# HELP gun_user unique#user: number of distinct values in the latest bucket
# TYPE gun_user gauge
gun_user{app="demo"} 4
"""


def test_prometheus_exposition_is_exact() -> None:
    outlet = PrometheusOutlet()
    outlet.emit(BUCKETS)
    outlet.emit([
        measure(key("db.query", "measure", "ms", t=NOW + 60), 7),
        Bucket(key("signup", "count", t=NOW + 60), sum=2.0),
        Bucket(key("memory_rss", "sample", "MB", source='web"2\\\n'), last=0.5),
        Bucket(key("router.status.5xx", "count", source="router"), sum=1.0),
    ])  # fmt: skip
    outlet.emit([Bucket(key("user", "unique", t=NOW - 60), unique=99)])  # late: not the latest
    text = outlet.render()
    assert text == EXPOSITION
    check_exposition(text)


def test_prometheus_names_that_collide_are_shown_once_and_said_so() -> None:
    outlet = PrometheusOutlet()
    outlet.emit([
        Bucket(key("x", "sample"), last=1.0),
        measure(key("x", "measure"), 2),
        Bucket(key("db.query", "sample"), last=3.0),
        Bucket(key("db_query", "sample"), last=4.0),
        Bucket(key("x_count", "sample"), last=5.0),
        Bucket(key("9lives-ö", "sample", app='a"pp'), last=6.0),
    ])  # fmt: skip
    text = outlet.render()
    check_exposition(text)
    assert 'gun_9lives__{app="a\\"pp"} 6\n' in text
    assert "gun_db_query 3\n" not in text and 'gun_db_query{app="demo"} 3\n' in text
    assert text.endswith(
        "# gun: sample#db_query app=demo not shown: its metric name collides with another series\n"
        "# gun: sample#x app=demo not shown: its metric name collides with another series\n"
        "# gun: sample#x_count app=demo not shown: its metric name collides with another series\n"
    )


_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABELS = r'\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\}'
_SAMPLE = re.compile(rf"({_NAME})({_LABELS})? (\S+)")
_VALUE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN")
_SUFFIXES = {"counter": [""], "gauge": [""], "summary": ["", "_sum", "_count"]}


def check_exposition(text: str) -> None:
    """Strictly the text format 0.0.4: LF-terminated lines; HELP and TYPE once per family, before
    its samples; a family's samples together; names, labels and values well formed; no sample
    twice; summaries' bare samples have a quantile label."""
    assert text.endswith("\n") and "\r" not in text
    types: dict[str, str] = {}
    helps: set[str] = set()
    current: str | None = None
    seen: set[tuple[str, str]] = set()
    done: set[str] = set()
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            _, kind, name, rest = line.split(" ", 3)
            assert re.fullmatch(_NAME, name), line
            assert name not in done, f"family {name} is split: {line}"
            if kind == "HELP":
                assert name not in helps and name not in types, line
                helps.add(name)
            else:
                assert name not in types and rest in _SUFFIXES, line
                types[name] = rest
            if current is not None and current != name:
                done.add(current)
            current = name
            continue
        if line.startswith("#"):
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        assert _VALUE.fullmatch(value), line
        assert current is not None and current in types, f"sample before its TYPE: {line}"
        assert name in [current + s for s in _SUFFIXES[types[current]]], line
        if types[current] == "summary" and name == current:
            assert 'quantile="' in (labels or ""), line
        assert (name, labels or "") not in seen, f"duplicate sample: {line}"
        seen.add((name, labels or ""))


@pytest.mark.parametrize(
    "bad",
    [
        "gun_x 1\n",  # no TYPE
        "# TYPE gun_x gauge\ngun_x 1\ngun_x 2\n",  # the same sample twice
        '# TYPE gun_x gauge\ngun_x{app="a"b"} 1\n',  # unescaped quote
        '# TYPE gun_x gauge\ngun_x{app="a"} one\n',  # not a number
        "# TYPE 9x gauge\n9x 1\n",  # bad name
        "# TYPE gun_x gauge\ngun_x 1\n# TYPE gun_y gauge\ngun_y 1\n# TYPE gun_x gauge\n",  # split
        "# TYPE gun_x summary\ngun_x 1\n",  # quantile missing
        "# TYPE gun_x gauge\ngun_x_sum 1\n",  # sample of another family
        "# TYPE gun_x gauge\ngun_x 1",  # no final LF
    ],
)
def test_the_exposition_check_is_strict(bad: str) -> None:
    with pytest.raises(AssertionError):
        check_exposition(bad)


# -- a bucket handed out again (late measurements) ------------------------------------------


def again(before: Bucket, *values: float) -> Bucket:
    """`before` with more measurements, as the aggregator hands it out again."""
    if before.key.type == "count":
        return Bucket(before.key, sum=(before.sum or 0) + sum(values), previous=before)
    assert before.min is not None and before.max is not None
    return measure(before.key, before.min, before.max, *values).with_previous(before)


def test_statsd_sends_what_counters_grew_by_and_gauges_anew(receiver: socket.socket) -> None:
    outlet = StatsdOutlet("127.0.0.1", receiver.getsockname()[1])
    first = [BUCKETS[0], BUCKETS[1]]
    outlet.emit(first)
    outlet.emit([again(first[0], 6), again(first[1], 2)])
    outlet.close()
    assert received(receiver, 2)[1] == (
        "gun.demo.db.query:1|c\n"
        "gun.demo.db.query.sum:6|c\n"
        "gun.demo.db.query.min:6|g\n"
        "gun.demo.db.query.max:30|g\n"
        "gun.demo.db.query.mean:16|g\n"
        "gun.demo.db.query.median:12|g\n"
        "gun.demo.db.query.p95:30|g\n"
        "gun.demo.db.query.p99:30|g\n"
        "gun.demo.signup:2|c"
    )


def test_prometheus_adds_what_a_bucket_handed_out_again_grew_by() -> None:
    outlet = PrometheusOutlet()
    outlet.emit([BUCKETS[0], BUCKETS[1]])
    outlet.emit([again(BUCKETS[0], 6), again(BUCKETS[1], 2)])
    text = outlet.render()
    assert 'gun_signup_total{app="demo"} 5\n' in text
    assert 'gun_db_query_count{app="demo",unit="ms"} 3\n' in text
    assert 'gun_db_query_sum{app="demo",unit="ms"} 48\n' in text
    assert 'gun_db_query_min{app="demo",unit="ms"} 6\n' in text


def test_whisper_overwrites_the_point_of_a_bucket_handed_out_again(tmp_path: Path) -> None:
    outlet = WhisperOutlet(tmp_path)
    outlet.emit([BUCKETS[1]])
    outlet.emit([again(BUCKETS[1], 2)])
    assert fetch(tmp_path / "gun/demo/signup/sum.wsp") == [5]
