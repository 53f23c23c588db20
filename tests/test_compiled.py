"""The drain's compiled build (gun/compiled.py): built here by mypyc into a scratch directory,
loaded only for exactly the sources it was made from, and doing what the sources do — line for
line, bucket for bucket, sentence for sentence."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gun import compiled
from gun.logs.frames import frame
from tests.compiled_oracle import digest
from tests.drain import Site, buckets, lines_with_metrics, site_running
from tests.meta import GUN

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build of these sources, made here (about 10 s; needs mypy and a C compiler)."""
    return compiled.build(tmp_path_factory.mktemp("compiled"))


def use_in(where: Path, mode: str = "auto", **env: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter that calls compiled.use and imports the drain's hot modules."""
    code = (
        "import sys; from pathlib import Path; from gun import compiled;"
        f" print(compiled.use(Path({str(where)!r}), {mode!r}));"
        " import gun.logs.aggregate, gun.logs.filters, gun.logs.frames;"
        " print(compiled.compiled())"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, **env),
    )  # fmt: skip


def test_a_build_is_for_exactly_the_sources_it_was_made_from(tmp_path: Path) -> None:
    copy = tmp_path / "gun"
    shutil.copytree(compiled.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    assert compiled.key(copy) == compiled.key()
    (copy / "api" / "__init__.py").write_text((copy / "api" / "__init__.py").read_text() + "\n")
    assert compiled.key(copy) != compiled.key(), "a byte more anywhere in gun: another build"


def test_the_build_loads_in_place_of_the_sources(build: Path) -> None:
    shown = use_in(build.parent, "on")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"compiled by mypyc ({build})\nTrue\n"


def test_a_build_of_other_sources_is_not_loaded(build: Path, tmp_path: Path) -> None:
    other = tmp_path / "builds"
    shutil.copytree(build, other / ("0" * 32))
    shown = use_in(other)
    assert shown.stdout == (
        f"pure Python: no compiled build for these sources in {other}"
        " (python -m gun.compiled build)\nFalse\n"
    )
    shown = use_in(other, "on")
    assert shown.returncode == 1 and "GUN_DRAIN_COMPILED=on, but there is no compiled" in (
        shown.stderr
    )


def test_a_build_another_user_could_write_is_not_loaded(build: Path) -> None:
    build.chmod(0o775)
    try:
        shown = use_in(build.parent)
    finally:
        build.chmod(0o755)
    assert shown.stdout == f"pure Python: {build} may be written by another user\nFalse\n"


def test_off_loads_nothing(build: Path) -> None:
    assert use_in(build.parent, "off").stdout == "pure Python (GUN_DRAIN_COMPILED=off)\nFalse\n"


def test_status_says_whether_there_is_a_build(build: Path, tmp_path: Path) -> None:
    def status(where: Path) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, "-m", "gun.compiled", "status", str(where)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return done.returncode, done.stdout

    assert status(build.parent) == (0, f"a compiled build for these sources in {build.parent}\n")
    assert status(tmp_path) == (1, f"no compiled build for these sources in {tmp_path}\n")


def test_a_mode_that_is_not_one_is_refused(tmp_path: Path) -> None:
    env = dict(os.environ, GUN_HOME=str(tmp_path), GUN_DRAIN_COMPILED="yes")
    shown = subprocess.run(
        [*GUN, "server", "drain"], env=env, capture_output=True, text=True, timeout=30
    )
    assert (shown.returncode, shown.stderr) == (
        2,
        "gun: GUN_DRAIN_COMPILED='yes' is not one of auto, on, off\n",
    )


# --- the compiled modules do what the sources do --------------------------------------------


@pytest.fixture(scope="module")
def oracle(build: Path) -> Iterator[subprocess.Popen[str]]:
    """tests/compiled_oracle.py with the build loaded: digest() of each body we send."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.compiled_oracle", str(build.parent)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("compiled by mypyc")
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def compiled_digest(oracle: subprocess.Popen[str], body: bytes) -> str:
    assert oracle.stdin is not None and oracle.stdout is not None
    oracle.stdin.write(base64.b64encode(body).decode() + "\n")
    oracle.stdin.flush()
    return oracle.stdout.readline().rstrip("\n")


_names = st.sampled_from(["db.query", "q", "memory_rss", "load_avg_1m", "é", "a#b", ""])
_values = st.one_of(
    st.integers(0, 10**6).map(str),
    st.decimals(0, 10**4, places=3).map(str),
    st.sampled_from(["", "-1", "abc", "1e3", "1.2.3", ".5", "00", "nan", "inf", "12µ"]),
)
_units = st.sampled_from(["", "ms", "s", "MB", "pages", "jobs", " ms", "µs"])
_metric = st.builds(
    lambda kind, name, value, unit: f"{kind}{name}={value}{unit}",
    st.sampled_from(["measure#", "sample#", "count#", "unique#", "measure.", "source="]),
    _names, _values, _units,
)  # fmt: skip
_words = st.one_of(
    _metric,
    st.sampled_from(['path="/a b"', 'desc="x \\" y"', "at=info", "=", '"', "code=H12"]),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n"), max_size=12),
)
_router = st.builds(
    lambda c, s, st_, b: (
        f"at=info method=GET path=/ host=x request_id={uuid.UUID(int=c)} fwd=1.2.3.4 dyno=web.1"
        f" connect={c % 7}ms service={s}ms status={st_} bytes={b} protocol=https"
    ),
    st.integers(0, 10**9), st.integers(0, 5000), st.sampled_from([200, 302, 404, 503, 99]),
    st.integers(0, 10**6),
)  # fmt: skip
_text = st.lists(_words).map(" ".join)
_lines = st.one_of(
    st.tuples(st.just("app"), st.sampled_from(["web.1", "worker.2"]), _text),
    st.tuples(st.just("heroku"), st.just("router"), _router),
    st.tuples(st.just("heroku"), st.just("router"), _text),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.floats(1.7e9, 1.71e9), _lines), min_size=1, max_size=8),
    st.integers(0, 10**6),
    st.integers(0, 3),
    st.sampled_from([0x0A, 0x20, 0x30, 0x3C, 0x61, 0xC3, 0xFF]),
)
def test_the_compiled_modules_read_parse_and_aggregate_as_the_sources_do(
    oracle: subprocess.Popen[str],
    specs: list[tuple[float, tuple[str, str, str]]],
    at: int,
    how: int,
    byte: int,
) -> None:
    body = b"".join(frame(190, t, app, procid, msg) for t, (app, procid, msg) in specs)
    if how < 3:  # one byte deleted, inserted or changed: bad frames, said alike
        at %= len(body)
        body = body[:at] + bytes([byte]) * (how > 0) + body[at + (how != 1) :]
    assert compiled_digest(oracle, body) == json.dumps(digest(body))


# --- the drain, compiled and not -------------------------------------------------------------


@pytest.fixture(scope="module")
def fast(build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = {"GUN_DRAIN_COMPILED": "on", "GUN_COMPILED_DIR": str(build.parent)}
    with site_running(tmp_path_factory.mktemp("fast"), ("shop",), **settings) as site:
        yield site


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with site_running(
        tmp_path_factory.mktemp("plain"), ("shop",), GUN_DRAIN_COMPILED="off"
    ) as site:
        yield site


def test_the_compiled_drain_keeps_what_the_pure_python_one_keeps(
    build: Path, fast: Site, plain: Site
) -> None:
    for site, is_compiled in ((fast, True), (plain, False)):
        assert site.http.get(f"{site.drain.url}/health").json()["compiled"] is is_compiled
    assert f"the drain runs compiled by mypyc ({build})" in fast.drain.said()
    assert "the drain runs pure Python (GUN_DRAIN_COMPILED=off)" in plain.drain.said()
    frames = lines_with_metrics(random.Random(5), 400, time.time())
    bad = b"12 <190>1 not a frame at all"
    for start in range(0, len(frames), 25):
        body = b"".join(frames[start : start + 25])
        answers = [site.post(f"/logs/{site.tokens['shop']}", body) for site in (fast, plain)]
        assert [(a.status, a.json()["lines"]) for a in answers] == [(200, 25), (200, 25)]
    answers = [site.post(f"/logs/{site.tokens['shop']}", bad) for site in (fast, plain)]
    assert answers[0].status == 400 and answers[0].json() == answers[1].json()
    url = "/v1/apps/shop/logs?n=1500"
    kept = [site.http.get(f"{site.drain.url}{url}", headers=site.admin()) for site in (fast, plain)]
    assert len(kept[0].json()["lines"]) == 400 and kept[0].json() == kept[1].json()
    expected = buckets(plain)
    assert {b["name"] for b in expected} >= {"db.query", "orders", "router.service"}
    assert buckets(fast) == expected
