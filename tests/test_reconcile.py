"""Reconcile in the pyinfra style: given these desired and observed processes (the facts),
expect these actions, in this order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gun.agent.reconcile import Action, Desired, Observed, natural_key, reconcile
from gun.model import PROCESS_STATES

COMMANDS = {"web": "bundle exec puma", "worker": "bundle exec sidekiq"}


def want(name: str, release: int = 1, env: str = "e1", command: str | None = None) -> Desired:
    ptype = name.rpartition(".")[0]
    return Desired(name, ptype, command or COMMANDS.get(ptype, ptype), release, env)


def have(
    name: str, state: str = "up", release: int = 1, env: str = "e1", command: str | None = None
) -> Observed:
    return Observed(name, name.rpartition(".")[0], state, release, env, command)


def wants(*names: str, release: int = 1, env: str = "e1") -> list[Desired]:
    return [want(n, release, env) for n in names]


def haves(*names: str, state: str = "up", release: int = 1, env: str = "e1") -> list[Observed]:
    return [have(n, state, release, env) for n in names]


CASES = [
    pytest.param([], [], [], id="nothing-at-all"),
    pytest.param(
        wants("web.1", "web.2", "worker.1"),
        haves("web.1", "web.2", "worker.1"),
        [],
        id="nothing-to-do",
    ),
    pytest.param(
        wants("web.1", "web.2", "web.3"),
        haves("web.1"),
        ["start web.2", "start web.3"],
        id="scale-up",
    ),
    pytest.param(
        wants("web.1"),
        haves("web.1", "web.2", "web.3"),
        ["stop web.2", "stop web.3"],
        id="scale-down",
    ),
    pytest.param(
        wants("web.1", "web.2", "web.3", "worker.1", "worker.2", release=2),
        haves("web.1", "web.2", "web.3", "worker.1", "worker.2", release=1),
        ["replace web.1", "replace worker.1"],
        id="new-release-rolls-one-per-type",
    ),
    pytest.param(
        wants("web.1", "web.2", "web.3", "worker.1", "worker.2", release=2),
        [have("web.1", release=2), *haves("web.2", "web.3", "worker.1", "worker.2")],
        ["replace web.2", "replace worker.1"],
        id="new-release-second-pass",
    ),
    pytest.param(
        wants("web.1", "web.2", "web.3", "worker.1", release=2),
        [have("web.1", "starting", release=2), *haves("web.2", "web.3", "worker.1")],
        ["replace worker.1"],
        id="new-release-waits-while-one-is-starting",
    ),
    pytest.param(
        wants("web.1", "web.2", release=2),
        [have("web.1", "stopping"), have("web.2")],
        [],
        id="new-release-waits-while-one-is-stopping",
    ),
    pytest.param(
        wants("web.1", "web.2", env="e2"),
        haves("web.1", "web.2", env="e1"),
        ["replace web.1"],
        id="config-change-replaces",
    ),
    pytest.param(
        [want("web.1", command="gunicorn app"), want("web.2", command="gunicorn app")],
        [have("web.1", command="puma"), have("web.2")],
        ["replace web.1"],
        id="command-change-replaces-when-reported",
    ),
    pytest.param(
        wants("web.1"),
        [have("web.1"), have("web.2", "stopping"), have("web.3", "stopping")],
        [],
        id="stopping-not-stopped-again",
    ),
    pytest.param(
        wants("web.1"),
        [have("web.1"), have("web.2", "down")],
        [],
        id="down-not-stopped",
    ),
    pytest.param(
        wants("web.1", "web.2"),
        [have("web.1", "crashed"), have("web.2", "starting")],
        [],
        id="crashed-left-to-supervisor",
    ),
    pytest.param(
        wants("web.1"),
        [have("web.1", "crashed"), have("web.2", "crashed"), have("web.3", "starting")],
        ["stop web.2", "stop web.3"],
        id="unwanted-crashed-and-starting-are-stopped",
    ),
    pytest.param(
        wants("web.1", "web.2", "web.3", release=2),
        [have("web.1"), have("web.2", "crashed"), have("web.3", "crashed")],
        ["replace web.1", "replace web.2", "replace web.3"],
        id="crashed-on-old-release-replaced-outside-budget",
    ),
    pytest.param(
        wants("web.1", "web.2"),
        [have("web.1", "down"), have("web.2", "stopping")],
        ["start web.1"],
        id="wanted-down-started-wanted-stopping-waits",
    ),
    pytest.param(
        wants("web.2", "web.10", "worker.1", "web.1", release=2),
        [
            *haves("web.11", "web.3", "worker.10", "worker.9"),
            *haves("web.10", "worker.1", release=1),
        ],
        [
            "stop web.3",
            "stop web.11",
            "stop worker.9",
            "stop worker.10",
            "replace web.10",
            "replace worker.1",
            "start web.1",
            "start web.2",
        ],
        id="natural-sort-stops-replaces-starts",
    ),
]


@pytest.mark.parametrize(("desired", "observed", "expected"), CASES)
def test_reconcile(desired: list[Desired], observed: list[Observed], expected: list[str]) -> None:
    assert [str(a) for a in reconcile(desired, observed)] == expected


def test_max_unavailable_two_replaces_two_per_type() -> None:
    desired = wants("web.1", "web.2", "web.3", "worker.1", release=2)
    observed = haves("web.1", "web.2", "web.3", "worker.1")
    assert reconcile(desired, observed, max_unavailable=2) == [
        Action("replace", "web.1"),
        Action("replace", "web.2"),
        Action("replace", "worker.1"),
    ]


def test_rolling_deploy_converges_one_per_pass() -> None:
    """Apply each pass's actions as a well-behaved supervisor would; web moves one at a time."""
    desired = wants("web.1", "web.2", "web.3", release=2)
    observed = {o.name: o for o in haves("web.1", "web.2", "web.3")}
    passes: list[list[str]] = []
    while actions := reconcile(desired, list(observed.values())):
        passes.append([str(a) for a in actions])
        for a in actions:
            observed[a.name] = have(a.name, release=2)
    assert passes == [["replace web.1"], ["replace web.2"], ["replace web.3"]]


