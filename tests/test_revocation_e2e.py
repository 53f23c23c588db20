"""Revocation under `gun up`, through every door at once: a revoked token is refused by meta
and by the drain (a new request and a tail already open) within a second of `tokens.revoke`
returning, and a rotated ingest URL is refused by the drain within a second too."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from gun.logs.frames import frame
from tests.up import Up, running

LOGPLEX = {"Content-Type": "application/logplex-1"}


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running(tmp_path_factory.mktemp("revocation"), instances=1) as platform:
        yield platform


def refused_within(check: Callable[[], bool], since: float, limit: float = 1.0) -> float:
    """Seconds from `since` until `check()` says refused; fails past `limit` (+ one poll)."""
    while not check():
        assert time.monotonic() - since < limit, f"still not refused {limit}s after the revoke"
        time.sleep(0.02)
    return time.monotonic() - since


class Tail(threading.Thread):
    """`GET /v1/apps/APP/logs/tail` with a token, as `gun logs -t` does, until the drain ends it."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.status = 0
        self.opened = threading.Event()
        self.ended_at: float | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = httpx.Timeout(10, read=None)
        with httpx.stream("GET", self.url, headers=headers, timeout=timeout) as r:
            self.status = r.status_code
            self.opened.set()
            for _ in r.iter_raw():
                pass
        self.ended_at = time.monotonic()


def test_a_revoked_token_is_refused_by_meta_and_the_drain_within_a_second(up: Up) -> None:
    up.ok("apps.create", "shop")
    token = up.ok("tokens.create", "reader", "role=developer", "app=shop").splitlines()[0]
    drain = f"http://127.0.0.1:{up.drain_port}"
    as_reader = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=5, headers=as_reader) as http:
        assert http.get(f"{up.url}/v1/apps/shop").status_code == 200
        assert http.get(f"{drain}/v1/apps/shop/logs").status_code == 200
        tail = Tail(f"{drain}/v1/apps/shop/logs/tail", token)
        tail.start()
        assert tail.opened.wait(10) and tail.status == 200

        up.ok("tokens.revoke:reader")
        revoked = time.monotonic()

        def meta_refuses() -> bool:
            return http.get(f"{up.url}/v1/apps/shop").status_code == 401

        def drain_refuses() -> bool:
            return http.get(f"{drain}/v1/apps/shop/logs").status_code in (401, 403)

        refused_within(meta_refuses, revoked)
        refused_within(drain_refuses, revoked)
        tail.join(5)
        assert tail.ended_at is not None and tail.ended_at - revoked < 1.0
    assert "the API token is unknown or revoked" in up.gun("--token", token, "apps").err


def test_a_rotated_ingest_url_is_refused_by_the_drain_within_a_second(up: Up) -> None:
    up.ok("apps.create", "mill")
    old = up.json("app:mill", "drains.ingest")["url"]
    body = frame(190, time.time(), "app", "web.1", "before the rotation")
    with httpx.Client(timeout=5) as http:
        assert http.post(old, content=body, headers=LOGPLEX).status_code == 200
        new = up.ok("app:mill", "drains.ingest", "rotate=true").splitlines()[0]
        rotated = time.monotonic()
        assert new != old and new.rsplit("/", 1)[0] == old.rsplit("/", 1)[0]

        def old_refused() -> bool:
            return http.post(old, content=body, headers=LOGPLEX).status_code == 403

        refused_within(old_refused, rotated)
        late = frame(190, time.time(), "app", "web.1", "after the rotation")
        assert http.post(new, content=late, headers=LOGPLEX).status_code == 200
    lines = up.ok("app:mill", "logs")
    assert "before the rotation" in lines and "after the rotation" in lines
