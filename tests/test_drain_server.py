"""`gun server drain` alone, over HTTPS as Heroku's HTTPS drains need, next to a real meta."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gun import certs
from gun.logs.frames import frame
from tests.drain import ADMIN, DRAIN, drain_env, drain_running
from tests.meta import GUN, MetaServer, free_port


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, issued by a team's own CA (`gun server certs`);
    the certificate file holds the CA's too."""
    made = certs.write(directory / "certs", ["127.0.0.1"])
    return made.cert, made.key


@pytest.fixture
def meta(tmp_path: Path) -> Iterator[MetaServer]:
    server = MetaServer(tmp_path / "meta", f"sqlite:///{tmp_path / 'meta.db'}", ADMIN)
    server.extra_env = {
        "GUN_DRAIN_URL": f"https://127.0.0.1:{free_port()}",
        "GUN_DRAIN_TOKEN": DRAIN,
    }
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_a_heroku_style_https_drain_takes_frames_and_serves_the_logs(
    meta: MetaServer, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    port = int(meta.extra_env["GUN_DRAIN_URL"].rsplit(":", 1)[1])
    env = drain_env(
        meta.url, tmp_path / "drain", GUN_DRAIN_TLS_CERT=str(cert), GUN_DRAIN_TLS_KEY=str(key)
    )
    trust = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(verify=trust, timeout=5) as https, drain_running(env, port, https, tmp_path):
        assert meta.gun("apps.create", "shop").code == 0
        url = meta.gun("app:shop", "drains.ingest").out.strip()
        assert url.startswith(f"https://127.0.0.1:{port}/logs/gdi_")
        body = frame(190, time.time(), "app", "web.1", "hello over TLS")
        r = https.post(url, content=body, headers={"Content-Type": "application/logplex-1"})
        assert r.json() == {"lines": 1, "bad_frames": 0, "problems": []}
        # plain HTTP is not served on the TLS port
        with pytest.raises(httpx.HTTPError):
            httpx.post(url.replace("https://", "http://"), content=body, timeout=5)
        logs = https.get(
            f"https://127.0.0.1:{port}/v1/apps/shop/logs",
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert [ln.split(": ", 1)[1] for ln in logs.json()["lines"]] == ["hello over TLS"]
        nobody = https.get(f"https://127.0.0.1:{port}/v1/apps/shop/logs")
        assert nobody.status_code == 401


def test_the_drain_refuses_half_a_tls_setting(meta: MetaServer, tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    env = drain_env(meta.url, tmp_path / "drain", GUN_DRAIN_TLS_CERT=str(cert))
    done = subprocess.run(
        [*GUN, "server", "drain", "--listen", f"127.0.0.1:{free_port()}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (
        2,
        "gun: set both GUN_DRAIN_TLS_CERT and GUN_DRAIN_TLS_KEY, or neither\n",
    )


def test_with_a_bucket_the_drain_sends_finished_hours_there_and_still_serves_them(
    tmp_path: Path, moto: str, bucket: tuple[Any, str]
) -> None:
    client, name = bucket
    port = free_port()
    meta = MetaServer(tmp_path / "meta", f"sqlite:///{tmp_path / 'meta.db'}", ADMIN)
    meta.extra_env = {"GUN_DRAIN_URL": f"http://127.0.0.1:{port}", "GUN_DRAIN_TOKEN": DRAIN}
    env = drain_env(
        meta.url,
        tmp_path / "drain",
        GUN_LOG_ARCHIVE_S3=f"s3://{name}/logs",
        GUN_S3_ENDPOINT_URL=moto,
    )
    admin = {"Authorization": f"Bearer {ADMIN}"}
    now = time.time()
    two_hours_ago = now - 7200
    try:
        meta.start()
        assert meta.gun("apps.create", "shop").code == 0
        url = meta.gun("app:shop", "drains.ingest").out.strip()
        with httpx.Client(timeout=5) as http:
            with drain_running(env, port, http, tmp_path):
                body = frame(190, two_hours_ago, "app", "web.1", "from two hours ago")
                body += frame(190, now, "app", "web.1", "from now")
                r = http.post(url, content=body, headers={"Content-Type": "application/logplex-1"})
                assert r.json() == {"lines": 2, "bad_frames": 0, "problems": []}
            # a restarted drain sends what finished at once (then every minute)
            with drain_running(env, port, http, tmp_path) as drain:
                deadline = time.monotonic() + 20
                while "Contents" not in client.list_objects_v2(Bucket=name):
                    assert time.monotonic() < deadline, "no object in the bucket after 20 s"
                    time.sleep(0.2)
                keys = [o["Key"] for o in client.list_objects_v2(Bucket=name)["Contents"]]
                hour = time.strftime("%Y-%m-%d/%H", time.gmtime(two_hours_ago))
                assert [k[: -len("12345678.log.gz")] for k in keys] == [f"logs/shop/{hour}."]
                local = sorted(p.name for p in (tmp_path / "drain/logs/shop").rglob("*.log.gz"))
                assert local == [time.strftime("%H.log.gz", time.gmtime(now))]
                shown = http.get(f"{drain.url}/v1/apps/shop/logs", headers=admin)
                shown = shown.json()["lines"]
                assert [ln.split(": ", 1)[1] for ln in shown] == ["from two hours ago", "from now"]
    finally:
        meta.stop()
