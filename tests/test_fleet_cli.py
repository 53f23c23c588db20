"""Instances, layers, processes and deploy refusals as a user meets them: the real `gun` CLI
against one real `gun up` platform (each test its own app, so its own two instances)."""

from __future__ import annotations

import itertools
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.up import HELLO, Up, running

INSTANCE_FIELDS = {
    "id",
    "layer",
    "state",
    "provider",
    "instance_type",
    "availability_zone",
    "address",
    "problem",
    "host",
    "setup_state",
    "setup_output",
    "cloud_id",
    "cloud_state",
    "last_heartbeat",
}
PS_FIELDS = {"name", "type", "state", "instance", "port", "release", "restarts", "since"}


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running(tmp_path_factory.mktemp("up"), instances=2) as platform:
        yield platform


def app_dir(tmp: Path, procfile: str | None) -> Path:
    """examples/hello's code with the given Procfile (None: no Procfile at all)."""
    d = tmp / "app"
    d.mkdir(parents=True)
    for name in ("web.py", "worker.py"):
        shutil.copy(HELLO / name, d / name)
    if procfile is not None:
        (d / "Procfile").write_text(procfile)
    return d


def hello(up: Up, app: str) -> None:
    """apps.create APP, deploy examples/hello: v2 runs web=1."""
    assert up.ok("apps.create", app) == f"Created app {app} (v1)\n"
    assert up.ok(f"app:{app}", "deploy", f"dir={HELLO}") == "v2\n"


def ps_rows(up: Up, app: str) -> dict[str, dict[str, str]]:
    """`gun ps` as a user reads it: one dict per row, keyed by the header words."""
    lines = up.ok(f"app:{app}", "ps").splitlines()
    header = lines[0].split()
    starts = [lines[0].index(h) for h in header] + [10_000]
    rows = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:], strict=False)]
        row = dict(zip(header, cells, strict=True))
        rows[row["NAME"]] = row
    return rows


def all_up(up: Up, app: str, n: int) -> list[dict[str, Any]] | None:
    procs = up.processes(app)
    if len(procs) == n and all(p["state"] == "up" for p in procs):
        return procs
    return None


def applog(up: Up, app: str) -> list[str]:
    """Every app.log line of the app's instances, in time order."""
    lines = []
    for i in up.json(f"app:{app}", "instances"):
        path = Path(i["address"]) / "log" / "app.log"
        if path.exists():
            lines += path.read_text().splitlines()
    return sorted(lines)


def test_instances_create_and_delete(up: Up) -> None:
    hello(up, "fleet")
    out = up.ok(
        "app:fleet",
        "instances.create:app",
        "count=2",
        "instance_type=c1.xlarge",
        "availability_zone=us-east-1a",
    )
    made = [line.split() for line in out.splitlines()]
    assert [(layer, state) for _, layer, state in made] == [("app", "online")] * 2
    new = {iid for iid, _, _ in made}
    assert all(re.fullmatch(r"i-[0-9a-f]{8}", iid) for iid in new)

    instances = up.json("app:fleet", "instances")
    assert all(set(i) == INSTANCE_FIELDS for i in instances)
    assert all(re.fullmatch(r"i-[0-9a-f]{8}", i["id"]) for i in instances)
    assert sorted((i["layer"], i["instance_type"], i["availability_zone"]) for i in instances) == [
        ("app", "c1.xlarge", "us-east-1a"),
        ("app", "c1.xlarge", "us-east-1a"),
        ("default", None, None),
        ("default", None, None),
    ]
    assert {i["id"] for i in instances if i["layer"] == "app"} == new
    assert {(i["state"], i["provider"]) for i in instances} == {("online", "local")}
    assert all(Path(i["address"]).is_dir() for i in instances)

    text = up.ok("app:fleet", "instances").splitlines()
    assert text[0].split() == ["ID", "LAYER", "STATE", "PROVIDER", "TYPE", "ZONE", "ADDRESS"]
    for iid in new:
        address = next(i["address"] for i in instances if i["id"] == iid)
        row = next(line.split() for line in text if line.startswith(iid))
        assert row == [iid, "app", "online", "local", "c1.xlarge", "us-east-1a", address]

    layers = up.ok("app:fleet", "layers").splitlines()
    assert [line.split() for line in layers] == [
        ["LAYER", "TYPES"],
        ["app", "every", "type"],
        ["default", "every", "type"],
    ]

    # four web processes, one on each instance
    up.ok("app:fleet", "scale", "web=4")
    procs = up.json("app:fleet", "ps")
    assert Counter(p["instance"] for p in procs) == {i["id"]: 1 for i in instances}
    gone = sorted(new)[0]
    moved = next(p for p in up.processes("fleet") if p["instance"] == gone)

    assert up.ok("app:fleet", "instances.delete:" + gone) == f"Deleted instance {gone}\n"
    assert gone not in {i["id"] for i in up.json("app:fleet", "instances")}
    assert not (up.home / "instances" / gone).exists()
    after = up.until(lambda: all_up(up, "fleet", 4), 15, "web.1-4 up on three instances")
    assert gone not in {p["instance"] for p in after}
    assert sorted(Counter(p["instance"] for p in after).values()) == [1, 1, 2]
    back = next(p for p in after if p["name"] == moved["name"])
    assert back["pid"] != moved["pid"] and not psutil.pid_exists(moved["pid"])
    assert httpx.get(f"http://127.0.0.1:{back['port']}/").text == f"hello from {back['name']}\n"
    shown = {p["name"]: p["instance"] for p in up.json("app:fleet", "ps")}
    assert shown == {p["name"]: p["instance"] for p in after}


