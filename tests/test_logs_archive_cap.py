"""The archive's per-app cap (GUN_LOG_ARCHIVE_MAX_MB): oldest hours go first, the hour going on
stays, and the drain's log says which app and hours went, and why."""

from __future__ import annotations

import base64
import os
import re
import time
from pathlib import Path

import httpx
import pytest

from gun.errors import UsageError
from gun.logs.archive import Archive, Capped
from gun.logs.filters import Filter
from gun.logs.frames import frame
from gun.logs.model import Line
from gun.settings import DrainSettings
from tests.drain import ADMIN, DRAIN, drain_env, drain_running
from tests.meta import MetaServer, free_port

NOW = 1_795_000_030.0  # 2026-11-18T08:27:10Z
HOUR = 3600


def noise(n: int) -> str:
    """Text gzip cannot shrink much: n random bytes, base64."""
    return base64.b64encode(os.urandom(n)).decode()


def fill(archive: Archive, app: str, start: float, kb: int) -> None:
    """About `kb` KB of gzip in the hour that `start` is in."""
    start = start // HOUR * HOUR
    archive.append(app, [Line(start + i, "", "app", "web.1", noise(768)) for i in range(kb)])


def sizes(root: Path, app: str) -> dict[str, int]:
    """Bytes per hour file of `app`, as `YYYY-MM-DDTHH`."""
    out: dict[str, int] = {}
    for p in (root / app).rglob("*.log.gz"):
        hour = f"{p.parent.name}T{p.name[:2]}"
        out[hour] = out.get(hour, 0) + p.stat().st_size
    return out


