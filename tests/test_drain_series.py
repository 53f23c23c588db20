"""The drain's series routes (`gun server drain` next to a real meta): router and runtime lines
posted, their buckets closed into real whisper files, read back as a user token that may read
the app's logs; another app's token, bad names and bad ranges refused in one sentence."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.drain import ADMIN, DRAIN, drain_env, drain_running, send_raw
from tests.meta import MetaServer, free_port
from tests.metrics_site import metrics_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MetaServer, str]]:
    with metrics_site(tmp_path_factory.mktemp("series")) as got:
        yield got


def get(url: str, token: str = ADMIN, **params: str) -> httpx.Response:
    return httpx.get(url, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_the_listing_shows_router_and_per_process_series(site: tuple[MetaServer, str]) -> None:
    _, drain = site
    r = get(f"{drain}/v1/apps/shop/series")
    assert r.status_code == 200, r.text
    got = {(s["name"], s["source"]): s["stats"] for s in r.json()}
    assert got[("router.status.2xx", None)] == ["sum"]
    assert got[("router.error.H12", None)] == ["sum"]
    assert "p95" in got[("router.service", None)]
    assert got[("memory_rss", "web.1")] == got[("memory_rss", "web.2")] == ["last"]
    assert get(f"{drain}/v1/apps/other/series").json() == []


def test_a_series_reads_back_what_was_posted(site: tuple[MetaServer, str]) -> None:
    _, drain = site
    now = int(time.time())
    r = get(f"{drain}/v1/apps/shop/series/router.status.2xx", stat="sum", **{"from": str(now - 60)})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["step"] == 1
    assert sum(v for _, v in data["points"] if v is not None) == 3
    assert len(data["points"]) >= 50
    rss = get(
        f"{drain}/v1/apps/shop/series/memory_rss",
        stat="last",
        source="*",
        **{"from": str(now - 60)},
    ).json()
    assert sorted(rss["sources"]) == ["web.1", "web.2"]
    assert [v for _, v in rss["sources"]["web.2"] if v is not None] == [60]
    one = get(f"{drain}/v1/apps/shop/series/memory_rss", stat="last", source="web.1").json()
    assert [v for _, v in one["points"] if v is not None] == [40]
    summary = get(f"{drain}/v1/summaries", apps="shop,other,nosuch").json()
    assert summary["apps"]["shop"] == {"requests": 4, "errors": 1, "p95": 40}
    assert summary["apps"]["other"] == {"requests": 0, "errors": 0, "p95": None}
    assert "nosuch" not in summary["apps"]


def test_a_token_of_another_app_is_refused_and_sees_nothing_in_summaries(
    site: tuple[MetaServer, str],
) -> None:
    meta, drain = site
    token = meta.gun("tokens.create", "other-only", "role=viewer", "app=other").out.strip()
    r = get(f"{drain}/v1/apps/shop/series", token)
    assert r.status_code in (403, 404), r.text
    assert r.json()["message"] == "this token may not read the logs of app 'shop'"
    r = get(f"{drain}/v1/apps/shop/series/router.status.2xx", token, stat="sum")
    assert r.status_code in (403, 404)
    assert list(get(f"{drain}/v1/summaries", token, apps="shop,other").json()["apps"]) == ["other"]
    # what the drain asked meta: which of many apps the token may read, in one question
    asked = get(f"{meta.url}/v1/log-session", token, apps="shop,other,nosuch")
    assert asked.json()["apps"] == ["other"]
    assert get(f"{meta.url}/v1/log-session", apps="shop,other,nosuch").json()["apps"] == [
        "shop",
        "other",
    ]
    many = get(f"{meta.url}/v1/log-session", apps=",".join(["shop"] * 201))
    assert many.status_code == 422
    assert many.json()["message"] == "apps= names 201 apps; ask for at most 200 at once"
    assert get(f"{drain}/v1/apps/shop/series").status_code == 200
    assert httpx.get(f"{drain}/v1/apps/shop/series", timeout=10).status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/v1/apps/shop/series/..", {"stat": "sum"}, 400, "'..' is not a series name"),
        ("/v1/apps/shop/series/%2e%2e", {"stat": "sum"}, 400, "'%2e%2e' is not a series name"),
        ("/v1/apps/shop/series/a..b", {"stat": "sum"}, 400, "'a..b' is not a series name"),
        ("/v1/apps/shop/series/router%2Fstatus", {}, 400, "'router%2Fstatus' is not a series"),
        ("/v1/apps/shop/series/router.service", {"stat": "p50"}, 400, "stat='p50' is not one of"),
        ("/v1/apps/shop/series/memory_rss", {"stat": "last", "source": "../x"}, 400, "source="),
        ("/v1/apps/shop/series/router.service", {"stat": "p95", "from": "x"}, 400, "from='x' is"),
        ("/v1/apps/shop/series/router.service", {"stat": "p95", "from": "0"}, 400, "from=0 to"),
        ("/v1/apps/shop/series/nope", {"stat": "sum"}, 404, "app 'shop' has no series 'nope'"),
        ("/v1/apps/shop/series/a/b", {"stat": "sum"}, 404, "'/v1/apps/shop/series/a/b' is not"),
        ("/v1/summaries", {"apps": "../x"}, 400, "apps= must be at most 500 app names"),
    ],
)
def test_bad_requests_get_one_sentence(
    site: tuple[MetaServer, str], path: str, params: dict[str, str], status: int, message: str
) -> None:
    _, drain = site
    target = path + ("?" + urlencode(params) if params else "")
    r = send_raw(drain, b"GET", target.encode(), {"Authorization": f"Bearer {ADMIN}"})
    assert r.status == status, r.body
    text = r.json()["message"]
    assert text.startswith(message), text
    assert b"Traceback" not in r.body and text.count("\n") == 0


def test_a_drain_without_whisper_says_so(tmp_path: Path) -> None:
    port = free_port()
    meta = MetaServer(tmp_path / "meta", f"sqlite:///{tmp_path / 'meta.db'}", ADMIN)
    meta.extra_env = {"GUN_DRAIN_URL": f"http://127.0.0.1:{port}", "GUN_DRAIN_TOKEN": DRAIN}
    try:
        meta.start()
        assert meta.gun("apps.create", "shop").code == 0
        env = drain_env(meta.url, tmp_path / "drain", GUN_WHISPER_DIR="off")
        with httpx.Client(timeout=10) as http, drain_running(env, port, http, tmp_path) as drain:
            r = get(f"{drain.url}/v1/apps/shop/series")
            assert r.status_code == 404
            assert r.json()["message"] == (
                "this drain writes no whisper files (GUN_WHISPER_DIR=off), so it has no series"
            )
    finally:
        meta.stop()


def test_a_drain_of_workers_serves_the_series_from_any_worker(tmp_path: Path) -> None:
    with metrics_site(tmp_path, GUN_DRAIN_WORKERS="2") as (_, drain):
        for _ in range(6):  # new connections: the kernel spreads them over the workers
            r = get(f"{drain}/v1/apps/shop/series")
            assert r.status_code == 200, r.text
            assert ("memory_rss", "web.2") in {(s["name"], s["source"]) for s in r.json()}
        summary = get(f"{drain}/v1/summaries", apps="shop").json()
        assert summary["apps"]["shop"]["requests"] == 4
