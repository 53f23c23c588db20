"""The whole platform as a user runs it: `gun up`, deploy examples/hello, scale, break things."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from gun import up as gun_up
from gun.agent import contain
from gun.agent.config import AgentConfig
from gun.settings import AppLogLimits, DrainSettings, MetaSettings, SlugLimits, router_settings
from tests.up import HELLO, Up, running


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    with running(tmp_path, instances=2) as platform:
        yield platform


def all_up(up: Up, app: str, n: int) -> list[dict[str, object]] | None:
    procs = up.processes(app)
    if len(procs) == n and all(p["state"] == "up" for p in procs):
        return procs
    return None


def test_hello_on_two_instances(up: Up) -> None:
    assert up.ok("apps.create", "hello") == "Created app hello (v1)\n"
    instances = up.json("app:hello", "instances")
    assert [(i["layer"], i["state"], i["provider"]) for i in instances] == [
        ("default", "online", "local")
    ] * 2
    assert up.ok("app:hello", "deploy", f"dir={HELLO}") == "v2\n"
    assert up.ok("app:hello", "scale", "web=3", "worker=2") == "Scaled hello to web=3 worker=2\n"

    procs = up.json("app:hello", "ps")
    assert sorted(p["name"] for p in procs) == ["web.1", "web.2", "web.3", "worker.1", "worker.2"]
    assert {p["state"] for p in procs} == {"up"}
    assert set(procs[0]) == {
        "name",
        "type",
        "state",
        "instance",
        "port",
        "release",
        "restarts",
        "since",
    }
    per_instance = sorted(Counter(p["instance"] for p in procs).values())
    assert per_instance == [2, 3]
    ports = {p["name"]: p["port"] for p in procs if p["type"] == "web"}
    assert len(set(ports.values())) == 3
    for name, port in ports.items():
        assert httpx.get(f"http://127.0.0.1:{port}/").text == f"hello from {name}\n"
    for i in instances:
        root = up.home / "instances" / i["id"]
        mine = [p for p in procs if p["instance"] == i["id"]]
        counts = Counter(p["type"] for p in mine)
        assert (root / "etc" / "formation").read_text() == (
            f"web={counts['web']},worker={counts['worker']}\n"
        )
        assert (root / "current").resolve() == (root / "releases" / "v2").resolve()
        assert "tick" in (root / "log" / "app.log").read_text() or counts["worker"] == 0

    # kill -9 of a web process: it comes back, restarts=1
    web1 = next(p for p in up.processes("hello") if p["name"] == "web.1")
    os.kill(web1["pid"], signal.SIGKILL)
    back = up.until(
        lambda: next(
            (
                p
                for p in up.processes("hello")
                if p["name"] == "web.1" and p["state"] == "up" and p["pid"] != web1["pid"]
            ),
            None,
        ),
        15,
        "web.1 to restart",
    )
    assert back["restarts"] == 1
    assert httpx.get(f"http://127.0.0.1:{back['port']}/").status_code == 200

    # kill -9 of an agent: its processes keep running and are re-adopted, nothing orphaned
    victim = web1["instance"]
    before = {p["name"]: p["pid"] for p in up.processes("hello") if p["instance"] == victim}
    old_agent = up.agent_pid(victim)
    os.kill(old_agent, signal.SIGKILL)
    up.until(lambda: up.agent_pid(victim) != old_agent, 10, "the agent to be restarted")
    time.sleep(3)
    after = {p["name"]: p["pid"] for p in up.processes("hello") if p["instance"] == victim}
    assert after == before
    assert all(psutil.pid_exists(pid) for pid in before.values())
    assert "re-adopted" in (up.home / "instances" / victim / "log" / "agent.log").read_text()

    # meta stopped for 10 s: processes untouched, agents reconnect
    assert up.proc is not None
    meta = next(
        p for p in psutil.Process(up.proc.pid).children() if "meta" in " ".join(p.cmdline())
    )
    pids = {p["name"]: p["pid"] for p in up.processes("hello")}
    os.killpg(meta.pid, signal.SIGSTOP)
    try:
        time.sleep(10)
        assert all(psutil.pid_exists(pid) for pid in pids.values())
    finally:
        os.killpg(meta.pid, signal.SIGCONT)
    up.until(lambda: all_up(up, "hello", 5), 15, "all 5 up after meta came back")
    assert {p["name"]: p["pid"] for p in up.processes("hello")} == pids
    assert up.json("app:hello", "status")["processes"]["up"] == 5

    # scale to zero leaves nothing running
    assert up.ok("app:hello", "scale", "web=0", "worker=0") == "Scaled hello to web=0 worker=0\n"
    assert up.processes("hello") == []
    up.until(
        lambda: not any(psutil.pid_exists(pid) for pid in pids.values()),
        10,
        "the processes to exit",
    )


def test_a_dead_instance_moves_its_processes(up: Up) -> None:
    up.ok("apps.create", "hello")
    up.ok("app:hello", "deploy", f"dir={HELLO}")
    up.ok("app:hello", "scale", "web=2", "worker=2")
    procs = up.processes("hello")
    dead = procs[0]["instance"]
    # the host dies: its agent and its processes are killed and its disk is gone
    os.killpg(up.agent_pid(dead), signal.SIGKILL)
    for p in procs:
        if p["instance"] == dead:
            os.killpg(p["pid"], signal.SIGKILL)
    contain.remove(up.home / "instances" / dead)  # the host's cgroups went with it
    shutil.rmtree(up.home / "instances" / dead)
    began = time.monotonic()
    moved = up.until(
        lambda: (ps := all_up(up, "hello", 4)) and all(p["instance"] != dead for p in ps) and ps,
        5 + 5 + 2,
        "processes to move",
    )
    took = time.monotonic() - began
    assert took <= 10 + 1, took
    assert {p["instance"] for p in moved} == {
        i["id"] for i in up.json("app:hello", "instances") if i["state"] == "online"
    }
    assert [i["state"] for i in up.json("app:hello", "instances") if i["id"] == dead] == ["lost"]


def test_stopping_gun_up_leaves_nothing_behind(up: Up) -> None:
    up.ok("apps.create", "hello")
    up.ok("app:hello", "deploy", f"dir={HELLO}")
    up.ok("app:hello", "scale", "web=2", "worker=1")
    assert len(up.ours()) >= 2 + 3 + 1  # two agents, three processes, meta
    took = up.stop()
    assert took < 35
    assert up.ours() == []


# what `gun up` decides itself for meta and the drain; every other setting they read, it passes on
DECIDED_BY_UP = {
    "GUN_HOME",
    "GUN_DATABASE_URL",
    "GUN_LISTEN",
    "GUN_RENDEZVOUS_LISTEN",  # 127.0.0.1:--rendezvous-port
    "GUN_RENDEZVOUS_TLS_CERT",  # DIR/tls/rendezvous.pem, of gun up's CA (DIR/tls/ca.pem)
    "GUN_RENDEZVOUS_TLS_KEY",
    "GUN_RENDEZVOUS_TLS_CA",
    "GUN_ADMIN_TOKEN",
    "GUN_DRAIN_TOKEN",
    "GUN_AUTO_INSTANCES",
    "GUN_DRAIN_URL",
    "GUN_DRAIN_LISTEN",
    "GUN_META_URL",
    "GUN_DRAIN_META_TOKEN",
    "GUN_DRAIN_TLS_CERT",  # gun up's drain speaks plain HTTP on 127.0.0.1
    "GUN_DRAIN_TLS_KEY",
    "GUN_TLS_CERT",  # and so does its meta, to agents on the same machine
    "GUN_TLS_KEY",
    "GUN_TLS_CA",
    "GUN_META_CA",
    "GUN_PUBLIC_URL",
    "GUN_INSTANCE_ID",  # the agent's three: its provider writes them to ROOT/etc/agent.json
    "GUN_AGENT_TOKEN",
    "GUN_ROUTER_DOMAIN",  # localhost: every app at APP.localhost
    "GUN_ROUTER_LISTEN",  # 127.0.0.1:--router-port
    "GUN_ROUTER_TLS_LISTEN",  # 127.0.0.1:--router-tls-port
    "GUN_ROUTER_LOCAL_CA",  # DIR/router-ca, made by gun up
}


@pytest.mark.parametrize(
    ("read_by", "passed"),
    [
        (MetaSettings.resolve, gun_up.PASSED),
        (SlugLimits.resolve, gun_up.PASSED),  # meta's builds and the agents
        (AppLogLimits.resolve, gun_up.PASSED),  # the agents, which meta starts with its env
        (AgentConfig.load, gun_up.PASSED),
        (DrainSettings.resolve, gun_up.PASSED + gun_up.DRAIN_PASSED),
        (router_settings, gun_up.ROUTER_PASSED),
    ],
)
def test_gun_up_passes_on_every_setting_it_does_not_decide(
    read_by: object, passed: tuple[str, ...]
) -> None:
    read = set(re.findall(r"GUN_[A-Z0-9_]+", inspect.getsource(read_by)))  # type: ignore[arg-type]
    assert read - DECIDED_BY_UP - set(passed) == set()
