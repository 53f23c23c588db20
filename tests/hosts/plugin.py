"""pytest fixtures for test hosts (a plugin: tests/conftest.py loads it).

- `hosts_ready` (session): the machine can have test hosts (else the test skips, or fails under
  CI), and what dead runs left has been swept, before the first test that uses them.
- `fleet`: a Fleet for one test, with nothing hidden but its own directory.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import pytest

from tests.hosts import Fleet, problem, sweep


@pytest.fixture(scope="session")
def hosts_ready() -> None:
    if why := problem():
        if os.environ.get("CI"):
            pytest.fail(why)  # CI's machines can: not being able to is a failure there
        pytest.skip(why)
    if swept := sweep():
        warnings.warn("swept what dead test-host runs left:\n" + "\n".join(swept), stacklevel=1)


@pytest.fixture
def fleet(hosts_ready: None) -> Iterator[Fleet]:
    with Fleet() as made:
        yield made
