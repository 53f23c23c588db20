"""Formation words, as a table, plus properties: every input parses or raises InvalidParams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun import formation
from gun.errors import InvalidParams
from gun.model import Layer


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("web=2", formation.Change("web", 2)),
        ("web=0", formation.Change("web", 0)),
        ("worker_2=10", formation.Change("worker_2", 10)),
        ("web+1", formation.Change("web", 1, relative=True)),
        ("web-3", formation.Change("web", -3, relative=True)),
    ],
)
def test_good_words(word: str, expected: formation.Change) -> None:
    assert formation.parse_word(word) == expected
    assert str(formation.parse_word(word)) == word


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("web=abc", "formation 'web=abc': quantity 'abc' is not a whole number"),
        ("web=-1", "formation 'web=-1': quantity must not be negative"),
        ("web", "formation 'web' has no quantity: write it as TYPE=N, e.g. web=2"),
        ("=3", "formation '=3' has no process type: write it as TYPE=N, e.g. web=2"),
        ("web=2=3", "formation 'web=2=3' has more than one '=': write it as TYPE=N, e.g. web=2"),
        ("web=2x", "formation 'web=2x': quantity '2x' is not a whole number"),
        ("w b=2", "formation 'w b=2': process type 'w b' may only use letters, digits, - and _"),
        ("web=", "formation 'web=': quantity '' is not a whole number"),
        ("web=99999", "formation 'web=99999': quantity must be at most 10000"),
    ],
)
def test_bad_words(word: str, message: str) -> None:
    with pytest.raises(InvalidParams) as e:
        formation.parse_word(word)
    assert e.value.message == message


def test_parse_accepts_spaces_and_commas_and_refuses_repeats() -> None:
    assert formation.parse("web=2,worker=4") == formation.parse("web=2 worker=4")
    with pytest.raises(InvalidParams, match="more than once"):
        formation.parse("web=2 web=3")
    with pytest.raises(InvalidParams, match="empty"):
        formation.parse("")


@pytest.mark.parametrize(
    ("word", "current", "expected"),
    [
        ("web+1", 2, 3),
        ("web-2", 2, 0),
        ("web=7", 2, 7),
        ("web=0", 2, 0),
        ("web+0", 0, 0),
        ("web-0", 0, 0),
        ("web-5", 1, "web-5 would take web below 0: it has 1"),
        ("web-1", 0, "web-1 would take web below 0: it has 0"),
    ],
)
def test_relative_changes_never_go_below_zero(word: str, current: int, expected: int | str) -> None:
    change = formation.parse_word(word)
    if isinstance(expected, int):
        assert change.apply(current) == expected
        return
    with pytest.raises(InvalidParams) as e:
        change.apply(current)
    assert e.value.message == expected


@pytest.mark.parametrize(
    ("totals", "layers", "weights", "expected"),
    [
        ({"web": 3}, [Layer("default", None)], None, {"default": {"web": 3}}),
        (
            {"web": 3, "worker": 1},
            [Layer("app", ("web",)), Layer("jobs", ("worker",))],
            None,
            {"app": {"web": 3}, "jobs": {"worker": 1}},
        ),
        (
            {"web": 5},
            [Layer("a", ("web",)), Layer("b", ("web",))],
            None,
            {"a": {"web": 3}, "b": {"web": 2}},
        ),
        (
            {"web": 4},
            [Layer("a", ("web",)), Layer("b", ("web",))],
            {"a": 3, "b": 1},
            {"a": {"web": 3}, "b": {"web": 1}},
        ),
        ({"clock": 1}, [Layer("app", ("web",))], None, {"app": {}}),
    ],
    ids=["default-runs-all", "two-layers", "split-evenly", "split-by-instances", "no-runner"],
)
def test_layer_shares(
    totals: dict[str, int],
    layers: list[Layer],
    weights: dict[str, int] | None,
    expected: dict[str, dict[str, int]],
) -> None:
    assert formation.layer_shares(totals, layers, weights) == expected
    assert formation.format_counts({"web": 1, "worker": 0}) == "web=1,worker=0"


@given(st.text(max_size=40))
def test_any_word_parses_or_raises_gun_error(word: str) -> None:
    try:
        change = formation.parse_word(word)
    except InvalidParams as e:
        assert word in e.message or repr(word) in e.message
    else:
        assert formation.parse_word(str(change)) == change


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
        st.integers(0, 10_000),
        min_size=1,
        max_size=6,
    )
)
def test_formatted_counts_parse_back(counts: dict[str, int]) -> None:
    parsed = formation.parse(formation.format_counts(counts))
    assert {c.type: c.quantity for c in parsed} == counts
