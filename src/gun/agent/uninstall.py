"""`python -m gun.agent.uninstall ROOT`: what is left of a stopped agent's instance goes: the
cgroups of its processes (their members killed), its Unix user, the directory. A provider
runs it on the instance's host after stopping the agent (the local provider does the same
in-process)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from gun import isolation
from gun.agent import contain


def uninstall(root: Path) -> None:
    contain.remove(root)
    if isolation.can_switch():
        isolation.remove(isolation.instance_user_name(root))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m gun.agent.uninstall ROOT")
    uninstall(Path(sys.argv[1]))
