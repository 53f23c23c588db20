"""Unix users in tests: temporary directories they can reach, and none left behind.

gun, run as root, runs an app's code as a Unix user of its own, who must be able to pass
through every directory above its release (gun.isolation). pytest keeps its temporary
directories 0700 (under /tmp/pytest-of-root, 0700 too), so as root this plugin puts the
session's base under a directory of its own in the system temp directory and makes every
directory pytest makes there 0711: others may pass through, never list.

Every user gun makes names the directory it serves in its comment (`gun app A at ROOT`,
`gun build of A for HOME`), so `made_under(path)` finds the users a test made; the session's
own check (tests/leaks.py) fails the run if any user made under its directories is left.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest
from _pytest.tmpdir import TempPathFactory

from gun import isolation

_made: Path | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    global _made
    if os.geteuid() != 0 or config.option.basetemp:
        return
    _made = Path(tempfile.mkdtemp(prefix="gun-tmp-"))
    _made.chmod(isolation.SEARCHABLE)
    config.option.basetemp = str(_made / "base")
    original = TempPathFactory.mktemp

    def mktemp(self: TempPathFactory, basename: str, numbered: bool = True) -> Path:
        path = original(self, basename, numbered)
        for d in (self.getbasetemp(), path):
            d.chmod(isolation.SEARCHABLE)
        return path

    TempPathFactory.mktemp = mktemp  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _made is not None:
        shutil.rmtree(_made, ignore_errors=True)


def made_under(path: Path) -> list[str]:
    """Names of the gun users whose comment names a directory under path."""
    where = str(path.resolve())
    return sorted(
        u.pw_name
        for u in pwd.getpwall()
        if u.pw_name.startswith(isolation.PREFIX) and where in u.pw_gecos
    )


def remove_made_under(path: Path) -> list[str]:
    """Remove (killing their processes) the gun users made for directories under path."""
    names = made_under(path)
    for name in names:
        isolation.remove(name)
    return names
