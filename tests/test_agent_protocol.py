"""The agent protocol as an agent speaks it: raw HTTP with per-instance tokens against a real
meta, and an agent that keeps its processes running from its cache while meta is frozen."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from gun.core import Platform
from gun.crypto import Box, load_or_create_key
from gun.store import Store
from tests.fakes import RecordingProvider
from tests.meta import GUN, MetaServer
from tests.up import HELLO, Up, running

SLICE = {
    "version",
    "generation",
    "app",
    "instance",
    "release",
    "slug",
    "env",
    "processes",
    "release_phase",
    "rollout",
    "git",
    "drains",
    "setup",
    "teardown",
    "lease",
    "runs",
    "rendezvous",
    "rendezvous_tls",
    "rendezvous_ca",
}


# what an agent leaves out of a process it reports here, the wire has (every field is required)
UNSAID = {
    "release": None,
    "port": None,
    "pid": None,
    "restarts": 0,
    "exit_code": None,
    "since": None,
}


class Agent:
    """One instance's agent credentials, and the HTTP an agent sends (of `protocol`)."""

    def __init__(self, meta: MetaServer, instance: str, token: str, protocol: int = 1) -> None:
        self.id = instance
        self.url = meta.url
        self.token = token
        self.protocol = protocol

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        kw.setdefault("timeout", 10)
        headers = {"Authorization": f"Bearer {self.token}", "Gun-Protocol": str(self.protocol)}
        return httpx.request(method, self.url + path, headers=headers, **kw)

    def desired(self, after: int = -1, wait: float = 25, instance: str | None = None) -> Any:
        return self.call(
            "GET",
            f"/v1/agent/instances/{instance or self.id}/desired",
            params={"after": after, "wait": wait},
            timeout=wait + 10,
        )

    def register(self, instance: str | None = None) -> httpx.Response:
        path = f"/v1/agent/instances/{instance or self.id}/register"
        return self.call("POST", path, json={"version": self.protocol, "address": "x"})

    def report(self, *processes: dict[str, Any]) -> httpx.Response:
        path = f"/v1/agent/instances/{self.id}/observed"
        body = {
            "version": self.protocol,
            "processes": [{**UNSAID, **p} for p in processes],
            "problem": None,
            "setup": None,
        }
        return self.call("PUT", path, json=body)


def add_instances(meta: MetaServer, app: str, count: int) -> list[Agent]:
    """Instances made through the Platform, on meta's own database, with no agent started."""
    store = Store.open(meta.database_url, Box(load_or_create_key(meta.home, None)))
    try:
        fake = RecordingProvider()
        platform = Platform(store, providers={"fake": fake}, meta_url=meta.url)
        admin = platform.tokens.authenticate(meta.admin_token)
        platform.instances.create(admin, app, "default", count, provider="fake")
    finally:
        store.close()
    return [Agent(meta, m.id, m.token) for m in fake.made]


def user_token(meta: MetaServer, name: str, role: str, app: str) -> str:
    r = meta.gun("tokens.create", name, f"role={role}", f"app={app}")
    assert r.code == 0, r
    return r.out.strip()


