"""`gun logs` options (tables of accepted and refused words) and the hour-file log archive
(transcripts: these lines arrive, `gun logs ...` shows these)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gun.errors import InvalidParams, UsageError
from gun.logs.archive import Archive, members
from gun.logs.filters import Filter, format_line, stamp
from gun.logs.model import Line


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


NOW = at("2026-11-27T00:30:00+00:00")


def lines(log: str) -> list[Line]:
    """Lines written as `heroku logs` shows them, one per line of `log`."""
    out = []
    for text in dedent(log).strip().splitlines():
        timestamp, _, rest = text.partition(" ")
        appname, _, rest = rest.partition("[")
        procid, _, msg = rest.partition("]: ")
        out.append(Line(at(timestamp), timestamp, appname, procid, msg))
    return out


def log(text: str) -> str:
    return dedent(text).strip()


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return Archive(tmp_path / "logs")


def logs(archive: Archive, app: str = "demo", **options: str) -> str:
    """What `gun app:APP logs OPTION=VALUE...` prints at NOW."""
    return "\n".join(archive.read(app, Filter.parse(options, now=NOW), NOW))


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, Filter(n=100)),
        ({"n": "1"}, Filter(n=1)),
        ({"n": "10000"}, Filter(n=10000)),
        ({"n": "0250"}, Filter(n=250)),
        ({"ps": "web"}, Filter(ps="web")),
        ({"ps": "web.1"}, Filter(ps="web.1")),
        ({"ps": "run.7"}, Filter(ps="run.7")),
        ({"ps": "router"}, Filter(ps="router")),
        ({"ps": "clock_2"}, Filter(ps="clock_2")),
        ({"ps": "my-worker.12"}, Filter(ps="my-worker.12")),
        ({"ps": "w" * 64}, Filter(ps="w" * 64)),
        ({"source": "app"}, Filter(source="app")),
        ({"source": "heroku"}, Filter(source="heroku")),
        ({"since": "30s"}, Filter(since=NOW - 30)),
        ({"since": "15m"}, Filter(since=NOW - 15 * 60)),
        ({"since": "2h"}, Filter(since=NOW - 2 * 3600)),
        ({"since": "7d"}, Filter(since=NOW - 7 * 86400)),
        ({"since": "2026-11-26T18:47:38Z"}, Filter(since=at("2026-11-26T18:47:38+00:00"))),
        ({"since": "2026-11-26t18:47:38z"}, Filter(since=at("2026-11-26T18:47:38+00:00"))),
        ({"since": "2026-11-26 18:47:38Z"}, Filter(since=at("2026-11-26T18:47:38+00:00"))),
        (
            {"since": "2026-11-26T18:47:38.123456+00:00"},
            Filter(since=at("2026-11-26T18:47:38.123456+00:00")),
        ),
        (
            {"since": "2026-11-26T19:47:38.5+01:00"},
            Filter(since=at("2026-11-26T18:47:38.500000+00:00")),
        ),
        (
            {"since": "2026-11-26T18:47:38.123456789Z"},
            Filter(since=at("2026-11-26T18:47:38.123456+00:00")),
        ),
        ({"until": "30s"}, Filter(until=NOW - 30)),
        ({"until": "2026-11-26T18:00:00Z"}, Filter(until=at("2026-11-26T18:00:00+00:00"))),
        (
            {"since": "2026-11-26T18:00:00Z", "until": "2026-11-26T19:00:00+00:00"},
            Filter(since=at("2026-11-26T18:00:00+00:00"), until=at("2026-11-26T19:00:00+00:00")),
        ),
        ({"grep": "H12"}, Filter(grep="H12")),
        ({"grep": "status=5"}, Filter(grep="status=5")),
        ({"grep": " "}, Filter(grep=" ")),
        (
            {"n": "5", "ps": "web", "source": "app", "since": "2h", "grep": "GET"},
            Filter(n=5, ps="web", source="app", since=NOW - 7200, grep="GET"),
        ),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else "",
)
def test_accepted_options(options: dict[str, str], expected: Filter) -> None:
    assert Filter.parse(options, now=NOW) == expected


SINCE_WORDS = "is not a duration like 30s, 15m, 2h or 7d, nor an RFC 3339 time"
PS_WORDS = "is not a process type like web nor a process like web.1"
NOT_AN_OPTION = "is not an option of logs: use n, ps, source, since, until or grep"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n": "0"}, "-n '0' is not a number of lines from 1 to 10000"),
        ({"n": "10001"}, "-n '10001' is not a number of lines from 1 to 10000"),
        ({"n": "-1"}, "-n '-1' is not a number of lines from 1 to 10000"),
        ({"n": "1.5"}, "-n '1.5' is not a number of lines from 1 to 10000"),
        ({"n": "ten"}, "-n 'ten' is not a number of lines from 1 to 10000"),
        ({"n": " 5"}, "-n ' 5' is not a number of lines from 1 to 10000"),
        ({"n": ""}, "-n '' is not a number of lines from 1 to 10000"),
        ({"n": "99999999999"}, "-n '99999999999' is not a number of lines from 1 to 10000"),
        ({"ps": ""}, f"ps='' {PS_WORDS}"),
        ({"ps": "web."}, f"ps='web.' {PS_WORDS}"),
        ({"ps": ".1"}, f"ps='.1' {PS_WORDS}"),
        ({"ps": "web.x"}, f"ps='web.x' {PS_WORDS}"),
        ({"ps": "web.1.2"}, f"ps='web.1.2' {PS_WORDS}"),
        ({"ps": "web 1"}, f"ps='web 1' {PS_WORDS}"),
        ({"ps": "web/1"}, f"ps='web/1' {PS_WORDS}"),
        ({"ps": "w" * 65}, f"ps='{'w' * 65}' {PS_WORDS}"),
        ({"source": ""}, "source='' is neither app nor heroku"),
        ({"source": "App"}, "source='App' is neither app nor heroku"),
        ({"source": "router"}, "source='router' is neither app nor heroku"),
        ({"since": "2x"}, f"since='2x' {SINCE_WORDS}"),
        ({"since": ""}, f"since='' {SINCE_WORDS}"),
        ({"since": "2"}, f"since='2' {SINCE_WORDS}"),
        ({"since": "h"}, f"since='h' {SINCE_WORDS}"),
        ({"since": "2H"}, f"since='2H' {SINCE_WORDS}"),
        ({"since": "1.5h"}, f"since='1.5h' {SINCE_WORDS}"),
        ({"since": "-2h"}, f"since='-2h' {SINCE_WORDS}"),
        ({"since": "1h30m"}, f"since='1h30m' {SINCE_WORDS}"),
        ({"since": "yesterday"}, f"since='yesterday' {SINCE_WORDS}"),
        ({"since": "2026-11-26"}, f"since='2026-11-26' {SINCE_WORDS}"),
        ({"since": "2026-11-26T18:47:38"}, f"since='2026-11-26T18:47:38' {SINCE_WORDS}"),
        ({"since": "2026-11-26T18:47Z"}, f"since='2026-11-26T18:47Z' {SINCE_WORDS}"),
        ({"since": "2026-13-01T00:00:00Z"}, f"since='2026-13-01T00:00:00Z' {SINCE_WORDS}"),
        ({"since": "2026-02-30T00:00:00Z"}, f"since='2026-02-30T00:00:00Z' {SINCE_WORDS}"),
        ({"since": "2026-11-26T18:47:60Z"}, f"since='2026-11-26T18:47:60Z' {SINCE_WORDS}"),
        ({"since": "0s"}, "since='0s' is no time at all: give one like 30s, 15m, 2h or 7d"),
        ({"since": "0d"}, "since='0d' is no time at all: give one like 30s, 15m, 2h or 7d"),
        ({"until": ""}, f"until='' {SINCE_WORDS}"),
        ({"until": "2026-11-26T18"}, f"until='2026-11-26T18' {SINCE_WORDS}"),
        ({"until": "2026-02-30T00:00:00Z"}, f"until='2026-02-30T00:00:00Z' {SINCE_WORDS}"),
        ({"until": "tomorrow"}, f"until='tomorrow' {SINCE_WORDS}"),
        ({"until": "0m"}, "until='0m' is no time at all: give one like 30s, 15m, 2h or 7d"),
        ({"grep": ""}, "grep='' is empty: give the text the lines must contain"),
        ({"tail": "1"}, f"'tail' {NOT_AN_OPTION}"),
        ({"dyno": "web"}, f"'dyno' {NOT_AN_OPTION}"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else "",
)
def test_refused_options(options: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as e:
        Filter.parse(options, now=NOW)
    assert e.value.message == message


def test_since_as_a_duration_counts_back_from_the_clock_by_default() -> None:
    before = datetime.now().timestamp()
    since = Filter.parse({"since": "2h"}).since
    after = datetime.now().timestamp()
    assert since is not None
    assert before - 7200 <= since <= after - 7200


# -- what a shown line looks like -------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (
            Line(at("2026-11-26T18:47:38.123456+00:00"), "", "app", "web.1", "GET / 200"),
            "2026-11-26T18:47:38.123456+00:00 app[web.1]: GET / 200",
        ),
        (  # the sender's offset is not kept: every shown time is UTC, to the microsecond
            Line(
                at("2026-11-26T19:47:38+01:00"),
                "2026-11-26T19:47:38+01:00",
                "heroku",
                "router",
                "at=info",
            ),
            "2026-11-26T18:47:38.000000+00:00 heroku[router]: at=info",
        ),
        (
            Line(at("2026-11-26T18:47:38.1234567+00:00"), "", "app", "run.7", ""),
            "2026-11-26T18:47:38.123456+00:00 app[run.7]: ",
        ),
        (  # LF and CR are shown escaped; a backslash already there stays as it is
            Line(at("2026-11-26T18:47:38+00:00"), "", "app", "web.1", "a\nb\r\nc\\n"),
            "2026-11-26T18:47:38.000000+00:00 app[web.1]: a\\nb\\r\\nc\\n",
        ),
        (
            Line(1_800_000_000.9999996, "", "app", "web.1", "rounds up"),
            "2027-01-15T08:00:01.000000+00:00 app[web.1]: rounds up",
        ),
    ],
)
def test_format_line_is_herokus_logs_format(line: Line, shown: str) -> None:
    assert format_line(line) == shown


MIXED = """
    2026-11-26T18:00:01.000000+00:00 app[web.1]: GET /items 200
    2026-11-26T18:00:02.000000+00:00 app[web.2]: GET /cart 500
    2026-11-26T18:00:03.000000+00:00 app[web]: a process named like its type
    2026-11-26T18:00:04.000000+00:00 app[webhook.1]: delivered
    2026-11-26T18:00:05.000000+00:00 app[worker.1]: job 7 done
    2026-11-26T18:00:06.000000+00:00 heroku[router]: at=error code=H12 dyno=web.1
    2026-11-26T18:00:07.000000+00:00 heroku[web.1]: source=web.1 sample#memory_rss=21.22MB
    2026-11-26T18:00:08.000000+00:00 app[run.7]: console started
