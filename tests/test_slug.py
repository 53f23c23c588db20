"""Slugs: pack/unpack round trips, tables of hostile tarballs refused, the local slug store."""

from __future__ import annotations

import gzip
import io
import os
import random
import stat
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.build import slug as slug_module
from gun.build.slug import Slug, SlugError, pack, sha256_of, unpack
from gun.build.slugstore import LocalSlugStore, slug_key
from gun.errors import InvalidParams, NotFound


@dataclass(frozen=True)
class M:
    """One hand-made tar member."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    pax: dict[str, str] = field(default_factory=dict)


def F(name: str, data: bytes = b"x") -> M:
    return M(name, tarfile.REGTYPE, data)


def D(name: str) -> M:
    return M(name, tarfile.DIRTYPE)


def L(name: str, target: str) -> M:
    return M(name, tarfile.SYMTYPE, linkname=target)


def write_tar(path: Path, members: Sequence[M]) -> str:
    """Writes the members, exactly as named, to a gzipped tar; returns its sha256."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type, info.linkname, info.mode, info.pax_headers = m.type, m.linkname, 0o644, m.pax
            info.size = len(m.data) if m.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(m.data) if info.size else None)
    return sha256_of(path)


def write_bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return sha256_of(path)


def snapshot(root: Path) -> dict[str, tuple[str, ...]]:
    """Every path under root (symlinks not followed): its kind and content."""
    seen: dict[str, tuple[str, ...]] = {}
    for path in sorted(root.rglob("*")):
        rel, mode = str(path.relative_to(root)), path.lstat().st_mode
        if stat.S_ISLNK(mode):
            seen[rel] = ("symlink", os.readlink(path))
        elif stat.S_ISDIR(mode):
            seen[rel] = ("dir",)
        else:
            seen[rel] = ("file", path.read_bytes().hex(), "x" if mode & 0o100 else "-")
    return seen


