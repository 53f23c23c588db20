"""The routing table's wire format (gun.router.table) and how meta builds it
(gun.core.routing.build_table): every table reads back as it was written, what does not read
is one sentence naming the field by its path, and nothing else ever escapes `read_table`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.core.routing import AppRouting, backend_of, build_table
from gun.errors import ProtocolError
from gun.router.table import Backend, Certificate, Route, Table, read_table, to_json
from gun.store.fleet import Routable

SHOP = Route(
    app="shop",
    hostnames=("shop.localhost", "*.shop.example.com", "www.shop.example.com"),
    backends=(Backend("web.1", "127.0.0.1", 5001), Backend("web.2", "2001:db8::7", 5002)),
    drains=("https://d.example.com/logs?token=1",),
)
BLOG = Route(app="blog", hostnames=("blog.localhost",), backends=(), drains=())
TABLE = Table((BLOG, SHOP))


def wire(data: Any) -> Any:
    return json.loads(json.dumps(data))


def test_a_table_reads_back_as_written() -> None:
    assert read_table(wire(to_json(TABLE))) == TABLE
    assert read_table(wire(to_json(Table(())))) == Table(())


def test_the_digest_names_the_contents() -> None:
    assert to_json(TABLE)["digest"] == TABLE.digest
    assert len(TABLE.digest) == 32
    assert Table((BLOG, SHOP)).digest == TABLE.digest
    moved = Route(SHOP.app, SHOP.hostnames, (Backend("web.1", "127.0.0.1", 5003),), SHOP.drains)
    assert Table((BLOG, moved)).digest != TABLE.digest
    assert Table(()).digest != TABLE.digest
    assert TABLE.route("shop") == SHOP
    assert TABLE.route("nope") is None


# -- every table reads back -------------------------------------------------------------------

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
HOSTNAMES = st.builds(
    lambda wild, labels: ("*." if wild else "") + ".".join(labels),
    st.booleans(),
    st.lists(LABEL, min_size=1, max_size=4),
)
IPV4 = st.ip_addresses(v=4).map(str)
IPV6 = st.ip_addresses(v=6).map(str)
NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True)


@st.composite
def backends(draw: st.DrawFn) -> tuple[Backend, ...]:
    names = draw(
        st.lists(
            st.builds(
                lambda t, n: f"{t}.{n}",
                st.from_regex(r"[A-Za-z0-9_-]{1,10}", fullmatch=True),
                st.integers(1, 999_999),
            ),
            unique=True,
            max_size=5,
        )
    )
    return tuple(
        Backend(n, draw(IPV4 | IPV6 | NAMES), draw(st.integers(1, 65535))) for n in sorted(names)
    )


@st.composite
def tables(draw: st.DrawFn) -> Table:
    apps = draw(
        st.lists(st.from_regex(r"[a-z][a-z0-9-]{1,29}", fullmatch=True), unique=True, max_size=4)
    )
    routes = tuple(
        Route(
            app=app,
            hostnames=(f"{app}.localhost", *draw(st.lists(HOSTNAMES, max_size=3))),
            backends=draw(backends()),
            drains=tuple(draw(st.lists(st.text(max_size=50).filter(lambda t: "\0" not in t)))),
            https_only=draw(st.booleans()),
        )
        for app in sorted(apps)
    )
    certs = tuple(
        Certificate(
            app=r.app,
            hostnames=r.hostnames[:1],
            fingerprint=draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True)),
            pem=draw(st.text(max_size=80).filter(lambda t: "\0" not in t)),
        )
        for r in routes
        if draw(st.booleans())
    )
    return Table(routes, certs)


@given(tables())
def test_every_table_reads_back_as_written(table: Table) -> None:
    assert read_table(json.loads(json.dumps(to_json(table)))) == table


# -- what does not read: one sentence, naming the field ---------------------------------------

GOOD = wire(to_json(Table((SHOP,))))
DROP = object()


def with_(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of data with the value at path (`routes.0.backends.1.port`) replaced, or removed
    when value is DROP."""
    out = wire(data)
    *parents, last = path.split(".")
    node: Any = out
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DROP:
        del node[key]
    else:
        node[key] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "sentence"),
    [
        ("routes", DROP, "routes.routes: missing"),
        ("routes", {}, "routes.routes: expected an array, got {}"),
        ("digest", DROP, "routes.digest: missing"),
        ("digest", 3, "routes.digest: expected a string, got 3"),
        ("routes.0", "shop", 'routes.routes[0]: expected an object, got "shop"'),
        ("routes.0.app", DROP, "routes.routes[0].app: missing"),
        ("routes.0.app", "Shop", 'routes.routes[0].app: expected an app name, got "Shop"'),
        ("routes.0.app", "s", 'routes.routes[0].app: expected an app name, got "s"'),
        ("routes.0.hostnames", "shop.localhost", "routes.routes[0].hostnames: expected an arr"),
        ("routes.0.hostnames.1", 7, "routes.routes[0].hostnames[1]: expected a string, got 7"),
        (
            "routes.0.hostnames.0",
            "Shop.localhost",
            'routes.routes[0].hostnames[0]: expected a lowercase hostname, got "Shop.localhost"',
        ),
        (
            "routes.0.hostnames.1",
            "shop example.com",
            'routes.routes[0].hostnames[1]: expected a lowercase hostname, got "shop example.com"',
        ),
        (
            "routes.0.hostnames.2",
            "shop\0.example.com",
            'routes.routes[0].hostnames[2]: expected text without NUL, got "shop\\u0000.example',
        ),
        (
            "routes.0.hostnames.1",
            "example.com.",
            'routes.routes[0].hostnames[1]: expected a lowercase hostname, got "example.com."',
        ),
        (
            "routes.0.hostnames.1",
            "a.*.example.com",
            'routes.routes[0].hostnames[1]: expected a lowercase hostname, got "a.*.example.c',
        ),
        (
            "routes.0.hostnames.1",
            "-a.example.com",
            'routes.routes[0].hostnames[1]: expected a lowercase hostname, got "-a.example.com"',
        ),
        (
            "routes.0.hostnames.1",
            "a" * 64 + ".example.com",
            'routes.routes[0].hostnames[1]: expected a lowercase hostname, got "aaaaaaaaaa',
        ),
        (
            "routes.0.hostnames.1",
            ".".join(["a" * 63] * 4),  # 255 characters of good labels
            "routes.routes[0].hostnames[1]: a hostname has at most 253 characters",
        ),
        ("routes.0.backends.1", [], "routes.routes[0].backends[1]: expected an object, got []"),
        ("routes.0.backends.1.name", DROP, "routes.routes[0].backends[1].name: missing"),
        (
            "routes.0.backends.1.name",
            "web",
            'routes.routes[0].backends[1].name: expected a process name (web.1), got "web"',
        ),
        (
            "routes.0.backends.1.name",
            "web.0",
            'routes.routes[0].backends[1].name: expected a process name (web.1), got "web.0"',
        ),
        (
            "routes.0.backends.1.host",
            "10.0.0.1 backup",
            'routes.routes[0].backends[1].host: expected an address, got "10.0.0.1 backup"',
        ),
        (
            "routes.0.backends.1.host",
            "",
            'routes.routes[0].backends[1].host: expected an address, got ""',
        ),
        (
            "routes.0.backends.1.port",
            0,
            "routes.routes[0].backends[1].port: expected a whole number of at least 1, got 0",
        ),
        (
            "routes.0.backends.1.port",
            65536,
            "routes.routes[0].backends[1].port: expected a whole number of at most 65535, got"
            " 65536",
        ),
        (
            "routes.0.backends.1.port",
            "5002",
            'routes.routes[0].backends[1].port: expected a whole number, got "5002"',
        ),
        (
            "routes.0.backends.1.port",
            5002.0,
            "routes.routes[0].backends[1].port: expected a whole number, got 5002.0",
        ),
        (
            "routes.0.backends.1.port",
            True,
            "routes.routes[0].backends[1].port: expected a whole number, got true",
        ),
        (
            "routes.0.backends.1.name",
            "web.1",
            "routes.routes[0].backends: a process is named twice",
        ),
        ("routes.0.drains", DROP, "routes.routes[0].drains: missing"),
        ("routes.0.drains.0", None, "routes.routes[0].drains[0]: expected a string, got null"),
        (
            "routes.0.drains.0",
            "x" * 2001,
            "routes.routes[0].drains[0]: expected at most 2000 characters, got 2001",
        ),
        ("digest", "0" * 32, "routes.digest: does not match the routes (the answer was altered)"),
        (
            "routes.0.backends.1.port",
            5003,
            "routes.digest: does not match the routes (the answer was altered)",
        ),
    ],
)
def test_what_does_not_read_is_named_by_its_path(path: str, value: Any, sentence: str) -> None:
    with pytest.raises(ProtocolError) as e:
        read_table(with_(GOOD, path, value))
    assert str(e.value).startswith(sentence)