def test_an_agent_token_reads_only_its_own_slice(shared_meta: MetaServer) -> None:
    meta = shared_meta
    assert meta.gun("apps.create", "sliced").code == 0
    assert meta.gun("app:sliced", "config.set", "COLOR=blue").code == 0
    one, two = add_instances(meta, "sliced", 2)

    r = one.desired()
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == SLICE
    assert (got["app"], got["instance"], got["env"]) == ("sliced", one.id, {"COLOR": "blue"})
    assert set(got["lease"]) == {"timeout", "grace", "margin"}, "not on meta's machine: fenced"

    r = one.desired(instance=two.id)
    assert r.status_code == 403
    assert r.json() == {
        "id": "forbidden",
        "message": f"token 'agent {one.id}' is not the agent token of instance '{two.id}'",
    }
    for path in (
        "/v1/apps",
        "/v1/apps/sliced",
        "/v1/apps/sliced/config-vars",
        "/v1/apps/sliced/processes",
        "/config_vars/show/sliced",
    ):
        r = one.call("GET", path)
        assert r.status_code == 403, (path, r.text)
        assert "serves only the agent API" in r.json()["message"]
    r = one.call("PATCH", "/v1/apps/sliced/config-vars", json={"COLOR": "red"})
    assert r.status_code == 403
    assert one.register(instance=two.id).status_code == 403

    # the agent's wheels (what an ec2 instance's user-data downloads): its own, and no one else's
    r = one.call("GET", f"/v1/agent/instances/{one.id}/bundle", timeout=60)
    assert r.status_code == 200, r.text
    assert hashlib.sha256(r.content).hexdigest() == r.headers["X-Gun-Bundle-Sha256"]
    r = one.call("GET", f"/v1/agent/instances/{two.id}/bundle")
    assert r.status_code == 403
    assert r.json()["message"] == (
        f"token 'agent {one.id}' is not the agent token of instance '{two.id}'"
    )
    r = httpx.get(f"{meta.url}/v1/agent/instances/{one.id}/bundle")
    assert r.status_code == 401

    # people's tokens, even the admin's, are not an agent's
    for token in (
        user_token(meta, "look", "viewer", "sliced"),
        user_token(meta, "dev", "developer", "sliced"),
        meta.admin_token,
    ):
        assert token
        # (of whatever protocol: it is not an agent's call, and refused as what it is)
        person = Agent(meta, one.id, token, protocol=2)
        bundle = person.call("GET", f"/v1/agent/instances/{one.id}/bundle")
        for r in (person.desired(wait=0), person.register(), person.report(), bundle):
            assert r.status_code == 403, r.text
            assert r.json()["id"] == "forbidden"
            assert f"is not the agent token of instance '{one.id}'" in r.json()["message"]


def test_the_long_poll(shared_meta: MetaServer) -> None:
    meta = shared_meta
    assert meta.gun("apps.create", "polled").code == 0
    (agent,) = add_instances(meta, "polled", 1)
    generation = agent.desired().json()["generation"]

    began = time.monotonic()
    r = agent.desired(after=generation - 1, wait=10)
    assert r.json()["generation"] == generation
    assert time.monotonic() - began < 1

    began = time.monotonic()
    r = agent.desired(after=generation, wait=1.5)
    assert r.json()["generation"] == generation
    assert 1.5 <= time.monotonic() - began < 3

    answered: dict[str, Any] = {}

    def poll() -> None:
        answered["slice"] = agent.desired(after=generation, wait=20).json()
        answered["at"] = time.monotonic()

    waiter = threading.Thread(target=poll)
    waiter.start()
    try:
        time.sleep(1)
        assert "at" not in answered  # still waiting: nothing changed
        with meta.http() as admin:
            scaled = admin.patch(
                "/v1/apps/polled/formation", json={"updates": [{"type": "web", "quantity": 2}]}
            )
        changed = time.monotonic()
        assert scaled.status_code == 200, scaled.text
    finally:
        waiter.join(30)
    assert answered["at"] - changed < 1
    assert answered["slice"]["generation"] > generation


