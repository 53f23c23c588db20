"""Tokens under `gun up`: the drain holds a drain token (DIR/drain.token) that can do nothing
but resolve ingest tokens, and an app's ingest URL rotates without losing its logs."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import pytest

from gun.logs.frames import frame
from tests.up import Up, running

TICKER = """
import itertools, time
for n in itertools.count(1):
    print(f"tick {n}", flush=True)
    time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running(tmp_path_factory.mktemp("tokens"), instances=1) as platform:
        yield platform


def drain_process(up: Up) -> psutil.Process:
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "server drain" in cmd and str(up.drain_port) in cmd:
            return p
    raise AssertionError("no drain process")


def test_the_drains_token_can_do_nothing_but_resolve_ingest_tokens(up: Up) -> None:
    admin = (up.home / "admin.token").read_text().strip()
    path = up.home / "drain.token"
    drain = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert drain.startswith("gun_") and drain != admin
    environ = drain_process(up).environ()
    assert environ["GUN_DRAIN_META_TOKEN"] == drain
    assert admin not in json.dumps(environ)  # the drain faces the internet: no admin token

    up.ok("apps.create", "shop")
    url = up.json("app:shop", "drains.ingest")["url"]
    token = url.rsplit("/", 1)[1]
    as_drain = {"Authorization": f"Bearer {drain}"}
    as_admin = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=up.url, timeout=10) as meta:
        for method, route in [
            ("GET", "/v1/apps"),
            ("GET", "/v1/apps/shop/config-vars"),
            ("GET", "/config_vars/show/shop"),
            ("POST", "/v1/tokens"),
        ]:
            body = {"name": "mine", "role": "admin"} if method == "POST" else None
            r = meta.request(method, route, json=body, headers=as_drain)
            assert (r.status_code, r.json()["message"]) == (
                403,
                "token 'drain' is a drain token: it may only look up ingest tokens "
                "(GET /v1/drain/ingest-tokens/TOKEN)",
            ), route
        r = meta.get(f"/v1/drain/ingest-tokens/{token}", headers=as_admin)
        assert (r.status_code, r.json()["message"]) == (
            403,
            "token 'admin' is not a drain token: only a drain token "
            "(`gun tokens.create NAME role=drain`) may look up ingest tokens",
        )
        r = meta.get(f"/v1/drain/ingest-tokens/{token}", headers=as_drain)
        assert (r.status_code, r.json()) == (200, {"app": "shop"})
    # and with it the drain takes what is posted to the ingest URL
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
    body = frame(190, now, "app", "web.1", "through the drain token")
    r = httpx.post(url, content=body, headers={"Content-Type": "application/logplex-1"}, timeout=10)
    assert (r.status_code, r.json()["lines"]) == (200, 1)
    listed = {t["name"]: t for t in up.json("tokens")}
    assert (listed["drain"]["role"], listed["drain"]["kind"]) == ("drain", "drain")


def shipping(up: Up, app: str) -> list[str]:
    """Where the app's agent ships its logs, as the agent last heard from meta."""
    (instance,) = [i["id"] for i in up.json(f"app:{app}", "instances")]
    desired = json.loads((up.home / "instances" / instance / "state" / "desired.json").read_text())
    urls: list[str] = desired["drains"]
    return urls


def ticks(up: Up, app: str) -> list[tuple[datetime, int]]:
    out = []
    for line in up.ok(f"app:{app}", "logs", "ps=ticker", "-n", "10000").splitlines():
        stamp, _, rest = line.partition(" ")
        if ": tick " in rest:
            out.append((datetime.fromisoformat(stamp), int(rest.rsplit(" ", 1)[1])))
    return out


def test_a_rotated_ingest_url_refuses_the_old_token_and_the_apps_lines_keep_arriving(
    up: Up, tmp_path: Path
) -> None:
    (tmp_path / "ticker.py").write_text(TICKER)
    (tmp_path / "Procfile").write_text("ticker: python3 ticker.py\n")
    up.ok("apps.create", "ticking")
    up.ok("app:ticking", "deploy", f"dir={tmp_path}")
    up.ok("app:ticking", "scale", "ticker=1")
    old = up.json("app:ticking", "drains.ingest")["url"]
    up.until(lambda: len(ticks(up, "ticking")) > 5, 30, "the first ticks")
    assert shipping(up, "ticking")[0] == old

    new = up.ok("app:ticking", "drains.ingest", "rotate=true").strip()
    assert new != old
    drain = (up.home / "drain.token").read_text().strip()
    with httpx.Client(base_url=up.url, timeout=10) as meta:
        auth = {"Authorization": f"Bearer {drain}"}
        r = meta.get(f"/v1/drain/ingest-tokens/{old.rsplit('/', 1)[1]}", headers=auth)
        assert r.status_code == 404  # at meta at once
        r = meta.get(f"/v1/drain/ingest-tokens/{new.rsplit('/', 1)[1]}", headers=auth)
        assert r.json() == {"app": "ticking"}
    up.until(lambda: shipping(up, "ticking")[0] == new, 10, "the agent to ship to the new URL")
    moved = datetime.now().astimezone()
    time.sleep(3)

    def after_the_move() -> list[int] | None:
        later = [n for at, n in ticks(up, "ticking") if at > moved]
        return later if len(later) >= 30 else None

    later = up.until(after_the_move, 15, "ticks logged after the rotation")
    assert later == list(range(later[0], later[0] + len(later)))  # none lost, none twice
    events = up.json("app:ticking", "status")  # the app still runs
    assert events["processes"]["up"] == 1