def test_not_an_object() -> None:
    with pytest.raises(ProtocolError, match=r"^routes: expected an object, got \[\]$"):
        read_table([])


def test_a_good_hostname_of_253_characters_reads() -> None:
    name = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(name) == 253
    table = read_table(rehashed(GOOD, "routes.0.hostnames.1", name))
    assert table.routes[0].hostnames[1] == name


def rehashed(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """data with one value replaced and its digest made right again."""
    changed = with_(data, path, value)
    routes = changed["routes"]
    table = Table(
        tuple(
            Route(
                r["app"],
                tuple(r["hostnames"]),
                tuple(Backend(b["name"], b["host"], b["port"]) for b in r["backends"]),
                tuple(r["drains"]),
            )
            for r in routes
        )
    )
    return wire(to_json(table))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
PATHS = [
    "routes",
    "digest",
    "routes.0",
    "routes.0.app",
    "routes.0.hostnames",
    "routes.0.hostnames.0",
    "routes.0.backends",
    "routes.0.backends.1",
    "routes.0.backends.1.name",
    "routes.0.backends.1.host",
    "routes.0.backends.1.port",
    "routes.0.drains",
    "routes.0.drains.0",
]


@given(JSON)
def test_anything_else_is_refused_with_a_protocol_error(data: Any) -> None:
    try:
        read_table(data)
    except ProtocolError as e:
        assert str(e).startswith("routes")


@given(st.sampled_from(PATHS), JSON)
def test_a_table_with_any_value_anywhere_reads_or_is_refused(path: str, value: Any) -> None:
    try:
        table = read_table(with_(GOOD, path, value))
    except ProtocolError as e:
        assert str(e).startswith("routes")
    else:
        assert table == read_table(GOOD)  # only the same value can pass the digest


# -- build_table: what meta serves --------------------------------------------------------------


def proc(
    app: str, name: str, port: int, provider: str = "local", host: str | None = None
) -> Routable:
    return Routable(app, name, port, provider, host)


@pytest.mark.parametrize(
    ("process", "backend"),
    [
        (proc("shop", "web.1", 5001), Backend("web.1", "127.0.0.1", 5001)),
        (proc("shop", "web.2", 5002, "ssh", "10.1.2.3"), Backend("web.2", "10.1.2.3", 5002)),
        (proc("shop", "web.3", 5003, "ssh", None), None),
        (proc("shop", "web.4", 5004, "ec2", "10.1.2.4"), None),
    ],
)
def test_where_the_router_reaches_a_process(process: Routable, backend: Backend | None) -> None:
    assert backend_of(process) == backend


def routing(*hostnames: str, drains: tuple[str, ...] = ()) -> AppRouting:
    return AppRouting(hostnames=hostnames, drains=drains, certs=())


def test_the_table_meta_builds() -> None:
    table = build_table(
        {
            "shop": routing(
                "shop.localhost",
                "*.shop.example.com",
                "www.shop.example.com",
                drains=("https://platform/logs", "https://user/logs"),
            ),
            "blog": routing("blog.localhost"),
            "idle": routing("idle.localhost"),
        },
        [
            proc("shop", "web.2", 5002, "ssh", "10.0.0.2"),
            proc("shop", "web.10", 5010),
            proc("shop", "web.1", 5001),
            proc("blog", "web.1", 6001, "ec2"),
            proc("gone", "web.1", 7001),  # an app not listed is not routed
        ],
    )
    assert table == Table(
        (
            Route("blog", ("blog.localhost",), (), ()),  # its only process is on ec2: a 503 H14
            Route("idle", ("idle.localhost",), (), ()),
            Route(
                "shop",
                ("shop.localhost", "*.shop.example.com", "www.shop.example.com"),
                (
                    Backend("web.1", "127.0.0.1", 5001),
                    Backend("web.10", "127.0.0.1", 5010),
                    Backend("web.2", "10.0.0.2", 5002),
                ),
                ("https://platform/logs", "https://user/logs"),
            ),
        )
    )
    assert read_table(wire(to_json(table))) == table


def test_an_apps_certificates_and_redirect_are_in_its_table() -> None:
    cert = Certificate("shop", ("www.shop.example.com",), "ab" * 32, "CHAIN\nKEY\n")
    shop = AppRouting(("shop.localhost", "www.shop.example.com"), (), (cert,), https_only=True)
    table = build_table({"shop": shop, "blog": routing("blog.localhost")}, [])
    assert table.certs == (cert,)
    assert [r.https_only for r in table.routes] == [False, True]
    assert read_table(wire(to_json(table))) == table


def test_an_app_name_ending_with_a_dash_does_not_stop_the_table() -> None:
    # `shop-` is an app name (gun.model.APP_NAME): its default hostname must read, or the
    # router would refuse every table meta serves from then on
    table = build_table(
        {"shop-": routing("shop-.localhost"), "shop--x": routing("shop--x.localhost")},
        [proc("shop-", "web.1", 5001)],
    )
    assert [r.hostnames for r in table.routes] == [("shop-.localhost",), ("shop--x.localhost",)]
    assert read_table(wire(to_json(table))) == table
