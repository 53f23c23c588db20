"""The metrics page over real HTTP to `gun server meta`, reading a real drain's whisper files
(tests/metrics_site.py): its charts hold the posted points, a viewer sees them, a token of
another app gets 404, the apps page shows the error rate and p95; without a drain the page
says so in one sentence. And metrics.py's pure parts as tables."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest

from gun.dashboard import metrics, views
from gun.dashboard.charts import Line
from gun.errors import InvalidParams
from gun.logs.series import Points, Series
from gun.model import Release
from tests.drain import ADMIN
from tests.meta import MetaServer
from tests.metrics_site import metrics_site

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MetaServer, str]]:
    with metrics_site(tmp_path_factory.mktemp("dash-metrics")) as got:
        yield got


@contextmanager
def signed_in(meta: MetaServer, token: str = ADMIN) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=meta.url, headers=HTML, timeout=20) as b:
        r = b.post("/dash/login", data={"token": token})
        assert r.status_code == 303, r.text
        yield b


def svgs(page: str) -> dict[str, ET.Element]:
    found = re.findall(r"<svg .*?</svg>", page, re.S)
    return {e.attrib["data-chart"]: e for e in map(ET.fromstring, found)}


def drawn(svg: ET.Element) -> int:
    """How many points the chart draws: its polylines' points and its single-point circles."""
    points = sum(len(p.attrib["points"].split()) for p in svg.iter("polyline"))
    return points + len(list(svg.iter("circle")))


def test_the_metrics_page_charts_what_the_drain_has(site: tuple[MetaServer, str]) -> None:
    meta, _ = site
    with signed_in(meta) as b:
        app = b.get("/dash/apps/shop")
        assert 'href="/dash/apps/shop/metrics"' in app.text
        r = b.get("/dash/apps/shop/metrics")
        assert r.status_code == 200, r.text
        charts = svgs(r.text)
        assert sorted(charts) == ["custom", "load", "memory", "requests", "service"]
        for key in ("requests", "service", "memory", "load", "custom"):
            assert drawn(charts[key]) >= 1, key
        series = {p.attrib["data-series"] for p in charts["service"].iter("polyline")}
        series |= {c.attrib["data-series"] for c in charts["service"].iter("circle")}
        assert series == {"p50", "p95", "p99"}
        markers = [m.attrib["data-marker"] for m in charts["requests"].iter("path")]
        assert markers == ["R14 ×1", "H12 ×1"]
        memory = {c.attrib["data-series"] for c in charts["memory"].iter("circle")}
        assert memory == {"web", "web quota"}
        assert "db.query" in r.text and 'data-live="/dash/apps/shop/metrics/charts?' in r.text
        live = b.get("/dash/apps/shop/metrics/charts", params={"range": "1d", "metric": "db.query"})
        assert live.status_code == 200 and "<html" not in live.text
        assert sorted(svgs(live.text)) == ["custom", "load", "memory", "requests", "service"]
        week = b.get("/dash/apps/shop/metrics", params={"range": "1w"})
        assert week.status_code == 200 and '<strong data-range="1w">' in week.text
        for bad, said in [
            ({"range": "5y"}, "range=&#39;5y&#39; is not one of 1h, 1d, 1w"),
            ({"metric": "../../etc"}, "is not a series name"),
            ({"metric": "db.query/x"}, "is not a series name"),
        ]:
            for path in ("/dash/apps/shop/metrics", "/dash/apps/shop/metrics/charts"):
                r = b.get(path, params=bad)
                assert r.status_code == 422 and said in r.text, (path, bad, r.text[-300:])

        apps = b.get("/dash/apps").text
        row = re.search(r'<tr data-app="shop">.*?</tr>', apps, re.S)
        assert row is not None
        assert '<td class="error-rate">25.0%</td>' in row[0]
        assert '<td class="p95">40 ms</td>' in row[0]
        other = re.search(r'<tr data-app="other">.*?</tr>', apps, re.S)
        assert other is not None and '<td class="p95">–</td>' in other[0]


def test_a_viewer_sees_metrics_and_a_token_of_another_app_gets_404(
    site: tuple[MetaServer, str],
) -> None:
    meta, _ = site
    viewer = meta.gun("tokens.create", "eyes", "role=viewer").out.strip()
    with signed_in(meta, viewer) as b:
        r = b.get("/dash/apps/shop/metrics")
        assert r.status_code == 200 and drawn(svgs(r.text)["requests"]) >= 1
    scoped = meta.gun("tokens.create", "other-dev", "role=developer", "app=other").out.strip()
    with signed_in(meta, scoped) as b:
        for path in ("/dash/apps/shop/metrics", "/dash/apps/shop/metrics/charts"):
            r = b.get(path)
            assert r.status_code == 404, path
            assert "shop" in r.text and "<svg" not in r.text
        mine = b.get("/dash/apps/other/metrics")
        assert mine.status_code == 200
        assert all(drawn(s) == 0 for s in svgs(mine.text).values())
        assert 'data-app="shop"' not in b.get("/dash/apps").text


