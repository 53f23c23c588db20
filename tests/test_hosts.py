"""Test hosts (tests/hosts): what a host sees of itself and of the others, what the root
namespace can reach, a partition, and what is left after a fleet and after a run killed with
SIGKILL. Every client here runs in a fleet's control namespace: no test sends a packet to
10.200.0.0/16 from the root namespace (`ip route get` only asks the routing table).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.hosts import Fleet, HostsError, sweep
from tests.hosts.runs import STATE, Run, free_subnet

REPO = Path(__file__).parent.parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    """A command in the root namespace (only `ip` here, which sends nothing)."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def inet(addr_show: str) -> set[str]:
    """The IPv4 addresses in `ip -4 -o addr show`'s output."""
    words = addr_show.split()
    return {words[i + 1].split("/")[0] for i, w in enumerate(words) if w == "inet"}


def running(process: psutil.Process) -> bool:
    """Running, not a zombie (killed processes whose parent died wait for init to reap them)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def namespaces(prefix: str) -> set[str]:
    """The namespaces named for run `prefix` (`ip netns list` prints `NAME [(id: N)]`)."""
    lines = run("ip", "netns", "list").stdout.splitlines()
    return {line.split()[0] for line in lines if line.startswith(f"{prefix}-")}


# what a host sees ------------------------------------------------------------------------


def test_a_host_has_its_own_address_and_name_and_no_route_out(fleet: Fleet) -> None:
    a, b = fleet.host("a"), fleet.host("b")

    shown = a.ssh("ip -4 -o addr show")
    assert shown.returncode == 0, shown.stderr
    assert inet(shown.stdout) == {"127.0.0.1", a.address}  # not b's, not the machine's
    assert inet(b.ssh("ip -4 -o addr show").stdout) == {"127.0.0.1", b.address}
    assert (a.address, b.address) == (str(fleet.subnet[11]), str(fleet.subnet[12]))
    assert (a.ssh("hostname").stdout, b.ssh("hostname").stdout) == ("a\n", "b\n")

    # one route, the bridge's /24, on hosts and in the control namespace: no default route
    on_a = a.ssh("ip -4 route show").stdout
    in_control = fleet.control.run(["ip", "-4", "route", "show"]).stdout
    assert [line.split()[0] for line in on_a.splitlines()] == [str(fleet.subnet)]
    assert [line.split()[0] for line in in_control.splitlines()] == [str(fleet.subnet)]
    assert fleet.control.address == str(fleet.subnet[1])


def test_a_hosts_directory_is_its_own(fleet: Fleet, tmp_path: Path) -> None:
    a, b = fleet.host("a"), fleet.host("b")

    wrote = a.ssh(f"echo written-on-a > {a.root}/note")
    assert wrote.returncode == 0, wrote.stderr
    assert (a.root / "note").read_text() == "written-on-a\n"  # the test sees it
    peek = b.ssh(f"cat {a.root}/note")
    assert peek.returncode == 1
    assert "No such file or directory" in peek.stderr
    # b sees, of the fleet's directory, only its own: not a's, not the client's key
    assert b.ssh(f"ls -A {fleet.dir}").stdout == "hosts\n"
    assert b.ssh(f"ls -A {fleet.dir}/hosts").stdout == "b\n"
    assert (fleet.dir / "client").is_dir()
    # nor through another process's root: b has a PID namespace of its own, its sshd its PID 1
    assert b.ssh(f"cat /proc/*/root{a.root}/note").returncode == 1
    assert b.ssh("cat /proc/1/comm").stdout == "sshd\n"

    wheel = tmp_path / "gun-0-py3-none-any.whl"
    wheel.write_bytes(bytes(range(256)) * 1000)
    b.put(wheel, f"{b.root}/{wheel.name}")
    assert (b.root / wheel.name).read_bytes() == wheel.read_bytes()
    assert b.ssh(f"ls {b.root}").stdout == f"{wheel.name}\n"


def test_a_hidden_directory_is_empty_on_hosts(hosts_ready: None, tmp_path: Path) -> None:
    meta_home, drain_home = tmp_path / "meta", tmp_path / "drain"
    for home in (meta_home, drain_home):
        home.mkdir()
        (home / "secret.key").write_text("not for hosts")

    with Fleet(hide=[meta_home]) as fleet:
        a = fleet.host("a")
        b = fleet.host("b", hide=[drain_home])

        seen = a.ssh(f"ls -A {meta_home}; echo ---; ls -A {drain_home}")
        assert seen.stdout == "---\nsecret.key\n"
        seen = b.ssh(f"ls -A {meta_home}; echo ---; ls -A {drain_home}")
        assert seen.stdout == "---\n"
        assert sorted(os.listdir(meta_home)) == ["secret.key"]  # the test still sees it

        # what a host writes there goes to its own empty tmpfs
        assert a.ssh(f"touch {meta_home}/from-a && ls -A {meta_home}").stdout == "from-a\n"
        assert sorted(os.listdir(meta_home)) == ["secret.key"]

        with pytest.raises(HostsError, match="not a directory"):
            fleet.host("c", hide=[meta_home / "secret.key"])


# what reaches a host ---------------------------------------------------------------------


def test_the_root_namespace_has_no_route_to_a_host(fleet: Fleet) -> None:
    a = fleet.host("a")

    asked = run("ip", "route", "get", a.address)
    assert asked.returncode != 0
    assert "No route to host" in asked.stderr
    guard = run("ip", "-4", "route", "show", "exact", str(fleet.subnet))
    assert guard.stdout.split() == ["unreachable", str(fleet.subnet), "proto", "222"]


def test_a_partitioned_host_is_unreachable_until_healed(fleet: Fleet) -> None:
    a, b = fleet.host("a"), fleet.host("b")
    assert a.ssh("true").returncode == 0

    a.partition()
    assert a.namespace.ip("-4", "route", "show") == ""  # a's packets go nowhere
    started = time.monotonic()
    cut = a.ssh("true")
    assert cut.returncode == 255, cut
    assert time.monotonic() - started < 3 + 1.5  # ssh's ConnectTimeout=3
    assert b.ssh("true").returncode == 0  # only a is cut off

    a.heal()
    healed = a.ssh("hostname")
    assert (healed.returncode, healed.stdout) == (0, "a\n")


def test_two_fleets_at_once_do_not_meet(hosts_ready: None) -> None:
    with Fleet() as one, Fleet() as two:
        a1, a2 = one.host("a"), two.host("a")
        assert one.prefix != two.prefix
        assert one.subnet != two.subnet

        assert a1.ssh("hostname").stdout == a2.ssh("hostname").stdout == "a\n"
        across = one.control.run(a2.ssh_argv("true"))
        assert across.returncode == 255
        assert "Network is unreachable" in across.stderr


# what is left ----------------------------------------------------------------------------


def settled(pids: Callable[[], list[int]], count: int) -> list[psutil.Process]:
    """The processes `pids` names once `count` of them live: an ssh session's own processes
    are still going away for a moment after `ssh` returns."""
    deadline = time.monotonic() + 10
    while True:
        alive = []
        for pid in pids():
            try:
                alive.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        if len([p for p in alive if running(p)]) == count or time.monotonic() > deadline:
            assert len(alive) == count, [p.pid for p in alive]
            return alive
        time.sleep(0.05)


def test_nothing_of_a_fleet_is_left_after_it(hosts_ready: None) -> None:
    with pytest.raises(RuntimeError, match="the test failed"), Fleet() as fleet:
        a, b = fleet.host("a"), fleet.host("b")
        # an agent that outlives its ssh session, and a client in the control namespace
        assert a.ssh(f"cd {a.root}; setsid sleep 600 </dev/null >/dev/null 2>&1 &").returncode == 0
        client = fleet.control.popen(["sleep", "600"])
        made = settled(lambda: [*a.pids(), *b.pids(), client.pid], 6)
        # per host unshare and its sshd; the agent; the client
        prefix, subnet, where = fleet.prefix, str(fleet.subnet), str(fleet.dir)
        assert len(namespaces(prefix)) == 3
        raise RuntimeError("the test failed")  # leaving the fleet by an error, as a test would

    assert namespaces(prefix) == set()
    assert prefix not in run("ip", "-o", "link").stdout
    assert subnet not in run("ip", "route", "show", "table", "all").stdout
    assert [p for p in made if running(p)] == []
    naming = [p.info for p in psutil.process_iter(["pid", "cmdline"]) if where in str(p.info)]
    assert naming == []
    assert not Path(where).exists()
    assert not (STATE / f"{prefix}.json").exists()


# a run killed with SIGKILL leaves all it made; sweep() removes it, and only it
KILLED_RUN = """
import json, time
from tests.hosts import Fleet

