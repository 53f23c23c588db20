"""The logplex frame reader and writer: tables of real wire frames, every bad case with its
sentence, and properties over random bodies."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.errors import InvalidParams
from gun.logs import frames
from gun.logs.frames import FrameError, Frames
from gun.logs.model import Line

# Real frames, LEN as Heroku counts it (the message and its LF). The first is REFERENCE.md
# §3's example with its LEN corrected: its message is 88 bytes, 89 with the LF, not 83.
APP = (
    b"89 <190>1 2022-06-13T14:52:23.622778+00:00 host app web.1 - measure#db.query=12ms count#x=1\n"
)
ROUTER = (
    b'217 <158>1 2022-06-13T14:52:24.001234+00:00 host heroku router - at=info method=GET path="/"'
    b' host=shop.example.com request_id=5a4f2b1c fwd="1.2.3.4" dyno=web.1 connect=0ms service=3ms'
    b" status=200 bytes=6979 protocol=https\n"
)
RUNTIME = (
    b"202 <45>1 2022-06-13T14:52:26.000001+00:00 host heroku web.1 - source=web.1"
    b" dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 sample#load_avg_1m=2.46"
    b" sample#load_avg_5m=1.06 sample#load_avg_15m=0.99\n"
)
# Heroku's own example from the HTTPS drain documentation, byte for byte.
HEROKU_DOC = (
    b"83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up\n"
)
# l2met's parser test frame (its LEN counts the LF).
L2MET = (
    b"88 <174>1 2013-07-22T00:06:26-00:00 somehost name test - measure.hello=1 measure.world=1ms\n"
)

LINE_APP = Line(
    1655131943.622778,
    "2022-06-13T14:52:23.622778+00:00",
    "app",
    "web.1",
    "measure#db.query=12ms count#x=1",
)
LINE_ROUTER = Line(
    1655131944.001234,
    "2022-06-13T14:52:24.001234+00:00",
    "heroku",
    "router",
    'at=info method=GET path="/" host=shop.example.com request_id=5a4f2b1c fwd="1.2.3.4"'
    " dyno=web.1 connect=0ms service=3ms status=200 bytes=6979 protocol=https",
)
LINE_RUNTIME = Line(
    1655131946.000001,
    "2022-06-13T14:52:26.000001+00:00",
    "heroku",
    "web.1",
    "source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456"
    " sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99",
)
LINE_DOC = Line(
    1354257929.0, "2012-11-30T06:45:29+00:00", "app", "web.3", "State changed from starting to up"
)

RESYNC = "cannot be resynchronised and counts as one bad frame"


def test_a_body_of_real_frames() -> None:
    body = APP + ROUTER + RUNTIME + HEROKU_DOC
    assert frames.read(body) == Frames([LINE_APP, LINE_ROUTER, LINE_RUNTIME, LINE_DOC], [])


def test_frame_writes_exactly_what_heroku_sends() -> None:
    assert frames.frame(190, LINE_APP.timestamp, "app", "web.1", LINE_APP.msg) == APP
    r = LINE_ROUTER
    assert frames.frame(158, r.timestamp, r.appname, r.procid, r.msg) == ROUTER
    assert frames.frame(40, LINE_DOC.timestamp, "app", "web.3", LINE_DOC.msg) == HEROKU_DOC
    # An epoch time is written in UTC with microseconds.
    assert frames.frame(190, 1655131943.622778, "app", "web.1", LINE_APP.msg) == APP


@pytest.mark.parametrize(
    ("body", "line"),
    [
        # The trailing LF is optional: without it LEN counts the message alone.
        (
            b"35 <13>1 2022-06-13T14:52:23Z h a p - ",
            Line(1655131943.0, "2022-06-13T14:52:23Z", "a", "p", ""),
        ),
        (
            b"34 <13>1 2022-06-13T14:52:23Z h a p -",
            Line(1655131943.0, "2022-06-13T14:52:23Z", "a", "p", ""),
        ),
        (
            b"42 <0>1 2022-06-13T16:52:23.5+02:00 h a p - x",
            Line(1655131943.5, "2022-06-13T16:52:23.5+02:00", "a", "p", "x"),
        ),
        (
            b"54 <191>1 2013-07-22T00:06:26-00:00 tok app run.7 - a  b\n",
            Line(1374451586.0, "2013-07-22T00:06:26-00:00", "app", "run.7", "a  b"),
        ),
        (
            L2MET,
            Line(
                1374451586.0,
                "2013-07-22T00:06:26-00:00",
                "name",
                "test",
                "measure.hello=1 measure.world=1ms",
            ),
        ),
        # A message may hold any UTF-8, CR included; only LF is special.
        (
            "56 <190>1 2022-06-13T14:52:23Z host app web.1 - café ✓\r\n".encode(),
            Line(1655131943.0, "2022-06-13T14:52:23Z", "app", "web.1", "café ✓\r"),
        ),
    ],
    ids=["no-lf-empty-msg", "no-msg", "offset", "minus-zero-offset", "l2met", "utf-8"],
)
def test_good_frames(body: bytes, line: Line) -> None:
    assert frames.read(body) == Frames([line], [])


# Bodies that cannot be parsed at all: HTTP 400 with this sentence.
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"",
            "the body is empty; expected logplex frames"
            " (`LEN <PRI>1 TIMESTAMP host APPNAME PROCID - MSG`)",
        ),
        (
            b"<190>1 2022-06-13T14:52:23Z host app web.1 - hi\n",
            "the body does not start with a frame length (found '<190>1 2022-06-13T14:52:23Z"
            " host app web'); expected logplex frames (`LEN <PRI>1 TIMESTAMP host APPNAME PROCID"
            " - MSG`)",
        ),
        (
            b"abc <190>1 2022-06-13T14:52:23Z host app web.1 - hi\n",
            "the body does not start with a frame length (found 'abc <190>1 2022-06-13T14:52:23Z"
            " host app'); expected logplex frames (`LEN <PRI>1 TIMESTAMP host APPNAME PROCID"
            " - MSG`)",
        ),
        (
            b"089 " + APP[3:],
            "the body does not start with a frame length (found '089 <190>1"
            " 2022-06-13T14:52:23.622778+00'); expected logplex frames (`LEN <PRI>1 TIMESTAMP"
            " host APPNAME PROCID - MSG`)",
        ),
        (
            b"\n" + APP,
            "the body does not start with a frame length (found '\\n89 <190>1"
            " 2022-06-13T14:52:23.622778+00'); expected logplex frames (`LEN <PRI>1 TIMESTAMP host"
            " APPNAME PROCID - MSG`)",
        ),
        (
            b"120 " + APP[3:],
            "frame 1: LEN 120 runs past the end of the body (89 bytes left)",
        ),
        # REFERENCE.md §3's example as printed: LEN 83 for an 88-byte message.
        (
            b"83 <190>1 2022-06-13T14:52:23.622778+00:00 host app web.1 - measure#db.query=12ms"
            b" count#x=1",
            "frame 1: LEN 83 is followed by neither the end of the body nor the next frame's LEN"
            f" (found 't#x=1'), so the rest of the body from frame 1 on (91 bytes) {RESYNC}",
        ),
        # An uncounted LF between frames: l2met read the first frame, answered 200 and
        # silently dropped the rest.
        (
            L2MET + b"\n" + L2MET,
            "frame 1: LEN 88 is followed by neither the end of the body nor the next frame's LEN"
            " (found '\\n88 <174>1 2013-07-22T00:06:26-00:00 som'), so the rest of the body from"
            f" frame 1 on (183 bytes) {RESYNC}",
        ),
        (
            APP + b"abc " + APP[3:],
            "frame 1: LEN 89 is followed by neither the end of the body nor the next frame's LEN"
            " (found 'abc <190>1 2022-06-13T14:52:23.622778+00'), so the rest of the body from"
            f" frame 1 on (185 bytes) {RESYNC}",
        ),
    ],
    ids=[
        "empty",
        "no-len",
        "non-numeric-len",
        "leading-zero",
        "leading-lf",
        "past-the-end",
        "reference-example",
        "uncounted-lf-between-frames",
        "second-len-non-numeric",
    ],
)
def test_bodies_that_cannot_be_parsed_at_all(body: bytes, message: str) -> None:
    with pytest.raises(FrameError) as e:
        frames.read(body)
    assert e.value.message == message
    assert isinstance(e.value, InvalidParams)
    assert (e.value.status, e.value.id) == (400, "bad_request")


def _short(frame: bytes) -> bytes:
    """The frame with a LEN one too short (the LF left over)."""
    size, rest = frame.split(b" ", 1)
    return b"%d %s" % (int(size) - 1, rest)


def _long(frame: bytes) -> bytes:
    """The frame with a LEN one too long (it swallows the next LEN's first digit)."""
    size, rest = frame.split(b" ", 1)
    return b"%d %s" % (int(size) + 1, rest)


BAD_UTF8 = b"62 <190>1 2022-06-13T14:52:23.622778+00:00 host app web.1 - caf\xe9\n"


# Bad frames in a body that is otherwise good: 2xx, the good lines and one sentence each.
@pytest.mark.parametrize(
    ("body", "lines", "bad"),
    [
        (
            APP + _short(APP) + APP,
            [LINE_APP],
            "frame 2: LEN 88 is followed by neither the end of the body nor the next frame's LEN"
            " (found '\\n89 <190>1 2022-06-13T14:52:23.622778+00'), so the rest of the body from"
            f" frame 2 on (184 bytes) {RESYNC}",
        ),
        (
            APP + _long(APP) + APP,
            [LINE_APP],
            "frame 2: the message has a line feed at byte 88 of 90: LEN 90 is not this frame's"
            " length (logplex sends one line per frame), so the rest of the body from frame 2 on"
            f" (184 bytes) {RESYNC}",
        ),
        (
            APP + ROUTER + b"83 " + APP[3:64],
            [LINE_APP, LINE_ROUTER],
            "frame 3: LEN 83 runs past the end of the body (61 bytes left)",
        ),
        (
            APP + ROUTER + b"x3 " + APP[3:],
            [LINE_APP],
            "frame 2: LEN 217 is followed by neither the end of the body nor the next frame's"
            " LEN (found 'x3 <190>1 2022-06-13T14:52:23.622778+00:'), so the rest of the body"
            f" from frame 2 on (313 bytes) {RESYNC}",
        ),
        (
            APP + b"12 hello world\n" + APP,
            [LINE_APP, LINE_APP],
            "frame 2: the message does not start with <PRI>1 (PRI 0 to 191, version 1); expected"
            " `<PRI>1 TIMESTAMP host APPNAME PROCID - MSG` (found 'hello world')",
        ),
        (
            APP + b"55 <190>1 2022-06-13T14:52:23.622778+00:00 host app web.1\n" + APP,
            [LINE_APP, LINE_APP],
            "frame 2: the message lacks header fields; expected `<PRI>1 TIMESTAMP host APPNAME"
            " PROCID - MSG` (found '<190>1 2022-06-13T14:52:23.622778+00:00 ')",
        ),
        (
            APP + b"36 <190>1 2022-06-13T14:52:23Z h  p - x" + APP,
            [LINE_APP, LINE_APP],
            "frame 2: the message lacks header fields; expected `<PRI>1 TIMESTAMP host APPNAME"
            " PROCID - MSG` (found '<190>1 2022-06-13T14:52:23Z h  p - x')",
        ),
        # RFC 5424 with a MSGID and structured data, as a strict syslog sender writes it.
        (
            APP
            + b"107 <165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47"
            + b' [exampleSDID@32473 iut="3"] An application event\n'
            + APP,
            [LINE_APP, LINE_APP],
            "frame 2: the message has MSGID 'ID47' where logplex sends '-' and no structured"
            " data; expected `<PRI>1 TIMESTAMP host APPNAME PROCID - MSG` (found '<165>1"
            " 2003-10-11T22:14:15.003Z mymachin')",
        ),
        (
            APP + b"48 <192>1 2022-06-13T14:52:23Z host app web.1 - hi\n" + APP,
            [LINE_APP, LINE_APP],
            "frame 2: the message does not start with <PRI>1 (PRI 0 to 191, version 1); expected"
            " `<PRI>1 TIMESTAMP host APPNAME PROCID - MSG` (found '<192>1 2022-06-13T14:52:23Z"
            " host app web')",
        ),
        (
            APP + BAD_UTF8 + APP,
            [LINE_APP, LINE_APP],
            "frame 2: the message is not valid UTF-8 (byte 0xe9 at offset 60)",
        ),
        (
            APP + b"47 <190>1 2022-06-13T14:52:23 host app web.1 - hi\n" + APP,
            [LINE_APP, LINE_APP],
            "frame 2: TIMESTAMP '2022-06-13T14:52:23' is not an RFC 3339 date-time with an"
            " offset (e.g. 2022-06-13T14:52:23.622778+00:00)",
        ),
        (
            APP + b"29 <190>1 - host app web.1 - hi\n" + APP,
            [LINE_APP, LINE_APP],
            "frame 2: TIMESTAMP '-' is not an RFC 3339 date-time with an offset"
            " (e.g. 2022-06-13T14:52:23.622778+00:00)",
        ),
        (
            APP + b"53 <190>1 2022-02-30T14:52:23+00:00 host app web.1 - hi\n" + APP,
            [LINE_APP, LINE_APP],
            "frame 2: TIMESTAMP '2022-02-30T14:52:23+00:00' is not an RFC 3339 date-time with"
            " an offset (e.g. 2022-06-13T14:52:23.622778+00:00)",
        ),
        (
            APP + b"61 <190>1 2022-06-13T14:52:23.1234567+00:00 host app web.1 - hi\n" + APP,
            [LINE_APP, LINE_APP],
            "frame 2: TIMESTAMP '2022-06-13T14:52:23.1234567+00:00' is not an RFC 3339"
            " date-time with an offset (e.g. 2022-06-13T14:52:23.622778+00:00)",
        ),
    ],
    ids=[
        "len-one-short",
        "len-one-long",
        "len-past-the-end",
        "non-numeric-len",
        "no-header",
        "header-cut-short",
        "empty-appname",
        "rfc5424-structured-data",
        "pri-192",
        "invalid-utf-8",
        "timestamp-without-offset",
        "timestamp-nil",
        "timestamp-no-such-day",
        "timestamp-7-fraction-digits",
    ],
)
def test_bad_frames_are_counted(body: bytes, lines: list[Line], bad: str) -> None:
    assert frames.read(body) == Frames(lines, [bad])


def test_every_bad_frame_is_counted_once() -> None:
    body = APP + BAD_UTF8 + b"12 hello world\n" + APP + b"999 " + APP[3:]
    result = frames.read(body)
    assert result.lines == [LINE_APP, LINE_APP]
    assert [s.split(":")[0] for s in result.bad] == ["frame 2", "frame 3", "frame 5"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((192, 0.0, "app", "web.1", "x"), "syslog PRI 192 must be a whole number from 0 to 191"),
        (
            (190, "2022-06-13 14:52:23Z", "app", "web.1", "x"),
            "TIMESTAMP '2022-06-13 14:52:23Z' is not an RFC 3339 date-time with an offset"
            " (e.g. 2022-06-13T14:52:23.622778+00:00)",
        ),
        (
            (190, 0.0, "my app", "web.1", "x"),
            "APPNAME 'my app' must be non-empty, without spaces or LF",
        ),
        ((190, 0.0, "app", "", "x"), "PROCID '' must be non-empty, without spaces or LF"),
        (
            (190, 0.0, "app", "web.1", "a\nb"),
            "the message has a line feed; send one frame per line",
        ),
    ],
    ids=["pri", "timestamp", "appname", "procid", "lf"],
)
def test_frame_refuses_what_read_would_not_take_back(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(InvalidParams) as e:
        frames.frame(*args)
    assert e.value.message == message


# Properties.

_tokens = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters=" \n"), min_size=1, max_size=12
)
_msgs = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n"), max_size=80)
_times = st.datetimes(
    min_value=dt.datetime(1971, 1, 1),
    max_value=dt.datetime(9998, 12, 31),
    timezones=st.sampled_from(
        [
            dt.UTC,
            dt.timezone(dt.timedelta(hours=-5)),
            dt.timezone(dt.timedelta(hours=5, minutes=30)),
        ]
    ),
)
_timestamps = st.builds(
    lambda t, spec: (
        t.isoformat(timespec=spec).replace("+00:00", "Z")
        if spec == "milliseconds"
        else t.isoformat(timespec=spec)
    ),
    _times,
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
_frames = st.tuples(st.integers(0, 191), _timestamps, _tokens, _tokens, _msgs)


@given(st.lists(_frames, min_size=1, max_size=8))
def test_frame_then_read_gives_the_lines_back(specs: list[tuple[int, str, str, str, str]]) -> None:
    body = b"".join(frames.frame(*spec) for spec in specs)
    expected = [
        Line(dt.datetime.fromisoformat(ts).timestamp(), ts, app, procid, msg)
        for _, ts, app, procid, msg in specs
    ]
    assert frames.read(body) == Frames(expected, [])
    assert frames._read_careful(body) == Frames(expected, [])


@given(_times, st.text(max_size=20), st.text(max_size=20), st.text(max_size=30_000))
def test_read_takes_back_whatever_safe_frames_writes(
    when: dt.datetime, appname: str, procid: str, text: str
) -> None:
    """The shipper's frames of any text: one line per line of it (pieces of at most 10,000
    bytes), fields made printable, never refused by the drain's reader."""
    body = b"".join(frames.safe_frames(190, when, appname, procid, text))
    got = frames.read(body)
    assert got.bad == []
    assert all(len(line.msg.encode()) <= 10_000 for line in got.lines)
    kept = text.encode("utf-8", "replace").decode().replace("\n", "").replace("\r", "")
    assert "".join(line.msg for line in got.lines).replace("\r", "") == kept  # a CR may go
    for line in got.lines:
        assert line.time == when.timestamp() and line.appname.isprintable()
        assert " " not in line.appname + line.procid and line.appname and line.procid


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_nothing_but_frame_error(body: bytes) -> None:
    try:
        result = frames.read(body)
    except FrameError:
        return
    assert result.lines or result.bad


def _mutate(body: bytes, at: int, how: int, byte: int) -> bytes:
    """The body with one byte deleted, inserted or changed."""
    at %= len(body)
    if how == 0:
        return body[:at] + body[at + 1 :]
    if how == 1:
        return body[:at] + bytes([byte]) + body[at:]
    return body[:at] + bytes([byte]) + body[at + 1 :]


@given(
    st.lists(_frames, min_size=1, max_size=5),
    st.integers(0, 10**6),
    st.integers(0, 2),
    st.sampled_from([0x0A, 0x20, 0x30, 0x31, 0x39, 0x3C, 0x61, 0xC3, 0xE9, 0xFF]),
)
def test_the_fast_path_and_the_careful_path_agree(
    specs: list[tuple[int, str, str, str, str]], at: int, how: int, byte: int
) -> None:
    body = _mutate(b"".join(frames.frame(*spec) for spec in specs), at, how, byte)
    clean = frames._read_clean(body)
    try:
        careful = frames._read_careful(body)
    except FrameError:
        assert clean is None
        return
    if clean is not None:
        assert careful == Frames(clean, [])
    else:
        assert careful.bad


@given(
    st.lists(_frames, min_size=2, max_size=5),
    st.integers(0, 10**6),
    st.sampled_from(["len-digit", "len-delete", "len-insert", "msg-insert", "msg-delete"]),
    st.sampled_from(b"0159"),
)
def test_a_len_that_no_longer_matches_is_caught(
    specs: list[tuple[int, str, str, str, str]], at: int, damage: str, digit: int
) -> None:
    """A LEN changed, or a message made a byte longer or shorter without its LEN: every line
    read is one that was sent, never a cut or merged one. (Octet counting cannot catch a lost
    final LF: the frame then ends on the next LEN's first digit, a message one byte longer
    than sent whose next "frame" is bad. TCP and TLS do not lose single bytes.)"""
    good = [frames.frame(*spec) for spec in specs]
    sent = frames.read(b"".join(good)).lines
    i = at % len(good)
    size, _, rest = good[i].partition(b" ")
    j = at % len(size) if damage.startswith("len") else at % (len(rest) - 1)
    if damage == "len-digit":
        size = size[:j] + bytes([digit]) + size[j + 1 :]
    elif damage == "len-delete":
        size = size[:j] + size[j + 1 :]
    elif damage == "len-insert":
        size = size[:j] + bytes([digit]) + size[j:]
    elif damage == "msg-insert":
        rest = rest[:j] + bytes([digit]) + rest[j:]
    else:
        rest = rest[:j] + rest[j + 1 :]
    good[i] = size + b" " + rest
    try:
        result = frames.read(b"".join(good))
    except FrameError:
        return
    for line in result.lines:
        assert line in sent
