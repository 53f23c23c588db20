"""HAProxy's syslog datagrams -> Heroku's router lines (gun.router.lines): tables of datagrams
as HAProxy 2.6 sends them, every termination state's H code, hostile values that never break
the line the drain reads, and the metrics the drain makes of them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.logs import parse
from gun.logs.aggregate import Aggregator
from gun.logs.model import Line
from gun.model import APP_NAME
from gun.router import lines

HEAD = b"<134>1 2026-12-06T00:48:47.117966+00:00 - haproxy 6447 - - "
RID = "6d1e3c0a-1f43-4b3e-9a55-0c3f9d8f2a11"
T = 1796518127.117966


def quoted(value: str) -> str:
    """As HAProxy's %{+Q,+E} writes a string: quoted, backslash before `"`, `\\` and `]`."""
    return '"' + re.sub(r'(["\\\]])', r"\\\1", value) + '"'


def datagram(
    *,
    backend: str = "app-shop",
    server: str = "web.1",
    method: str = "GET",
    path: str = "/",
    host: str = "shop.localhost",
    rid: str = RID,
    client: str = "127.0.0.1",
    tc: int = 0,
    tr: int = 12,
    td: int = 3,
    status: int = 200,
    size: int = 1234,
    state: str = "--",
    ssl: int = 0,
) -> bytes:
    """One request's log datagram, in haproxy.LOG_FORMAT."""
    message = (
        f"{backend} {server} {method} {quoted(path)} {quoted(host)} {quoted(rid)}"
        f" {quoted(client)} {tc} {tr} {td} {status} {size} {state} {ssl}"
    )
    return HEAD + message.encode() + b"\n"


def test_a_request() -> None:
    assert lines.read(datagram()) == (
        "shop",
        f'at=info method=GET path="/" host=shop.localhost request_id={RID} fwd="127.0.0.1"'
        " dyno=web.1 connect=0ms service=15ms status=200 bytes=1234 protocol=http",
    )


def test_a_request_as_haproxy_sent_it() -> None:
    # written out in full, as HAProxy 2.6 sends one in haproxy.LOG_FORMAT
    got = lines.read(
        b'<134>1 2026-12-06T00:48:47.117966+00:00 - haproxy 6447 - - app-shop web.2 POST "/cart?'
        b'id=7&q=a%20b" "shop.localhost" "0a1b2c3d4e5f60718293a4b5c6d7e8f9" "192.0.2.4" 1 40 2'
        b" 201 87 -- 1\n"
    )
    assert got == (
        "shop",
        'at=info method=POST path="/cart?id=7&q=a%20b" host=shop.localhost'
        ' request_id=0a1b2c3d4e5f60718293a4b5c6d7e8f9 fwd="192.0.2.4" dyno=web.2 connect=1ms'
        " service=42ms status=201 bytes=87 protocol=https",
    )


TIMES = " connect=0ms service=15ms"
NEVER = " connect= service="


