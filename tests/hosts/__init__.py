"""Test hosts for fleet tests: network namespaces on a bridge, each with its own address in
10.200.0.0/16, its own mount namespace (meta's data dir and the other hosts' directories
hidden), PID namespace and sshd, so that nothing reaches an agent but over the network. See
README.md.

    with Fleet(hide=[meta_home]) as fleet:
        web = fleet.host("web")
        fleet.control.popen([...])          # meta, listening on fleet.control.address
        web.ssh("hostname").stdout          # "web\\n"
        web.partition(); web.heal()
"""

from tests.hosts.fleet import Control, Fleet, Host
from tests.hosts.machine import HostsError, problem
from tests.hosts.runs import SUBNETS, sweep

__all__ = ["SUBNETS", "Control", "Fleet", "Host", "HostsError", "problem", "sweep"]