@pytest.fixture
def where(tmp_path: Path) -> tuple[Path, Path]:
    """A tarball path in in/ and a destination out/v1 (out/ exists, v1 does not)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    return tmp_path / "in" / "slug.tar.gz", tmp_path / "out" / "v1"


def refused(tarball: Path, dest: Path, sha256: str, message: str, **caps: int) -> None:
    """Unpacking is refused with exactly this message, and nothing new exists anywhere."""
    root = dest.parent.parent
    before = snapshot(root)
    with pytest.raises(SlugError) as e:
        unpack(tarball, dest, sha256, **caps)
    assert e.value.message == message
    assert snapshot(root) == before


# -- pack and unpack round trip ---------------------------------------------------------------


def make_tree(src: Path) -> None:
    (src / "bin").mkdir(parents=True)
    (src / "lib" / "pkg").mkdir(parents=True)
    (src / "tmp").mkdir()
    (src / ".git").mkdir()
    (src / "Procfile").write_text("web: python app.py\n")
    (src / "app.py").write_text("print('hi')\n")
    (src / "bin" / "run").write_text("#!/bin/sh\nexec python app.py\n")
    (src / "bin" / "run").chmod(0o755)
    (src / "lib" / "pkg" / "__init__.py").write_bytes(bytes(range(256)) * 40)
    (src / "lib" / "pkg" / "up").symlink_to("../../app.py")
    (src / "current").symlink_to("lib/pkg")
    (src / "dangling").symlink_to("not-yet")
    (src / ".git" / "HEAD").write_text("ref: refs/heads/main\n")


def test_pack_then_unpack_gives_back_the_tree(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    slug = pack(tmp_path / "src", tmp_path / "slug.tar.gz")
    assert slug == Slug(tmp_path / "slug.tar.gz", sha256_of(slug.path), slug.path.stat().st_size)

    unpack(slug.path, tmp_path / "releases" / "v1", slug.sha256)

    expected = {k: v for k, v in snapshot(tmp_path / "src").items() if not k.startswith(".git")}
    assert snapshot(tmp_path / "releases" / "v1") == expected
    assert expected["bin/run"][2] == "x"
    assert expected["current"] == ("symlink", "lib/pkg")
    assert (tmp_path / "releases" / "v1" / "current" / "up").read_text() == "print('hi')\n"
    assert sorted(os.listdir(tmp_path / "releases")) == ["v1"]


def test_packed_members_are_sorted_under_app_with_owners_zeroed(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    slug = pack(tmp_path / "src", tmp_path / "slug.tar.gz")
    with tarfile.open(slug.path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "./app",
        "./app/Procfile",
        "./app/app.py",
        "./app/bin",
        "./app/bin/run",
        "./app/current",
        "./app/dangling",
        "./app/lib",
        "./app/lib/pkg",
        "./app/lib/pkg/__init__.py",
        "./app/lib/pkg/up",
        "./app/tmp",
    ]
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}


def test_packing_is_deterministic(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    (tmp_path / "elsewhere").mkdir()
    one = pack(tmp_path / "src", tmp_path / "one.tar.gz")
    two = pack(tmp_path / "src", tmp_path / "elsewhere" / "two.tar.gz")
    assert one.sha256 == two.sha256
    assert one.path.read_bytes() == two.path.read_bytes()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda src: (src / "link").symlink_to("/etc/passwd"),
            "'{src}/link' is a symlink to '/etc/passwd', which is outside the app",
        ),
        (
            lambda src: (src / "link").symlink_to("../outside"),
            "'{src}/link' is a symlink to '../outside', which is outside the app",
        ),
        (
            lambda src: (src / "link").symlink_to("sub/up/.."),
            "'{src}/link' is a symlink to 'sub/up/..', which is outside the app",
        ),
        (
            lambda src: os.mkfifo(src / "pipe"),
            "cannot pack '{src}/pipe': it is a FIFO, and slugs hold only regular files,"
            " directories and symlinks",
        ),
    ],
    ids=["absolute-symlink", "escaping-symlink", "escape-through-inner-link", "fifo"],
)
def test_pack_refuses(tmp_path: Path, make: object, message: str) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "up").symlink_to("..")
    assert callable(make)
    make(src)
    (tmp_path / "out").mkdir()
    with pytest.raises(SlugError) as e:
        pack(src, tmp_path / "out" / "slug.tar.gz")
    assert e.value.message == message.format(src=src)
    assert os.listdir(tmp_path / "out") == []


def test_pack_refuses_a_file_and_a_slug_inside_its_source(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SlugError, match="it is not a directory"):
        pack(tmp_path / "file", tmp_path / "slug.tar.gz")
    with pytest.raises(SlugError, match="inside '.*', which it packs"):
        pack(tmp_path, tmp_path / "slug.tar.gz")


# -- hostile tarballs -------------------------------------------------------------------------

OUTSIDE = "which is outside the app"
SPECIAL = "and slugs hold only regular files, directories and symlinks"

REFUSED = [
    ("dotdot", [F("../evil")], "slug member '../evil' has a '..' component"),
    (
        "dotdot-inside-app",
        [D("./app"), F("./app/../../evil")],
        "slug member './app/../../evil' has a '..' component",
    ),
    ("absolute", [F("/etc/evil")], "slug member '/etc/evil' is an absolute path"),
    (
        "symlink-absolute",
        [D("./app"), L("./app/link", "/etc/passwd")],
        f"slug member './app/link' is a symlink to '/etc/passwd', {OUTSIDE}",
    ),
    (
        "symlink-up",
        [D("./app"), L("./app/link", "../../x")],
        f"slug member './app/link' is a symlink to '../../x', {OUTSIDE}",
    ),
    (
        "symlink-up-and-back",
        [D("./app"), L("./app/link", "../app/x")],
        f"slug member './app/link' is a symlink to '../app/x', {OUTSIDE}",
    ),
    (
        "symlink-through-inner-link",
        [L("./app/sub/up", ".."), L("./app/link", "sub/up/..")],
        f"slug member './app/link' is a symlink to 'sub/up/..', {OUTSIDE}",
    ),
    (
        "symlink-loop",
        [L("./app/a", "b"), L("./app/b", "a")],
        "slug member './app/a' is a symlink to 'b', which follows more than 40 links (a loop?)",
    ),
    (
        "symlink-empty",
        [L("./app/link", "")],
        "slug member './app/link' is a symlink with an empty or NUL-bearing target",
    ),
    (
        "write-through-symlink",
        [L("./app/link", "sub"), D("./app/sub"), F("./app/link/x")],
        "slug member './app/link/x' is under slug member './app/link', a symlink, not a directory",
    ),
    (
        "under-a-file",
        [F("./app/f"), F("./app/f/x")],
        "slug member './app/f/x' is under slug member './app/f', a file, not a directory",
    ),
    (
        "hardlink",
        [F("./app/Procfile"), M("./app/hard", tarfile.LNKTYPE, linkname="./app/Procfile")],
        "slug member './app/hard' is a hard link, which slugs may not contain",
    ),
    (
        "character-device",
        [M("./app/null", tarfile.CHRTYPE)],
        f"slug member './app/null' is a character device, {SPECIAL}",
    ),
    (
        "block-device",
        [M("./app/sda", tarfile.BLKTYPE)],
        f"slug member './app/sda' is a block device, {SPECIAL}",
    ),
    ("fifo", [M("./app/pipe", tarfile.FIFOTYPE)], f"slug member './app/pipe' is a FIFO, {SPECIAL}"),
    (
        "unknown-type",
        [M("./app/v", b"V")],
        f"slug member './app/v' is a member of unknown type b'V', {SPECIAL}",
    ),
    ("outside-app", [D("./app"), F("./other/x")], "slug member './other/x' is not under ./app"),
    ("app-prefix", [F("./application")], "slug member './application' is not under ./app"),
    ("bare-dot", [D(".")], "slug member '.' is not under ./app"),
    ("app-is-symlink", [L("./app", ".")], "slug member './app' must be a directory, not a symlink"),
    ("app-is-file", [F("./app")], "slug member './app' must be a directory, not a file"),
    ("duplicate", [F("./app/a"), F("./app/a")], "slug member './app/a' appears twice"),
    (
        "duplicate-spelt-differently",
        [F("./app/a"), L("app/a", "b")],
        "slug member 'app/a' appears twice",
    ),
    ("empty-component", [F("./app//x")], "slug member './app//x' has an empty or '.' component"),
    ("dot-component", [F("./app/./x")], "slug member './app/./x' has an empty or '.' component"),
    (
        "long-component",
        [F("./app/" + "a" * 256)],
        f"slug member './app/{'a' * 256}' has a component longer than 255 bytes",
    ),
    ("empty", [], "slug 'slug.tar.gz' is empty: it has no ./app directory"),
]


@pytest.mark.parametrize(
    ("members", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_unpack_refuses_hostile_members(
    where: tuple[Path, Path], members: list[M], message: str
) -> None:
    tarball, dest = where
    refused(tarball, dest, write_tar(tarball, members), message)


BOMB = 1000 + 12 * 1024 * 12
CAPPED = [
    (
        "too-many-members",
        [D("./app"), F("./app/a"), F("./app/b"), F("./app/c")],
        {"max_members": 3},
        "slug member './app/c' is past the cap of 3 members set by GUN_SLUG_MAX_MEMBERS:"
        " raise it, or ship fewer files",
    ),
    (
        "too-many-bytes",
        [F("./app/a", b"x" * 6), F("./app/b", b"x" * 4), F("./app/c", b"x")],
        {"max_bytes": 10},
        "slug member './app/c' takes the slug past 10 bytes unpacked, the cap set by"
        " GUN_SLUG_MAX_UNPACKED_BYTES: raise it, or make the app smaller",
    ),
    (
        "huge-pax-header",
        [M("./app/a", pax={"comment": "x" * 400_000})],
        {"max_bytes": 1000, "max_members": 10},
        f"slug 'slug.tar.gz' holds more than {BOMB} bytes of tar data,"
        " so it is corrupt or a decompression bomb",
    ),
]


@pytest.mark.parametrize(
    ("members", "caps", "message"), [r[1:] for r in CAPPED], ids=[r[0] for r in CAPPED]
)
def test_unpack_caps_size_and_members(
    where: tuple[Path, Path], members: list[M], caps: dict[str, int], message: str
) -> None:
    tarball, dest = where
    refused(tarball, dest, write_tar(tarball, members), message, **caps)


def good_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("./app/a", random.Random(7).randbytes(3000)), ("./app/b", b"b" * 3000)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def corrupt_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 8]) + data[middle + 8 :]


BROKEN = [
    (
        "not-gzip",
        b"definitely not a gzip file",
        "slug 'slug.tar.gz' is not a valid gzip file (Not a gzipped file (b'de'))",
    ),
    (
        "plain-tar",
        good_tar(),
        "slug 'slug.tar.gz' is not a valid gzip file (Not a gzipped file (b'./'))",
    ),
    (
        "truncated-gzip",
        gzip.compress(good_tar())[:-200],
        "slug 'slug.tar.gz' is truncated: its gzip stream ends early",
    ),
    (
        "corrupt-gzip",
        corrupt_middle(gzip.compress(good_tar())),
        "slug 'slug.tar.gz' is not a valid gzip file (CRC check failed",
    ),
    (
        "empty-gzip",
        gzip.compress(b""),
        "slug 'slug.tar.gz' is not a valid tar archive (empty file)",
    ),
    (
        "gzip-of-text",
        gzip.compress(b"hello " * 200),
        "slug 'slug.tar.gz' is not a valid tar archive (",
    ),
    (
        "truncated-tar",
        gzip.compress(good_tar()[:4000]),
        "slug 'slug.tar.gz' is truncated or has data after its last member",
    ),
    (
        "truncated-in-member-data",
        gzip.compress(good_tar()[:2000]),
        "slug 'slug.tar.gz' is not a valid tar archive (unexpected end of data)",
    ),
    (
        "no-end-of-archive",
        gzip.compress(good_tar()[: 2 * (512 + 3072)]),
        "slug 'slug.tar.gz' is truncated or has data after its last member",
    ),
    (
        "data-after-the-end",
        gzip.compress(good_tar() + b"more"),
        "slug 'slug.tar.gz' is truncated or has data after its last member",
    ),
]


@pytest.mark.parametrize(("data", "message"), [r[1:] for r in BROKEN], ids=[r[0] for r in BROKEN])
def test_unpack_refuses_broken_files(where: tuple[Path, Path], data: bytes, message: str) -> None:
    tarball, dest = where
    sha256 = write_bytes(tarball, data)
    before = snapshot(dest.parent.parent)
    with pytest.raises(SlugError) as e:
        unpack(tarball, dest, sha256)
    assert e.value.message.startswith(message)
    assert snapshot(dest.parent.parent) == before


def test_tarfiles_data_filter_is_a_second_guard(
    where: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the pre-scan switched off, the data filter still refuses, and files it had already
    written are removed with the temporary directory."""
    tarball, dest = where
    sha256 = write_tar(tarball, [F("./app/a"), F("./app/b"), L("./app/link", "/etc/passwd")])

    def scan_nothing(tarball: Path, *caps: int) -> list[tuple[str, bytes, int, str]]:
        with tarfile.open(tarball) as tar:
            return [(m.name, m.type, m.size, m.linkname) for m in tar]

    monkeypatch.setattr(slug_module, "_scan", scan_nothing)
    refused(
        tarball,
        dest,
        sha256,
        "slug member './app/link' was refused by tarfile ('./app/link' is a link to an absolute"
        " path)",
    )


