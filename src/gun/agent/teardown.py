"""`python -m gun.agent.teardown ROOT`: the layer's teardown of the instance at ROOT (setup.py),
its output on stdout; nothing when it has none. A provider runs it before stopping the agent."""

from __future__ import annotations

import sys
from pathlib import Path

from gun.agent.setup import teardown

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m gun.agent.teardown ROOT")
    said = teardown(Path(sys.argv[1]))
    if said is not None:
        print(said)
