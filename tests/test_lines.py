"""gun.lines, how every reader of process and build output cuts it into lines: tables, then
properties (hypothesis), then the build's streaming splitter fed the same bytes in any chunks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.build.buildpacks.base import Lines
from gun.lines import MAX_LINE, split_lines, text, utf8_cut


@pytest.mark.parametrize(
    ("data", "final", "lines", "used"),
    [
        (b"a\nb\n", False, [b"a", b"b"], 4),
        (b"a\nb", False, [b"a"], 2),  # b waits for its newline
        (b"a\nb", True, [b"a", b"b"], 3),  # unless the writer is gone
        (b"\n\n", False, [b"", b""], 2),
        (b"x" * MAX_LINE + b"\n", False, [b"x" * MAX_LINE], MAX_LINE + 1),
        (b"x" * MAX_LINE, False, [], 0),  # may still end with its newline
        (b"x" * (MAX_LINE + 1), False, [b"x" * MAX_LINE], MAX_LINE),
        (b"x" * 25_000 + b"\n", False, [b"x" * 10_000] * 2 + [b"x" * 5_000], 25_001),
        # never cut inside a UTF-8 sequence: é is 2 bytes
        (b"x" * 9_999 + "é".encode() + b"\n", False, [b"x" * 9_999, "é".encode()], 10_002),
    ],
)
def test_output_is_split_into_lines(
    data: bytes, final: bool, lines: list[bytes], used: int
) -> None:
    assert split_lines(data, final=final) == (lines, used)


def test_one_tick_takes_a_bounded_number_of_lines() -> None:
    assert split_lines(b"a\nb\nc\n", final=False, most=2) == ([b"a", b"b"], 4)
    assert split_lines(b"a\nb\nc", final=True, most=5) == ([b"a", b"b", b"c"], 5)


@pytest.mark.parametrize(
    ("data", "cut"),
    [
        (b"", 0),
        (b"abc", 3),
        ("é".encode(), 2),
        ("é".encode()[:1], 0),
        (b"ab" + "€".encode()[:2], 2),
        (b"ab" + "😀".encode()[:3], 2),
        ("😀".encode(), 4),
        (b"\x80\x80\x80\x80\x80", 5),  # not UTF-8 at all: passed on, replaced when decoded
    ],
)
def test_a_partial_line_is_cut_between_characters(data: bytes, cut: int) -> None:
    assert utf8_cut(data) == cut


@pytest.mark.parametrize(
    ("line", "shown"),
    [(b"plain", "plain"), (b"crlf\r", "crlf"), (b"two\r\r", "two\r"), (b"bad \xff", "bad \ufffd")],
)
def test_a_line_as_text(line: bytes, shown: str) -> None:
    assert text(line) == shown


_output = st.lists(
    st.one_of(st.text(max_size=40).map(str.encode), st.binary(max_size=40), st.just(b"\n")),
    max_size=30,
).map(b"".join)


@given(_output, st.integers(4, 50))
def test_pieces_are_the_data_without_its_line_feeds(data: bytes, limit: int) -> None:
    pieces, used = split_lines(data, final=True, limit=limit)
    assert used == len(data)
    assert all(len(p) <= limit and b"\n" not in p for p in pieces)
    assert b"".join(pieces) == data.replace(b"\n", b"")


@given(st.text(max_size=300), st.integers(4, 50))
def test_utf8_is_never_cut_inside_a_character(value: str, limit: int) -> None:
    pieces, _ = split_lines(value.encode(), final=True, limit=limit)
    assert "".join(p.decode() for p in pieces) == value.replace("\n", "")


@given(_output, st.integers(4, 50))
def test_what_is_left_unused_waits_for_its_line_feed(data: bytes, limit: int) -> None:
    _, used = split_lines(data, final=False, limit=limit)
    rest = data[used:]
    assert b"\n" not in rest and len(rest) <= limit


@given(_output, st.lists(st.integers(1, 20)))
def test_the_build_emits_the_same_lines_in_whatever_chunks_they_come(
    data: bytes, sizes: list[int]
) -> None:
    emitted: list[str] = []
    splitter = Lines(emitted.append, None)
    at = 0
    for size in sizes:
        if data[at : at + size]:
            splitter.feed(data[at : at + size])
        at += size
    if data[at:]:
        splitter.feed(data[at:])
    splitter.close()
    assert emitted == [text(p) for p in split_lines(data, final=True)[0]]


def test_a_long_build_line_comes_in_pieces_cut_between_characters() -> None:
    emitted: list[str] = []
    splitter = Lines(emitted.append, None)
    splitter.feed(b"x" * 9_999 + "é".encode() + b"y" * 15_000)
    splitter.feed(b"\nlast")
    splitter.close()
    assert emitted == ["x" * 9_999, "é" + "y" * 9_998, "y" * 5_002, "last"]
