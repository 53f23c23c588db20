"""l2met conventions: tables of real log messages (app, router, runtime metrics) and what they
measure, every invalid metric with its sentence, and properties over random messages."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.logs import parse
from gun.logs.model import Line, Measurement, MetricType
from gun.logs.parse import NOTHING, Parsed

T = 1655131943.622778
NAN = (
    "is not a number with an optional unit (digits with at most one '.', then letters,"
    " e.g. 12ms or 40.9MB)"
)


def app(msg: str) -> Line:
    return Line(T, "2022-06-13T14:52:23.622778+00:00", "app", "web.1", msg)


def router(msg: str) -> Line:
    return Line(T, "2022-06-13T14:52:23.622778+00:00", "heroku", "router", msg)


def runtime(msg: str) -> Line:
    return Line(T, "2022-06-13T14:52:23.622778+00:00", "heroku", "web.1", msg)


def m(
    name: str,
    unit: str,
    type: MetricType,
    value: float,
    source: str | None = None,
    text: str | None = None,
) -> Measurement:
    return Measurement(name, source, unit, type, value, T, text)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            app("measure#db.query=12ms count#x=1"),
            [m("db.query", "ms", "measure", 12.0), m("x", "", "count", 1.0)],
        ),
        (
            runtime(
                "source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456"
                " sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99"
            ),
            [
                m("load_avg_1m", "", "sample", 2.46, "web.1"),
                m("load_avg_5m", "", "sample", 1.06, "web.1"),
                m("load_avg_15m", "", "sample", 0.99, "web.1"),
            ],
        ),
        (
            runtime(
                "source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456"
                " sample#memory_total=21.00MB sample#memory_rss=21.22MB sample#memory_cache=0.00MB"
                " sample#memory_swap=0.00MB sample#memory_pgpgin=348836pages"
                " sample#memory_pgpgout=343403pages sample#memory_quota=512.00MB"
            ),
            [
                m("memory_total", "MB", "sample", 21.0, "web.1"),
                m("memory_rss", "MB", "sample", 21.22, "web.1"),
                m("memory_cache", "MB", "sample", 0.0, "web.1"),
                m("memory_swap", "MB", "sample", 0.0, "web.1"),
                m("memory_pgpgin", "pages", "sample", 348836.0, "web.1"),
                m("memory_pgpgout", "pages", "sample", 343403.0, "web.1"),
                m("memory_quota", "MB", "sample", 512.0, "web.1"),
            ],
        ),
        # l2met's own test line: legacy measure.NAME, `=1` and a bare value.
        (
            app("measure.hello=1 measure.world=1ms"),
            [m("hello", "", "measure", 1.0), m("world", "ms", "measure", 1.0)],
        ),
        # An empty value counts as 1, for every numeric type.
        (
            app("count#hits measure#x= sample#y"),
            [m("hits", "", "count", 1.0), m("x", "", "measure", 1.0), m("y", "", "sample", 1.0)],
        ),
        (
            app("measure#a=.5s measure#b=5. measure#c=007ms measure#d=40.9MB"),
            [
                m("a", "s", "measure", 0.5),
                m("b", "", "measure", 5.0),
                m("c", "ms", "measure", 7.0),
                m("d", "MB", "measure", 40.9),
            ],
        ),
        (
            app("unique#users=u123 unique#users=u9"),
            [m("users", "", "unique", 0.0, text="u123"), m("users", "", "unique", 0.0, text="u9")],
        ),
        # source= applies to the whole line, wherever it is; the first one counts.
        (
            app("count#jobs=2 source=worker.3 source=worker.4"),
            [m("jobs", "", "count", 2.0, "worker.3")],
        ),
        (app("source= count#jobs"), [m("jobs", "", "count", 1.0)]),
        (app('source="web 1" count#jobs=1'), [m("jobs", "", "count", 1.0, "web 1")]),
        # Quoted values are values: what is inside them is no metric.
        (
            app('at=info msg="signed up, count#fake=1 measure#x=2" count#signups=1'),
            [m("signups", "", "count", 1.0)],
        ),
        (
            app('msg="say \\"count#fake=1\\" source=x" count#real=2'),
            [m("real", "", "count", 2.0)],
        ),
        (
            app('measure#render="12ms" count#open="'),
            [m("render", "ms", "measure", 12.0), m("open", "", "count", 1.0)],
        ),
        (app("at=info\tmeasure#tab=3ms"), [m("tab", "ms", "measure", 3.0)]),
        # Lines that are not metrics.
        (app("Processing by PostsController#index as HTML"), []),
        (app("State changed from starting to up"), []),
        (app("issue #12 closed"), []),
        # l2met's legacy form is a bare key too, even in prose: `measure.py` measures py=1.
        (app("edited measure.py and util#2"), [m("py", "", "measure", 1.0)]),
        # A process may call itself router: only heroku's router is the router.
        (
            Line(T, "t", "app", "router", "service=3ms count#x=1"),
            [m("x", "", "count", 1.0)],
        ),
    ],
    ids=[
        "app",
        "runtime-load",
        "runtime-memory",
        "l2met-legacy",
        "empty-values",
        "value-forms",
        "unique",
        "source-anywhere",
        "source-empty",
        "source-quoted",
        "quoted-values",
        "escaped-quotes",
        "quoted-metric-values",
        "tab",
        "controller-hash",
        "plain",
        "text-with-hash",
        "legacy-in-prose",
        "app-named-router",
    ],
)
def test_measurements(line: Line, expected: list[Measurement]) -> None:
    assert parse.parse(line) == (Parsed(expected, []) if expected else NOTHING)
    assert parse.measurements(line) == expected


def test_prefix_is_prepended_to_every_name() -> None:
    assert parse.measurements(app("measure#db.query=12ms"), prefix="shop.") == [
        m("shop.db.query", "ms", "measure", 12.0)
    ]
    assert [x.name for x in parse.measurements(router(ROUTER_INFO), prefix="shop.")] == [
        "shop.router.connect",
        "shop.router.service",
        "shop.router.status.2xx",
        "shop.router.bytes",
    ]


@pytest.mark.parametrize(
    ("msg", "invalid"),
    [
        ("measure#x=abc", f"measure#x=abc: the value 'abc' {NAN}"),
        ("measure#x=-5", "measure#x=-5: the value '-5' is negative; negative values are dropped"),
        ("measure#=3", "measure#=3: the metric has no name after 'measure#'"),
        ("measure.=3", "measure.=3: the metric has no name after 'measure.'"),
        ("count#=", "count#=: the metric has no name after 'count#'"),
        ("unique#users=", "unique#users=: a unique# metric needs a value to count"),
        ("measure#x=1e3", f"measure#x=1e3: the value '1e3' {NAN}"),
        ("measure#x=1.2.3", f"measure#x=1.2.3: the value '1.2.3' {NAN}"),
        ("measure#x=12µs", f"measure#x=12µs: the value '12µs' {NAN}"),
        ("measure#x=١٢", f"measure#x=١٢: the value '١٢' {NAN}"),
        (
            "sample#x=-0.5MB",
            "sample#x=-0.5MB: the value '-0.5MB' is negative; negative values are dropped",
        ),
        ("count#x=-", f"count#x=-: the value '-' {NAN}"),
        ("count#x=+1", f"count#x=+1: the value '+1' {NAN}"),
        ("measure#x=12ms/s", f"measure#x=12ms/s: the value '12ms/s' {NAN}"),
        ("measure#x=" + "9" * 400, f"measure#x={'9' * 400}: the value '{'9' * 400}' is too large"),
    ],
    ids=[
        "abc",
        "negative",
        "no-name",
        "legacy-no-name",
        "count-no-name",
        "unique-empty",
        "exponent",
        "two-dots",
        "non-ascii-unit",
        "non-ascii-digits",
        "negative-sample",
        "minus",
        "plus",
        "unit-with-slash",
        "too-large",
    ],
)
def test_invalid_metrics_are_reported_never_raised(msg: str, invalid: str) -> None:
    line = app(f"at=info {msg} count#ok=1")
    assert parse.parse(line) == Parsed([m("ok", "", "count", 1.0)], [invalid])


ROUTER_INFO = (
    'at=info method=GET path="/" host=shop.example.com request_id=5a4f2b1c fwd="1.2.3.4"'
    " dyno=web.1 connect=0ms service=3ms status=200 bytes=6979 protocol=https"
)
ROUTER_H12 = (
    'at=error code=H12 desc="Request timeout" method=GET path="/" host=x request_id=y'
    ' fwd="1.2.3.4" dyno=web.1 connect=1ms service=30001ms status=503 bytes=0 protocol=https'
)
ROUTER_H10 = (
    'at=error code=H10 desc="App crashed" method=GET path="/" host=x request_id=y'
    ' fwd="1.2.3.4" dyno= connect= service= status=503 bytes= protocol=https'
)


@pytest.mark.parametrize(
    ("msg", "expected", "invalid"),
    [
        (
            ROUTER_INFO,
            [
                m("router.connect", "ms", "measure", 0.0),
                m("router.service", "ms", "measure", 3.0),
                m("router.status.2xx", "", "count", 1.0),
                m("router.bytes", "bytes", "measure", 6979.0),
            ],
            [],
        ),
        (
            ROUTER_H12,
            [
                m("router.error.H12", "", "count", 1.0),
                m("router.connect", "ms", "measure", 1.0),
                m("router.service", "ms", "measure", 30001.0),
                m("router.status.5xx", "", "count", 1.0),
                m("router.bytes", "bytes", "measure", 0.0),
            ],
            [],
        ),
        (
            ROUTER_H10,
            [m("router.error.H10", "", "count", 1.0), m("router.status.5xx", "", "count", 1.0)],
            [],
        ),
        # Heroku's documented 2012 lines: unquoted path, no request_id or protocol.
        (
            'at=info method=GET path=/ host=myapp.herokuapp.com fwd="204.204.204.204"'
            " dyno=web.1 connect=1ms service=18ms status=200 bytes=13",
            [
                m("router.connect", "ms", "measure", 1.0),
                m("router.service", "ms", "measure", 18.0),
                m("router.status.2xx", "", "count", 1.0),
                m("router.bytes", "bytes", "measure", 13.0),
            ],
            [],
        ),
        (
            'at=error code=H12 desc="Request timeout" method=GET path=/ host=myapp.herokuapp.com'
            ' fwd="204.204.204.204" dyno=web.1 connect= service=30000ms status=503 bytes=0',
            [
                m("router.error.H12", "", "count", 1.0),
                m("router.service", "ms", "measure", 30000.0),
                m("router.status.5xx", "", "count", 1.0),
                m("router.bytes", "bytes", "measure", 0.0),
            ],
            [],
        ),
        # Any order, code= in a quoted path: the general logfmt path, same results.
        (
            'status=302 service=12ms path="/callback?code=abc&x=1" connect=1ms bytes=10',
            [
                m("router.status.3xx", "", "count", 1.0),
                m("router.service", "ms", "measure", 12.0),
                m("router.connect", "ms", "measure", 1.0),
                m("router.bytes", "bytes", "measure", 10.0),
            ],
            [],
        ),
        (
            "at=info dyno=web.1 connect=abc service=-3ms status=20x bytes=1.5kB",
            [m("router.bytes", "kB", "measure", 1.5)],
            [
                f"connect=abc: the value 'abc' {NAN}",
                "service=-3ms: the value '-3ms' is negative; negative values are dropped",
                "status=20x: the status '20x' is not an HTTP status code (100 to 599)",
            ],
        ),
        (
            'at=error code=H-12 desc="x" dyno=web.1 connect=1ms service=2ms status=600 bytes=0',
            [
                m("router.connect", "ms", "measure", 1.0),
                m("router.service", "ms", "measure", 2.0),
                m("router.bytes", "bytes", "measure", 0.0),
            ],
            [
                "code=H-12: the error code 'H-12' is not letters and digits (e.g. H12)",
                "status=600: the status '600' is not an HTTP status code (100 to 599)",
            ],
        ),
        ("at=info method=GET", [], []),
    ],
    ids=[
        "info",
        "h12",
        "h10-empty-values",
        "2012-info",
        "2012-h12",
        "any-order",
        "invalid-values",
        "invalid-code-and-status",
        "nothing",
    ],
)
def test_router_lines(msg: str, expected: list[Measurement], invalid: list[str]) -> None:
    assert parse.parse(router(msg)) == (
        Parsed(expected, invalid) if expected or invalid else NOTHING
    )


def test_parse_lines_gives_rows_in_line_order() -> None:
    lines = [app("count#a=2"), app("plain text"), router(ROUTER_H10), app("measure#x=abc")]
    rows, invalid = parse.parse_lines(lines, prefix="p.")
    assert [Measurement(*row) for row in rows] == [
        m("p.a", "", "count", 2.0),
        m("p.router.error.H10", "", "count", 1.0),
        m("p.router.status.5xx", "", "count", 1.0),
    ]
    assert invalid == [f"measure#x=abc: the value 'abc' {NAN}"]


# Properties.

_words = st.sampled_from(
    [
        "measure#",
        "sample#",
        "count#",
        "unique#",
        "measure.",
        "source=",
        "=",
        '"',
        "\\",
        " ",
        "\t",
        "x",
        "db.q",
        "-",
        ".",
        "5",
        "12",
        "ms",
        "#",
        "µ",
        "dyno=",
        "connect=",
        "service=",
        "status=",
        "bytes=",
        "code=",
        "at=error code=",
    ]
)
_messages = st.one_of(st.text(max_size=120), st.lists(_words, max_size=30).map("".join))


@given(_messages, st.sampled_from([("app", "web.1"), ("heroku", "router"), ("heroku", "web.2")]))
def test_arbitrary_messages_never_raise(msg: str, source: tuple[str, str]) -> None:
    result = parse.parse(Line(T, "t", source[0], source[1], msg), prefix="p.")
    for x in result.measurements:
        assert x.name.startswith("p.") and len(x.name) > 2
        assert x.time == T
        if x.type == "unique":
            assert x.text
        else:
            assert x.value >= 0 and math.isfinite(x.value)
    assert all(isinstance(s, str) and s for s in result.invalid)


_router_values = st.sampled_from(
    ["", "0ms", "3ms", "30001ms", "12", "abc", "-3ms", "1.5kB", "200", "503", "600", "H12", "x-y"]
)


@given(
    st.lists(_router_values, min_size=5, max_size=5),
    st.sampled_from(["", "at=error code=H12 ", "at=error code= ", 'at=error code="H 1" ']),
    st.sampled_from(['path="/"', "path=/", 'path="/?code=1"', 'desc="a b"', 'x="a\\"b"', 'x="']),
)
def test_the_router_fast_path_matches_the_general_path(
    values: list[str], head: str, middle: str
) -> None:
    dyno, connect, service, status, nbytes = values
    msg = (
        f"{head}method=GET {middle} dyno={dyno} connect={connect} service={service}"
        f" status={status} bytes={nbytes} protocol=https"
    )
    fast: tuple[list[parse.Row], list[str]] = ([], [])
    general: tuple[list[parse.Row], list[str]] = ([], [])
    parse._router(msg, T, "", *fast)
    parse._router_general(msg, T, "", *general)
    assert fast == general


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (runtime("Error R14 (Memory quota exceeded)"), [m("error.R14", "", "count", 1.0)]),
        (
            runtime(
                "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 60 "
                "seconds of launch"
            ),
            [m("error.R10", "", "count", 1.0)],
        ),
        (runtime("Error R14"), []),  # no description: not Heroku's form
        (runtime("Error Rx (what)"), []),
        (runtime("Error R1234 (too long)"), []),
        (app("Error R14 (Memory quota exceeded)"), []),  # the app's own output
    ],
)
def test_runtime_error_lines_count_their_r_code(line: Line, expected: list[Measurement]) -> None:
    assert parse.measurements(line) == expected
