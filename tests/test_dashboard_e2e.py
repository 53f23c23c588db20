"""The dashboard in a real browser (Debian's Chromium through Playwright, tests/browser.py)
against a real `gun up` running examples/hello: log in, the apps page, the app page, scaling
web 2 → 3 with its form and watching the third process come up without a reload, rolling back
a release through its confirmation; screenshots of both pages (GUN_TEST_SCREENSHOTS) with a sane
layout at 1280 px; a viewer sees no controls and is refused the actions, a token of one app
never sees another, a form post without its CSRF token is refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Frame, Page

from tests import browser
from tests.browser import fields, layout_ok, login, post, submit
from tests.up import Up, hello_on_gun

# the screenshots go to the test's temporary directory; GUN_TEST_SCREENSHOTS=docs/dashboard
# writes them where docs/dashboard.md shows them (a run that means to update them)
SHOTS = os.environ.get("GUN_TEST_SCREENSHOTS")
SCALE = 'form[data-scale="web"]'


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """demo: hello deployed (v2), config changed (v3), web=2; zeta: an app with nothing."""
    tmp = tmp_path_factory.mktemp("dashboard")
    with hello_on_gun(tmp, "demo") as platform:
        platform.ok("app:demo", "config.set", "GREETING=hi")
        platform.ok("app:demo", "scale", "web=2")
        platform.ok("apps.create", "zeta")
        yield platform


def v1(up: Up, path: str) -> Any:
    r = httpx.get(
        f"{up.url}/v1{path}", headers={"Authorization": f"Bearer {up.admin_token}"}, timeout=10
    )
    r.raise_for_status()
    return r.json()


def formation(up: Up, app: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in v1(up, f"/apps/{app}/formation"):
        totals[row["type"]] = totals.get(row["type"], 0) + row["quantity"]
    return totals


@contextmanager
def session(chromium: Browser, up: Up, token: str) -> Iterator[Page]:
    """A page of a browser context of its own, logged in with `token`."""
    with browser.page(chromium) as page:
        login(page, up.url, token)
        yield page


def open_app(page: Page, up: Up, app: str = "demo") -> None:
    page.goto(f"{up.url}/apps/{app}")
    page.wait_for_selector("header#top")


def process_state(page: Page, name: str) -> str | None:
    cell = page.query_selector(f'tr[data-process="{name}"] td.state')
    return None if cell is None else cell.inner_text().strip()


def test_login_shows_the_apps_and_the_app_page_with_a_sane_layout(
    up: Up, chromium: Browser, tmp_path: Path
) -> None:
    shots = Path(SHOTS) if SHOTS else tmp_path
    with session(chromium, up, up.admin_token) as page:
        cookie = next(c for c in page.context.cookies() if c["name"] == "gun_session")
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")

        page.goto(f"{up.url}/")
        row = page.wait_for_selector('table#apps tr[data-app="demo"]')
        assert row is not None
        assert page.query_selector('table#apps tr[data-app="zeta"]') is not None
        browser.screenshot(page, shots / "apps.png")
        assert layout_ok(page) == []

        with page.expect_navigation():
            page.click('table#apps tr[data-app="demo"] a[href="/apps/demo"]')
        assert page.url == f"{up.url}/apps/demo"
        for part in ("header#top", "section#formation", "section#processes"):
            assert page.query_selector(part) is not None, part
        for part in ("section#releases", "section#config", "section#audit"):
            assert page.query_selector(part) is not None, part
        page.wait_for_selector('tbody[data-instance^="i-"] tr[data-process="web.1"] td.state')
        page.wait_for_selector('tr[data-release="3"]')
        assert page.query_selector(SCALE) is not None
        assert page.query_selector('form[data-rollback="2"]') is not None
        assert page.query_selector(f'{SCALE} input[name="csrf"]') is not None
        browser.screenshot(page, shots / "app.png")
        assert layout_ok(page) == []


def test_scaling_web_with_the_form_shows_the_third_process_up_without_a_reload(
    up: Up, chromium: Browser
) -> None:
    assert formation(up, "demo")["web"] == 2
    with session(chromium, up, up.admin_token) as page:
        open_app(page, up)
        page.wait_for_selector('tr[data-process="web.2"]')
        assert page.query_selector('tr[data-process="web.3"]') is None
        page.fill(f"{SCALE} input[name=quantity]", "3")
        with page.expect_navigation():  # the form posts, and the redirect leads back
            page.click(submit(SCALE))
        page.wait_for_load_state("load")
        assert page.url.split("#")[0] == f"{up.url}/apps/demo"
        assert formation(up, "demo")["web"] == 3

        navigated: list[str] = []

        def on_navigation(frame: Frame) -> None:
            if frame == page.main_frame:
                navigated.append(frame.url)

        page.on("framenavigated", on_navigation)
        page.evaluate("window.__gunStill = 'the same page'")
        at_redirect = process_state(page, "web.3")
        page.wait_for_function(
            """() => {
              const c = document.querySelector('tr[data-process="web.3"] td.state');
              return c !== null && c.textContent.trim() === 'up';
            }""",
            timeout=60_000,
        )
        assert page.evaluate("window.__gunStill") == "the same page"
        assert navigated == []
        row = page.query_selector('tbody[data-instance^="i-"] tr[data-process="web.3"]')
        assert row is not None, "web.3 is not in an instance's group"
        print(f"web.3 was {at_redirect!r} in the page the redirect led to, then 'up' live")

        # and a change made elsewhere (the CLI) shows up in the open page by itself
        up.ok("app:demo", "scale", "web=4")
        page.wait_for_function(
            """() => {
              const c = document.querySelector('tr[data-process="web.4"] td.state');
              return c !== null && c.textContent.trim() === 'up';
            }""",
            timeout=60_000,
        )
        assert page.evaluate("window.__gunStill") == "the same page"
        assert navigated == []
    up.ok("app:demo", "scale", "web=3")


def test_rolling_back_a_release_asks_first_and_makes_a_rollback_release(
    up: Up, chromium: Browser
) -> None:
    before = v1(up, "/apps/demo/releases")
    newest = max(r["version"] for r in before)
    dialogs: list[str] = []

    def answer(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.accept()

    with session(chromium, up, up.admin_token) as page:
        open_app(page, up)
        page.on("dialog", answer)
        form = 'form[data-rollback="2"]'
        assert page.query_selector(f"{form} [data-confirm]") is not None
        assert fields(page, form).get("csrf")
        with page.expect_navigation():
            page.click(f"{form} [data-confirm]")
        assert len(dialogs) == 1 and dialogs[0].startswith("confirm: "), dialogs
        after = v1(up, "/apps/demo/releases")
        made = max(after, key=lambda r: r["version"])
        assert (made["version"], made["description"]) == (newest + 1, "Rollback to v2")
        page.wait_for_selector(f'section#releases tr[data-release="{newest + 1}"]')


def test_a_viewer_sees_no_controls_and_is_refused_the_actions(up: Up, chromium: Browser) -> None:
    with session(chromium, up, up.admin_token) as page:
        open_app(page, up)
        scale = fields(page, SCALE)
        rollback = fields(page, 'form[data-rollback="2"]')
    viewer = up.ok("tokens.create", "eyes", "role=viewer").strip()
    was = (formation(up, "demo"), len(v1(up, "/apps/demo/releases")))
    with session(chromium, up, viewer) as page:
        open_app(page, up)
        page.wait_for_selector('tr[data-process="web.1"] td.state')
        page.wait_for_selector("section#releases tr[data-release]")
        assert page.query_selector("form[data-scale]") is None
        assert page.query_selector("form[data-rollback]") is None
        csrf = page.query_selector("input[name=csrf]")  # a viewer's logout form, if any
        mine = {} if csrf is None else {"csrf": csrf.get_attribute("value") or ""}
        scale = {k: v for k, v in scale.items() if k != "csrf"} | mine  # not the admin's
        rollback = {k: v for k, v in rollback.items() if k != "csrf"} | mine
        quantity = str(was[0]["web"] + 2)
        assert post(page, "/dash/apps/demo/scale", scale | {"quantity": quantity}) == 403
        assert post(page, "/dash/apps/demo/rollback", rollback) == 403
    assert (formation(up, "demo"), len(v1(up, "/apps/demo/releases"))) == was


def test_a_token_of_one_app_never_sees_another(up: Up, chromium: Browser) -> None:
    scoped = up.ok("tokens.create", "demo-only", "role=developer", "app=demo").strip()
    with session(chromium, up, scoped) as page:
        page.goto(f"{up.url}/")
        page.wait_for_selector('table#apps tr[data-app="demo"]')
        assert page.query_selector('tr[data-app="zeta"]') is None
        assert "zeta" not in page.content()
        response = page.goto(f"{up.url}/apps/zeta")
        assert response is not None and response.status == 404


def test_a_form_post_without_its_csrf_token_is_refused(up: Up, chromium: Browser) -> None:
    was = formation(up, "demo")
    with session(chromium, up, up.admin_token) as page:
        open_app(page, up)
        scale = fields(page, SCALE)
        assert scale.get("csrf")
        wanted = scale | {"quantity": str(was["web"] + 1)}
        without = {k: v for k, v in wanted.items() if k != "csrf"}
        assert post(page, "/dash/apps/demo/scale", without) == 403
        assert post(page, "/dash/apps/demo/scale", wanted | {"csrf": "not-the-token"}) == 403
        assert formation(up, "demo") == was
