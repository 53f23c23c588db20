"""The dashboard over real HTTP to `gun server meta`, as a browser without JavaScript would use
it: sign in, read the pages, scale and roll back through forms; and what it refuses (no
session, a form without its CSRF token, a viewer's actions, another app of a scoped token, a
revoked token's session)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gun.dashboard import pages, rewrite, views
from gun.model import Instance, Layer, Process
from tests.meta import MetaServer

ADMIN = "gun_test_admin_token"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON = {"Accept": "application/vnd.heroku+json; version=3"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetaServer]:
    home = tmp_path_factory.mktemp("dashboard")
    meta = MetaServer(home / "home", f"sqlite:///{home / 'meta.db'}", admin_token=ADMIN)
    meta.start()
    try:
        with meta.http() as c:
            for name in ("demo", "other"):
                assert c.post("/v1/apps", json={"name": name}).status_code == 201
            for value in ("one", "two"):  # v2, v3
                r = c.patch("/v1/apps/demo/config-vars", json={"GREETING": value})
                assert r.status_code == 200, r.text
            body = {"updates": [{"type": "web", "quantity": 2}]}
            assert c.patch("/v1/apps/demo/formation", json=body).status_code == 200
        yield meta
    finally:
        meta.stop()


def token(server: MetaServer, name: str, role: str, app: str | None = None) -> str:
    with server.http() as c:
        r = c.post("/v1/tokens", json={"name": name, "role": role, "app": app})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def browser(server: MetaServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=HTML, timeout=10)


@contextlib.contextmanager
def signed_in(server: MetaServer, value: str = ADMIN) -> Iterator[httpx.Client]:
    with browser(server) as b:
        r = b.post("/dash/login", data={"token": value})
        assert (r.status_code, r.headers["location"]) == (303, "/"), r.text
        yield b


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_login_sets_an_httponly_strict_cookie(server: MetaServer) -> None:
    with browser(server) as b:
        page = b.get("/login")
        assert page.status_code == 200
        assert 'form id="login"' in page.text and 'name="token"' in page.text
        r = b.post("/dash/login", data={"token": ADMIN})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("gun_session=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http here
        assert ADMIN not in cookie  # sealed
        assert 'table id="apps"' in b.get("/").text


def test_a_bad_token_shows_the_login_page_again_saying_why(server: MetaServer) -> None:
    with browser(server) as b:
        r = b.post("/dash/login", data={"token": "gun_nope"})
        assert r.status_code == 401
        assert 'form id="login"' in r.text
        assert '<p class="error">the API token is unknown or revoked</p>' in r.text
        assert "set-cookie" not in r.headers


def test_a_sign_in_from_another_site_is_refused(server: MetaServer) -> None:
    with browser(server) as b:
        r = b.post("/dash/login", data={"token": ADMIN}, headers={"Origin": "https://evil.test"})
        assert r.status_code == 403 and "set-cookie" not in r.headers


def test_no_session_redirects_to_login(server: MetaServer) -> None:
    with browser(server) as b:
        for path in ("/", "/apps", "/apps/demo", "/dash/apps/demo/processes"):
            r = b.get(path)
            assert (r.status_code, r.headers["location"]) == (303, "/login"), path
        b.cookies.set("gun_session", "garbage")
        assert b.get("/").headers["location"] == "/login"


def test_the_api_still_answers_json_at_the_root(server: MetaServer) -> None:
    with server.http() as api:  # a token: the API, whatever it accepts
        r = api.get("/apps/demo", headers=HTML)
        assert r.status_code == 200 and r.json()["name"] == "demo"
        r = api.get("/apps", headers=JSON)
        assert {a["name"] for a in r.json()} == {"demo", "other"}
    r = httpx.get(f"{server.url}/apps/demo", headers=JSON, timeout=10)  # no token, JSON
    assert r.status_code == 401 and r.json()["id"] == "unauthorized"
    with signed_in(server) as b:
        r = b.get("/apps/demo")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert httpx.get(f"{server.url}/", timeout=10).status_code == 404  # JSON client


def test_the_apps_page(server: MetaServer) -> None:
    with signed_in(server) as b:
        page = b.get("/").text
        assert '<tr data-app="demo">' in page and '<tr data-app="other">' in page
        row = page.split('<tr data-app="demo">')[1].split("</tr>")[0]
        assert '<a href="/apps/demo">demo</a>' in row
        assert '<td class="release">v3</td>' in row
        assert '<td class="formation">web=2</td>' in row
        assert '<td class="up">0/2</td>' in row


def test_the_app_page_shows_every_section(server: MetaServer) -> None:
    with signed_in(server) as b:
        page = b.get("/apps/demo").text
        for mark in (
            '<header id="top">',
            '<section id="formation">',
            '<form data-scale="web"',
            'name="quantity" type="number"',
            '<section id="processes"',
            '<tbody data-instance="" class="empty">',  # no instances here: see below
            '<section id="instances">',
            "No instances: <code>gun app:demo instances.create</code>",
            '<tr data-layer="default"><td>default</td><td>every type</td><td>local</td><td>0</td>',
            '<section id="releases">',
            '<tr data-release="3" class="current">',
            '<form data-rollback="2"',
            'button type="submit" data-confirm=',
            '<section id="config">',
            '<span class="name">GREETING</span>',
            '<a class="show" href="?show=GREETING#config">show</a>',
            '<section id="audit">',
            '<td class="action">formation.scale</td>',
            'src="/dash/static/live.js"',
        ):
            assert mark in page, mark
        assert '<form data-rollback="3"' not in page  # the current one
        assert 'class="value"' not in page  # until asked for
        shown = b.get("/apps/demo?show=GREETING").text
        assert '<span class="name">GREETING</span> <code class="value">two</code>' in shown
        assert b.get("/dash/static/live.js").status_code == 200
        assert b.get("/dash/static/gun.css").headers["content-type"].startswith("text/css")
        rows = b.get("/dash/apps/demo/processes").text
        assert rows.startswith('<tbody data-instance="" class="empty">') and "<section" not in rows


def formation(server: MetaServer, app: str = "demo") -> dict[str, int]:
    with server.http() as c:
        return {f["type"]: f["quantity"] for f in c.get(f"/v1/apps/{app}/formation").json()}


def current_release(server: MetaServer, app: str = "demo") -> int:
    with server.http() as c:
        return max(r["version"] for r in c.get(f"/v1/apps/{app}/releases").json())


def test_scale_through_the_form(server: MetaServer) -> None:
    with signed_in(server) as b:
        form = {"csrf": csrf(b.get("/apps/demo").text), "type": "web", "quantity": "3"}
        r = b.post("/dash/apps/demo/scale", data=form)
        assert (r.status_code, r.headers["location"]) == (303, "/apps/demo#formation")
        assert formation(server)["web"] == 3
        r = b.post("/dash/apps/demo/scale", data={**form, "quantity": "lots"})
        assert r.status_code == 422 and "is not a whole number" in r.text
        form["quantity"] = "2"
        assert b.post("/dash/apps/demo/scale", data=form).status_code == 303
        assert formation(server)["web"] == 2


def test_rollback_asks_first_then_rolls_back(server: MetaServer) -> None:
    with signed_in(server) as b:
        before = current_release(server)
        token = csrf(b.get("/apps/demo").text)
        r = b.post("/dash/apps/demo/rollback", data={"csrf": token, "version": "2"})
        assert r.status_code == 303  # without JavaScript: the confirmation page
        assert r.headers["location"] == "/dash/apps/demo/rollback?version=2"
        assert current_release(server) == before
        page = b.get(r.headers["location"]).text
        assert '<form id="confirm-rollback"' in page
        confirmed = {"csrf": csrf(page), "version": "2", "confirmed": "yes"}
        r = b.post("/dash/apps/demo/rollback", data=confirmed)
        assert (r.status_code, r.headers["location"]) == (303, "/apps/demo#releases")
        assert current_release(server) == before + 1
        with server.http() as c:
            config = c.get("/v1/apps/demo/config-vars").json()
        assert config == {"GREETING": "one"}


@pytest.mark.parametrize(
    "given", [None, "", "0" * 64, "é" * 64], ids=["missing", "empty", "wrong", "not-ascii"]
)
def test_a_post_without_the_csrf_token_is_refused(server: MetaServer, given: str | None) -> None:
    with signed_in(server) as b:
        before, scale = current_release(server), formation(server)
        extra = {} if given is None else {"csrf": given}
        r = b.post("/dash/apps/demo/scale", data={**extra, "type": "web", "quantity": "7"})
        assert r.status_code == 403
        assert '<p class="error">the form is stale or was not sent by the dashboard' in r.text
        data = {**extra, "version": "2", "confirmed": "yes"}
        assert b.post("/dash/apps/demo/rollback", data=data).status_code == 403
        assert b.post("/dash/logout", data=extra).status_code == 403
        assert (current_release(server), formation(server)) == (before, scale)


def test_another_sessions_csrf_token_is_refused(server: MetaServer) -> None:
    with signed_in(server) as one, signed_in(server) as two:
        theirs = csrf(one.get("/apps/demo").text)
        r = two.post("/dash/apps/demo/scale", data={"csrf": theirs, "type": "web", "quantity": "7"})
        assert r.status_code == 403 and formation(server)["web"] != 7


def test_a_viewer_sees_no_controls_and_is_refused(server: MetaServer) -> None:
    with signed_in(server, token(server, "watcher", "viewer")) as b:
        page = b.get("/apps/demo").text
        assert "data-scale" not in page and "data-rollback" not in page
        assert '<section id="processes"' in page
        assert '<span class="name">GREETING</span>' in page and 'class="show"' not in page
        assert 'class="value"' not in b.get("/apps/demo?show=*").text
        before, scale = current_release(server), formation(server)
        token_ = csrf(page)  # the logout form's: a viewer may sign out
        r = b.post("/dash/apps/demo/scale", data={"csrf": token_, "type": "web", "quantity": "5"})
        assert r.status_code == 403
        assert "has role viewer; this needs role developer" in r.text
        data = {"csrf": token_, "version": "2", "confirmed": "yes"}
        assert b.post("/dash/apps/demo/rollback", data=data).status_code == 403
        assert (current_release(server), formation(server)) == (before, scale)


def test_a_scoped_token_never_sees_another_app(server: MetaServer) -> None:
    with signed_in(server, token(server, "other-dev", "developer", "other")) as b:
        page = b.get("/").text
        assert '<tr data-app="other">' in page and "demo" not in page
        r = b.get("/apps/demo")
        assert r.status_code == 404 and "app &#39;demo&#39; does not exist" in r.text
        assert b.get("/dash/apps/demo/processes").status_code == 404
        r = b.post(
            "/dash/apps/demo/scale", data={"csrf": csrf(page), "type": "web", "quantity": "1"}
        )
        assert r.status_code == 404
        assert b.get("/apps/other").status_code == 200


def test_a_revoked_token_ends_its_sessions(server: MetaServer) -> None:
    value = token(server, "leaving", "developer")
    with signed_in(server, value) as b:
        assert b.get("/apps/demo").status_code == 200
        with server.http() as c:
            assert c.delete("/v1/tokens/leaving").status_code == 200
        r = b.get("/apps/demo")
        assert (r.status_code, r.headers["location"]) == (303, "/login")


def test_logout_ends_the_session(server: MetaServer) -> None:
    with signed_in(server) as b:
        r = b.post("/dash/logout", data={"csrf": csrf(b.get("/").text)})
        assert (r.status_code, r.headers["location"]) == (303, "/login")
        assert 'gun_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
        assert b.get("/").headers["location"] == "/login"


def process(name: str, instance: str | None, state: str = "up", desired: bool = True) -> Process:
    since = datetime(2026, 1, 1, 11, 0, 0)  # naive, as SQLite hands it back
    return Process(
        "demo", name, name.split(".")[0], instance, desired, state, 3, 5000, 42, 1, None, since
    )  # type: ignore[arg-type]


def test_the_processes_rows_group_by_instance() -> None:
    """Without instances the server has no processes to show, so the rows are checked here:
    instances by name, web.2 before web.10, unplaced last, what meta stops as stopping."""
    at = datetime(2026, 1, 1, 12, 5, 0, tzinfo=UTC)
    procs = [
        process("web.10", "i-b"),
        process("web.2", "i-b", "crashed"),
        process("worker.1", "i-a", desired=False),
        process("web.3", None, "starting"),
    ]
    groups = views.by_instance(procs, at)
    assert [(i, [r.name for r in rows]) for i, rows in groups] == [
        ("i-a", ["worker.1"]),
        ("i-b", ["web.2", "web.10"]),
        ("", ["web.3"]),
    ]
    assert groups[0][1][0] == views.ProcessRow("worker.1", "stopping", 3, 1, "1h 5m")
    html = pages.templates.get_template("processes.html").render(instances=groups)
    assert '<tbody data-instance="i-b">' in html
    row = html.split('<tr data-process="web.2">')[1].split("</tr>")[0]
    assert '<td class="state state-crashed">crashed</td>' in row
    assert '<td class="release">v3</td>' in row and '<td class="restarts">1</td>' in row


def test_instances_by_layer_with_where_and_their_last_heartbeat() -> None:
    at = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    def inst(id: str, layer: str, **more: object) -> Instance:
        base: dict[str, object] = dict(
            app="demo", provider="local", state="online", instance_type=None,
            availability_zone=None, address=None, last_heartbeat=None, created_at=at,
        )  # fmt: skip
        return Instance(id=id, layer=layer, **(base | more))  # type: ignore[arg-type]

    rows = views.instance_rows(
        [
            inst("i-2", "app", provider="ssh", host="web1", address="10.0.0.2"),
            inst("i-1", "app", address="/srv/gun/i-1", last_heartbeat=at - timedelta(seconds=4)),
            inst("i-0", "router", state="setup_failed", setup_state="failed"),
        ],
        at,
    )
    assert [(r.id, r.layer, r.where, r.heartbeat, r.problem) for r in rows] == [
        ("i-1", "app", "/srv/gun/i-1", "4s ago", ""),
        ("i-2", "app", "web1", "", ""),
        ("i-0", "router", "", "", "setup failed"),
    ]
    layers = [Layer("router", ("router",), provider="ssh"), Layer("app", None)]
    assert views.layer_rows(layers, [inst("i-1", "app"), inst("i-2", "app")]) == [
        views.LayerRow("app", "every type", "local", 2),
        views.LayerRow("router", "router", "ssh", 0),
    ]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h 0m"), (90061, "1d 1h")],
)
def test_uptime(seconds: int, shown: str) -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    assert views.uptime(since, since + timedelta(seconds=seconds)) == shown


@pytest.mark.parametrize(
    ("method", "path", "headers", "page"),
    [
        ("GET", "/", {b"accept": b"text/html"}, "/dash/"),
        ("HEAD", "/login", {b"accept": b"text/html,*/*"}, "/dash/login"),
        ("GET", "/apps", {b"accept": b"TEXT/HTML"}, "/dash/apps"),
        ("GET", "/apps/demo", {b"accept": b"text/html"}, "/dash/apps/demo"),
        ("GET", "/apps/demo", {b"accept": b"text/html", b"authorization": b"Bearer x"}, None),
        ("GET", "/apps/demo", {b"accept": b"application/vnd.heroku+json"}, None),
        ("GET", "/apps/demo", {}, None),
        ("POST", "/apps", {b"accept": b"text/html"}, None),
        ("GET", "/apps/demo/releases", {b"accept": b"text/html"}, None),
        ("GET", "/v1/apps", {b"accept": b"text/html"}, None),
    ],
)
def test_which_requests_are_a_browsers_pages(
    method: str, path: str, headers: dict[bytes, bytes], page: str | None
) -> None:
    assert rewrite.page_of(method, path, headers) == page


def test_a_page_of_any_name_is_rewritten_whole(server: MetaServer) -> None:
    """A name no app may have (not even latin-1) is the dashboard's 404 page, not a crash."""
    with signed_in(server) as b:
        r = b.get("/apps/%E2%98%83", headers={"accept": "text/html"})
        assert r.status_code == 404
        assert "text/html" in r.headers["content-type"]