@pytest.mark.parametrize(
    ("fields", "head", "tail"),
    [
        ({}, "at=info", "dyno=web.1" + TIMES + " status=200"),
        (
            {"state": "sH", "status": 504, "tr": -1, "td": -1},
            'at=error code=H12 desc="Request timeout"',
            "dyno=web.1 connect=0ms service= status=503",
        ),
        (
            {"state": "SC", "server": "<NOSRV>", "status": 503, "tc": -1, "tr": -1, "td": -1},
            'at=error code=H14 desc="No web processes running"',
            "dyno=" + NEVER + " status=503",
        ),
        (
            {"state": "SC", "status": 503, "tc": -1, "tr": -1, "td": -1},
            'at=error code=H19 desc="Backend connection refused"',
            "dyno=web.1" + NEVER + " status=503",
        ),
        (
            {"state": "sC", "status": 503, "tc": -1, "tr": -1, "td": -1},
            'at=error code=H19 desc="Backend connection timeout"',
            "dyno=web.1" + NEVER + " status=503",
        ),
        (
            {"state": "SH", "status": 502, "tr": -1, "td": -1},
            'at=error code=H13 desc="Connection closed without response"',
            "dyno=web.1 connect=0ms service= status=503",
        ),
        (
            {"state": "SD"},
            'at=error code=H18 desc="Server Request Interrupted"',
            "dyno=web.1" + TIMES + " status=200",
        ),
        (
            {"state": "sD"},
            'at=error code=H18 desc="Server Request Interrupted"',
            "dyno=web.1" + TIMES + " status=200",
        ),
        (
            {"state": "PH", "status": 502},
            'at=error code=H17 desc="Poorly formatted HTTP response"',
            "dyno=web.1" + TIMES + " status=503",
        ),
        (
            {"state": "CD"},
            'at=error code=H27 desc="Client Request Interrupted"',
            "dyno=web.1" + TIMES + " status=499",
        ),
        (
            {"state": "cD", "status": -1},
            'at=error code=H27 desc="Client Request Interrupted"',
            "dyno=web.1" + TIMES + " status=499",
        ),
        (
            {"state": "CH", "tr": -1, "td": -1, "status": -1},
            'at=error code=H27 desc="Client Request Interrupted"',
            "dyno=web.1 connect=0ms service= status=499",
        ),
        (  # the router answered itself (a refused request): not an error of the app's
            {"state": "LR", "server": "<NOSRV>", "status": 413, "tc": -1, "tr": -1, "td": 0},
            "at=info",
            "dyno=" + NEVER + " status=413",
        ),
        (
            {"state": "PR", "server": "<NOSRV>", "status": 403, "tc": -1, "tr": -1, "td": 0},
            "at=info",
            "dyno=" + NEVER + " status=403",
        ),
        (
            {"state": "IR", "status": 500, "tc": -1, "tr": -1, "td": -1},
            'at=error code=H99 desc="Platform error"',
            "dyno=web.1" + NEVER + " status=500",
        ),
        (
            {"state": "KC", "status": -1, "tc": -1, "tr": -1, "td": -1},
            'at=error code=H99 desc="Platform error"',
            "dyno=web.1" + NEVER + " status=",
        ),
    ],
)
def test_termination_states(fields: dict[str, object], head: str, tail: str) -> None:
    got = lines.read(datagram(**fields))  # type: ignore[arg-type]
    assert got is not None
    app, line = got
    assert app == "shop"
    assert line.startswith(head + " method=GET ")
    assert f" {tail} bytes=1234 protocol=http" in line


def test_protocol_https_when_tls() -> None:
    got = lines.read(datagram(ssl=1))
    assert got is not None and got[1].endswith(" protocol=https")


@pytest.mark.parametrize(
    "message",
    [
        b"Proxy http stopped (cumulated conns: FE: 0, BE: 0).",
        b"Proxy app-shop stopped (cumulated conns: FE: 0, BE: 12).",
        b'Server app-shop/web.1 is DOWN, reason: Layer4 connection problem, info: "Connection'
        b' refused", check duration: 0ms. 0 active and 0 backup servers left. 0 sessions active,'
        b" 0 requeued, 0 remaining in queue.",
        b"backend app-shop has no server available!",
        b"Loading success.",
        b"",
    ],
)
def test_other_datagrams_are_not_router_lines(message: bytes) -> None:
    assert lines.read(HEAD + message + b"\n") is None


@pytest.mark.parametrize(
    "data",
    [
        datagram(backend="no-app", server="<NOSRV>", state="LR", status=404),
        datagram(backend="web", server="<NOSRV>", state="PR", status=413),  # the frontend's deny
        datagram(backend="app-Shop"),
        datagram(server="web"),
        datagram(method="get"),
        datagram(state="---"),
        datagram(ssl=2),
        datagram()[len(HEAD) :],  # no syslog header
        datagram().replace(b" 12 3 ", b" x 3 "),
        datagram().replace(b"-- 0", b"--"),  # a field short
        datagram().replace(b"-- 0", b"-- 0 0"),  # one too many
    ],
)
def test_what_is_not_a_request_of_an_app(data: bytes) -> None:
    assert lines.read(data) is None


def tokens(line: str) -> list[str]:
    return parse._tokens(line)  # the drain's logfmt reader


def router(line: str) -> Line:
    return Line(T, "2026-12-06T00:48:47.117966+00:00", "heroku", "router", line)


def measured(line: str) -> set[tuple[str, str, float]]:
    got = parse.parse(router(line))
    assert got.invalid == []
    return {(m.name, m.unit, m.value) for m in got.measurements}


