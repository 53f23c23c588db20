"""The metrics page in a real browser (Debian's Chromium through Playwright, tests/browser.py)
against a real `gun up` running examples/hello with 1 s buckets: requests through the router
close into whisper files, and the page (reached from the app page's link) charts them with
more than one point, memory per process type too, and the app page each process's RSS of
its quota; a screenshot (GUN_TEST_SCREENSHOTS) with a
sane layout at 1280 px; live.js refreshes the charts without a reload; a token of another app
gets 404."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from tests import browser
from tests.browser import layout_ok, login
from tests.up import Up, hello_on_gun

SHOTS = os.environ.get("GUN_TEST_SCREENSHOTS")


def drawn(up: Up, name: str, stat: str, source: str | None = None) -> int:
    """How many of the last minute's points of a series the drain has (0 while it has none)."""
    params = {"stat": stat, "from": str(int(time.time()) - 60)}
    r = httpx.get(
        f"{up.drain_url}/v1/apps/demo/series/{name}",
        params=params | ({"source": source} if source else {}),
        headers={"Authorization": f"Bearer {up.admin_token}"},
        timeout=10,
    )
    if r.status_code == 404:
        return 0
    r.raise_for_status()
    data = r.json()
    points = [p for s in data["sources"].values() for p in s] if source else data["points"]
    return sum(1 for _, v in points if v is not None)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """demo: hello deployed, web=2, with requests through the router over 24 seconds; zeta: an
    app with nothing."""
    tmp = tmp_path_factory.mktemp("dashboard-metrics")
    with hello_on_gun(
        tmp,
        "demo",
        GUN_METRICS_RESOLUTION="1",
        GUN_METRICS_GRACE="1",
        GUN_RUNTIME_METRICS_INTERVAL="1",
    ) as platform:
        platform.ok("app:demo", "scale", "web=2")
        platform.ok("apps.create", "zeta")
        host = {"Host": "demo.localhost"}
        platform.until(
            lambda: httpx.get(platform.router_url, headers=host, timeout=10).status_code == 200,
            60,
            "demo to answer through the router",
        )
        # over 24 s: the page draws an hour of 1 s buckets as 320 points of 11.25 s each, and
        # a line of two points or more needs three of them
        began = time.monotonic()
        while time.monotonic() - began < 24:
            for _ in range(2):
                httpx.get(platform.router_url, headers=host, timeout=10)
            time.sleep(0.2)
        platform.until(lambda: drawn(platform, "router.status.2xx", "sum") >= 20, 30, "buckets")
        platform.until(lambda: drawn(platform, "memory_rss", "last", "*") >= 2, 30, "memory")
        yield platform


def points(page: browser.Page, chart: str) -> int:
    """How many points a chart draws: its polylines' points and its single-point circles."""
    counted: int = page.eval_on_selector(
        f'svg[data-chart="{chart}"]',
        """svg => [...svg.querySelectorAll('polyline')]
                   .reduce((n, p) => n + p.getAttribute('points').trim().split(/\\s+/).length, 0)
                 + svg.querySelectorAll('circle').length""",
    )
    return counted


def test_the_metrics_page_charts_the_routers_requests_with_a_sane_layout(
    up: Up, chromium: Browser, tmp_path: Path
) -> None:
    shots = Path(SHOTS) if SHOTS else tmp_path
    with browser.page(chromium) as page:
        login(page, up.url, up.admin_token)
        page.goto(f"{up.url}/apps/demo")
        with page.expect_navigation():
            page.click("a#metrics-link")
        assert page.url == f"{up.url}/dash/apps/demo/metrics"
        page.wait_for_selector('section#charts[data-live] svg[data-chart="requests"]')
        assert points(page, "requests") > 1
        assert points(page, "service") > 1
        assert points(page, "memory") >= 1
        legend = page.inner_text("figure#chart-memory ul.legend")
        assert "web" in legend
        shot = browser.screenshot(page, shots / "metrics.png", full_page=True)
        assert shot.stat().st_size > 10_000
        assert layout_ok(page) == []

        # live.js refetches the charts section (data-live-every, 10 s) without a reload
        page.evaluate("document.querySelector('section#charts .charts').dataset.old = 'yes'")
        page.evaluate("window.__gunStill = 'the same page'")
        page.wait_for_function(
            "() => document.querySelector('section#charts .charts:not([data-old])') !== null",
            timeout=25_000,
        )
        assert page.evaluate("window.__gunStill") == "the same page"
        assert points(page, "requests") > 1

        page.click('a[data-range="1d"]')
        page.wait_for_selector('strong[data-range="1d"]')
        assert points(page, "requests") >= 1

        page.goto(f"{up.url}/apps/demo")
        page.wait_for_function(
            """() => /^\\d+ \\/ \\d+ MB$/.test(
                document.querySelector('tr[data-process="web.1"] td.memory')?.textContent.trim()
                ?? '')"""
        )

        apps = page.goto(f"{up.url}/")
        assert apps is not None and apps.status == 200
        rate = page.inner_text('tr[data-app="demo"] td.error-rate')
        assert rate.endswith("%"), rate


def test_a_token_of_another_app_gets_404_for_the_metrics_page(up: Up, chromium: Browser) -> None:
    scoped = up.ok("tokens.create", "zeta-only", "role=viewer", "app=zeta").strip()
    with browser.page(chromium) as page:
        login(page, up.url, scoped)
        response = page.goto(f"{up.url}/dash/apps/demo/metrics")
        assert response is not None and response.status == 404
        assert page.query_selector("svg.chart") is None
        mine = page.goto(f"{up.url}/dash/apps/zeta/metrics")
        assert mine is not None and mine.status == 200