fleet = Fleet().__enter__()
host = fleet.host("orphan")
host.ssh("setsid sleep 600 </dev/null >/dev/null 2>&1 &")
made = {"prefix": fleet.prefix, "subnet": str(fleet.subnet), "dir": str(fleet.dir)}
print(json.dumps({**made, "pids": host.pids()}), flush=True)
time.sleep(600)
"""


def test_sweep_removes_what_a_killed_run_left_and_not_a_live_runs(fleet: Fleet) -> None:
    live = fleet.host("live")
    killed = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert killed.stdout is not None
        line = killed.stdout.readline()
        assert line, "the run to be killed did not start (its error is above)"
        left = json.loads(line)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    prefix, subnet = left["prefix"], left["subnet"]
    orphans = [psutil.Process(pid) for pid in left["pids"]]  # unshare, sshd, the agent

    assert namespaces(prefix) == {f"{prefix}-control", f"{prefix}-host-orphan"}
    assert run("ip", "-4", "route", "show", "exact", subnet).stdout.startswith("unreachable")
    assert len(orphans) == 3 and all(running(p) for p in orphans)
    assert Path(left["dir"]).is_dir() and (STATE / f"{prefix}.json").exists()

    swept = sweep()

    assert {
        f"namespace {prefix}-control",
        f"namespace {prefix}-host-orphan",
        f"route unreachable {subnet}",
        f"run {prefix} of dead PID {killed.pid}: {left['dir']}",
    } <= set(swept)
    assert namespaces(prefix) == set()
    assert run("ip", "-4", "route", "show", "exact", subnet).stdout == ""
    assert [p for p in orphans if running(p)] == []
    assert not Path(left["dir"]).exists() and not (STATE / f"{prefix}.json").exists()
    # the live run is untouched
    assert namespaces(fleet.prefix) == {f"{fleet.prefix}-control", f"{fleet.prefix}-host-live"}
    assert live.ssh("hostname").stdout == "live\n"
    assert not [line for line in swept if fleet.prefix in line or str(fleet.subnet) in line]


def test_a_run_is_alive_while_its_owner_is(tmp_path: Path) -> None:
    me = psutil.Process()
    subnet = ipaddress.IPv4Network("10.200.9.0/24")
    assert Run("gt0000", subnet, me.pid, me.create_time(), tmp_path).alive()
    # the same PID started at another time is another process: its owner is gone
    assert not Run("gt0000", subnet, me.pid, me.create_time() - 60, tmp_path).alive()
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert not Run("gt0000", subnet, gone.pid, me.create_time(), tmp_path).alive()


@pytest.mark.parametrize(
    ("routed", "held", "chosen"),
    [
        ([], [], "10.200.0.0/24"),
        (["192.0.2.0/24", "127.0.0.0/8", "127.0.0.1/32"], [], "10.200.0.0/24"),
        (["10.200.0.0/24"], [], "10.200.1.0/24"),  # another run's guard route
        (["10.200.0.7/32"], ["10.200.1.0/24"], "10.200.2.0/24"),  # an address; a held one
        (["10.200.0.0/23"], [], "10.200.2.0/24"),
        (["10.200.0.0/16"], [], None),  # the machine routes all of it somewhere
        (["10.0.0.0/8"], [], None),  # so does a VPN
    ],
)
def test_a_run_takes_the_first_subnet_nothing_uses(
    routed: list[str], held: list[str], chosen: str | None
) -> None:
    nets = [ipaddress.IPv4Network(n) for n in routed]
    taken = {ipaddress.IPv4Network(n) for n in held}
    if chosen is None:
        with pytest.raises(HostsError, match="no free /24"):
            free_subnet(nets, taken)
    else:
        assert free_subnet(nets, taken) == ipaddress.IPv4Network(chosen)