def test_without_a_drain_the_page_says_so(meta: MetaServer) -> None:
    assert meta.gun("apps.create", "lone").code == 0
    with signed_in(meta, "gun_test_admin_token") as b:
        r = b.get("/dash/apps/lone/metrics")
        assert r.status_code == 200
        note = re.search(r'<p class="note">(.*?)</p>', r.text, re.S)
        assert note is not None and note[1].startswith("No metrics: this meta knows no drain")
        assert "<svg" not in r.text
        apps = b.get("/dash/apps").text
        assert '<td class="error-rate">–</td>' in apps


# -- metrics.py, pure ------------------------------------------------------------------------


def listing() -> list[Series]:
    return [
        Series("db.query", None, ("count", "median", "p95", "sum")),
        Series("error.R14", None, ("sum",)),
        Series("memory_rss", "web.1", ("last",)),
        Series("memory_rss", "worker.1", ("last",)),
        Series("queue", "web.1", ("last",)),
        Series("router.error.H12", None, ("sum",)),
        Series("router.service", None, ("median", "p95", "p99")),
        Series("router.status.2xx", None, ("sum",)),
    ]


def test_wanted_reads_only_what_the_app_has() -> None:
    got = metrics.wanted(listing(), "queue")
    assert got.single == [
        ("error.R14", "sum"),
        ("router.error.H12", "sum"),
        ("router.status.2xx", "sum"),
        ("router.service", "median"),
        ("router.service", "p95"),
        ("router.service", "p99"),
    ]
    assert got.per_source == [("memory_rss", "last"), ("queue", "last")]
    assert metrics.wanted(listing(), "router.service").per_source == [("memory_rss", "last")]
    assert metrics.custom_names(listing()) == ["db.query", "queue"]
    assert metrics.custom_stats(listing(), "db.query") == [("median", "p50"), ("p95", "p95")]
    assert [metrics.range_of(r) for r in ("1d", "1w", None)] == ["1d", "1w", "1h"]
    with pytest.raises(InvalidParams) as e:
        metrics.range_of("2d")
    assert e.value.message == "range='2d' is not one of 1h, 1d, 1w"


def test_per_type_averages_each_types_processes_at_each_time() -> None:
    sources = {
        "web.1": Points(60, [(0, 10.0), (60, None), (120, 30.0)]),
        "web.2": Points(60, [(0, 20.0), (60, None), (120, None)]),
        "worker.1": Points(60, [(0, 5.0)]),
    }
    assert metrics.per_type(sources) == [
        Line("web", [(0, 15.0), (60, None), (120, 30.0)]),
        Line("worker", [(0, 5.0)]),
    ]


def test_requests_are_per_second_h_and_r_codes_marked_and_deploys_drawn() -> None:
    read = metrics.Read(
        {
            ("router.status.2xx", "sum"): Points(60, [(0, 120.0), (60, None)]),
            ("router.error.H12", "sum"): Points(60, [(0, None), (60, 2.0)]),
            ("error.R14", "sum"): Points(60, [(0, 1.0), (60, None)]),
        },
        {},
    )
    when = datetime.fromtimestamp(30, UTC)
    release = Release("shop", 7, "Deploy abc", "succeeded", when, {}, None, None, None, "ann")
    requests, *_ = metrics.charts(read, (0, 120), [release], None, listing())
    assert requests.lines == [Line("2xx", [(0, 2.0), (60, None)])]
    assert [(m.at, m.label) for m in requests.markers] == [(0, "R14 ×1"), (60, "H12 ×2")]
    assert [(e.at, e.label) for e in requests.events] == [(30.0, "v7 Deploy abc")]


def test_the_apps_page_figures() -> None:
    assert metrics.app_figures(200, 3, 45.4) == metrics.AppFigures("1.5%", "45 ms")
    assert metrics.app_figures(0, 0, None) == metrics.AppFigures("–", "–")


def test_memory_text() -> None:
    assert views.memory_text(40.6, 512) == "41 / 512 MB"
    assert views.memory_text(40.4, None) == "40 MB"
    assert views.memory_text(None, 512) == ""