"""


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        (
            {"ps": "web"},
            """
            2026-11-26T18:00:01.000000+00:00 app[web.1]: GET /items 200
            2026-11-26T18:00:02.000000+00:00 app[web.2]: GET /cart 500
            2026-11-26T18:00:03.000000+00:00 app[web]: a process named like its type
            2026-11-26T18:00:07.000000+00:00 heroku[web.1]: source=web.1 sample#memory_rss=21.22MB
            """,
        ),
        (
            {"ps": "web.1"},
            """
            2026-11-26T18:00:01.000000+00:00 app[web.1]: GET /items 200
            2026-11-26T18:00:07.000000+00:00 heroku[web.1]: source=web.1 sample#memory_rss=21.22MB
            """,
        ),
        (
            {"ps": "web.1", "source": "app"},
            "2026-11-26T18:00:01.000000+00:00 app[web.1]: GET /items 200",
        ),
        (
            {"source": "heroku"},
            """
            2026-11-26T18:00:06.000000+00:00 heroku[router]: at=error code=H12 dyno=web.1
            2026-11-26T18:00:07.000000+00:00 heroku[web.1]: source=web.1 sample#memory_rss=21.22MB
            """,
        ),
        (
            {"ps": "router"},
            "2026-11-26T18:00:06.000000+00:00 heroku[router]: at=error code=H12 dyno=web.1",
        ),
        ({"ps": "run.7"}, "2026-11-26T18:00:08.000000+00:00 app[run.7]: console started"),
        ({"ps": "run.8"}, ""),
        ({"ps": "clock"}, ""),
        (
            {"since": "2026-11-26T18:00:07Z"},
            """
            2026-11-26T18:00:07.000000+00:00 heroku[web.1]: source=web.1 sample#memory_rss=21.22MB
            2026-11-26T18:00:08.000000+00:00 app[run.7]: console started
            """,
        ),
        (  # grep sees the whole shown line, as `gun logs | grep -F web.1` would
            {"grep": "web.1"},
            """
            2026-11-26T18:00:01.000000+00:00 app[web.1]: GET /items 200
            2026-11-26T18:00:06.000000+00:00 heroku[router]: at=error code=H12 dyno=web.1
            2026-11-26T18:00:07.000000+00:00 heroku[web.1]: source=web.1 sample#memory_rss=21.22MB
            """,
        ),
        ({"grep": "get /"}, ""),  # case-sensitive
        ({"grep": "500"}, "2026-11-26T18:00:02.000000+00:00 app[web.2]: GET /cart 500"),
        ({"grep": "heroku[router]: at=error"}, log(MIXED).splitlines()[5]),
        ({"ps": "worker", "grep": "job"}, log(MIXED).splitlines()[4]),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else "",
)
def test_what_each_option_shows(archive: Archive, options: dict[str, str], shown: str) -> None:
    archive.append("demo", lines(MIXED))

    assert logs(archive, **options) == log(shown)
    # the live tail filters the lines themselves, and must agree with the archive
    flt = Filter.parse(options, now=NOW)
    assert [format_line(line) for line in lines(MIXED) if flt.matches(line)] == (
        log(shown).splitlines()
    )


def test_n_with_filters_takes_the_newest_matching_lines(archive: Archive) -> None:
    archive.append("demo", lines(MIXED))

    assert logs(archive, n="2", source="app") == log(
        """
        2026-11-26T18:00:05.000000+00:00 app[worker.1]: job 7 done
        2026-11-26T18:00:08.000000+00:00 app[run.7]: console started
        """
    )


# -- the archive ------------------------------------------------------------------------------


def test_lines_are_kept_per_hour_of_their_own_time_across_days(archive: Archive) -> None:
    arrived = lines(
        """
        2026-11-26T22:59:59.999999+00:00 app[web.1]: last of the hour
        2026-11-26T23:00:00.000000+00:00 app[web.1]: first of the next
        2026-11-26T23:59:59.500000+00:00 heroku[router]: last of the day
        2026-11-27T00:00:00.000001+00:00 app[worker.1]: first of the next day
        2026-11-26T23:30:00.000000+00:00 app[web.2]: late, from a slow instance
        """
    )

    archive.append("demo", arrived[:3])
    archive.append("demo", arrived[3:])

    root = archive.root
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.gz")) == [
        "demo/2026-11-26/22.log.gz",
        "demo/2026-11-26/23.log.gz",
        "demo/2026-11-27/00.log.gz",
    ]
    # what `zcat` shows: arrival order within an hour, one member per append
    assert gzip.decompress((root / "demo/2026-11-26/23.log.gz").read_bytes()).decode() == (
        "2026-11-26T23:00:00.000000+00:00 app[web.1]: first of the next\n"
        "2026-11-26T23:59:59.500000+00:00 heroku[router]: last of the day\n"
        "2026-11-26T23:30:00.000000+00:00 app[web.2]: late, from a slow instance\n"
    )
    assert len(list(members((root / "demo/2026-11-26/23.log.gz").read_bytes()))) == 2
    # what `gun logs` shows: time order
    assert logs(archive) == log(
        """
        2026-11-26T22:59:59.999999+00:00 app[web.1]: last of the hour
        2026-11-26T23:00:00.000000+00:00 app[web.1]: first of the next
        2026-11-26T23:30:00.000000+00:00 app[web.2]: late, from a slow instance
        2026-11-26T23:59:59.500000+00:00 heroku[router]: last of the day
        2026-11-27T00:00:00.000001+00:00 app[worker.1]: first of the next day
        """
    )


@pytest.mark.skipif(shutil.which("zcat") is None, reason="no zcat here")
def test_zcat_reads_an_hour_file(archive: Archive) -> None:
    archive.append("demo", lines("2026-11-26T18:00:01.000000+00:00 app[web.1]: one"))
    archive.append("demo", lines("2026-11-26T18:00:02.000000+00:00 app[web.1]: two"))

    shown = subprocess.run(
        ["zcat", str(archive.root / "demo/2026-11-26/18.log.gz")],
        capture_output=True,
        check=True,
        text=True,
    ).stdout

    assert shown == (
        "2026-11-26T18:00:01.000000+00:00 app[web.1]: one\n"
        "2026-11-26T18:00:02.000000+00:00 app[web.1]: two\n"
    )


def web_lines(start: str, count: int, step: float = 60.0) -> list[Line]:
    t = at(start)
    return [Line(t + i * step, "", "app", "web.1", f"request {i}") for i in range(count)]


def test_n_takes_the_newest_lines_and_shows_them_oldest_first(archive: Archive) -> None:
    archive.append("demo", web_lines("2026-11-26T21:00:00+00:00", 180))  # 21:00 to 23:59

    assert logs(archive, n="3") == log(
        """
        2026-11-26T23:57:00.000000+00:00 app[web.1]: request 177
        2026-11-26T23:58:00.000000+00:00 app[web.1]: request 178
        2026-11-26T23:59:00.000000+00:00 app[web.1]: request 179
        """
    )
    across = logs(archive, n="62").splitlines()
    assert across[0] == "2026-11-26T22:58:00.000000+00:00 app[web.1]: request 118"
    assert across[-1] == "2026-11-26T23:59:00.000000+00:00 app[web.1]: request 179"
    assert len(logs(archive).splitlines()) == 100
    assert len(logs(archive, n="10000").splitlines()) == 180


@pytest.fixture
def opened(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the archive's local hour files as reads open them."""
    names: list[str] = []
    real = archive._local

    def spy(app: str, day: str, name: str) -> Callable[[], str]:
        load = real(app, day, name)

        def counted() -> str:
            names.append(name)
            return load()

        return counted

    monkeypatch.setattr(archive, "_local", spy)
    return names