def test_unpack_checks_the_sha256_before_anything_else(where: tuple[Path, Path]) -> None:
    tarball, dest = where
    got = write_tar(tarball, [F("../evil")])
    wrong = "0" * 64
    refused(
        tarball,
        dest,
        wrong,
        f"slug 'slug.tar.gz' has sha256 {got}, expected {wrong}; refusing to unpack it",
    )
    refused(tarball, dest, "abc", "expected sha256 'abc' is not 64 hex digits")


def test_unpack_refuses_an_existing_destination(where: tuple[Path, Path]) -> None:
    tarball, dest = where
    sha256 = write_tar(tarball, [F("./app/Procfile", b"web: x\n")])
    dest.mkdir()
    refused(tarball, dest, sha256, f"cannot unpack into {str(dest)!r}: it already exists")


def test_unpack_takes_the_apps_contents_not_an_app_directory(where: tuple[Path, Path]) -> None:
    tarball, dest = where
    sha256 = write_tar(tarball, [F("app/Procfile", b"web: x\n"), F("./app/lib/a.py", b"")])
    unpack(tarball, dest, sha256.upper())
    assert snapshot(dest.parent) == {
        "v1": ("dir",),
        "v1/Procfile": ("file", b"web: x\n".hex(), "-"),
        "v1/lib": ("dir",),
        "v1/lib/a.py": ("file", "", "-"),
    }


