"""meta on a full disk, for real (as root, on small tmpfs mounts): a slug store, the upload
directory and the SQLite database each run out of space; each request answers 507 naming what it
could not write, `gun` says it in one line, /health answers 503 while a disk is full and 200
again once there is room, and meta carries on."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.disk import fill, tmpfs
from tests.meta import MetaServer

ADMIN = "gun_test_admin_token"


def slug(size: int = 200_000) -> bytes:
    """A slug of ./app with a Procfile and `size` incompressible bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in (("./app/Procfile", b"web: true\n"), ("./app/blob", os.urandom(size))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@pytest.fixture
def meta_with(tmp_path: Path) -> Iterator[tuple[MetaServer, Path]]:
    """A meta (SQLite) whose home is HOME and with a 1 MiB tmpfs at DISK; the test says which of
    its paths go on DISK (GUN_SLUG_STORE, the upload directory) before starting it."""
    with tmpfs(tmp_path / "disk", "1m") as disk:
        server = MetaServer(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'meta.db'}", ADMIN)
        server.log = tmp_path / "meta.log"
        try:
            yield server, disk
        finally:
            server.stop()


def upload(server: MetaServer, body: bytes) -> httpx.Response:
    with server.http() as c:
        return c.post("/v1/apps/demo/slugs", content=body, timeout=30)


def health(server: MetaServer) -> tuple[int, dict[str, object]]:
    r = httpx.get(f"{server.url}/health", timeout=10)
    return r.status_code, r.json()


def test_a_full_slug_store_answers_507_and_health_says_so_until_there_is_room(
    meta_with: tuple[MetaServer, Path],
) -> None:
    server, disk = meta_with
    server.extra_env["GUN_SLUG_STORE"] = f"file://{disk}"
    server.start()
    assert server.gun("apps.create", "demo").code == 0
    filler = fill(disk)
    body = slug()

    r = upload(server, body)
    assert r.status_code == 507, r.text
    message = r.json()["message"]
    assert r.json()["id"] == "insufficient_storage"
    assert message.startswith(f"no space left on device writing {disk}/demo/")
    assert message.endswith(".tar.gz") and not list((disk / "demo").glob(".*.tmp"))
    status, body_ = health(server)
    assert status == 503
    assert body_["status"] == "unhealthy"
    assert body_["problems"] == [f"no space left on {disk} (0 bytes available)"]

    filler.unlink()
    assert health(server)[0] == 200
    assert upload(server, body).status_code == 201


def test_a_full_upload_directory_answers_507_naming_the_file(
    meta_with: tuple[MetaServer, Path],
) -> None:
    server, disk = meta_with
    work = server.home / "builds" / "work"  # where uploads go (emptied when meta starts)
    work.parent.mkdir(parents=True)
    work.symlink_to(disk)
    server.start()
    assert server.gun("apps.create", "demo").code == 0
    filler = fill(disk)

    r = upload(server, slug())
    assert r.status_code == 507, r.text
    assert r.json()["message"].startswith(f"no space left on device writing {work}/upload-")
    assert list(disk.glob("upload-*")) == []  # what was written of it is gone
    status, answer = health(server)
    assert (status, answer["problems"]) == (503, [f"no space left on {work} (0 bytes available)"])
    filler.unlink()
    assert upload(server, slug()).status_code == 201


def test_a_full_sqlite_disk_answers_507_and_gun_says_it_in_one_line(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "home", "8m") as home:
        server = MetaServer(home, f"sqlite:///{home / 'meta.db'}", ADMIN)
        server.log = tmp_path / "meta.log"
        try:
            server.start()
            assert server.gun("apps.create", "demo").code == 0
            filler = fill(home)
            values = [f"K{i}=" + "v" * 2000 for i in range(10)]
            said = server.gun("app:demo", "config.set", *values)
            assert said.code == 1, said
            assert said.err == (
                f"gun: no space left on device writing the database {home / 'meta.db'}\n"
            )
            status, answer = health(server)
            assert (status, answer["problems"]) == (
                503,
                [f"no space left on {home} (0 bytes available)"],
            )
            filler.unlink()
            assert health(server)[0] == 200
            again = server.gun("app:demo", "config.set", *values)
            assert again.code == 0, again
            assert "internal error" not in server.log.read_text()
        finally:
            server.stop()
