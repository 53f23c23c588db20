"""What may happen while a deploy is under way, as a user sees it: `gun up`, `gun deploy` of a
small app, and other `gun` commands (and 20 API clients) at the same time.

The rule: while a deploy's release runs its release phase, nothing may make a release on top
of it (config.set, config.unset, rollback are refused, naming it); `gun deploy` exits 0 only
when what runs is its code. Also here: build output shows while a step works, and scale's
warnings and refusals.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.meta import GUN
from tests.up import Up, running

WEB = """\
import os, pathlib, time
from http.server import BaseHTTPRequestHandler, HTTPServer

here = pathlib.Path(__file__).parent
boot = here / "boot-sleep"
if boot.exists():
    time.sleep(float(boot.read_text()))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = (here / "message.txt").read_bytes()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
RELEASE = """\
import os, pathlib, sys, time
here = pathlib.Path(__file__).parent
print("release phase: started", flush=True)
time.sleep(float((here / "release-sleep").read_text()))
if os.environ.get("FAIL_RELEASE"):
    print("release phase: failing", flush=True)
    sys.exit(1)
print("release phase: done", flush=True)
"""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running(tmp_path_factory.mktemp("rules"), instances=1, GUN_PREBOOT_DRAIN="0") as p:
        yield p


def source(
    where: Path, message: str, release_sleep: float | None = None, boot_sleep: float = 0
) -> Path:
    """The app: a web process serving message.txt, and (with `release_sleep`) a release
    phase that takes that long."""
    where.mkdir(exist_ok=True)
    procfile = "web: python3 web.py\n"
    if release_sleep is not None:
        procfile += "release: python3 release.py\n"
        (where / "release-sleep").write_text(f"{release_sleep}\n")
    (where / "Procfile").write_text(procfile)
    (where / "web.py").write_text(WEB)
    (where / "release.py").write_text(RELEASE)
    (where / "message.txt").write_text(message)
    boot = where / "boot-sleep"
    if boot_sleep:
        boot.write_text(f"{boot_sleep}\n")
    else:
        boot.unlink(missing_ok=True)
    return where


def api(up: Up, method: str, path: str, **kw: Any) -> httpx.Response:
    token = (up.home / "admin.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{up.url}{path}", headers=headers, timeout=30, **kw)


def serves(up: Up, app: str) -> set[str]:
    """What the app's web processes answer."""
    ports = [p["port"] for p in up.processes(app) if p["type"] == "web" and p["state"] == "up"]
    return {httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text for port in ports}


DEPLOYS: dict[str, int] = {}  # app -> its newest build before the deploy `deploying` started