def test_unpack_clears_setuid_and_group_write(where: tuple[Path, Path]) -> None:
    tarball, dest = where
    with tarfile.open(tarball, "w:gz") as tar:
        info = tarfile.TarInfo("./app/run")
        info.mode = 0o6777
        tar.addfile(info, io.BytesIO(b""))
    unpack(tarball, dest, sha256_of(tarball))
    assert stat.S_IMODE((dest / "run").stat().st_mode) == 0o755


# -- any member names at all: inside dest, or refused ---------------------------------------


def mostly(common: st.SearchStrategy[str], rare: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`common` about nine times in ten (hypothesis would otherwise favour the odd cases)."""
    return st.integers(0, 9).flatmap(lambda i: rare if i == 0 else common)


# Mostly plausible names under ./app, so that links and '..' meet real trees; some anything.
ODD = st.one_of(st.sampled_from(["..", ".", ""]), st.text(max_size=3))
PART = mostly(st.sampled_from(["a", "b", "app"]), ODD)
NAME = st.builds(
    lambda lead, parts: lead + "/".join(parts),
    mostly(st.sampled_from(["./app/", "app/"]), st.sampled_from(["", "./", "/"])),
    st.lists(PART, min_size=1, max_size=4),
)
TARGET = st.builds(
    lambda lead, parts: lead + "/".join(parts),
    mostly(st.just(""), st.just("/")),
    st.lists(st.one_of(PART, st.just("..")), min_size=1, max_size=5),
)
SPECIAL_MEMBER = st.one_of(
    st.builds(lambda name, target: M(name, tarfile.LNKTYPE, linkname=target), NAME, TARGET),
    st.builds(lambda name: M(name, tarfile.FIFOTYPE), NAME),
)
KINDS = [st.builds(F, NAME)] * 5 + [st.builds(D, NAME)] * 5 + [st.builds(L, NAME, TARGET)] * 5
MEMBER = st.integers(0, len(KINDS)).flatmap(
    lambda i: KINDS[i] if i < len(KINDS) else SPECIAL_MEMBER
)


@given(st.lists(MEMBER, max_size=6))
def test_any_names_unpack_inside_dest_or_are_refused(members: list[M]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # Deep enough that five '..' from the unpack directory still land inside `tmp`.
        out = Path(tmp, "1", "2", "3", "4", "5", "6", "out")
        out.mkdir(parents=True)
        tarball, dest = Path(tmp, "slug.tar.gz"), out / "v1"
        try:
            sha256 = write_tar(tarball, members)
        except (ValueError, UnicodeError):
            return  # tarfile cannot even write these names
        before = snapshot(Path(tmp))
        try:
            unpack(tarball, dest, sha256)
        except SlugError:
            assert snapshot(Path(tmp)) == before
            return
        after = snapshot(Path(tmp))
        new = set(after) - set(before)
        assert all(path.startswith(str(dest.relative_to(tmp))) for path in new)
        assert {k: v for k, v in after.items() if k in before} == before
        root = os.path.realpath(dest)
        for path in dest.rglob("*"):
            assert os.path.commonpath([os.path.realpath(path), root]) == root


# -- the local slug store ---------------------------------------------------------------------


def test_local_store_keeps_slugs_by_app_and_sha256(tmp_path: Path) -> None:
    (tmp_path / "slug.tar.gz").write_bytes(b"a slug")
    sha256 = sha256_of(tmp_path / "slug.tar.gz")
    store = LocalSlugStore(tmp_path / "slugs")

    key = store.put("demo", tmp_path / "slug.tar.gz", sha256)
    assert key == f"demo/{sha256}.tar.gz" == slug_key("demo", sha256)
    assert store.put("demo", tmp_path / "slug.tar.gz", sha256) == key
    assert store.exists(key)
    assert store.path(key) == tmp_path / "slugs" / "demo" / f"{sha256}.tar.gz"
    with store.open(key) as f:
        assert f.read() == b"a slug"
    assert os.listdir(tmp_path / "slugs" / "demo") == [f"{sha256}.tar.gz"]

    store.delete(key)
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(NotFound, match="is not in the slug store"):
        store.open(key)


def test_local_store_refuses_a_slug_whose_sha256_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "slug.tar.gz").write_bytes(b"a slug")
    store = LocalSlugStore(tmp_path / "slugs")
    with pytest.raises(SlugError, match=f"has sha256 {sha256_of(tmp_path / 'slug.tar.gz')}"):
        store.put("demo", tmp_path / "slug.tar.gz", "0" * 64)
    assert os.listdir(tmp_path / "slugs" / "demo") == []


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("../../etc/passwd", InvalidParams),
        (f"demo/../{'0' * 64}.tar.gz", InvalidParams),
        (f"../{'0' * 64}.tar.gz", InvalidParams),
        (f"demo/{'A' * 64}.tar.gz", InvalidParams),
        (f"demo/{'0' * 64}", InvalidParams),
        (f"demo/x/{'0' * 64}.tar.gz", InvalidParams),
    ],
    ids=["traversal", "dotdot-app", "dotdot-only", "uppercase", "no-suffix", "nested"],
)
def test_local_store_refuses_keys_it_did_not_make(
    tmp_path: Path, key: str, error: type[Exception]
) -> None:
    store = LocalSlugStore(tmp_path)
    for call in (store.exists, store.open, store.delete, store.path):
        with pytest.raises(error):
            call(key)
