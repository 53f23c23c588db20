"""bench/bootstrap.py: how long one ssh host takes from `instances.create` to `online`, and
where the time goes (issue 12). Root only: it uses the test hosts of tests/hosts (a network
namespace with its own sshd, reached only over the network, as a real machine).

    sudo .venv/bin/python bench/bootstrap.py [--rounds 3]

Each round makes a fresh host (nothing on it but python3 and sshd), registers it (`hosts.add`:
ssh, the host key, python3's version) and creates two instances on it, one after the other:

- the first is cold: meta builds the wheel bundle (gun and what the agent needs, from meta's own
  installation), sends it with agent.json in one tar stream over ssh, the host makes a venv
  with its python3 and pip-installs the wheels, the agent starts and registers;
- the second is warm: the venv of this gun is there already, so it is the tar stream, the
  agent's start and its registration.

Beside them, measured alone in the same run: building the bundle here, an ssh round trip
(`ssh true`), and the venv and pip install on the host (`python3 -m venv` + pip, as the
provider runs them). The CLI's own start (about 0.3 s) is in the create figures.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hosts import Fleet, problem, sweep  # noqa: E402
from tests.test_fleet_ssh_e2e import Cli, start_meta  # noqa: E402

from gun.providers import bundle  # noqa: E402


def timed(what: str, marks: dict[str, float], fn: Callable[..., T], *args: object) -> T:
    """fn(*args), its wall time kept in marks[what]."""
    began = time.monotonic()
    out = fn(*args)
    marks[what] = time.monotonic() - began
    return out


def round_once(n: int) -> dict[str, float]:
    marks: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gun-bench-bootstrap-") as tmp:
        home = Path(tmp) / "meta"
        home.mkdir()
        scratch = Path(tmp) / "bundle"
        scratch.mkdir()
        wheels = timed("bundle built here", marks, bundle.build, scratch)
        with Fleet(hide=[home]) as fleet:
            host = fleet.host(f"b{n}")
            gun = Cli(fleet, start_meta(fleet, home))
            timed("ssh true", marks, host.ssh, "true")
            added = timed(
                "hosts.add", marks, gun.ok, "hosts.add", host.name, f"root@{host.address}",
                f"key={fleet.key}", f"root={host.root}/gun",
            )  # fmt: skip
            assert added.startswith("Added host"), added
            gun.ok("apps.create", "boot")
            for kind in ("cold", "warm"):
                out = timed(
                    f"instances.create ({kind})", marks, gun.ok, "app:boot",
                    "instances.create:default", "provider=ssh", f"host={host.name}",
                )  # fmt: skip
                assert out.endswith("online\n"), out
            # the venv and the install alone, on the same host, as the provider runs them
            there = f"{host.root}/bench"
            host.ssh(f"mkdir -p {there}")
            for w in wheels:
                host.put(w, f"{there}/{w.name}")
            install = bundle.install_command(
                "python3", f"{there}/venv", [f"{there}/{w.name}" for w in wheels]
            )
            done = timed(
                "venv + pip install on the host", marks, lambda: host.ssh(install, timeout=300)
            )
            assert done.returncode == 0, done.stderr
            for i in gun.json("app:boot", "instances"):
                gun.ok("app:boot", f"instances.delete:{i['id']}", timeout=120)
            host.ssh(f"rm -rf {shlex.quote(there)}")
    return marks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if why := problem():
        raise SystemExit(f"no test hosts here: {why}")
    sweep()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average before: {load}")
    rounds = []
    for n in range(args.rounds):
        marks = round_once(n)
        rounds.append(marks)
        print(f"round {n + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in marks.items()))
    print("median of the rounds:")
    for key in rounds[0]:
        print(f"  {key:<34} {statistics.median(r[key] for r in rounds):6.2f} s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
