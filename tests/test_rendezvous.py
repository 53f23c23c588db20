"""The rendezvous wire (gun.rendezvous): who dials says so in one line, then frames flow."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun import rendezvous as rv
from gun.errors import ProtocolError

SECRET = "Zm9vYmFyYmF6cXV4cXV1eA"


@pytest.mark.parametrize(
    ("line", "hello"),
    [
        (SECRET.encode() + b"\r\n", rv.ClientHello(SECRET)),
        (SECRET.encode(), rv.ClientHello(SECRET)),  # heroku3: no line end
        (
            b"agent i-0a1b2c3d run.12 gun_abcdefghijkl\r\n",
            rv.AgentHello("i-0a1b2c3d", "run.12", "gun_abcdefghijkl"),
        ),
    ],
)
def test_a_first_line_says_who_dialled(line: bytes, hello: rv.Hello) -> None:
    assert rv.read_hello(line) == hello


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"", "the first line must be the run's secret"),
        (b"short\r\n", "the first line must be the run's secret"),
        (b"s\xffcret-but-not-ascii\r\n", "the first line is not ASCII"),
        (b"agent i-0a1b2c3d web.1 gun_abcdefghijkl", "an agent's line must be"),
        (b"agent i-0a1b2c3d run.1", "an agent's line must be"),
        (b"agent i-0a1b/2c3d run.1 gun_abcdefghijkl", "an agent's line must be"),
    ],
)
def test_a_bad_first_line_is_refused_in_one_sentence(line: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        rv.read_hello(line)


def frames_of(data: bytes) -> list[tuple[rv.Kind, bytes] | None]:
    async def read() -> list[tuple[rv.Kind, bytes] | None]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        out: list[tuple[rv.Kind, bytes] | None] = []
        while (f := await rv.read_frame(reader)) is not None:
            out.append(f)
        return out

    return asyncio.run(read())


@given(st.lists(st.tuples(st.sampled_from(list(rv.Kind)), st.binary(max_size=300))))
def test_frames_read_back_as_written(frames: list[tuple[rv.Kind, bytes]]) -> None:
    assert frames_of(b"".join(rv.frame(k, p) for k, p in frames)) == frames


@given(st.binary(min_size=1, max_size=40))
def test_a_stream_cut_inside_a_frame_or_of_unknown_kind_is_an_error(tail: bytes) -> None:
    whole = rv.frame(rv.Kind.STDOUT, b"hello")
    for cut in range(1, len(whole)):
        with pytest.raises(ProtocolError, match="ended inside a frame"):
            frames_of(whole[:cut])
    if tail[:1] not in {k.value for k in rv.Kind}:
        with pytest.raises(ProtocolError, match="unknown frame kind"):
            frames_of(tail + b"\0\0\0\0\0")


def test_sizes_and_exit_codes_read_back_and_bad_ones_are_refused() -> None:
    [(kind, payload)] = [f for f in frames_of(rv.resize(120, 40)) if f]
    assert (kind, rv.read_size(payload)) == (rv.Kind.RESIZE, (120, 40))
    assert rv.read_exit(rv.exit_frame(3)[5:]) == 3
    for bad in (b"", b"x", b"256", b"-1"):
        with pytest.raises(ProtocolError):
            rv.read_exit(bad)
    with pytest.raises(ProtocolError, match="4 bytes"):
        rv.read_size(b"\0\1")
    with pytest.raises(ProtocolError, match="over"):
        frames_of(b"o" + (rv.FRAME_MAX + 1).to_bytes(4, "big"))


def test_what_a_client_types_ahead_of_the_greeting_is_kept() -> None:
    async def read(data: bytes) -> tuple[bytes, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        return await rv.read_line(reader)

    assert asyncio.run(read(SECRET.encode() + b"\r\nls\r")) == (SECRET.encode() + b"\r", b"ls\r")
    assert asyncio.run(read(SECRET.encode())) == (SECRET.encode(), b"")  # after a 1 s pause
    with pytest.raises(ProtocolError, match="over 4096 bytes"):
        asyncio.run(read(b"x" * 5000 + b"\n"))
