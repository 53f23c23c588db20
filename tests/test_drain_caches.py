"""The drain's caches of meta's answers, and its live tails, measured on a real drain next to
a real meta: bounded, brief (a token that stops being good is refused within a second, an open
tail ends), and never fed by a malformed token. "Asked meta" is counted by the recorder in
front of meta. A tail whose follower went away stops following.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from gun.errors import Forbidden, Unauthorized
from gun.logs.archive import Archive
from gun.logs.drain import Drain
from gun.logs.frames import frame
from gun.logs.meta import CACHE_SIZE, NEGATIVE_TTL, Meta
from gun.logs.server import DrainApp
from tests.drain import ADMIN, DRAIN, Site, site_running
from tests.meta import GUN


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with site_running(tmp_path_factory.mktemp("caches"), ("shop",)) as s:
        yield s


def line(text: str) -> bytes:
    return frame(190, time.time(), "app", "web.1", text)


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def test_1500_random_40kb_tokens_cost_no_memory_and_no_lookup(site: Site) -> None:
    def hostile(n: int) -> None:
        token = base64.urlsafe_b64encode(os.urandom(30_000)).decode()  # 40,000 characters
        if n % 2:
            r = site.post(f"/logs/{token}", line("x"))
        else:
            password = base64.b64encode(f":{token}".encode()).decode()
            r = site.post(b"/logs", line("x"), Authorization=f"Basic {password}")
        assert r.status == 403

    for n in range(100):  # warm up: buffers and allocator arenas the drain keeps anyway
        hostile(n)
    asked, before = site.recorder.count(), rss(site.drain.pid)
    for n in range(1500):
        hostile(n)
    grown = rss(site.drain.pid) - before
    assert grown < 3 * 2**20, f"the drain grew by {grown / 2**20:.1f} MB"
    assert site.recorder.count() == asked


def test_an_unknown_token_is_asked_once_per_negative_ttl(site: Site) -> None:
    token = "gdi_" + secrets.token_urlsafe(24)
    asked = site.recorder.count()
    first = time.monotonic()
    assert site.post(f"/logs/{token}", line("x")).status == 403
    answered = time.monotonic()  # the refusal was cached before this
    for _ in range(4):
        assert site.post(f"/logs/{token}", line("x")).status == 403
    assert time.monotonic() - first < NEGATIVE_TTL
    assert site.recorder.count() == asked + 1
    time.sleep(NEGATIVE_TTL - (time.monotonic() - answered) + 0.05)
    assert site.post(f"/logs/{token}", line("x")).status == 403
    assert site.recorder.count() == asked + 2


def test_a_busy_sender_is_asked_about_a_few_times_a_second(site: Site) -> None:
    token = site.tokens["shop"]
    with httpx.Client(base_url=site.drain.url, timeout=10) as http:
        http.post(f"/logs/{token}", content=line("warm")).raise_for_status()
        asked = site.recorder.count()
        began = time.monotonic()
        posts = 0
        while time.monotonic() - began < 2.0:
            r = http.post(f"/logs/{token}", content=line(f"busy {posts}"))
            assert r.status_code == 200
            posts += 1
    lookups = site.recorder.count() - asked
    assert posts > 20
    assert 2 <= lookups <= 10, f"{lookups} lookups for {posts} posts in 2 s"


def test_the_caches_are_bounded(site: Site) -> None:
    """In this process, a Meta with 50 entries a cache asks the real meta about 300 tokens."""

    async def flood() -> int:
        meta = Meta(site.recorder.url, DRAIN, cache_size=50)
        try:
            for _ in range(300):
                with pytest.raises(Forbidden, match="not an ingest token of any app"):
                    await meta.app_of("gdi_" + secrets.token_urlsafe(24))
            await meta.app_of(site.tokens["shop"])
            for _ in range(300):
                with pytest.raises(Unauthorized, match="unknown or revoked"):
                    await meta.may_read(secrets.token_urlsafe(32), "shop")
            await meta.may_read(ADMIN, "shop")
            return meta.cached()
        finally:
            await meta.close()

    assert CACHE_SIZE >= 1000
    assert asyncio.run(flood()) <= 4 * 50


def tail(site: Site, app: str, token: str, lines: list[str], ended: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(10, read=None)
    with httpx.stream(
        "GET", f"{site.drain.url}/v1/apps/{app}/logs/tail", headers=headers, timeout=timeout
    ) as r:
        assert r.status_code == 200
        for text in r.iter_lines():
            lines.append(text)
    ended.set()


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_an_open_tail_ends_within_a_second_once_its_app_is_deleted(site: Site, role: str) -> None:
    app = f"tailed-{role}"
    token = site.create_app(app)
    user = ADMIN
    if role == "viewer":
        with site.meta.http() as api:
            made = api.post("/v1/tokens", json={"name": app, "role": "viewer", "app": app})
            user = made.json()["token"]
    lines: list[str] = []
    ended = threading.Event()
    reader = threading.Thread(target=tail, args=(site, app, user, lines, ended))
    reader.start()
    try:
        deadline = time.monotonic() + 10
        while not any("first" in t for t in lines):  # the tail is following
            assert time.monotonic() < deadline and not ended.is_set()
            assert site.post(f"/logs/{token}", line("first")).status == 200
            time.sleep(0.1)
        time.sleep(1.0)  # a tail that goes on checking
        assert not ended.is_set()
        site.destroy_app(app)
        destroyed = time.monotonic()
        assert ended.wait(5)
        assert time.monotonic() - destroyed < 1.0
    finally:
        reader.join(10)
    r = site.http.get(
        f"{site.drain.url}/v1/apps/{app}/logs/tail", headers={"Authorization": f"Bearer {user}"}
    )
    assert (r.status_code, r.json()["message"]) in {
        (404, f"this token may not read the logs of app '{app}'"),
        (401, "the token is unknown or revoked: `gun login` gets one"),
    }


def test_gun_logs_tail_says_why_it_stopped(site: Site, tmp_path: Path) -> None:
    token = site.create_app("followed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
    env.update(
        GUN_API_URL=site.meta.url,
        GUN_API_TOKEN=ADMIN,
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    follower = subprocess.Popen(
        [*GUN, "app:followed", "logs", "-t"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert follower.stdout is not None
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.extend(follower.stdout or ()))
        reader.start()
        deadline = time.monotonic() + 20
        while not any("following" in t for t in got):
            assert time.monotonic() < deadline, "gun logs -t showed nothing"
            assert site.post(f"/logs/{token}", line("following")).status == 200
            time.sleep(0.2)
        site.destroy_app("followed")
        assert follower.wait(5) == 1
        reader.join(5)
        assert follower.stderr is not None
        assert follower.stderr.read() == (
            "gun: this token may not read the logs of app 'followed'\n"
        )
    finally:
        if follower.poll() is None:
            os.killpg(follower.pid, 9)
            follower.wait(5)


def test_a_tail_whose_follower_went_away_stops_following(site: Site, tmp_path: Path) -> None:
    """In this process, the drain's ASGI app with a real Drain, asking the real meta: the
    server says `http.disconnect` (and then ignores what is sent) once the follower is gone."""
    drain = Drain(Archive(tmp_path / "logs"), [])
    app = DrainApp(drain, Meta(site.recorder.url, DRAIN), None)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/apps/shop/logs/tail",
        "raw_path": b"/v1/apps/shop/logs/tail",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {ADMIN}".encode())],
    }
    sent: list[dict[str, object]] = []

    async def follow() -> tuple[int, int, float]:
        went = asyncio.Event()
        messages = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def receive() -> dict[str, object]:
            message = next(messages, None)
            if message is None:
                await went.wait()
                return {"type": "http.disconnect"}
            return message

        async def send(message: Any) -> None:
            sent.append(message)

        task = asyncio.create_task(app(scope, receive, send))
        while not drain.following("shop"):
            await asyncio.sleep(0.01)
        drain.accept("shop", line("to a follower"))
        await asyncio.sleep(0.3)
        following = drain.following("shop")
        went.set()
        gone = time.monotonic()
        await asyncio.wait_for(task, 2)
        return following, drain.following("shop"), time.monotonic() - gone

    before, after, took = asyncio.run(follow())
    assert (before, after) == (1, 0) and took < 0.5
    bodies = b"".join(m.get("body", b"") for m in sent)  # type: ignore[misc]
    assert bodies.decode().endswith("app[web.1]: to a follower\n")