def test_procfile_errors_are_reported_with_file_and_line(up: Up, tmp_path: Path) -> None:
    hello(up, "procfiles")
    releases = up.json("app:procfiles", "releases")

    bad = app_dir(tmp_path / "bad", "web: python3 web.py\nthis line has no colon\n")
    r = up.gun("app:procfiles", "deploy", f"dir={bad}")
    assert r.code == 1, r
    assert "Procfile:2: 'this line has no colon' is not `name: command`" in r.err
    assert "Traceback" not in r.err
    assert up.json("app:procfiles", "releases") == releases

    missing = app_dir(tmp_path / "missing", None)
    r = up.gun("app:procfiles", "deploy", f"dir={missing}")
    assert r.code == 1, r
    assert "has no Procfile" in r.err and "web: " in r.err  # says what to write
    assert "Traceback" not in r.err
    assert up.json("app:procfiles", "releases") == releases
    assert [p["release"] for p in up.json("app:procfiles", "ps")] == [2]


def test_the_formation_and_the_procfile_must_agree(up: Up, tmp_path: Path) -> None:
    hello(up, "agree")
    r = up.gun("app:agree", "scale", "clock=1")
    assert r.code == 1, r
    assert r.err == "gun: process type 'clock' is not in the Procfile of v2 (it has: web, worker)\n"

    up.ok("app:agree", "scale", "web=1", "worker=1")
    before = {p["name"]: p["pid"] for p in up.processes("agree")}
    releases = up.json("app:agree", "releases")
    web_only = app_dir(tmp_path / "web-only", "web: python3 web.py\n")
    r = up.gun("app:agree", "deploy", f"dir={web_only}")
    assert r.code == 1, r
    assert "the formation runs worker but this build's Procfile has no such process type" in r.err
    assert "`gun scale worker=0` first" in r.err
    # the old release keeps serving
    assert up.json("app:agree", "releases") == releases
    assert {p["name"]: p["pid"] for p in up.processes("agree")} == before
    web = next(p for p in up.processes("agree") if p["name"] == "web.1")
    assert (web["state"], web["release"]) == ("up", 2)
    assert httpx.get(f"http://127.0.0.1:{web['port']}/").text == "hello from web.1\n"

    # doing what the message says works
    up.ok("app:agree", "scale", "worker=0")
    assert up.ok("app:agree", "deploy", f"dir={web_only}") == "v3\n"
    assert [(p["name"], p["state"], p["release"]) for p in up.json("app:agree", "ps")] == [
        ("web.1", "up", 3)
    ]


def test_scaling_a_type_that_no_layer_runs(up: Up) -> None:
    hello(up, "layered")
    assert up.ok("app:layered", "layers.set:default", "types=web") == "Layer default runs web\n"
    r = up.gun("app:layered", "scale", "worker=1")
    assert r.code == 1, r
    assert r.err == (
        "gun: no layer runs process type 'worker' (layers: default): "
        "add it with `gun layers.set:LAYER types=...`\n"
    )
    assert up.json("app:layered", "formation") == [
        {"type": "web", "quantity": 1, "layer": "default"}
    ]