HOSTILE = [
    '/a" status=500 bytes=9 path="/x',
    "/a\\",
    '/a\\" dyno=web.9 connect=99ms service=99ms status=500 bytes=1',
    "/with space/and]bracket",
    "/ctl\x00\x01\x07\t\r\x7f",
    "/naïve/日本/\u2028/\xa0",
    "path=/again",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_never_breaks_the_line(value: str) -> None:
    for data in (
        datagram(path=value),
        datagram(host=value),
        datagram(rid=value),
        datagram(client=value),
    ):
        got = lines.read(data)
        assert got is not None, data
        app, line = got
        assert app == "shop"
        assert line.isascii() and line.isprintable(), line
        keys = [t.partition("=")[0] for t in tokens(line)]
        assert keys == [
            "at",
            "method",
            "path",
            "host",
            "request_id",
            "fwd",
            "dyno",
            "connect",
            "service",
            "status",
            "bytes",
            "protocol",
        ]
        assert measured(line) == {
            ("router.connect", "ms", 0.0),
            ("router.service", "ms", 15.0),
            ("router.status.2xx", "", 1.0),
            ("router.bytes", "bytes", 1234.0),
        }


def test_a_hostile_path_is_written_as_a_url_would_have_it() -> None:
    got = lines.read(datagram(path='/a" b\\c]é\n'))
    assert got is not None
    assert ' path="/a%22%20b%5Cc]%C3%A9%0A" ' in got[1]


# printable text without the characters HAProxy escapes, for the quoted fields
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@given(path=ANY_TEXT, host=ANY_TEXT, rid=ANY_TEXT, client=ANY_TEXT, ssl=st.integers(0, 1))
def test_any_quoted_values_give_one_line_with_the_same_measurements(
    path: str, host: str, rid: str, client: str, ssl: int
) -> None:
    got = lines.read(datagram(path=path, host=host, rid=rid, client=client, ssl=ssl))
    assert got is not None
    app, line = got
    assert app == "shop"
    assert line.isascii() and line.isprintable()
    keys = [t.partition("=")[0] for t in tokens(line)]
    assert keys.count("path") == 1 and keys.count("status") == 1 and len(keys) == 12
    assert measured(line) == {
        ("router.connect", "ms", 0.0),
        ("router.service", "ms", 15.0),
        ("router.status.2xx", "", 1.0),
        ("router.bytes", "bytes", 1234.0),
    }


@given(st.binary(max_size=300))
def test_any_bytes_are_none_or_an_app_and_its_line(data: bytes) -> None:
    got = lines.read(data)
    assert got is None or (APP_NAME.match(got[0]) and got[1].startswith("at="))


FIELD = st.one_of(
    st.from_regex(r"[-A-Za-z0-9<>._]{1,12}", fullmatch=True),
    st.integers(-2, 10**6).map(str),
    st.binary(max_size=12).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["app-shop", "web.1", "GET", "--", "sH", "SC", "<NOSRV>", "0", "1", '"']),
)


@given(st.lists(FIELD, min_size=12, max_size=16))
def test_near_requests_are_none_or_an_app_and_its_line(fields: list[str]) -> None:
    got = lines.read(HEAD + " ".join(fields).encode("utf-8", "surrogateescape"))
    if got is not None:
        app, line = got
        assert APP_NAME.match(app)
        assert line.startswith("at=") and line.isascii() and line.isprintable()


# -- the metrics the drain makes of router lines -------------------------------------------------


def buckets(*data: bytes) -> dict[str, tuple[str, float | None, int | None]]:
    """What the drain's parse and aggregate make of datagrams' router lines, by metric name:
    (type, sum, count)."""
    agg = Aggregator("shop", 60)
    for d in data:
        got = lines.read(d)
        assert got is not None
        for m in parse.parse(router(got[1])).measurements:
            agg.add(m, T)
    out = agg.flush(T + 3600)
    return {b.key.name: (b.key.type, b.sum, b.count) for b in out}


def test_router_lines_become_the_drains_router_metrics() -> None:
    assert buckets(
        datagram(),
        datagram(tc=2, tr=30, td=0, size=10),
        datagram(state="sH", status=504, tr=-1, td=-1, size=0),
        datagram(state="SC", server="<NOSRV>", status=503, tc=-1, tr=-1, td=-1, size=0),
    ) == {
        "router.connect": ("measure", 2.0 + 0 + 0, 3),
        "router.service": ("measure", 15.0 + 30, 2),
        "router.bytes": ("measure", 1234.0 + 10, 4),
        "router.status.2xx": ("count", 2.0, None),
        "router.status.5xx": ("count", 2.0, None),
        "router.error.H12": ("count", 1.0, None),
        "router.error.H14": ("count", 1.0, None),
    }