def test_read_opens_the_newest_hours_only_until_it_has_n_lines(
    archive: Archive, opened: list[str]
) -> None:
    archive.append("demo", web_lines("2026-11-26T21:00:00+00:00", 180))

    logs(archive, n="60")
    assert opened == ["23.log.gz"]
    opened.clear()
    logs(archive, n="61")
    assert opened == ["23.log.gz", "22.log.gz"]
    opened.clear()
    logs(archive, n="10000", since="2026-11-26T22:30:00Z")
    assert opened == ["23.log.gz", "22.log.gz"]


def test_since_stops_at_a_duration_or_a_time(archive: Archive) -> None:
    archive.append("demo", web_lines("2026-11-26T21:00:00+00:00", 180))

    assert logs(archive, since="1h", n="10000") == "\n".join(  # NOW is 00:30
        f"2026-11-26T23:{m:02d}:00.000000+00:00 app[web.1]: request {120 + m}"
        for m in range(30, 60)
    )
    assert logs(archive, since="2026-11-26T23:58:00.000001Z") == (
        "2026-11-26T23:59:00.000000+00:00 app[web.1]: request 179"
    )
    assert logs(archive, since="2026-11-27T00:00:00Z") == ""


def test_until_ends_the_read_before_it_and_opens_no_later_hour(
    archive: Archive, opened: list[str]
) -> None:
    """`since=22:00 until=23:00` is the hour 22 (the dashboard's search by hour): its newest n,
    the hour after never opened; a bound mid-hour cuts that hour's lines."""
    archive.append("demo", web_lines("2026-11-26T21:00:00+00:00", 180))
    hour = logs(archive, since="2026-11-26T22:00:00Z", until="2026-11-26T23:00:00Z", n="10000")
    assert hour.splitlines() == [
        f"2026-11-26T22:{m:02d}:00.000000+00:00 app[web.1]: request {60 + m}" for m in range(60)
    ]
    assert opened == ["22.log.gz"]
    last = logs(archive, since="2026-11-26T22:00:00Z", until="2026-11-26T23:00:00Z", n="2")
    assert [t.rsplit(" ", 1)[1] for t in last.splitlines()] == ["118", "119"]
    assert logs(archive, until="2026-11-26T21:00:00.000001Z") == (
        "2026-11-26T21:00:00.000000+00:00 app[web.1]: request 0"
    )
    assert logs(archive, until="2026-11-26T21:00:00Z") == ""
    assert logs(archive, until="2026-11-26T22:30:00Z", grep="request 8", n="3").splitlines() == [
        f"2026-11-26T22:{m}:00.000000+00:00 app[web.1]: request {60 + m}" for m in (27, 28, 29)
    ]


