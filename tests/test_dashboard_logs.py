"""The dashboard's logs page over real HTTP to a real meta and drain (tests/drain.py), as a
browser without JavaScript reads it, and its live stream as an EventSource reads it: the
newest lines, filters, one hour of the archive, what it refuses (no session, a bad filter,
another app of a scoped token) and a revoked token's stream ending; then the page's pure
parts (its query, the hour, the rows) as tables and properties."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.dashboard import logs_views
from gun.dashboard.logs_views import LogsAsk
from gun.errors import BadRequest
from gun.logs import sse
from gun.logs.frames import frame
from tests.drain import ADMIN, Site, events, site_running

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
SSE = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with site_running(tmp_path_factory.mktemp("dashlogs"), ("shop", "beta")) as s:
        yield s


def token(site: Site, name: str, role: str, app: str | None = None) -> str:
    with httpx.Client(base_url=site.meta.url, timeout=10) as c:
        r = c.post("/v1/tokens", json={"name": name, "role": role, "app": app}, headers=admin())
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


@contextlib.contextmanager
def signed_in(site: Site, value: str = ADMIN) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.meta.url, headers=HTML, timeout=10) as b:
        r = b.post("/dash/login", data={"token": value})
        assert (r.status_code, r.headers["location"]) == (303, "/"), r.text
        yield b


def shown(page: str) -> list[str]:
    """The messages of the page's lines, in order."""
    return [part.split("</span></li>", 1)[0] for part in page.split('<span class="msg">')[1:]]


def test_the_page_shows_the_newest_lines_filtered_and_streams_from_the_last(site: Site) -> None:
    tag = secrets.token_hex(4)
    site.say(
        "shop",
        ("app", "web.1", f"{tag} one"),
        ("app", "worker.1", f"{tag} two"),
        ("heroku", "router", f"{tag} at=info path=/"),
    )
    with signed_in(site) as b:
        page = b.get("/dash/apps/shop/logs")
        assert page.status_code == 200
        assert [m for m in shown(page.text) if tag in m][-3:] == [
            f"{tag} one",
            f"{tag} two",
            f"{tag} at=info path=/",
        ]
        for mark in (
            'form id="logs" method="get" action="/dash/apps/shop/logs"',
            'name="ps"',
            'name="source"',
            'name="grep"',
            'name="hour" type="datetime-local"',
            "Hour (UTC)",
            'src="/dash/static/tail.js"',
            'data-stream="/dash/apps/shop/logs/stream?after=',
            '<b class="origin">app[worker.1]</b>',
        ):
            assert mark in page.text, mark
        assert ADMIN not in page.text
        assert 'href="/dash/apps/shop/logs"' in b.get("/apps/shop").text  # the app page links it
        assert b.get("/dash/static/tail.js").status_code == 200

        web = b.get("/dash/apps/shop/logs", params={"ps": "web", "grep": tag, "hour": ""}).text
        assert shown(web) == [f"{tag} one"]
        assert "stream?ps=web&amp;grep=" in web
        router = b.get("/dash/apps/shop/logs", params={"source": "heroku", "grep": tag}).text
        assert shown(router) == [f"{tag} at=info path=/"]
        none = b.get("/dash/apps/shop/logs", params={"grep": f"{tag} nothing"}).text
        assert shown(none) == [] and "No lines yet that match." in none


def test_the_stream_is_events_of_new_lines_after_the_page_filtered_by_the_drain(
    site: Site,
) -> None:
    tag = secrets.token_hex(4)
    site.say("shop", ("app", "web.1", f"{tag} shown"))
    with signed_in(site) as b:
        page = b.get("/dash/apps/shop/logs", params={"grep": tag}).text
        stream = page.split('data-stream="')[1].split('"')[0].replace("&amp;", "&")
        assert stream.startswith(f"/dash/apps/shop/logs/stream?grep={tag}&after=")
        site.say("shop", ("app", "web.2", f"{tag} between"))  # after the page, before the tail
        with b.stream("GET", stream, headers=SSE, timeout=30) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/event-stream"
            chunks = r.iter_text()
            text = ""
            while ": keepalive" not in text:
                text += next(chunks)
            started = time.monotonic()
            timer = threading.Timer(
                0.2,
                site.say,
                ("shop", ("app", "web.1", "not matching"), ("app", "web.1", f"{tag} live")),
            )
            timer.start()
            while f"{tag} live" not in text:
                text += next(chunks)
            took = time.monotonic() - started
    timer.join()
    data = [d for _, d in events(text)]
    assert [d.split(": ", 1)[1] for d in data] == [f"{tag} between", f"{tag} live"]
    assert took < 3, took
    assert "not matching" not in text