@pytest.mark.parametrize(
    ("desired", "observed", "message"),
    [
        (wants("web.1", "web.1"), [], "desired processes name 'web.1' more than once"),
        ([], haves("web.1", "web.1"), "observed processes name 'web.1' more than once"),
    ],
)
def test_duplicate_names_are_refused(
    desired: list[Desired], observed: list[Observed], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        reconcile(desired, observed)


def test_max_unavailable_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        reconcile([], [], max_unavailable=0)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["web.10", "web.2", "web.1"], ["web.1", "web.2", "web.10"]),
        (["worker.1", "web.2", "clock.3"], ["clock.3", "web.2", "worker.1"]),
        (["web.1", "web-api.1", "web.2"], ["web.1", "web.2", "web-api.1"]),
    ],
)
def test_natural_key(names: list[str], expected: list[str]) -> None:
    assert sorted(names, key=natural_key) == expected


# Properties: every action is warranted, and order is stops, replaces, starts.

NAMES = [f"{t}.{n}" for t in ("web", "worker") for n in range(1, 6)]
STATES = list(PROCESS_STATES)


@given(
    st.lists(st.sampled_from(NAMES), unique=True),
    st.lists(
        st.tuples(st.sampled_from(NAMES), st.sampled_from(STATES), st.integers(1, 2)),
        unique_by=lambda t: t[0],
    ),
    st.integers(1, 3),
)
def test_properties(
    desired_names: list[str], observed_facts: list[tuple[str, str, int]], limit: int
) -> None:
    desired = wants(*desired_names, release=2)
    observed = [have(n, s, r) for n, s, r in observed_facts]
    actions = reconcile(desired, observed, max_unavailable=limit)
    seen = {o.name: o for o in observed}
    kinds = [a.kind for a in actions]
    assert kinds == sorted(kinds, key=["stop", "replace", "start"].index)
    assert len({a.name for a in actions}) == len(actions)
    for a in actions:
        if a.kind == "stop":
            assert a.name not in desired_names and seen[a.name].state not in ("stopping", "down")
        elif a.kind == "start":
            assert a.name in desired_names
            assert a.name not in seen or seen[a.name].state == "down"
        else:
            assert seen[a.name].release == 1 and seen[a.name].state in ("up", "crashed")
    for ptype in ("web", "worker"):
        rolled = [a for a in actions if a.kind == "replace" and a.name.startswith(ptype + ".")]
        assert sum(1 for a in rolled if seen[a.name].state == "up") <= limit
    # Applying the actions reaches a fixed point where nothing is left to do but wait.
    if not any(o.state in ("starting", "stopping", "crashed") for o in observed):
        after = {n: o for n, o in seen.items() if o.state != "down"}
        for a in actions:
            if a.kind == "stop":
                del after[a.name]
            else:
                after[a.name] = have(a.name, release=2)
        still = reconcile(desired, list(after.values()), max_unavailable=limit)
        assert all(a.kind == "replace" for a in still)
