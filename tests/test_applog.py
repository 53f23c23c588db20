"""app.log (gun.agent.applog): lines and where they lie, rotation by size, reading back what a
drain has not had yet (across rotations), and a full disk, on a real tmpfs."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gun.agent.applog import (
    AppLog,
    Position,
    Span,
    generations,
    load_positions,
    parse,
    save_positions,
    state_path,
    unshipped,
)
from gun.settings import AppLogLimits
from tests.disk import fill, tmpfs

Got = list[tuple[str, str, Span | None]]


def applog(root: Path, max_bytes: int = 50 * 1024 * 1024, keep: int = 3) -> tuple[AppLog, Got]:
    got: Got = []
    (root / "log").mkdir(parents=True, exist_ok=True)
    log = AppLog(
        root / "log" / "app.log",
        lambda who, text, span: got.append((who, text, span)),
        AppLogLimits(max_bytes, keep),
    )
    return log, got


def texts(path: Path) -> list[str]:
    """The text of each line of a file (what follows `SOURCE[NAME]: `)."""
    out = []
    for raw in path.read_bytes().splitlines():
        parsed = parse(raw)
        assert parsed is not None, raw
        out.append(parsed[3])
    return out


def test_each_line_goes_to_the_file_and_the_sink_with_where_it_lies(tmp_path: Path) -> None:
    log, got = applog(tmp_path)
    log.write("app", "web.1", ["one", "two ünïcode"])
    log.write("heroku", "web.1", ["State changed from starting to up"])
    data = log.path.read_bytes()
    ino = os.stat(log.path).st_ino
    assert [(who, text) for who, text, _ in got] == [
        ("app[web.1]", "one"),
        ("app[web.1]", "two ünïcode"),
        ("heroku[web.1]", "State changed from starting to up"),
    ]
    for who, text, span in got:
        assert span is not None and span.ino == ino
        line = data[span.start : span.end]
        assert line.endswith(f" {who}: {text}\n".encode())
    assert [s.end for _, _, s in got if s] == [s.start for _, _, s in got[1:] if s] + [len(data)]
    assert log.position() == Position(ino, data[:32].hex(), len(data))
    assert log.error is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"2026-11-26T15:00:00.123456+00:00 app[web.1]: hello: world",
            (datetime(2026, 11, 26, 15, 0, 0, 123456, UTC), "app", "web.1", "hello: world"),
        ),
        (
            b"2026-11-26T15:00:00.000001+00:00 heroku[release.1]: Release v3 phase",
            (datetime(2026, 11, 26, 15, 0, 0, 1, UTC), "heroku", "release.1", "Release v3 phase"),
        ),
        (
            b"2026-11-26T15:00:00.123456+00:00 app[web.1]: ",
            (datetime(2026, 11, 26, 15, 0, 0, 123456, UTC), "app", "web.1", ""),
        ),
        (b"2026-11-26T15:00:00.123456+00:00 app[web.1]:no space", None),
        (b"2026-11-26T15:00:00+00:00 app[web.1]: no microseconds", None),
        (b"2026-11-26T15:00:00.123456+00:00 router[web.1]: not a source", None),
        (b"partial line cut by a full disk", None),
        (b"", None),
    ],
)
def test_parse(raw: bytes, expected: object) -> None:
    assert parse(raw) == expected


def test_rotation_by_size_keeps_keep_files_and_the_newest_lines_in_order(tmp_path: Path) -> None:
    log, got = applog(tmp_path, max_bytes=1000, keep=3)
    for n in range(1, 201):
        log.write("app", "worker.1", [f"line {n:04d}"])
    names = sorted(p.name for p in log.path.parent.iterdir())
    assert names == ["app.log", "app.log.1", "app.log.2", "app.log.3"]
    sizes = [p.stat().st_size for p in generations(log.path)[:-1]]
    line = len(log.path.read_bytes().splitlines()[0]) + 1
    assert all(1000 <= size < 1000 + line for size in sizes), sizes
    kept = [t for p in generations(log.path) for t in texts(p)]
    assert kept == [f"line {n:04d}" for n in range(201 - len(kept), 201)]  # contiguous, newest
    assert len(kept) > 3 * (1000 // line)
    assert [text for _, text, _ in got] == [f"line {n:04d}" for n in range(1, 201)]  # all shipped


def test_keep_zero_keeps_only_the_current_file(tmp_path: Path) -> None:
    log, _ = applog(tmp_path, max_bytes=500, keep=0)
    for n in range(50):
        log.write("app", "web.1", [f"line {n}"])
    assert [p.name for p in log.path.parent.iterdir()] in ([], ["app.log"])


def test_a_rotation_made_by_someone_else_is_followed(tmp_path: Path) -> None:
    log, _ = applog(tmp_path)
    log.write("app", "web.1", ["before"])
    os.rename(log.path, log.path.with_name("app.log.old"))
    log.follow()
    log.write("app", "web.1", ["after"])
    assert texts(log.path) == ["after"]
    assert texts(log.path.with_name("app.log.old")) == ["before"]


def test_unshipped_gives_each_drain_what_follows_its_position_across_rotations(
    tmp_path: Path,
) -> None:
    log, got = applog(tmp_path, max_bytes=800, keep=5)
    for n in range(1, 81):
        log.write("app", "web.1", [f"n={n}"])
    spans = {text: span for _, text, span in got}
    assert len(generations(log.path)) >= 4  # the positions below lie in different files
    behind, ahead = spans["n=7"], spans["n=60"]
    assert behind is not None and ahead is not None and behind.head != ahead.head
    done = log.position()
    assert done is not None
    due, warnings = unshipped(log.path, {"slow": behind.begin, "fast": ahead.begin, "done": done})
    assert warnings == []
    assert [(d.line.text, sorted(d.drains)) for d in due] == [
        (f"n={n}", ["slow"] if n < 60 else ["fast", "slow"]) for n in range(7, 81)
    ]
    first = due[0].line
    assert (first.appname, first.procid, first.span) == ("app", "web.1", behind)
    assert first.when.tzinfo is not None


def test_a_drain_whose_file_was_rotated_away_gets_every_file_left(tmp_path: Path) -> None:
    log, got = applog(tmp_path, max_bytes=300, keep=1)
    log.write("app", "web.1", ["first"])
    gone = got[0][2]
    assert gone is not None
    for n in range(30):
        log.write("app", "web.1", [f"n={n}"])
    due, warnings = unshipped(log.path, {"slow": gone.begin, "other": log.position() or gone.after})
    kept = [t for p in generations(log.path) for t in texts(p)]
    assert [d.line.text for d in due] == kept and {d.drains for d in due} == {frozenset({"slow"})}
    assert warnings == [
        "app.log lines not yet shipped to drain slow when the agent stopped were rotated away;"
        " it gets what the rotated files left hold"
    ]


def test_unshipped_without_positions_or_files_is_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log" / "app.log"
    assert unshipped(path, {}) == ([], [])
    assert unshipped(path, {"d": Position(1, "", 0)}) == ([], [])


def test_positions_are_kept_in_state_and_a_broken_file_is_none(tmp_path: Path) -> None:
    assert load_positions(tmp_path) is None
    save_positions(tmp_path, {"b": Position(7, "32303236", 100), "a": Position(8, "", 0)})
    assert load_positions(tmp_path) == {
        "a": Position(8, "", 0),
        "b": Position(7, "32303236", 100),
    }
    assert oct(state_path(tmp_path).stat().st_mode & 0o777) == "0o600"
    state_path(tmp_path).write_text('{"drains": {"a": {"ino": "x"}}}')
    assert load_positions(tmp_path) is None


def test_a_full_disk_never_raises_and_the_lines_still_reach_the_sink(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "256k") as disk:
        log, got = applog(disk)
        log.write("app", "web.1", ["before"])
        filler = fill(disk)
        log.write("app", "web.1", ["x" * 8000, "during"])
        log.write("heroku", "web.1", ["still during"])
        assert log.error == f"no space left on device writing {log.path}"
        assert log.unwritten == 3
        assert [(text[:5], span) for _, text, span in got[1:]] == [
            ("xxxxx", None),
            ("durin", None),
            ("still", None),
        ]
        filler.unlink()
        log.write("app", "web.1", ["after"])
        assert log.error is None
        data = log.path.read_bytes()
        assert got[-1][2] is not None and data[got[-1][2].start :].endswith(b"app[web.1]: after\n")
        # what a cut-short write left is a line of its own, not the start of the next one
        lines = data.splitlines()
        assert lines[0].endswith(b"app[web.1]: before") and lines[-1].endswith(b": after")
        assert all(parse(raw) is not None for raw in (lines[0], lines[-1]))
        log.close()
