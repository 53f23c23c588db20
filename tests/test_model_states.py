"""The process and instance states: one Literal each in gun.model, checked where they enter."""

from __future__ import annotations

import pytest

from gun.errors import InvalidParams
from gun.model import (
    INSTANCE_STATES,
    PROCESS_STATES,
    check_instance_state,
    check_process_state,
)


def test_the_states_are_the_documented_ones() -> None:
    assert PROCESS_STATES == ("starting", "up", "crashed", "stopping", "down")
    assert INSTANCE_STATES == (
        "pending", "requested", "booting", "setup", "setup_failed", "online", "lost", "terminated"
    )  # fmt: skip


@pytest.mark.parametrize("state", PROCESS_STATES)
def test_every_process_state_is_taken(state: str) -> None:
    assert check_process_state("web.1", state) == state


@pytest.mark.parametrize("state", INSTANCE_STATES)
def test_every_instance_state_is_taken(state: str) -> None:
    assert check_instance_state("i-0a1b2c3d", state) == state


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("exploded", "process 'web.1' has unknown state 'exploded'"),
        ("UP", "process 'web.1' has unknown state 'UP'"),
        ("", "process 'web.1' has unknown state ''"),
        (None, "process 'web.1' has unknown state None"),
        (1, "process 'web.1' has unknown state 1"),
        ("online", "process 'web.1' has unknown state 'online'"),  # an instance's, not a process's
    ],
)
def test_other_process_states_are_refused_naming_the_process(state: object, message: str) -> None:
    with pytest.raises(InvalidParams) as e:
        check_process_state("web.1", state)
    assert e.value.message == message


@pytest.mark.parametrize("state", ["up", "Online", "", None, "offline"])
def test_other_instance_states_are_refused_naming_the_instance(state: object) -> None:
    with pytest.raises(InvalidParams) as e:
        check_instance_state("i-0a1b2c3d", state)
    assert e.value.message == f"instance 'i-0a1b2c3d' has unknown state {state!r}"
