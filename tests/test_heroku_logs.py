"""The Heroku Platform API's log sessions, log drains and domains, as the stock clients use them
(REFERENCE.md §6), against a real meta and drain: lines posted to the drain as a logplex sender
would, read back through a session's `logplex_url` without credentials, as Server-Sent Events
(the heroku CLI) or plain lines (heroku3)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from gun.api.heroku import log_sessions as ls
from gun.crypto import Box
from gun.logs import sse
from tests.drain import ADMIN, Site, events, site_running

HEROKU = {"Accept": "application/vnd.heroku+json; version=3"}
SSE = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with site_running(tmp_path_factory.mktemp("hklogs"), ("shop", "beta")) as s:
        yield s


def api(site: Site, token: str = ADMIN) -> httpx.Client:
    headers = {**HEROKU, "Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=site.meta.url, headers=headers, timeout=10)


def session(site: Site, app: str = "shop", token: str = ADMIN, **ask: Any) -> str:
    with api(site, token) as h:
        r = h.post(f"/apps/{app}/log-sessions", json=ask)
    assert r.status_code == 201, r.text
    return str(r.json()["logplex_url"])


def viewer(site: Site, name: str) -> str:
    with api(site) as h:
        r = h.post("/v1/tokens", json={"name": name, "role": "viewer"})
    r.raise_for_status()
    return str(r.json()["token"])


def test_a_session_is_a_url_without_credentials_that_streams_the_backlog_as_events(
    site: Site,
) -> None:
    tag = secrets.token_hex(4)
    site.say(
        "shop",
        ("app", "web.1", f"{tag} one"),
        ("app", "web.2", f"{tag} two"),
        ("heroku", "router", f"{tag} at=info path=/"),
        ("app", "web.1", f"{tag} three"),
    )
    with api(site) as h:
        r = h.post("/apps/shop/log-sessions", json={"lines": "2", "dyno": "web.1", "tail": False})
    assert r.status_code == 201
    made = r.json()
    assert set(made) == {"id", "logplex_url", "created_at", "updated_at"}
    assert made["logplex_url"].startswith(f"{site.meta.url}/log-sessions/")

    got = httpx.get(made["logplex_url"], headers=SSE, timeout=10)  # no Authorization
    assert got.status_code == 200
    assert got.headers["content-type"] == "text/event-stream"
    said = events(got.text)
    assert [d.split(": ", 1)[1] for _, d in said] == [f"{tag} one", f"{tag} three"]
    assert all(" app[web.1]: " in d for _, d in said)
    assert all(i.isdigit() or i.replace(".", "", 1).isdigit() for i, _ in said)

    # heroku3 asks with Accept: */* and reads plain lines
    plain = httpx.get(session(site, lines=50, source="heroku"), headers={"Accept": "*/*"})
    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/plain")
    assert f"heroku[router]: {tag} at=info path=/\n" in plain.text
    assert "app[" not in plain.text


def test_a_tail_goes_on_with_live_lines_and_keepalives_and_resumes_after_the_last_id(
    site: Site,
) -> None:
    tag = secrets.token_hex(4)
    site.say("shop", ("app", "web.1", f"{tag} before"))
    url = session(site, lines=1, tail=True)
    seen: list[str] = []
    with httpx.stream("GET", url, headers=SSE, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
        chunks = r.iter_text()
        text = ""
        while ": keepalive" not in text:  # the backlog, then a first keepalive
            text += next(chunks)
        first = events(text)
        assert [d.rsplit(": ", 1)[1] for _, d in first] == [f"{tag} before"]
        started = time.monotonic()
        threading.Timer(0.3, site.say, ("shop", ("app", "web.2", f"{tag} live"))).start()
        text = ""
        while f"{tag} live" not in text:
            text += next(chunks)
        assert time.monotonic() - started < 5
        seen = [d for _, d in events(text)]
        text = ""
        while ": keepalive" not in text:  # nothing to say for a while: a keepalive comment
            text += next(chunks)
        assert time.monotonic() - started > 10
    assert any(d.endswith(f"app[web.2]: {tag} live") for d in seen)

    # the CLI reconnects with Last-Event-ID: the lines after it, and only those
    site.say("shop", ("app", "web.1", f"{tag} while away"))
    with httpx.stream(
        "GET", url, headers={**SSE, "Last-Event-ID": first[0][0]}, timeout=30
    ) as again:
        text = ""
        for chunk in again.iter_text():
            text += chunk
            if ": keepalive" in text:
                break
    back = [d.rsplit(": ", 1)[1] for _, d in events(text)]
    assert back == [f"{tag} live", f"{tag} while away"]


def test_a_session_reads_its_own_app_only_and_a_bad_token_reads_nothing(site: Site) -> None:
    tag = secrets.token_hex(4)
    site.say("beta", ("app", "web.1", f"{tag} beta's secret"))
    shop = session(site, lines=1500)
    assert tag not in httpx.get(shop, headers=SSE).text
    base, sealed = shop.rsplit("/", 1)
    flipped = sealed[:50] + ("A" if sealed[50] != "A" else "B") + sealed[51:]
    for token in (flipped, "x" * 120, secrets.token_urlsafe(120), "..%2F..%2Fapps", "short"):
        r = httpx.get(f"{base}/{token}", headers=SSE)
        assert r.status_code == 404, token
        assert r.json()["id"] == "not_found" and tag not in r.text
    assert httpx.get(f"{base}/{sealed}/..%2Fx").status_code == 404


def _box(site: Site) -> Box:
    return Box((Path(site.meta.home) / "secret.key").read_bytes().strip())


def test_an_expired_session_and_one_whose_token_may_not_read_are_refused(site: Site) -> None:
    base = f"{site.meta.url}/log-sessions"
    old = ls.Session("shop", ls.Ask(), ADMIN, time.time() - 1)
    r = httpx.get(f"{base}/{ls.seal(_box(site), old)}", headers=SSE)
    assert r.status_code == 404 and "expired" in r.json()["message"]

    # a session sealed for beta with a token scoped to shop: the drain refuses it
    with api(site) as h:
        made = h.post("/v1/tokens", json={"name": "shop-only", "role": "viewer", "app": "shop"})
    scoped = ls.Session("beta", ls.Ask(), made.json()["token"], time.time() + 60)
    r = httpx.get(f"{base}/{ls.seal(_box(site), scoped)}", headers=SSE)
    assert r.status_code == 403 and r.json()["id"] == "forbidden"

    # a token revoked after it asked: its sessions read nothing more
    token = viewer(site, "soon-gone")
    url = session(site, token=token)
    with api(site) as h:
        h.delete("/v1/tokens/soon-gone").raise_for_status()
    time.sleep(2.5)  # the drain believes meta's yes for 0.5 s, its no for 2 s
    r = httpx.get(url, headers=SSE)
    assert r.status_code == 403 and r.json()["id"] == "forbidden"


def test_a_viewer_may_read_logs_but_not_add_drains_or_domains(site: Site) -> None:
    token = viewer(site, "watcher")
    site.say("shop", ("app", "web.1", "seen by a viewer"))
    assert "seen by a viewer" in httpx.get(session(site, token=token), headers=SSE).text
    with api(site, token) as h:
        drain = h.post("/apps/shop/log-drains", json={"url": "https://logs.example.com/x"})
        domain = h.post("/apps/shop/domains", json={"hostname": "viewer.example.com"})
        listed = h.get("/apps/shop/domains")
    assert (drain.status_code, drain.json()["id"]) == (403, "forbidden")
    assert (domain.status_code, domain.json()["id"]) == (403, "forbidden")
    assert listed.status_code == 200


@pytest.mark.parametrize(
    ("ask", "message"),
    [
        ({"lines": 0}, "lines 0 is not a number of lines from 1 to 1500"),
        ({"lines": "1501"}, "lines '1501' is not a number of lines from 1 to 1500"),
        ({"dyno": "../x"}, "dyno '../x' is not a process type like web nor a process like web.1"),
        ({"source": "x"}, "source 'x' is neither app nor heroku"),
        ({"tail": "maybe"}, "tail 'maybe' is neither true nor false"),
    ],
)
def test_a_bad_ask_is_refused_in_one_sentence(site: Site, ask: Any, message: str) -> None:
    with api(site) as h:
        r = h.post("/apps/shop/log-sessions", json=ask)
    assert r.status_code == 422
    assert r.json() == {"id": "invalid_params", "message": message}


def test_log_drains_in_herokus_shape_added_listed_and_removed_by_url(site: Site) -> None:
    url = "https://logs.example.com/ingest?token=sekrit"
    with api(site) as h:
        made = h.post("/apps/shop/log-drains", json={"url": url})
        assert made.status_code == 201
        d = made.json()
        assert set(d) == {"id", "url", "token", "addon", "app", "created_at", "updated_at"}
        assert d["url"] == url and d["token"].startswith("d.") and d["addon"] is None
        assert d["app"]["name"] == "shop"
        assert h.get("/apps/shop/log-drains").json() == [d]
        gone = h.delete(f"/apps/shop/log-drains/{quote(url, safe='')}")
        assert gone.status_code == 200 and gone.json()["id"] == d["id"]
        assert h.get("/apps/shop/log-drains").json() == []
        again = h.delete(f"/apps/shop/log-drains/{d['id']}")
        assert again.status_code == 404 and again.json()["id"] == "not_found"


def test_domains_in_herokus_shape(site: Site) -> None:
    with api(site) as h:
        app_id = h.get("/apps/shop").json()["id"]
        (default,) = h.get(f"/apps/{app_id}/domains").json()
        assert default["hostname"] == "shop.localhost"
        assert (default["kind"], default["cname"]) == ("heroku", None)
        made = h.post(
            "/apps/shop/domains", json={"hostname": "www.shop.test", "sni_endpoint": None}
        )
        assert made.status_code == 201
        d = made.json()
        assert {k: d[k] for k in ("hostname", "kind", "cname", "status")} == {
            "hostname": "www.shop.test",
            "kind": "custom",
            "cname": "shop.localhost",
            "status": "succeeded",
        }
        assert d["app"] == {"id": app_id, "name": "shop"}
        assert {"id", "acm_status", "created_at", "updated_at"} <= set(d)
        assert h.get(f"/apps/shop/domains/{d['id']}").json() == d
        assert [x["hostname"] for x in h.get("/apps/shop/domains").json()] == [
            "shop.localhost",
            "www.shop.test",
        ]
        assert h.delete("/apps/shop/domains/www.shop.test").json() == d
        assert h.get("/apps/shop/domains/www.shop.test").status_code == 404


def test_the_lists_gun_has_nothing_for_are_empty(site: Site) -> None:
    with api(site) as h:
        for path in (
            "/apps/shop/addons",
            "/apps/shop/addon-attachments",
            "/apps/shop/collaborators",
            "/oauth/authorizations",
        ):
            r = h.get(path)
            assert (r.status_code, r.json()) == (200, []), path
        assert h.get("/apps/nosuch/addons").json()["id"] == "not_found"


def test_session_tokens_ids_and_asks_pure() -> None:
    assert ls.ask_of("7", "true", "web", None) == ls.Ask(7, True, "web", None)
    assert ls.ask_of(None, None, None, "app") == ls.Ask(100, False, None, "app")
    ids = sse.Ids()
    t = "2026-11-26T18:47:38.123456+00:00 app[web.1]: x"
    assert [str(ids.next(t)), str(ids.next(t))] == ["1795718858123456", "1795718858123456.1"]
    last = sse.parse_last_id("1795718858123456.1")
    assert last == sse.EventId(1795718858123456, 1)
    assert sse.parse_last_id("../x") is None
    assert sse.event(sse.EventId(5), "a") == b"id: 5\ndata: a\n\n"
    assert sse.since_of(1795718858123456) == "2026-11-26T18:47:38.123456+00:00"
