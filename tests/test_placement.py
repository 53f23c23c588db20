"""Placement as a table (given totals, layers, instances and current, expect these assignments),
plus properties over random fleets: complete, even, idempotent, healthy-only."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.model import Layer
from gun.placement import (
    Instance,
    _keep,
    eligible,
    place,
    process_names,
    split_name,
    unplaceable,
)

DEFAULT = [Layer("default", None)]
TWO = [Layer("app", ("web",)), Layer("jobs", ("worker",))]


def up(*ids: str, layer: str = "default") -> list[Instance]:
    return [Instance(i, layer, True) for i in ids]


def down(*ids: str, layer: str = "default") -> list[Instance]:
    return [Instance(i, layer, False) for i in ids]


def spread(prefix: str, n: int, instances: str) -> dict[str, str]:
    """`spread("web", 4, "ab")` -> web.1 on a, web.2 on b, web.3 on a, web.4 on b."""
    return {f"{prefix}.{k}": instances[(k - 1) % len(instances)] for k in range(1, n + 1)}


CASES = [
    pytest.param({"web": 3}, DEFAULT, [], {}, {}, id="no-instances"),
    pytest.param({"web": 0}, DEFAULT, up("a"), {"web.1": "a"}, {}, id="scale-to-zero"),
    pytest.param(
        {"web": 3},
        DEFAULT,
        up("b", "a"),
        {},
        {"web.1": "a", "web.2": "b", "web.3": "a"},
        id="scale-up-from-zero",
    ),
    pytest.param(
        {"web": 4},
        DEFAULT,
        up("a", "b"),
        {"web.1": "b", "web.2": "a"},
        {"web.1": "b", "web.2": "a", "web.3": "a", "web.4": "b"},
        id="scale-up-keeps-existing",
    ),
    pytest.param(
        {"web": 2},
        DEFAULT,
        up("a", "b"),
        {"web.1": "a", "web.2": "b", "web.3": "a", "web.4": "b"},
        {"web.1": "a", "web.2": "b"},
        id="scale-down-removes-highest",
    ),
    pytest.param(
        {"web": 2},
        DEFAULT,
        up("a", "b"),
        {"web.1": "a", "web.2": "a", "web.3": "b"},
        {"web.1": "a", "web.2": "b"},
        id="scale-down-rebalances-highest-moves",
    ),
    pytest.param(
        {"web": 2},
        DEFAULT,
        up("a", "b", "c"),
        {"web.1": "a", "web.2": "b"},
        {"web.1": "a", "web.2": "b"},
        id="add-instance-nothing-moves",
    ),
    pytest.param(
        {"web": 4},
        DEFAULT,
        up("a", "b", "c"),
        {"web.1": "a", "web.2": "b", "web.3": "a", "web.4": "b"},
        {"web.1": "a", "web.2": "b", "web.3": "a", "web.4": "c"},
        id="add-instance-moves-one-highest",
    ),
    pytest.param(
        {"web": 6},
        DEFAULT,
        up("a", "b", "c"),
        spread("web", 6, "ab"),
        {"web.1": "a", "web.2": "b", "web.3": "a", "web.4": "b", "web.5": "c", "web.6": "c"},
        id="add-instance-minimal-moves",
    ),
    pytest.param(
        {"web": 4},
        DEFAULT,
        up("a", "c"),
        {"web.1": "a", "web.2": "b", "web.3": "c", "web.4": "a"},
        {"web.1": "a", "web.2": "c", "web.3": "c", "web.4": "a"},
        id="remove-instance-its-processes-move",
    ),
    pytest.param(
        {"web": 4},
        DEFAULT,
        up("a", "c") + down("b"),
        {"web.1": "a", "web.2": "b", "web.3": "c", "web.4": "a"},
        {"web.1": "a", "web.2": "c", "web.3": "c", "web.4": "a"},
        id="unhealthy-instance-is-absent",
    ),
    pytest.param(
        {"web": 3, "worker": 2},
        TWO,
        up("a1", "a2", layer="app") + up("j1", layer="jobs"),
        {},
        {"web.1": "a1", "web.2": "a2", "web.3": "a1", "worker.1": "j1", "worker.2": "j1"},
        id="two-layers",
    ),
    pytest.param(
        {"web": 1, "clock": 1},
        TWO,
        up("a1", layer="app") + up("j1", layer="jobs"),
        {"clock.1": "j1"},
        {"web.1": "a1"},
        id="type-no-layer-runs",
    ),
    pytest.param(
        {"web": 1, "worker": 1},
        TWO,
        up("a1", layer="app") + down("j1", layer="jobs"),
        {"worker.1": "j1"},
        {"web.1": "a1"},
        id="layer-with-no-healthy-instance",
    ),
    pytest.param(
        {"web": 1, "worker": 1},
        DEFAULT,
        up("a", "b"),
        {},
        {"web.1": "a", "worker.1": "b"},
        id="balances-load-across-types",
    ),
    pytest.param(
        {"web": 2, "worker": 1},
        DEFAULT,
        up("a", "b"),
        {"worker.1": "a"},
        {"web.1": "b", "web.2": "a", "worker.1": "a"},
        id="new-processes-go-to-least-loaded",
    ),
    pytest.param(
        {"web": 3},
        [Layer("app", ("web",)), Layer("edge", ("web",))],
        up("a1", layer="app") + up("e1", layer="edge") + up("x1", layer="gone"),
        {"web.1": "x1"},
        {"web.1": "a1", "web.2": "e1", "web.3": "a1"},
        id="every-layer-that-runs-a-type",
    ),
    pytest.param(
        {"web": 1},
        DEFAULT,
        up("a"),
        {"run.7": "a", "web.x": "a", "web.0": "a"},
        {"web.1": "a"},
        id="ignores-names-not-in-formation",
    ),
]


@pytest.mark.parametrize(("totals", "layers", "instances", "current", "expected"), CASES)
def test_place(
    totals: dict[str, int],
    layers: list[Layer],
    instances: list[Instance],
    current: dict[str, str],
    expected: dict[str, str],
) -> None:
    assert place(totals, layers, instances, current) == expected


def test_fifty_web_over_five_instances_is_ten_each() -> None:
    ids = [f"i-{k}" for k in range(5)]
    result = place({"web": 50}, DEFAULT, up(*ids), {})
    assert Counter(result.values()) == {i: 10 for i in ids}
    assert list(result) == [f"web.{k}" for k in range(1, 51)]


def test_same_input_same_output_whatever_the_order() -> None:
    fleet = up("c", "a", "b")
    first = place({"web": 5, "worker": 2}, DEFAULT, fleet, {})
    again = place({"worker": 2, "web": 5}, DEFAULT, list(reversed(fleet)), {})
    assert first == again


@pytest.mark.parametrize(
    ("totals", "layers", "instances", "expected"),
    [
        pytest.param({"web": 1}, DEFAULT, up("a"), {}, id="placeable"),
        pytest.param({"clock": 0}, TWO, [], {}, id="zero-needs-nothing"),
        pytest.param(
            {"clock": 1, "web": 1},
            TWO,
            up("a", layer="app"),
            {"clock": "no layer runs process type 'clock' (layers: app, jobs)"},
            id="no-layer-runs-type",
        ),
        pytest.param(
            {"web": 1},
            [],
            [],
            {"web": "no layer runs process type 'web' (the app has no layers)"},
            id="no-layers",
        ),
        pytest.param(
            {"web": 2},
            TWO,
            down("a2", "a1", layer="app"),
            {"web": "layer app has no healthy instance (unhealthy: a1, a2)"},
            id="all-unhealthy",
        ),
        pytest.param(
            {"worker": 2},
            TWO,
            up("a1", layer="app"),
            {"worker": "layer jobs has no healthy instance (no instances)"},
            id="layer-without-instances",
        ),
        pytest.param(
            {"web": 2},
            [Layer("app", ("web",)), Layer("edge", ("web",))],
            down("a1", layer="app"),
            {"web": "layers app, edge have no healthy instance (unhealthy: a1)"},
            id="several-layers",
        ),
    ],
)
def test_unplaceable(
    totals: dict[str, int],
    layers: list[Layer],
    instances: list[Instance],
    expected: dict[str, str],
) -> None:
    assert unplaceable(totals, layers, instances) == expected


# Properties over random fleets.

TYPES = ["web", "worker", "clock"]
LAYER_CHOICES = [
    [Layer("default", None)],
    [Layer("app", ("web",)), Layer("jobs", ("worker",))],
    [Layer("app", ("web", "worker")), Layer("jobs", ("worker",))],
    [Layer("app", ("web",)), Layer("default", None)],
]
INSTANCE_IDS = [f"i-{k}" for k in range(8)]

totals_st = st.dictionaries(st.sampled_from(TYPES), st.integers(0, 30), max_size=3)
instances_st = st.lists(
    st.builds(
        Instance,
        st.sampled_from(INSTANCE_IDS),
        st.sampled_from(["default", "app", "jobs", "gone"]),
        st.booleans(),
    ),
    max_size=6,
    unique_by=lambda i: i.id,
)
current_st = st.dictionaries(
    st.builds(lambda t, n: f"{t}.{n}", st.sampled_from(TYPES), st.integers(1, 35)),
    st.sampled_from([*INSTANCE_IDS, "i-deleted"]),
    max_size=40,
)


def eligible_ids(ptype: str, layers: list[Layer], instances: list[Instance]) -> set[str]:
    running = {la.name for la in layers if la.runs(ptype)}
    return {i.id for i in instances if i.healthy and i.layer in running}


@given(totals_st, st.sampled_from(LAYER_CHOICES), instances_st, current_st)
def test_properties(
    totals: dict[str, int],
    layers: list[Layer],
    instances: list[Instance],
    current: dict[str, str],
) -> None:
    result = place(totals, layers, instances, current)
    missing = unplaceable(totals, layers, instances)
    for ptype, total in totals.items():
        pool = eligible_ids(ptype, layers, instances)
        names = {n for n in result if n.rpartition(".")[0] == ptype}
        if total == 0 or not pool:
            # Unplaceable types get no placement, and unplaceable() says why.
            assert not names
            assert (ptype in missing) == (total > 0)
            continue
        assert ptype not in missing
        # Every process 1..N placed exactly once (dict keys), nothing else.
        assert names == {f"{ptype}.{k}" for k in range(1, total + 1)}
        # Only healthy eligible instances are used.
        assert {result[n] for n in names} <= pool
        # Per-type counts over eligible instances differ by at most 1.
        counts = Counter(result[n] for n in names)
        per_instance = [counts[i] for i in pool]
        assert max(per_instance) - min(per_instance) <= 1
    assert all((p := split_name(n)) is not None and p[0] in totals for n in result)
    # Idempotent: placing again with the result as current changes nothing.
    assert place(totals, layers, instances, result) == result


@given(totals_st, st.sampled_from(LAYER_CHOICES), instances_st, current_st)
def test_kept_assignments_stay_unless_evenness_forbids(
    totals: dict[str, int],
    layers: list[Layer],
    instances: list[Instance],
    current: dict[str, str],
) -> None:
    """Moves are minimal: per type, kept = sum over instances of min(held, most it may hold),
    with the larger share going to the instances that already hold the most."""
    result = place(totals, layers, instances, current)
    for ptype, total in totals.items():
        pool = sorted(eligible_ids(ptype, layers, instances))
        if total == 0 or not pool:
            continue
        held = Counter(
            i
            for n, i in current.items()
            if (p := split_name(n)) and p[0] == ptype and p[1] <= total and i in pool
        )
        base, extra = divmod(total, len(pool))
        ranked = sorted((held[i] for i in pool), reverse=True)
        best = sum(min(h, base + (k < extra)) for k, h in enumerate(ranked))
        stayed = sum(
            1
            for n, i in current.items()
            if (p := split_name(n)) and p[0] == ptype and p[1] <= total and result.get(n) == i
        )
        assert stayed == best


def by_min(
    totals: dict[str, int],
    layers: list[Layer],
    instances: list[Instance],
    current: dict[str, str],
) -> dict[str, str]:
    """place() as it was written first: a `min` over the pool for each new process."""
    types = [t for t in sorted(totals) if totals[t] > 0]
    pools = {t: eligible(t, layers, instances) for t in types}
    kept = {t: _keep(t, totals[t], pools[t], current) for t in types if pools[t]}
    load = Counter(i for assigned in kept.values() for i in assigned.values())
    result: dict[str, str] = {}
    for ptype, assigned in kept.items():
        counts = Counter(assigned.values())
        for name in process_names(ptype, totals[ptype]):
            if name not in assigned:
                target = min(pools[ptype], key=lambda i: (counts[i], load[i], i))
                assigned[name] = target
                counts[target] += 1
                load[target] += 1
            result[name] = assigned[name]
    return result


@given(totals_st, st.sampled_from(LAYER_CHOICES), instances_st, current_st)
def test_new_processes_go_where_a_min_over_the_pool_put_them(
    totals: dict[str, int],
    layers: list[Layer],
    instances: list[Instance],
    current: dict[str, str],
) -> None:
    """place() takes the emptiest instance from a heap (1,000 new processes on 1,000
    instances were a million keys); the rule is the plain one: fewest of the type, then least
    load, then lowest id, for each new process in turn."""
    assert place(totals, layers, instances, current) == by_min(totals, layers, instances, current)


def test_a_thousand_new_processes_on_a_thousand_instances() -> None:
    instances = [Instance(f"i-{n:04}", "default", True) for n in range(1000)]
    current = {f"web.{n + 1}": f"i-{n:04}" for n in range(1000)}
    totals = {"web": 2000}
    assert place(totals, DEFAULT, instances, current) == by_min(totals, DEFAULT, instances, current)
