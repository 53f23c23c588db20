"""Heroku's Range paging (gun.api.heroku.paging): the headers the stock clients really send
(REFERENCE.md §6) as a table, and, for any list and any page size, no Next-Range on the last
page and pages that put together give the whole list in order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.api.heroku.paging import DEFAULT_MAX, Range, page, parse_range
from gun.errors import BadRequest

RELEASES = ("version", "id")
APPS = ("id", "name", "created_at")


@pytest.mark.parametrize(
    ("header", "fields", "expected"),
    [
        (None, RELEASES, Range("version")),
        ("", APPS, Range("id")),
        ("id ..; max=1000;", APPS, Range("id", max=1000)),  # the CLI's lists
        ("version ..; max=10, order=desc", RELEASES, Range("version", max=10, desc=True)),
        ("version ..; max=15, order=desc", RELEASES, Range("version", max=15, desc=True)),
        ("version ..; ;", RELEASES, Range("version")),  # heroku3's
        ("name ..; order=desc,max=10;", APPS, Range("name", max=10, desc=True)),  # heroku3's
        ("id ..; order=asc;", APPS, Range("id")),
        ("version ]7..; max=10, order=desc", RELEASES, Range("version", "7", True, 10, True)),
        ("]version 7..; max=10", RELEASES, Range("version", "7", True, 10)),  # ] leniently first
        ("version 7..", RELEASES, Range("version", "7")),
        (
            "created_at ]2026-12-06T05:26:12.790358+00:00..; max=2",
            APPS,
            Range("created_at", "2026-12-06T05:26:12.790358+00:00", True, 2),
        ),
        ("updated_at ]x..; max=5", APPS, Range("id", max=5)),  # a field it has not: its default
        ("garbage", APPS, Range("id")),
    ],
)
def test_the_headers_clients_send(
    header: str | None, fields: tuple[str, ...], expected: Range
) -> None:
    assert parse_range(header, fields) == expected


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("id ..; max=0", "Range header: max='0' is not a number from 1 to 1000"),
        ("id ..; max=1001", "Range header: max='1001' is not a number from 1 to 1000"),
        ("id ..; max=ten", "Range header: max='ten' is not a number from 1 to 1000"),
        ("id ..; order=up", "Range header: order='up' is not asc or desc"),
    ],
)
def test_a_part_given_but_unreadable_is_refused(header: str, message: str) -> None:
    with pytest.raises(BadRequest) as e:
        parse_range(header, APPS)
    assert str(e.value) == message


def test_next_range_is_heroku_s_form_and_reads_back() -> None:
    got, more = page(list(range(1, 8)), Range("version", max=3, desc=True), lambda v: v)
    assert (got, more) == ([7, 6, 5], "version ]5..; max=3, order=desc")
    assert more is not None
    got, more = page(list(range(1, 8)), parse_range(more, RELEASES), lambda v: v)
    assert (got, more) == ([4, 3, 2], "version ]2..; max=3, order=desc")
    assert more is not None
    assert page(list(range(1, 8)), parse_range(more, RELEASES), lambda v: v) == ([1], None)


def test_a_list_that_fits_has_no_next_range() -> None:
    assert page([3, 1, 2], Range("version"), lambda v: v) == ([1, 2, 3], None)
    assert page([], Range("version"), lambda v: v) == ([], None)
    exactly = list(range(DEFAULT_MAX))
    assert page(exactly, Range("version"), lambda v: v) == (exactly, None)


def walk(items: list[int | str], first: Range) -> list[list[int | str]]:
    """Every page a client following Next-Range gets, as the CLI does (at most len+1 pages)."""
    pages, r = [], first
    for _ in range(len(items) + 2):
        got, more = page(items, r, lambda v: v)
        pages.append(got)
        if more is None:
            return pages
        r = parse_range(more, (first.field,))
    raise AssertionError(f"still a Next-Range after {len(pages)} pages")


@given(
    items=st.one_of(
        st.sets(st.integers(min_value=1, max_value=10_000), max_size=60),
        st.sets(st.from_regex(r"[a-z][a-z0-9.:+-]{0,20}", fullmatch=True), max_size=60),
    ),
    most=st.integers(min_value=1, max_value=25),
    desc=st.booleans(),
)
def test_pages_put_together_are_the_whole_list_and_the_last_has_no_next_range(
    items: set[int] | set[str], most: int, desc: bool
) -> None:
    listed: list[int | str] = list(items)
    pages = walk(listed, Range("key", max=most, desc=desc))
    assert [i for p in pages for i in p] == sorted(listed, reverse=desc)  # type: ignore[type-var]
    assert all(len(p) == most for p in pages[:-1])
    assert len(pages[-1]) <= most
    assert pages[-1] or not listed  # never an empty page after a Next-Range