def test_a_command_that_does_not_exist(up: Up, tmp_path: Path) -> None:
    d = app_dir(
        tmp_path,
        "web: python3 web.py\n"
        "broken: no-such-command-xyz\n"
        "flaky: sleep 0.5; echo cannot reach the database; exit 3\n",
    )
    assert up.ok("apps.create", "broken") == "Created app broken (v1)\n"
    assert up.ok("app:broken", "deploy", f"dir={d}") == "v2\n"
    began = time.monotonic()
    out = up.ok("app:broken", "scale", "broken=1", "wait=false")
    assert out.startswith("Scaled broken to ") and sorted(out.split()[3:]) == ["broken=1", "web=1"]
    assert time.monotonic() - began < 3

    # while it crashes and restarts, ps does not claim it is up for longer than a moment
    states = []
    while time.monotonic() - began < 5:
        p = next((p for p in up.processes("broken") if p["name"] == "broken.1"), None)
        states.append((time.monotonic(), p["state"] if p else None))
        time.sleep(0.05)
    assert "crashed" in {s for _, s in states}, states
    longest, up_since = 0.0, None
    for at, state in states:
        if state != "up":
            up_since = None
            continue
        up_since = at if up_since is None else up_since
        longest = max(longest, at - up_since)
    assert longest < 0.5, states

    def crashing() -> dict[str, str] | None:
        row = ps_rows(up, "broken").get("broken.1")
        if row and row["STATE"] in ("crashed", "starting") and int(row["RESTARTS"]) >= 1:
            return row
        return None

    row = up.until(crashing, 15, "ps to show broken.1 crashed")
    assert row["EXIT"] == "127" and row["RELEASE"] == "v2"
    assert "no-such-command-xyz: command not found" in "\n".join(applog(up, "broken"))

    procs = up.json("app:broken", "ps")
    assert all(set(p) == PS_FIELDS for p in procs)
    assert [(p["name"], p["type"]) for p in procs] == [("broken.1", "broken"), ("web.1", "web")]
    assert procs[0]["restarts"] >= 1

    began = time.monotonic()
    r = up.gun("app:broken", "scale", "broken=1", "timeout=5")
    took = time.monotonic() - began
    assert r.code == 1, r
    assert 5 <= took < 15, took
    assert r.err.startswith("gun: timed out after 5s waiting for broken.1 ("), r.err
    assert re.search(r"broken\.1 \((crashed|starting|up for under 1s) on i-[0-9a-f]{8}", r.err)
    assert "web.1" not in r.err  # what is stuck, and only that

    # a process that runs half a second before it exits is not up either
    r = up.gun("app:broken", "scale", "broken=0", "flaky=1", "timeout=5")
    assert r.code == 1, r
    assert r.err.startswith("gun: timed out after 5s waiting for flaky.1 ("), r.err
    assert re.search(r"flaky\.1 \((crashed|starting|up for under 1s) on i-[0-9a-f]{8}", r.err)
    assert "broken.1" not in r.err and "web.1" not in r.err

    # a crashing process does not hold up a rolling restart of the others
    web = next(p for p in up.processes("broken") if p["name"] == "web.1")
    r = up.gun("app:broken", "ps.restart:web", "timeout=10")
    assert (r.code, r.out) == (0, "Restarted web.1\n"), r
    assert next(p for p in up.processes("broken") if p["name"] == "web.1")["pid"] != web["pid"]