def deploying(up: Up, app: str, src: Path) -> subprocess.Popen[str]:
    builds = api(up, "GET", f"/v1/apps/{app}/builds").json()
    DEPLOYS[app] = builds[0]["id"] if builds else 0
    return subprocess.Popen(
        [*GUN, f"app:{app}", "deploy", f"dir={src}"],
        env=up.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def build_reaches(up: Up, app: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    """The build `deploying` started, once it has one of `statuses`."""
    began = DEPLOYS[app]

    def newest() -> dict[str, Any] | None:
        found = api(up, "GET", f"/v1/apps/{app}/builds").json()
        if not found or found[0]["id"] <= began:
            return None  # the deploy's build is not there yet
        return found[0] if found[0]["status"] in statuses else None

    build: dict[str, Any] = up.until(newest, 90, f"a build of {app} in {statuses}")
    return build


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def releases(up: Up, app: str) -> list[tuple[int, str, bool]]:
    return [(r["version"], r["status"], r["current"]) for r in up.json(f"app:{app}", "releases")]


def refusal(app: str, version: int, doing: str) -> str:
    return (
        f"gun: v{version} of app {app} is being released (its release phase is running): "
        f"{doing} when it is done; `gun app:{app} releases` shows it\n"
    )


def test_config_and_rollback_during_the_release_phase_are_refused(up: Up, tmp_path: Path) -> None:
    up.ok("apps.create", "racy")
    src = source(tmp_path / "racy", "one")
    assert up.ok("app:racy", "deploy", f"dir={src}") == "v2\n"
    assert serves(up, "racy") == {"one"}

    source(src, "two", release_sleep=6)
    deploy = deploying(up, "racy", src)
    try:
        build_reaches(up, "racy", ("releasing",))
        r = up.gun("app:racy", "config.set", "A=1")
        assert (r.code, r.out, r.err) == (1, "", refusal("racy", 3, "change config"))
        r = up.gun("app:racy", "config.unset", "A")
        assert (r.code, r.err) == (1, refusal("racy", 3, "change config"))
        r = up.gun("app:racy", "rollback")
        assert (r.code, r.err) == (1, refusal("racy", 3, "roll back"))
        r = up.gun("app:racy", "rollback:v2")
        assert (r.code, r.err) == (1, refusal("racy", 3, "roll back"))
    finally:
        code, out, err = finish(deploy)
    assert (code, out) == (0, "v3\n"), err
    assert "release phase: done" in err
    assert "v3 is up: 1 processes on 1 instances" in err
    assert serves(up, "racy") == {"two"}
    assert releases(up, "racy") == [
        (3, "succeeded", True),
        (2, "succeeded", False),
        (1, "succeeded", False),
    ]

    # the phase is over: config changes and rollbacks go ahead again, on top of v3
    assert up.ok("app:racy", "config.set", "A=1") == "v4\n"
    assert (
        up.json("app:racy", "releases.info:v4")["slug"]
        == up.json("app:racy", "releases.info:v3")["slug"]
    )
    up.until(lambda: serves(up, "racy") == {"two"}, 30, "v4 to serve v3's code")


def test_twenty_clients_setting_config_during_a_deploy_lose_no_release(
    up: Up, tmp_path: Path
) -> None:
    up.ok("apps.create", "busy")
    src = source(tmp_path / "busy", "old")
    up.ok("app:busy", "deploy", f"dir={src}")
    source(src, "new", release_sleep=4)
    answers: list[tuple[int, int | None, str]] = []  # (client, version or None, message)
    done = threading.Event()
    token = (up.home / "admin.token").read_text().strip()

    def client(n: int) -> None:
        with httpx.Client(
            base_url=up.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as c:
            while not done.is_set():
                r = c.patch("/v1/apps/busy/config-vars", json={f"K{n}": str(time.monotonic())})
                if r.status_code == 200:
                    answers.append((n, r.json()["release"]["version"], ""))
                else:
                    assert r.status_code == 409, r.text
                    answers.append((n, None, r.json()["message"]))
                time.sleep(0.05)

    deploy = deploying(up, "busy", src)
    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    try:
        build = build_reaches(up, "busy", ("releasing",))
        for t in threads:
            t.start()
        build_reaches(up, "busy", ("succeeded", "failed"))
        time.sleep(1)  # and a little after the release phase, while the deploy rolls out
    finally:
        done.set()
        for t in threads:
            t.join(30)
        code, out, err = finish(deploy)
    assert (code, out) == (0, f"v{build['release']}\n"), err
    mine = build["release"]
    refused = [m for _, v, m in answers if v is None]
    applied = sorted(v for _, v, _ in answers if v is not None)
    assert refused, "no client was refused: none ran during the release phase"
    assert set(refused) == {refusal("busy", mine, "change config")[5:-1]}
    assert applied, "no client's change went ahead after the release phase"
    # every change that went ahead is a release of its own, after the deploy's, none lost
    history = up.json("app:busy", "releases", "num=1000")
    after = sorted(r["version"] for r in history if r["version"] > mine)
    assert after == applied == list(range(mine + 1, mine + 1 + len(applied)))
    assert all(r["status"] == "succeeded" for r in history)
    current = up.json("app:busy", f"releases.info:v{applied[-1]}")
    assert current["current"] is True
    assert current["slug"] == up.json("app:busy", f"releases.info:v{mine}")["slug"]
    last = {}
    for n, v, _ in answers:
        if v is not None:
            last[f"K{n}"] = v
    assert set(last) <= set(up.json("app:busy", "config"))
    up.until(lambda: serves(up, "busy") == {"new"}, 30, "the deploy's code to serve")


def test_a_failed_release_phase_unblocks_config_changes(up: Up, tmp_path: Path) -> None:
    up.ok("apps.create", "failing")
    src = source(tmp_path / "failing", "first")
    up.ok("app:failing", "deploy", f"dir={src}")
    up.ok("app:failing", "config.set", "FAIL_RELEASE=1")  # v3
    source(src, "never", release_sleep=3)
    deploy = deploying(up, "failing", src)
    try:
        build_reaches(up, "failing", ("releasing",))
        r = up.gun("app:failing", "config.set", "B=2")
        assert (r.code, r.err) == (1, refusal("failing", 4, "change config"))
    finally:
        code, out, err = finish(deploy)
    assert (code, out) == (1, "")
    assert err.endswith(
        "gun: deploy of failing failed: v4 failed: the release command exited with status 1\n"
    )
    assert up.ok("app:failing", "config.unset", "FAIL_RELEASE") == "v5\n"
    assert releases(up, "failing")[:2] == [(5, "succeeded", True), (4, "failed", False)]
    up.until(lambda: serves(up, "failing") == {"first"}, 30, "v5 to serve")


def test_deploy_fails_when_a_rollback_replaces_its_release_during_the_rollout(
    up: Up, tmp_path: Path
) -> None:
    up.ok("apps.create", "overtaken")
    src = source(tmp_path / "overtaken", "old")
    up.ok("app:overtaken", "deploy", f"dir={src}")  # v2
    source(src, "new", boot_sleep=4)  # the new web process takes 4 s to come up
    deploy = deploying(up, "overtaken", src)
    try:
        build_reaches(up, "overtaken", ("succeeded",))
        assert up.ok("app:overtaken", "rollback:v2") == "v4\n"
    finally:
        code, out, err = finish(deploy)
    assert (code, out) == (1, "")
    assert err.endswith(
        "gun: deploy of overtaken failed: v3 is not what runs: v4 (Rollback to v2) is the "
        "current release\n"
    )
    up.until(lambda: serves(up, "overtaken") == {"old"}, 30, "the rollback to serve")


def test_deploy_succeeds_when_config_changes_after_its_release_phase(
    up: Up, tmp_path: Path
) -> None:
    up.ok("apps.create", "later")
    src = source(tmp_path / "later", "old")
    up.ok("app:later", "deploy", f"dir={src}")  # v2
    source(src, "new", release_sleep=1, boot_sleep=4)
    deploy = deploying(up, "later", src)
    try:
        build_reaches(up, "later", ("succeeded",))
        assert up.ok("app:later", "config.set", "A=1") == "v4\n"
    finally:
        code, out, err = finish(deploy)
    assert (code, out) == (0, "v3\n"), err
    assert "v4 runs the code of v3: Set A config vars\n" in err
    assert "v3 is up as v4: 1 processes on 1 instances" in err
    assert serves(up, "later") == {"new"}


# build output --------------------------------------------------------------------------------

DETECT = "#!/bin/sh\necho Slow\n"


def test_build_output_shows_while_a_step_works(up: Up, tmp_path: Path) -> None:
    """A step prints "step one" (no newline) and works for 5 s: the deploying `gun` shows it
    at once, not when the line ends."""
    stamps = tmp_path / "stamps"  # the build runs as the build's own user: it may write here
    stamps.mkdir()
    stamps.chmod(0o1777)
    stamp = stamps / "printed-at"
    bp = tmp_path / "bp"
    (bp / "bin").mkdir(parents=True)
    compile_ = (
        f"#!/bin/sh\npython3 -c 'import time; print(time.time())' > {stamp}\n"
        "printf 'step one'\nsleep 5\necho ' done'\necho 'step two'\n"
    )
    for name, text in (("detect", DETECT), ("compile", compile_)):
        (bp / "bin" / name).write_text(text)
        (bp / "bin" / name).chmod(0o755)
    up.ok("apps.create", "chatty")
    up.ok("app:chatty", "config.set", f"BUILDPACK={bp}")
    src = source(tmp_path / "chatty", "hi")
    deploy = deploying(up, "chatty", src)
    seen = ""
    seen_at = None
    try:
        assert deploy.stderr is not None
        os.set_blocking(deploy.stderr.fileno(), False)
        with selectors.DefaultSelector() as sel:
            sel.register(deploy.stderr, selectors.EVENT_READ)
            deadline = time.monotonic() + 90
            while seen_at is None and time.monotonic() < deadline:
                if sel.select(timeout=0.05):
                    chunk = deploy.stderr.read()
                    if not chunk:
                        break
                    seen += chunk
                    if "step one" in seen:
                        seen_at = time.time()
        assert seen_at is not None, f"the deploy never showed 'step one': {seen!r}"
        assert deploy.poll() is None  # still building: the step sleeps on
        assert seen_at - float(stamp.read_text()) < 1.5
        assert " done" not in seen
        os.set_blocking(deploy.stderr.fileno(), True)
    finally:
        code, out, rest = finish(deploy)
    assert (code, out) == (0, "v3\n"), seen + rest
    assert "-----> Slow app detected\nstep one done\nstep two\n" in seen + rest


# scale ---------------------------------------------------------------------------------------


def test_scale_warns_of_a_type_nothing_can_run_and_refuses_mistakes(up: Up, tmp_path: Path) -> None:
    up.ok("apps.create", "scaly")
    src = source(tmp_path / "scaly", "hi")
    (src / "Procfile").write_text("web: python3 web.py\nsl: sleep 1000\n")
    up.ok("app:scaly", "deploy", f"dir={src}")
    up.ok("app:scaly", "layers.set:default", "types=web")
    up.ok("app:scaly", "layers.set:batch", "types=sl")

    r = up.gun("app:scaly", "scale", "sl=3")
    assert (r.code, r.out, r.err) == (
        0,
        "Scaled scaly to web=1 sl=3\n",
        "gun: warning: no instance runs sl: layer batch has no instances, so sl=3 waits until "
        "`gun instances.create:batch` adds one\n",
    )
    r = up.gun("--json", "app:scaly", "scale", "sl=4", "web=2")
    assert r.code == 0, r.err
    assert r.err.startswith("gun: warning: no instance runs sl: layer batch has no instances")
    assert '"layer": "batch"' in r.out
    assert serves(up, "scaly") == {"hi"}  # web=2 ran; sl waits for an instance

    r = up.gun("app:scaly", "scale", "web-5")
    assert (r.code, r.err) == (1, "gun: web-5 would take web below 0: it has 2\n")
    r = up.gun("app:scaly", "scale", "web=97")
    assert (r.code, r.err) == (
        1,
        "gun: sl=4 web=97 would run 101 processes of app 'scaly', over the limit of 100 per "
        "app (GUN_MAX_PROCESSES on meta)\n",
    )
    assert up.json("app:scaly", "status")["formation"] == {"web": 2, "sl": 4}
