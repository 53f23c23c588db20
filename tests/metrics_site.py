"""A real meta next to a real drain (1 s buckets) whose whisper files hold app shop's router
lines (three 200s, one 503 with H12), two web processes' memory and load, an R14, and a
custom measure: what the series routes and the metrics page are tested against."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from gun.logs.frames import frame
from tests.drain import ADMIN, DRAIN, LOGPLEX, drain_env, drain_running
from tests.meta import MetaServer, free_port


def shop_lines(now: float) -> bytes:
    body = b""
    for i, status in enumerate((200, 200, 200, 503)):
        code = "at=error code=H12 desc=timeout" if status == 503 else "at=info"
        body += frame(
            190,
            now - 0.4 + i * 0.1,
            "heroku",
            "router",
            f"{code} method=GET path=/ host=shop dyno=web.1 connect=1ms "
            f"service={10 * (i + 1)}ms status={status} bytes=10",
        )
    for proc, mb in (("web.1", 40), ("web.2", 60)):
        msg = f"source={proc} sample#memory_rss={mb}MB sample#load_avg_1m=0.5"
        body += frame(190, now, "heroku", proc, msg + " sample#memory_quota=512MB")
    body += frame(190, now, "heroku", "web.2", "Error R14 (Memory quota exceeded)")
    return body + frame(190, now, "app", "web.1", "measure#db.query=5ms")


@contextmanager
def metrics_site(tmp: Path, **settings: str) -> Iterator[tuple[MetaServer, str]]:
    """meta with apps shop and other, the drain (with GUN_* `settings`) with shop's lines in
    whisper; yields meta and the drain's URL."""
    port = free_port()
    meta = MetaServer(tmp / "meta", f"sqlite:///{tmp / 'meta.db'}", ADMIN)
    meta.extra_env = {"GUN_DRAIN_URL": f"http://127.0.0.1:{port}", "GUN_DRAIN_TOKEN": DRAIN}
    env = drain_env(
        meta.url, tmp / "drain", GUN_METRICS_RESOLUTION="1", GUN_METRICS_GRACE="2", **settings
    )
    try:
        meta.start()
        for app in ("shop", "other"):
            assert meta.gun("apps.create", app).code == 0
        url = meta.gun("app:shop", "drains.ingest").out.strip()
        with httpx.Client(timeout=10) as http, drain_running(env, port, http, tmp) as drain:
            r = http.post(url, content=shop_lines(time.time()), headers=LOGPLEX)
            assert r.json()["lines"] == 8, r.text
            whisper = tmp / "drain" / "whisper" / "gun" / "shop"
            wanted = [whisper / "memory_rss" / "web_2" / "last.wsp", whisper / "db/query/p95.wsp"]
            deadline = time.monotonic() + 15
            while not all(p.exists() for p in wanted):
                assert time.monotonic() < deadline, "no whisper files after 15 s"
                time.sleep(0.1)
            time.sleep(0.5)  # the rest of that flush
            yield meta, drain.url
    finally:
        meta.stop()