def test_observed_reports_update_ps(shared_meta: MetaServer) -> None:
    meta = shared_meta
    assert meta.gun("apps.create", "observed").code == 0
    agents = add_instances(meta, "observed", 2)
    for a in agents:
        assert a.register().json()["state"] == "online"
    deployed = meta.gun("app:observed", "deploy", f"dir={HELLO}", "wait=false")
    assert (deployed.code, deployed.out) == (0, "v2\n"), deployed
    slices = {a.id: a.desired().json() for a in agents}
    (mine,) = [a for a in agents if slices[a.id]["processes"]]
    (other,) = [a for a in agents if a is not mine]
    assert slices[mine.id]["processes"] == [
        {"name": "web.1", "type": "web", "command": "python3 web.py", "nonce": 0}
    ]
    assert slices[mine.id]["release"] == 2
    assert slices[other.id]["processes"] == []
    # the slug, from where the slice says, with the agent's own token
    slug = slices[mine.id]["slug"]
    assert slug["url"] == f"/v1/agent/instances/{mine.id}/slugs/{slug['sha256']}"
    got = mine.call("GET", slug["url"])
    assert got.status_code == 200
    assert (hashlib.sha256(got.content).hexdigest(), len(got.content)) == (
        slug["sha256"],
        slug["size"],
    )

    def ps() -> list[list[str]]:
        shown = meta.gun("app:observed", "ps")
        assert shown.code == 0, shown
        return [line.split()[:7] for line in shown.out.splitlines()[1:]]

    assert ps()[0][:3] == ["web.1", "starting", mine.id]

    web = {"name": "web.1", "release": 2, "port": 5123, "pid": 4242}
    since = datetime.now(UTC).isoformat()
    assert mine.report({**web, "state": "up", "restarts": 0, "since": since}).status_code == 204
    assert ps() == [["web.1", "up", mine.id, "5123", "v2", "0", since[:10]]]

    assert mine.report({**web, "state": "crashed", "restarts": 3, "exit_code": 1}).status_code == (
        204
    )
    assert ps()[0][:7] == ["web.1", "crashed", mine.id, "5123", "v2", "3", "1"]

    # an agent's word counts only for its own processes
    assert other.report({**web, "state": "up", "restarts": 0}).status_code == 204
    assert ps()[0][:2] == ["web.1", "crashed"]

    r = mine.report({**web, "state": "exploded"})
    assert r.status_code == 400
    assert r.json() == {
        "id": "protocol_error",
        "message": "report.processes[0].state: expected a process state (starting, up, crashed, "
        'stopping, down), got "exploded"',
    }
    assert ps()[0][:2] == ["web.1", "crashed"]

    shown = json.loads(meta.gun("--json", "app:observed", "ps").out)
    assert [(p["name"], p["state"], p["restarts"], p["port"]) for p in shown] == [
        ("web.1", "crashed", 3, 5123)
    ]


def test_an_agent_of_another_protocol_is_refused_and_meta_says_so(shared_meta: MetaServer) -> None:
    meta = shared_meta
    assert meta.gun("apps.create", "versioned").code == 0
    (agent,) = add_instances(meta, "versioned", 1)
    newer = Agent(meta, agent.id, agent.token, protocol=2)
    refusal = {
        "id": "unsupported_protocol",
        "message": "agent protocol 2 is not one meta speaks (meta speaks 1)",
    }

    for r in (newer.register(), newer.desired(wait=0), newer.report()):
        assert (r.status_code, r.json()) == (400, refusal), r.request.url
    # the header says 1, the registration 2: the message's own version counts too
    r = agent.call("POST", f"/v1/agent/instances/{agent.id}/register", json={"version": 2})
    assert (r.status_code, r.json()) == (400, refusal)
    # an agent that names no protocol (one from before there were versions)
    r = httpx.get(
        f"{meta.url}/v1/agent/instances/{agent.id}/desired?wait=0",
        headers={"Authorization": f"Bearer {agent.token}"},
    )
    assert (r.status_code, r.json()) == (
        400,
        {
            "id": "unsupported_protocol",
            "message": "the agent named no protocol (no Gun-Protocol header): meta speaks 1",
        },
    )

    logged = meta.log.read_text()
    assert f"instance {agent.id}: agent protocol 2 is not one meta speaks (meta speaks 1)" in logged
    [row] = json.loads(meta.gun("--json", "app:versioned", "instances").out)
    assert row["state"] == "pending"  # never registered: nothing of it was taken in

    assert agent.register().json()["state"] == "online"  # its own protocol: welcome
    assert agent.desired(wait=0).json()["version"] == 1