def test_lines_past_the_retention_are_not_shown_even_before_a_prune(archive: Archive) -> None:
    archive.append(
        "demo",
        lines(
            """
            2026-10-28T00:29:59.999999+00:00 app[web.1]: 30 days and a moment ago
            2026-10-28T00:30:00.000000+00:00 app[web.1]: 30 days ago
            2026-11-27T00:29:00.000000+00:00 app[web.1]: a minute ago
            """
        ),
    )

    assert logs(archive, since="31d") == log(
        """
        2026-10-28T00:30:00.000000+00:00 app[web.1]: 30 days ago
        2026-11-27T00:29:00.000000+00:00 app[web.1]: a minute ago
        """
    )


def test_prune_deletes_hours_past_the_retention_and_empty_directories(archive: Archive) -> None:
    archive.append(
        "demo",
        lines(
            """
            2026-10-20T05:00:00.000000+00:00 app[web.1]: long gone
            2026-10-27T23:59:59.000000+00:00 app[web.1]: an hour wholly before the cutoff
            2026-10-28T00:10:00.000000+00:00 app[web.1]: its hour ends after the cutoff
            2026-11-26T18:00:00.000000+00:00 app[web.1]: yesterday
            """
        ),
    )
    archive.append("old-app", lines("2026-09-01T00:00:00.000000+00:00 app[web.1]: gone"))
    root = archive.root
    (root / "demo/2026-10-20/notes.txt").write_text("not ours")
    (root / "NOT-AN-APP").mkdir()

    removed = archive.prune(NOW)  # the cutoff is 2026-10-28T00:30:00Z

    assert sorted(p.relative_to(root).as_posix() for p in removed) == [
        "demo/2026-10-20/05.log.gz",
        "demo/2026-10-27",
        "demo/2026-10-27/23.log.gz",
        "old-app",
        "old-app/2026-09-01",
        "old-app/2026-09-01/00.log.gz",
    ]
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "NOT-AN-APP",
        "demo",
        "demo/2026-10-20",
        "demo/2026-10-20/notes.txt",
        "demo/2026-10-28",
        "demo/2026-10-28/00.log.gz",
        "demo/2026-11-26",
        "demo/2026-11-26/18.log.gz",
    ]
    assert archive.prune(NOW) == []
    assert logs(archive, app="old-app") == ""
    assert Archive(tmp := root / "nothing-here").prune(NOW) == [] and not tmp.exists()


