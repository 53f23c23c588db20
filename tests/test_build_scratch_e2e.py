"""A meta killed mid-build leaves nothing behind: the uploaded source, the build's tree and its
ENV_DIR (config vars) live in GUN_HOME/builds/work, never in the system's /tmp, and the next
meta removes them when it starts (and fails the build, saying so)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.meta import MetaServer

ADMIN = "gun_test_admin_token"


def source() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = b"web: sleep 1000\n"
        info = tarfile.TarInfo("app/Procfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@pytest.fixture
def compile_pid(tmp_path: Path) -> Iterator[Path]:
    """Where the build step writes its pid; whatever it names is killed afterwards (it runs
    in a session of its own, which killing meta does not reach)."""
    drop = tmp_path / "drop"  # the step runs as the build's user: anyone may write here
    drop.mkdir()
    drop.chmod(0o1777)
    path = drop / "compile.pid"
    try:
        yield path
    finally:
        if path.exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(path.read_text()), signal.SIGKILL)


def test_a_meta_killed_mid_build_leaves_nothing_and_the_next_one_cleans_up(
    tmp_path: Path, compile_pid: Path
) -> None:
    bp = tmp_path / "bp"
    (bp / "bin").mkdir(parents=True)
    (bp / "bin" / "detect").write_text("#!/bin/sh\necho Slow\n")
    (bp / "bin" / "compile").write_text(f"#!/bin/sh\necho $$ > {compile_pid}\nexec sleep 300\n")
    for name in ("detect", "compile"):
        (bp / "bin" / name).chmod(0o755)
    system_tmp = tmp_path / "system-tmp"  # the meta's /tmp: TMPDIR
    system_tmp.mkdir()
    meta = MetaServer(tmp_path / "home", f"sqlite:///{tmp_path / 'meta.db'}", admin_token=ADMIN)
    meta.extra_env["TMPDIR"] = str(system_tmp)
    work = meta.home / "builds" / "work"
    try:
        meta.start()
        with meta.http() as c:
            assert c.post("/v1/apps", json={"name": "slow"}).status_code == 201
            config = {"BUILDPACK": str(bp), "SECRET": "s3cr3t"}
            assert c.patch("/v1/apps/slow/config-vars", json=config).status_code == 200
            r = c.post("/v1/apps/slow/builds", content=source())
            assert r.status_code == 201, r.text
            build = r.json()["id"]
        deadline = time.monotonic() + 30
        while not compile_pid.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert compile_pid.exists(), "the build step never started"
        left = sorted(p.name for p in work.iterdir())
        assert len(left) == 2, left  # the uploaded source and the build's tree
        assert left[0].startswith(f"slow-{build}-") and left[1].startswith(f"source-{build}-")
        env_dirs = list((work / left[0]).glob("gun-env-*"))
        assert [p.read_text() for p in env_dirs for p in p.glob("SECRET")] == ["s3cr3t"]

        assert meta.proc is not None
        os.killpg(meta.proc.pid, signal.SIGKILL)
        meta.proc.wait(10)
        meta.proc = None
        assert list(work.iterdir())  # what it left, until the next meta starts

        meta.start()
        assert list(work.iterdir()) == []
        with meta.http() as c:
            after = c.get(f"/v1/apps/slow/builds/{build}").json()
        assert (after["status"], after["error"]) == ("failed", "meta restarted during the build")
        assert "removed 2 leftovers of interrupted uploads and builds" in meta.log.read_text()
        assert list(system_tmp.iterdir()) == []  # nothing ever went to the system's /tmp
    finally:
        meta.stop()