def test_an_hour_of_the_archive_and_only_that_hour(site: Site) -> None:
    tag = secrets.token_hex(4)
    start = (time.time() // 3600 - 3) * 3600  # three hours ago, on the hour
    site.say("shop", ("app", "web.1", f"{tag} before"), at=start - 0.5)
    site.say("shop", ("app", "web.1", f"{tag} first"), at=start)
    site.say("shop", ("app", "web.1", f"{tag} last"), at=start + 3599.9)
    site.say("shop", ("app", "web.1", f"{tag} after"), at=start + 3600)
    hour = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H")
    with signed_in(site) as b:
        for given in (hour, hour + ":00", hour + ":37"):
            page = b.get("/dash/apps/shop/logs", params={"hour": given, "grep": tag}).text
            assert shown(page) == [f"{tag} first", f"{tag} last"], given
            assert "data-stream" not in page and "tail.js" not in page
            assert f"{hour.replace('T', ' ')}:00 to :59 UTC" in page
            assert f'value="{hour}:00"' in page
            assert 'id="clipped"' not in page
        empty = b.get("/dash/apps/shop/logs", params={"hour": hour, "grep": f"{tag} none"}).text
        assert "No lines in this hour that match." in empty


def test_an_hour_with_more_lines_than_shown_says_so(site: Site) -> None:
    tag = secrets.token_hex(4)
    start = (time.time() // 3600 - 5) * 3600
    most = logs_views.HOUR_LINES
    body = b"".join(
        frame(190, start + i * 0.3, "app", "web.1", f"{tag} {i}") for i in range(most + 5)
    )
    assert site.post(f"/logs/{site.tokens['shop']}", body).status == 200
    hour = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H")
    with signed_in(site) as b:
        page = b.get("/dash/apps/shop/logs", params={"hour": hour}).text
    got = shown(page)
    assert len(got) == most and got[0] == f"{tag} 5" and got[-1] == f"{tag} {most + 4}"
    assert f"only its last {most} are here" in page


def test_the_drains_until_is_checked_in_one_sentence(site: Site) -> None:
    r = site.http.get(
        f"{site.drain.url}/v1/apps/shop/logs", params={"until": "soon"}, headers=admin()
    )
    assert r.status_code == 400
    assert r.json()["message"] == (
        "until='soon' is not a duration like 30s, 15m, 2h or 7d, nor an RFC 3339 time"
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"ps": "web 1"}, "ps=&#39;web 1&#39; is not a process type like web nor a process"),
        ({"source": "router"}, "source=&#39;router&#39; is neither app nor heroku"),
        ({"hour": "yesterday"}, "hour=&#39;yesterday&#39; is not an hour like 2026-12-06T08"),
        ({"hour": "2026-02-30T10"}, "hour=&#39;2026-02-30T10&#39; is not an hour"),
        ({"hour": "2026-12-06T24"}, "hour=&#39;2026-12-06T24&#39; is not an hour"),
        ({"hour": "2026-12-06T08:61"}, "hour=&#39;2026-12-06T08:61&#39; is not an hour"),
    ],
)
def test_a_bad_filter_is_one_sentence_and_400(
    site: Site, query: dict[str, str], message: str
) -> None:
    with signed_in(site) as b:
        for path in ("/dash/apps/shop/logs", "/dash/apps/shop/logs/stream"):
            r = b.get(path, params=query)
            assert r.status_code == 400, (path, r.text)
            assert f'<p class="error">{message}' in r.text
            assert "Traceback" not in r.text


def test_no_session_goes_to_login(site: Site) -> None:
    with httpx.Client(base_url=site.meta.url, headers=HTML, timeout=10) as b:
        for path in ("/dash/apps/shop/logs", "/dash/apps/shop/logs/stream?after=1"):
            r = b.get(path)
            assert (r.status_code, r.headers["location"]) == (303, "/login"), path
        b.cookies.set("gun_session", "garbage")
        assert b.get("/dash/apps/shop/logs").headers["location"] == "/login"


def test_a_viewer_reads_and_a_token_of_another_app_gets_404(site: Site) -> None:
    tag = secrets.token_hex(4)
    site.say("beta", ("app", "web.1", f"{tag} beta's"))
    with signed_in(site, token(site, f"eyes-{tag}", "viewer")) as b:
        assert f"{tag} beta&#39;s" in b.get("/dash/apps/beta/logs").text
    with signed_in(site, token(site, f"shop-{tag}", "developer", "shop")) as b:
        for path in ("/dash/apps/beta/logs", "/dash/apps/beta/logs/stream"):
            r = b.get(path, params={"hour": "2026-12-06T08"})
            assert r.status_code == 404, path
            assert "app &#39;beta&#39; does not exist" in r.text and f"{tag} beta" not in r.text
        assert b.get("/dash/apps/nosuch/logs").status_code == 404
        assert b.get("/dash/apps/shop/logs").status_code == 200