def test_rolling_restart_and_stop(up: Up) -> None:
    hello(up, "restarts")
    up.ok("app:restarts", "scale", "web=3", "worker=1")
    before = {p["name"]: p["pid"] for p in up.processes("restarts")}
    mark = len(applog(up, "restarts"))

    r = up.gun("app:restarts", "ps.restart:web")
    assert (r.code, r.out) == (0, "Restarted web.1, web.2, web.3\n"), r
    assert r.err == "restarted web.1\nrestarted web.2\nrestarted web.3\n"
    after = {p["name"]: p["pid"] for p in up.processes("restarts")}
    assert all(after[w] != before[w] for w in ("web.1", "web.2", "web.3"))
    assert after["worker.1"] == before["worker.1"]
    assert {p["state"] for p in up.json("app:restarts", "ps")} == {"up"}

    # preboot, one at a time: the new web.N is up before the old web.N is stopped, and
    # before web.N+1 is replaced (the instance running two web processes starts them in turn)
    def drained() -> list[str]:  # the replaced copies stop after the drain, after the command
        lines = applog(up, "restarts")[mark:]
        return lines if sum("Stopping all processes" in ln for ln in lines) == 3 else []

    lines = up.until(drained, 15, "the replaced web processes to stop")

    def when(name: str, text: str) -> str:
        return next(ln.split()[0] for ln in lines if f"heroku[{name}]: {text}" in ln)

    for a in ("web.1", "web.2", "web.3"):
        assert when(a, "State changed from starting to up") < when(a, "Stopping all processes")
    by_instance: dict[str, list[str]] = {}
    for p in sorted(up.processes("restarts"), key=lambda p: p["name"]):
        if p["type"] == "web":
            by_instance.setdefault(p["instance"], []).append(p["name"])
    pairs = [(a, b) for names in by_instance.values() for a, b in itertools.pairwise(names)]
    assert pairs  # 3 web processes on at most 2 instances: some share one
    for first, second in pairs:
        assert when(first, "State changed from starting to up") < when(second, "Starting process")

    r = up.gun("app:restarts", "ps.restart:web.1")
    assert (r.code, r.out) == (0, "Restarted web.1\n"), r
    again = {p["name"]: p["pid"] for p in up.processes("restarts")}
    assert again["web.1"] != after["web.1"]
    assert {n: pid for n, pid in again.items() if n != "web.1"} == {
        n: pid for n, pid in after.items() if n != "web.1"
    }

    r = up.gun("app:restarts", "ps.stop:worker.1")
    assert (r.code, r.out) == (0, "Stopped worker.1; the formation starts it again\n"), r
    back = up.until(
        lambda: next(
            (
                p
                for p in up.processes("restarts")
                if p["name"] == "worker.1" and p["state"] == "up" and p["pid"] != again["worker.1"]
            ),
            None,
        ),
        15,
        "worker.1 to come back",
    )
    assert not psutil.pid_exists(again["worker.1"])
    assert back["restarts"] == 0  # stopped on purpose, not crashed

    # ps.stop stops one process; a type would stop every web process at once
    pids = {p["name"]: p["pid"] for p in up.processes("restarts")}
    r = up.gun("app:restarts", "ps.stop:web")
    assert r.code == 2, r
    assert r.err == (
        "gun: ps.stop takes one process name such as web.1, not 'web' "
        "(`gun ps.restart:TYPE` restarts a type one process at a time)\n"
    )
    time.sleep(0.5)
    assert {p["name"]: p["pid"] for p in up.processes("restarts")} == pids


def test_scale_without_waiting(up: Up, tmp_path: Path) -> None:
    # a web process that takes two seconds to bind $PORT
    d = app_dir(tmp_path, "web: sleep 2; exec python3 web.py\n")
    assert up.ok("apps.create", "nowait") == "Created app nowait (v1)\n"
    assert up.ok("app:nowait", "deploy", f"dir={d}") == "v2\n"

    began = time.monotonic()
    assert up.ok("app:nowait", "scale", "web=2", "wait=false") == "Scaled nowait to web=2\n"
    took = time.monotonic() - began
    assert took < 1.5, took
    web2 = next(p for p in up.json("app:nowait", "ps") if p["name"] == "web.2")
    assert web2["state"] == "starting"
    up.until(lambda: all_up(up, "nowait", 2), 15, "web.1 and web.2 up")
    assert time.monotonic() - began >= 2


def test_apps_destroy_stops_its_instances_and_processes(up: Up) -> None:
    hello(up, "doomed")
    procs = up.processes("doomed")
    pids = [p["pid"] for p in procs]
    agents = [up.agent_pid(i["id"]) for i in up.json("app:doomed", "instances")]
    roots = [up.home / "instances" / i["id"] for i in up.json("app:doomed", "instances")]
    assert pids and all(psutil.pid_exists(pid) for pid in pids + agents)

    r = up.gun("apps.destroy", "doomed", "confirm=doomed")
    assert (r.code, r.out) == (0, "Destroyed app doomed\n"), r.err

    assert not any(psutil.pid_exists(pid) for pid in pids + agents)
    assert not any(root.exists() for root in roots)
    time.sleep(1.5)  # a watcher pass later, nothing was respawned
    assert not any(root.exists() for root in roots)
    assert "doomed" not in up.ok("apps")