# --- an agent restarted while meta is unreachable ------------------------------------------


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    with running(tmp_path, instances=1) as platform:
        yield platform


def gone(pid: int) -> bool:
    """Dead, or a zombie its frozen parent cannot reap."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def ticks(log: Path, name: str) -> int:
    return log.read_text().count(f"app[{name}]: {name} tick")


def test_an_agent_runs_its_cached_slice_while_meta_is_away(up: Up) -> None:
    up.ok("apps.create", "cached")
    up.ok("app:cached", "deploy", f"dir={HELLO}")
    up.ok("app:cached", "scale", "web=1", "worker=2")
    before = {p["name"]: p for p in up.processes("cached")}
    (instance,) = {p["instance"] for p in before.values()}
    root = up.home / "instances" / instance
    applog = root / "log" / "app.log"
    assert up.proc is not None
    meta = next(
        p for p in psutil.Process(up.proc.pid).children() if "meta" in " ".join(p.cmdline())
    )

    os.killpg(meta.pid, signal.SIGSTOP)
    agent: subprocess.Popen[bytes] | None = None
    try:
        # the host's agent dies, and worker.2 with it, while meta cannot answer
        old_agent = up.agent_pid(instance)
        os.kill(old_agent, signal.SIGKILL)
        os.killpg(before["worker.2"]["pid"], signal.SIGKILL)
        up.until(lambda: gone(old_agent), 10, "the agent to die")
        up.until(lambda: gone(before["worker.2"]["pid"]), 10, "worker.2 to die")
        started_before = applog.read_text().count("heroku[worker.2]: Starting process")
        agent_log = root / "log" / "agent.log"
        seen = agent_log.stat().st_size

        # an agent started by hand (meta's watcher, which would respawn it, is frozen too)
        with open(agent_log, "ab") as out:
            agent = subprocess.Popen(
                [*GUN, "server", "agent", "--root", str(root)],
                env=up.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        up.until(
            lambda: "re-adopted web.1, worker.1\n" in agent_log.read_text()[seen:],
            15,
            "the new agent to re-adopt web.1 and worker.1",
        )
        # worker.2 is started again from the cached desired state: meta was never asked
        up.until(
            lambda: applog.read_text().count("heroku[worker.2]: Starting process") > started_before,
            15,
            "worker.2 to be started again",
        )
        counted = {name: ticks(applog, name) for name in ("worker.1", "worker.2")}
        up.until(
            lambda: all(ticks(applog, n) >= counted[n] + 2 for n in counted),
            15,
            "both workers to keep writing to app.log",
        )
        for name in ("web.1", "worker.1"):
            assert psutil.pid_exists(before[name]["pid"]), name
        port = before["web.1"]["port"]
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "hello from web.1\n"
        assert json.loads((root / "state" / "desired.json").read_text())["app"] == "cached"

        # let the platform's own agent take over again once meta is back
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait(10)
    finally:
        os.killpg(meta.pid, signal.SIGCONT)
        if agent is not None and agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait(10)

    def settled() -> dict[str, dict[str, Any]] | None:
        procs = {p["name"]: p for p in up.processes("cached")}
        if len(procs) != 3 or any(p["state"] != "up" for p in procs.values()):
            return None
        # what meta knew before it froze is old news: wait for an agent's report
        return procs if procs["worker.2"]["pid"] != before["worker.2"]["pid"] else None

    after = up.until(settled, 20, "meta to hear that all three are up")
    assert {n: after[n]["pid"] for n in ("web.1", "worker.1")} == {
        n: before[n]["pid"] for n in ("web.1", "worker.1")
    }
    assert up.agent_pid(instance) not in (old_agent, agent.pid)
    status = up.json("app:cached", "status")
    assert status["processes"]["up"] == 3
