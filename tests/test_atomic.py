"""Atomic writes (gun.atomic) and every writer that goes through it: on a real full tmpfs, with
the target blocked, with the block raising, and with two writers at once. Whatever fails, the
target is as it was, no temporary file is left, and the error names the target."""

from __future__ import annotations

import errno
import os
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gun import atomic
from gun.agent import files, procrecord
from gun.agent.procrecord import ProcessRecord, ProcessSpec
from gun.build.slug import pack
from gun.build.slugstore import LocalSlugStore
from gun.cli import credentials
from tests.disk import fill, tmpfs

BIG = "x" * 20_000  # more than the space a full tmpfs has left


def litter(directory: Path) -> list[str]:
    """Temporary files left anywhere below directory."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*.tmp"))


def record(root: Path, command: str) -> ProcessRecord:
    spec = ProcessSpec("web.1", "web", command, {}, root, 1)
    now = datetime.now(UTC)
    return ProcessRecord(spec, "up", 10, 10, 1.0, 5000, 0, 0, now, now)


def test_write_replaces_the_contents_with_the_mode_and_leaves_nothing_else(
    tmp_path: Path,
) -> None:
    target = tmp_path / "made" / "on" / "the" / "way" / "file"
    atomic.write(target, "first", mode=0o600)
    atomic.write(target, b"second\n", mode=0o600, sync=False)
    assert target.read_bytes() == b"second\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["file"]


def test_a_block_that_raises_leaves_the_target_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("old")
    with pytest.raises(ValueError, match="half-way"), atomic.writer(target) as f:
        f.write(b"new, but not all of it")
        raise ValueError("half-way")
    assert target.read_text() == "old"
    assert litter(tmp_path) == []


def test_a_target_that_cannot_be_replaced_is_named_in_the_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    (target / "in-the-way").mkdir(parents=True)
    with pytest.raises(IsADirectoryError) as e:
        atomic.write(target, "x")
    assert (e.value.filename, e.value.filename2) == (str(target), None)
    assert str(e.value) == f"[Errno 21] Is a directory: '{target}'"
    assert litter(tmp_path) == []


def test_two_writers_of_one_file_never_mix(tmp_path: Path) -> None:
    target = tmp_path / "file"
    contents = [bytes([65 + i]) * random.randint(1, 100_000) for i in range(2)]
    seen: set[bytes] = set()

    def write(data: bytes) -> None:
        for _ in range(50):
            atomic.write(target, data, sync=False)

    writers = [threading.Thread(target=write, args=(data,)) for data in contents]
    for w in writers:
        w.start()
    while any(w.is_alive() for w in writers):
        if target.exists():
            seen.add(target.read_bytes())
    for w in writers:
        w.join()
    assert seen <= set(contents) and target.read_bytes() in contents
    assert litter(tmp_path) == []


def _credentials(root: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Path]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root))
    (root / "gun").mkdir()
    return lambda: credentials.save(credentials.Credentials("http://127.0.0.1:5100", BIG))


def _slug(root: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Path]:
    src = root / "src"
    src.mkdir()
    (src / "noise").write_bytes(random.randbytes(64 * 1024))  # gzip cannot shrink it
    return lambda: pack(src, root / "slug.tar.gz").path


def _slugstore(root: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Path]:
    store = LocalSlugStore(root / "slugs")
    outside = root.parent / "upload.tar.gz"  # what meta received, on another disk
    outside.write_bytes(random.randbytes(64 * 1024))
    import hashlib

    sha256 = hashlib.sha256(outside.read_bytes()).hexdigest()
    (root / "slugs" / "demo").mkdir(parents=True)
    return lambda: store.path(store.put("demo", outside, sha256))


def _record(root: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Path]:
    (root / "state" / "procs").mkdir(parents=True)

    def save() -> Path:
        procrecord.save(root, record(root, BIG))
        return procrecord.record_path(root, "web.1")

    return save


def _etc(root: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Path]:
    (root / "etc").mkdir()

    def write() -> Path:
        files.write_etc(root, {"BIG": BIG}, ["web"])
        return root / "etc" / "env"

    return write


WRITERS = {
    "gun.atomic.write": lambda root, _: lambda: (atomic.write(root / "f", BIG), root / "f")[1],
    "procrecord.save": _record,
    "agent files.write_etc": _etc,
    "cli credentials.save": _credentials,
    "slug.pack": _slug,
    "LocalSlugStore.put": _slugstore,
}


@pytest.mark.parametrize("make", WRITERS.values(), ids=WRITERS.keys())
def test_a_full_disk_leaves_no_temporary_file_and_names_the_target(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[[Path, pytest.MonkeyPatch], Callable[[], Path]],
) -> None:
    with tmpfs(tmp_path / "disk", "256k") as disk:
        write = make(disk, monkeypatch)
        filler = fill(disk)
        before = {p: p.read_bytes() for p in disk.rglob("*") if p.is_file() and p != filler}
        with pytest.raises(OSError) as e:
            write()
        assert e.value.errno == errno.ENOSPC
        assert e.value.filename is not None and not str(e.value.filename).endswith(".tmp")
        assert litter(disk) == []
        after = {p: p.read_bytes() for p in disk.rglob("*") if p.is_file() and p != filler}
        assert after == before  # nothing replaced, nothing new
        os.unlink(filler)
        target = write()  # with room again, the same write succeeds
        assert target.exists() and litter(disk) == []