def test_a_revoked_tokens_stream_ends(site: Site) -> None:
    name = f"leaving-{secrets.token_hex(3)}"
    with signed_in(site, token(site, name, "viewer")) as b:
        with b.stream("GET", "/dash/apps/shop/logs/stream?after=1", headers=SSE) as r:
            assert r.status_code == 200
            chunks = r.iter_text()
            text = ""
            while ": keepalive" not in text:
                text += next(chunks)
            with httpx.Client(base_url=site.meta.url, timeout=10) as c:
                c.delete(f"/v1/tokens/{name}", headers=admin()).raise_for_status()
            revoked = time.monotonic()
            for _ in chunks:  # ends: the drain ends the tail, and the stream with it
                pass
            assert time.monotonic() - revoked < 5
        r = b.get("/dash/apps/shop/logs/stream?after=1")  # the EventSource's reconnection
        assert (r.status_code, r.headers["location"]) == (303, "/login")


# -- pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "ask"),
    [
        ({}, LogsAsk()),
        ({"ps": "", "source": "", "grep": "", "hour": ""}, LogsAsk()),
        ({"ps": "web"}, LogsAsk(ps="web")),
        ({"ps": "web.1", "source": "app"}, LogsAsk(ps="web.1", source="app")),
        ({"grep": " H12 "}, LogsAsk(grep=" H12 ")),
        ({"hour": "2026-12-06T08"}, LogsAsk(hour=1796544000.0)),
        ({"hour": "2026-12-06T08:59"}, LogsAsk(hour=1796544000.0)),
        ({"hour": "2026-12-06 08"}, LogsAsk(hour=1796544000.0)),
        ({"after": "12", "n": "x"}, LogsAsk()),  # not the page's: left out
    ],
)
def test_the_pages_query(query: dict[str, str], ask: LogsAsk) -> None:
    assert logs_views.ask_of(query) == ask


def test_what_the_drain_is_asked() -> None:
    assert LogsAsk(ps="web").query() == {"n": "200", "ps": "web"}
    assert LogsAsk(grep="x", hour=1796544000.0).query() == {
        "n": "10000",
        "since": "2026-12-06T08:00:00.000000+00:00",
        "until": "2026-12-06T09:00:00.000000+00:00",
        "grep": "x",
    }
    assert LogsAsk(hour=1796544000.0).hour_field() == "2026-12-06T08:00"


def test_rows_carry_the_streams_ids() -> None:
    lines = [
        "2026-11-26T18:47:38.123456+00:00 app[web.1]: a: b",
        "2026-11-26T18:47:38.123456+00:00 heroku[router]: at=info",
        "not one of ours",
    ]
    rows = logs_views.line_rows(lines)
    assert rows[0] == logs_views.LineRow(
        "1795718858123456", "2026-11-26T18:47:38.123456+00:00", "app[web.1]", "a: b"
    )
    assert (rows[1].id, rows[1].origin) == ("1795718858123456.1", "heroku[router]")
    assert (rows[2].time, rows[2].origin, rows[2].message) == ("", "", "not one of ours")
    assert logs_views.after_of(rows[:2], 0) == "1795718858123456.1"
    assert logs_views.after_of([], 1795718858.5) == "1795718858500000"
    assert sse.parse_last_id(logs_views.after_of(rows, 0)) == sse.EventId(1795718858123456, 2)


HOURS = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31))


@given(t=HOURS)
def test_any_time_names_the_hour_it_is_in(t: datetime) -> None:
    t = t.replace(tzinfo=UTC)
    start = t.replace(minute=0, second=0, microsecond=0).timestamp()
    assert logs_views.hour_of(t.strftime("%Y-%m-%dT%H")) == start
    assert logs_views.hour_of(t.strftime("%Y-%m-%dT%H:%M")) == start
    assert logs_views.hour_text(start) == t.strftime("%Y-%m-%dT%H")


@given(text=st.text(max_size=30))
def test_any_hour_text_is_an_hour_or_one_sentence(text: str) -> None:
    try:
        start = logs_views.hour_of(text)
    except BadRequest as e:
        assert e.message.startswith(f"hour={text[:40]!r} is not an hour like ")
    else:
        assert start % 3600 == 0
