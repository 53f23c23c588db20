"""The logs page in a real browser (Debian's Chromium through Playwright, tests/browser.py)
against a real `gun up` running examples/hello (web answers and logs each request, worker ticks
every second): a line the app prints shows in the open page's live tail within 2 s; the
process and text filters keep other lines out; searching the archive by the current hour finds
a line; the page reads without JavaScript; a screenshot (GUN_TEST_SCREENSHOTS) with a sane
layout at 1280 px."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests import browser
from tests.browser import layout_ok, login, submit
from tests.up import Up, hello_on_gun

SHOTS = os.environ.get("GUN_TEST_SCREENSHOTS")
LIVE = 2.0  # seconds from the line's making to its row in the open page, at most
LINES = "ol#lines li"


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """demo: hello deployed, web=1 worker=1, both up."""
    tmp = tmp_path_factory.mktemp("dashlogs")
    with hello_on_gun(tmp, "demo") as platform:
        platform.ok("app:demo", "scale", "web=1", "worker=1")
        platform.until(
            lambda: (
                {p["name"] for p in platform.processes("demo") if p["state"] == "up"}
                >= {"web.1", "worker.1"}
            ),
            60,
            "web.1 and worker.1 up",
        )
        yield platform


def web_port(up: Up) -> int:
    (port,) = [p["port"] for p in up.processes("demo") if p["name"] == "web.1"]
    return int(port)


def request(up: Up, path: str) -> float:
    """GET `path` of web.1 straight at its port: hello prints `GET PATH 200` as it answers.
    Returns the monotonic time the request had completed, so the line had been printed."""
    httpx.get(f"http://127.0.0.1:{web_port(up)}{path}", timeout=5).raise_for_status()
    return time.monotonic()


def open_logs(page: Page, up: Up, query: str = "") -> None:
    """The logs page, once its live tail is connected."""
    page.goto(f"{up.url}/dash/apps/demo/logs{query}")
    page.wait_for_function(
        "() => document.getElementById('tail-state').textContent.trim() === 'Live'"
    )


def rows(page: Page) -> list[str]:
    return [t.strip() for t in page.locator(LINES).all_inner_texts()]


def wait_for_row(page: Page, text: str, since: float) -> float:
    """Waits (LIVE seconds at most from `since`) for a row holding `text`; how long it took."""
    left = max(LIVE - (time.monotonic() - since), 0.05)
    page.locator(LINES, has_text=text).first.wait_for(timeout=left * 1000)
    return time.monotonic() - since


def test_a_line_the_app_prints_shows_in_the_live_tail_within_2_s(
    up: Up, chromium: Browser, tmp_path: Path
) -> None:
    shots = Path(SHOTS) if SHOTS else tmp_path
    with browser.page(chromium) as page:
        login(page, up.url, up.admin_token)
        page.goto(f"{up.url}/apps/demo")
        with page.expect_navigation():
            page.click("a#logs-link")
        page.wait_for_function(
            "() => document.getElementById('tail-state').textContent.trim() === 'Live'"
        )
        assert page.url == f"{up.url}/dash/apps/demo/logs"
        page.evaluate("window.__gunStill = 'the same page'")
        took = []
        for _ in range(3):
            marker = f"live-{uuid.uuid4().hex[:10]}"
            made = request(up, f"/{marker}")
            took.append(wait_for_row(page, f"GET /{marker} 200", made))
        print(f"request done -> row in the page: {', '.join(f'{t:.2f}s' for t in took)}")
        assert max(took) < LIVE
        (row,) = page.locator(LINES, has_text=f"/{marker} ").all_inner_texts()
        assert "app[web.1]" in row
        page.locator(LINES, has_text="app[worker.1]").first.wait_for(timeout=5000)  # ticks too
        assert page.evaluate("window.__gunStill") == "the same page"
        browser.screenshot(page, shots / "logs.png")
        assert layout_ok(page) == []

        # the pause holds new lines back, and the resume shows them
        page.click("#tail-pause")
        marker = f"held-{uuid.uuid4().hex[:10]}"
        request(up, f"/{marker}")
        time.sleep(1.5)
        assert not [r for r in rows(page) if marker in r]
        page.click("#tail-pause")
        page.locator(LINES, has_text=marker).first.wait_for(timeout=1000)


def test_the_live_list_keeps_the_last_1000_lines(up: Up, chromium: Browser) -> None:
    tag = uuid.uuid4().hex[:8]
    with browser.page(chromium) as page:
        login(page, up.url, up.admin_token)
        open_logs(page, up, f"?grep=many-{tag}")
        port = web_port(up)
        with httpx.Client(timeout=5) as c:
            for i in range(1100):
                c.get(f"http://127.0.0.1:{port}/many-{tag}-{i}").raise_for_status()
        page.locator(LINES, has_text=f"/many-{tag}-1099 ").wait_for(timeout=10_000)
        got = rows(page)
        assert len(got) == 1000
        assert f"/many-{tag}-100 " in got[0] and f"/many-{tag}-1099 " in got[-1]
        at_bottom = "(b) => b.scrollHeight - b.scrollTop - b.clientHeight < 30"
        assert page.eval_on_selector(".log-box", at_bottom)  # it followed the bottom


def test_the_process_and_text_filters_keep_other_lines_out(up: Up, chromium: Browser) -> None:
    with browser.page(chromium) as page:
        login(page, up.url, up.admin_token)
        open_logs(page, up)
        page.fill("form#logs input[name=ps]", "web")  # through the form, as a user would
        with page.expect_navigation():
            page.click(submit("form#logs"))
        assert "ps=web" in page.url
        page.wait_for_function(
            "() => document.getElementById('tail-state').textContent.trim() === 'Live'"
        )
        marker = f"web-only-{uuid.uuid4().hex[:10]}"
        wait_for_row(page, marker, request(up, f"/{marker}"))
        time.sleep(1.5)  # worker.1 has ticked meanwhile: none of it shows
        assert rows(page) and not [r for r in rows(page) if "worker" in r], rows(page)
        assert all("app[web.1]" in r or "heroku[web.1]" in r for r in rows(page)), rows(page)

        wanted = f"wanted-{uuid.uuid4().hex[:10]}"
        other = f"other-{uuid.uuid4().hex[:10]}"
        open_logs(page, up, f"?grep={wanted}")
        request(up, f"/{other}")
        made = request(up, f"/{wanted}")
        wait_for_row(page, wanted, made)
        time.sleep(1.0)
        assert [r for r in rows(page) if wanted in r] and not [r for r in rows(page) if other in r]
        assert all(wanted in r for r in rows(page)), rows(page)


def test_the_archive_search_by_the_current_hour_finds_a_line(up: Up, chromium: Browser) -> None:
    marker = f"archived-{uuid.uuid4().hex[:10]}"
    request(up, f"/{marker}")
    found = up.until(
        lambda: [t for t in up.ok("app:demo", "logs", f"--grep={marker}").splitlines()], 10, marker
    )
    hour = found[0][:13]  # the line's own hour, UTC: 2026-12-06T08
    with browser.page(chromium) as page:
        login(page, up.url, up.admin_token)
        open_logs(page, up)
        page.fill("form#logs input[name=hour]", f"{hour}:00")
        page.fill("form#logs input[name=grep]", marker)
        with page.expect_navigation():
            page.click(submit("form#logs"))
        assert f"hour={hour}" in page.url.replace("%3A", ":")
        got = rows(page)
        assert len(got) == 1 and f"GET /{marker} 200" in got[0], got
        assert "UTC" in page.inner_text("section#log-filters")
        assert page.query_selector("ol#lines[data-stream]") is None  # no live tail here
        assert page.input_value("form#logs input[name=hour]") == f"{hour}:00"


def test_the_page_reads_without_javascript(up: Up, chromium: Browser) -> None:
    marker = f"nojs-{uuid.uuid4().hex[:10]}"
    request(up, f"/{marker}")
    up.until(lambda: marker in up.ok("app:demo", "logs", f"--grep={marker}"), 10, marker)
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        login(page, up.url, up.admin_token)
        page.goto(f"{up.url}/dash/apps/demo/logs?ps=web.1")
        assert [r for r in rows(page) if f"GET /{marker} 200" in r]
        assert "needs JavaScript" in page.inner_text("#tail-state")
        assert page.locator("#tail-pause").is_hidden()
    finally:
        context.close()