def hour(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H", time.gmtime(t))


def test_oldest_hours_go_first_until_the_app_is_under_its_cap(tmp_path: Path) -> None:
    archive = Archive(tmp_path, max_bytes=400 * 1024)
    for back in (5, 4, 3, 2, 1, 0):
        fill(archive, "shop", NOW - back * HOUR, 100)
    fill(archive, "blog", NOW - 5 * HOUR, 100)  # under its own cap: untouched
    before = sizes(tmp_path, "shop")
    assert sum(before.values()) > 400 * 1024
    capped = archive.cap(NOW)
    after = sizes(tmp_path, "shop")
    assert sum(after.values()) <= 400 * 1024
    gone = sorted(set(before) - set(after))
    assert gone == sorted(before)[: len(gone)]  # the oldest ones
    kept = sorted(before)[len(gone) :]
    assert sum(after.values()) + before[gone[-1]] > 400 * 1024  # no more than needed
    assert capped == [
        Capped("shop", sum(before.values()), sum(before[h] for h in gone), gone),
    ]
    assert sizes(tmp_path, "blog") != {}
    assert archive.cap(NOW) == []
    lines = archive.read("shop", Filter(n=10_000), NOW)
    assert min(t[:13] for t in lines) == kept[0]


def test_the_hour_going_on_stays_even_over_the_cap(tmp_path: Path) -> None:
    archive = Archive(tmp_path, max_bytes=50 * 1024)
    fill(archive, "shop", NOW - HOUR, 100)
    fill(archive, "shop", NOW, 200)
    fill(archive, "shop", NOW + 2 * HOUR, 20)  # a line dated ahead (up to a day is kept)
    capped = archive.cap(NOW)
    assert [c.hours for c in capped] == [[hour(NOW - HOUR)]]
    assert sorted(sizes(tmp_path, "shop")) == [hour(NOW), hour(NOW + 2 * HOUR)]


def test_sealed_hours_waiting_for_the_bucket_count_and_go_too(tmp_path: Path) -> None:
    archive = Archive(tmp_path, max_bytes=100 * 1024)
    fill(archive, "shop", NOW - 3 * HOUR, 100)
    day = tmp_path / "shop" / time.strftime("%Y-%m-%d", time.gmtime(NOW - 3 * HOUR))
    (open_file,) = day.glob("*.log.gz")
    open_file.rename(day / f"{open_file.name[:2]}.0123abcd.log.gz")  # as `ship` seals it
    fill(archive, "shop", NOW - 2 * HOUR, 100)
    fill(archive, "shop", NOW, 50)
    capped = archive.cap(NOW)
    assert capped[0].hours == [hour(NOW - 3 * HOUR), hour(NOW - 2 * HOUR)]
    assert sorted(sizes(tmp_path, "shop")) == [hour(NOW)]


def test_no_cap_deletes_nothing(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    fill(archive, "shop", NOW - 3 * HOUR, 50)
    assert archive.cap(NOW) == []
    assert len(sizes(tmp_path, "shop")) == 1


@pytest.mark.parametrize(
    ("raw", "outcome"),
    [
        (None, 1024 * 2**20),
        ("1", 2**20),
        ("2.5", int(2.5 * 2**20)),
        ("0", "GUN_LOG_ARCHIVE_MAX_MB=0 is out of range: use 1 to 10000000"),
        ("-3", "GUN_LOG_ARCHIVE_MAX_MB=-3 is out of range: use 1 to 10000000"),
        ("lots", "GUN_LOG_ARCHIVE_MAX_MB='lots' is not a number"),
    ],
)
def test_the_cap_setting(
    monkeypatch: pytest.MonkeyPatch, raw: str | None, outcome: int | str
) -> None:
    if raw is not None:
        monkeypatch.setenv("GUN_LOG_ARCHIVE_MAX_MB", raw)
    if isinstance(outcome, int):
        assert DrainSettings.resolve().archive_max_bytes == outcome
    else:
        with pytest.raises(UsageError) as e:
            DrainSettings.resolve()
        assert e.value.message == outcome


def test_the_drain_caps_each_app_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    meta = MetaServer(tmp_path / "meta", f"sqlite:///{tmp_path / 'meta.db'}", ADMIN)
    meta.extra_env = {"GUN_DRAIN_URL": f"http://127.0.0.1:{port}", "GUN_DRAIN_TOKEN": DRAIN}
    env = drain_env(meta.url, tmp_path / "drain", GUN_LOG_ARCHIVE_MAX_MB="1")
    now = time.time()
    try:
        meta.start()
        with meta.http() as api:
            api.post("/v1/apps", json={"name": "noisy"}).raise_for_status()
            url = api.get("/v1/apps/noisy/drains/ingest").json()["url"]
        with httpx.Client(timeout=30) as http:
            with drain_running(env, port, http, tmp_path):
                for back in (4, 3, 2, 1):  # ~0.38 MB of gzip an hour, the 4 hours before now
                    body = b"".join(
                        frame(190, now - back * HOUR, "app", "web.1", noise(768))
                        for _ in range(500)
                    )
                    r = http.post(url, content=body)
                    assert r.json()["lines"] == 500
                r = http.post(url, content=frame(190, now, "app", "web.1", "the newest line"))
                assert r.status_code == 200
            before = sizes(tmp_path / "drain" / "logs", "noisy")
            assert sum(before.values()) > 1.3 * 2**20
            # the drain applies the cap as it starts, then every minute
            with drain_running(env, port, http, tmp_path) as drain:
                deadline = time.monotonic() + 20
                while "over its cap" not in drain.said():
                    assert time.monotonic() < deadline, drain.said()
                    time.sleep(0.1)
                said = re.search(r"the archive of app noisy .*", drain.said())
                assert said is not None
                after = sizes(tmp_path / "drain" / "logs", "noisy")
                gone = sorted(set(before) - set(after))
                assert gone == [hour(now - 4 * HOUR), hour(now - 3 * HOUR)]
                assert said[0] == (
                    f"the archive of app noisy held {sum(before.values()) / 2**20:.1f} MB, over"
                    " its cap of 1 MB (GUN_LOG_ARCHIVE_MAX_MB): deleted its oldest hours, "
                    f"{gone[0]} to {gone[1]} UTC (2 hours, "
                    f"{sum(before[h] for h in gone) / 2**20:.1f} MB)"
                )
                assert sum(after.values()) <= 2**20
                shown = http.get(
                    f"{drain.url}/v1/apps/noisy/logs?n=1",
                    headers={"Authorization": f"Bearer {ADMIN}"},
                )
                assert [t.split(": ", 1)[1] for t in shown.json()["lines"]] == ["the newest line"]
    finally:
        meta.stop()