def test_an_append_cut_short_by_a_crash_loses_only_itself(archive: Archive) -> None:
    archive.append("demo", lines("2026-11-26T18:00:01.000000+00:00 app[web.1]: one"))
    archive.append("demo", lines("2026-11-26T18:00:02.000000+00:00 app[web.1]: two"))
    path = archive.root / "demo/2026-11-26/18.log.gz"
    whole = path.stat().st_size
    archive.append("demo", web_lines("2026-11-26T18:00:03+00:00", 50, step=0.001))

    # the crash: only part of the third member reached the file
    os.truncate(path, whole + (path.stat().st_size - whole) // 2)

    assert logs(archive) == log(
        """
        2026-11-26T18:00:01.000000+00:00 app[web.1]: one
        2026-11-26T18:00:02.000000+00:00 app[web.1]: two
        """
    )
    # after the restart, appends go on after the damage and are read too
    archive.append("demo", lines("2026-11-26T18:00:04.000000+00:00 app[web.1]: four"))
    with path.open("ab") as f:  # and a file system that left zeros behind
        f.write(bytes(100))
    archive.append("demo", lines("2026-11-26T18:00:05.000000+00:00 app[web.1]: five"))

    assert logs(archive) == log(
        """
        2026-11-26T18:00:01.000000+00:00 app[web.1]: one
        2026-11-26T18:00:02.000000+00:00 app[web.1]: two
        2026-11-26T18:00:04.000000+00:00 app[web.1]: four
        2026-11-26T18:00:05.000000+00:00 app[web.1]: five
        """
    )


def test_a_corrupt_member_in_the_middle_is_skipped(archive: Archive) -> None:
    path = archive.root / "demo/2026-11-26/18.log.gz"
    ends = []
    for second in (1, 2, 3):
        archive.append("demo", web_lines(f"2026-11-26T18:00:0{second}+00:00", 1))
        ends.append(path.stat().st_size)
    data = bytearray(path.read_bytes())
    data[ends[0] + 12] ^= 0xFF  # in the second member's compressed data

    path.write_bytes(bytes(data))

    assert logs(archive) == log(
        """
        2026-11-26T18:00:01.000000+00:00 app[web.1]: request 0
        2026-11-26T18:00:03.000000+00:00 app[web.1]: request 0
        """
    )


def test_concurrent_appends_lose_nothing(tmp_path: Path) -> None:
    # two archives on one root stand in for two drain processes, besides the threads
    archives = [Archive(tmp_path / "logs"), Archive(tmp_path / "logs")]
    start = at("2026-11-26T23:59:59+00:00")

    def writer(k: int) -> None:
        for i in range(100):
            batch = [
                Line(start + (j % 2) * 1.5, "", "app", f"web.{k}", f"batch {i} line {j}")
                for j in range(5)
            ]
            archives[k % 2].append("demo", batch)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    shown = archives[0].read("demo", Filter(n=10000), NOW)
    assert len(shown) == 8 * 100 * 5
    assert {s.partition(" ")[2] for s in shown} == {
        f"app[web.{k}]: batch {i} line {j}" for k in range(8) for i in range(100) for j in range(5)
    }


@pytest.mark.parametrize("app", ["../etc", "Demo", "a", "demo/x", "", "-demo", "x" * 31])
def test_bad_app_names_are_refused(archive: Archive, app: str) -> None:
    message = (
        f"app name {app!r} is invalid: use 2-30 lowercase letters, digits and dashes, "
        "starting with a letter"
    )
    with pytest.raises(InvalidParams) as e:
        archive.append(app, lines("2026-11-26T18:00:01.000000+00:00 app[web.1]: x"))
    assert e.value.message == message
    with pytest.raises(InvalidParams) as e:
        archive.read(app, Filter(), NOW)
    assert e.value.message == message
    assert not archive.root.exists()


def test_an_empty_append_writes_nothing(archive: Archive) -> None:
    archive.append("demo", [])
    assert not archive.root.exists()
    assert logs(archive) == ""


@pytest.mark.parametrize(
    ("days", "message"),
    [
        (0, "log retention of 0 days is too short: keep 1 or more"),
        (-3, "log retention of -3 days is too short: keep 1 or more"),
        (1.5, "log retention 1.5 is not a whole number of days"),
    ],
)
def test_retention_is_a_whole_number_of_days(tmp_path: Path, days: int, message: str) -> None:
    with pytest.raises(UsageError) as e:
        Archive(tmp_path, retention_days=days)
    assert e.value.message == message


def test_a_message_that_is_not_valid_unicode_is_stored_escaped(archive: Archive) -> None:
    line = Line(at("2026-11-26T18:00:01+00:00"), "", "app", "web.1", "bad \udcff byte")
    archive.append("demo", [line])
    assert logs(archive) == "2026-11-26T18:00:01.000000+00:00 app[web.1]: bad \\udcff byte"


# -- properties -------------------------------------------------------------------------------

TIMES = st.floats(
    min_value=at("2000-01-01T00:00:00+00:00"), max_value=at("2099-12-31T00:00:00+00:00")
)
PROCIDS = st.from_regex(r"\A(web|webhook|worker|router|run)(\.[0-9]{1,2})?\Z")


@settings(max_examples=200, deadline=None)
@given(msgs=st.lists(st.text(), min_size=1, max_size=5), t=TIMES, procid=PROCIDS)
def test_any_message_round_trips_through_the_archive_as_one_line(
    tmp_path_factory: pytest.TempPathFactory, msgs: list[str], t: float, procid: str
) -> None:
    archive = Archive(tmp_path_factory.mktemp("logs"))
    arrived = [Line(t, "", "app", procid, msg) for msg in msgs]

    archive.append("demo", arrived)

    shown = archive.read("demo", Filter(n=10000, since=t - 1), now=t)
    assert shown == [format_line(line) for line in arrived]
    (path,) = archive.root.rglob("*.gz")
    assert gzip.decompress(path.read_bytes()).count(b"\n") == len(msgs)
    assert all("\n" not in s and "\r" not in s for s in shown)


FILTERS = st.builds(
    Filter,
    ps=st.none() | st.sampled_from(["web", "web.1", "webhook", "router", "run.7"]),
    source=st.none() | st.sampled_from(["app", "heroku"]),
    since=st.none() | TIMES,
    grep=st.none() | st.text(min_size=1, max_size=3),
    until=st.none() | TIMES,
)


@given(
    flt=FILTERS,
    line=st.builds(
        Line,
        time=TIMES,
        timestamp=st.just(""),
        appname=st.sampled_from(["app", "heroku"]),
        procid=PROCIDS,
        msg=st.text(max_size=20),
    ),
)
def test_a_filter_says_the_same_of_a_line_and_of_its_shown_text(flt: Filter, line: Line) -> None:
    assert flt.matches(line) == flt.matches_text(format_line(line))


@given(t=TIMES)
def test_stamps_sort_as_times_do(t: float) -> None:
    assert stamp(t) <= stamp(t + 0.000001) < stamp(t + 1)
    assert at(stamp(t)) == pytest.approx(t, abs=1e-6)


@given(t=TIMES, option=st.sampled_from(["since", "until"]))
def test_an_rfc3339_time_parses_to_itself_to_the_microsecond(t: float, option: str) -> None:
    parsed = getattr(Filter.parse({option: stamp(t)}, now=NOW), option)
    assert parsed == pytest.approx(at(stamp(t)), abs=1e-6)


@given(text=st.text(max_size=40), option=st.sampled_from(["since", "until"]))
def test_any_time_word_parses_or_is_refused_in_one_sentence(text: str, option: str) -> None:
    try:
        flt = Filter.parse({option: text}, now=NOW)
    except UsageError as e:
        assert e.message.startswith(f"{option}={text!r} is ")
        assert "\n" not in e.message
    else:
        assert isinstance(getattr(flt, option), float)
