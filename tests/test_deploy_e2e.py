"""Deploys as a user runs them: `gun up`, then `gun deploy` of examples/python-web from git.

One platform (2 local instances per app) serves the whole module; every test makes its own
app. The example's first build downloads bottle from the package index into the build cache.
"""

from __future__ import annotations

import io
import itertools
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.meta import GUN
from tests.up import Up, running

EXAMPLE = Path(__file__).parent.parent / "examples" / "python-web"
SOURCE_CAP = 2_000_000
RELEASE_TIMEOUT = 6


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running(
        tmp_path_factory.mktemp("deploys"),
        instances=2,
        GUN_SLUG_MAX_BYTES=str(SOURCE_CAP),
        GUN_RELEASE_TIMEOUT=str(RELEASE_TIMEOUT),
        GUN_PREBOOT_DRAIN="1",
    ) as platform:
        yield platform


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Dev", "-c", "user.email=dev@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The example app in a git repository of its own, one commit."""
    work = tmp_path / "python-web"
    shutil.copytree(EXAMPLE, work)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "First version")
    return work


def commit(repo: Path, path: str, text: str, message: str) -> str:
    (repo / path).write_text(text)
    git(repo, "commit", "-q", "-am", message)
    return git(repo, "rev-parse", "HEAD")


def webs(up: Up, app: str) -> dict[str, int]:
    return {p["name"]: p["port"] for p in up.processes(app) if p["type"] == "web"}


def answers(port: int) -> dict[str, Any]:
    r = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


class Load:
    """Keeps requesting every web process that meta says is up, re-reading the routes every
    0.1 s as a router would; counts answers and failures."""

    def __init__(self, up: Up, app: str) -> None:
        self.up, self.app = up, app
        self.ok = 0
        self.failed: list[str] = []
        self.messages: set[str] = set()
        self._routes: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._route), threading.Thread(target=self._hit)]

    def __enter__(self) -> Load:
        self._routes = self._read()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _read(self) -> list[tuple[str, int]]:
        procs = self.up.processes(self.app)
        return [(p["name"], p["port"]) for p in procs if p["type"] == "web" and p["state"] == "up"]

    def _route(self) -> None:
        while not self._stop.wait(0.1):
            self._routes = self._read()

    def _hit(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                for name, port in self._routes:
                    try:
                        r = client.get(f"http://127.0.0.1:{port}/")
                        r.raise_for_status()
                        self.messages.add(r.json()["message"])
                        self.ok += 1
                    except (httpx.HTTPError, ValueError) as e:
                        self.failed.append(f"{name} on port {port}: {type(e).__name__} {e}")
                time.sleep(0.01)


def test_deploy_answers_from_every_web_process_and_redeploys_without_a_failed_request(
    up: Up, repo: Path
) -> None:
    up.ok("apps.create", "shop")
    first = git(repo, "rev-parse", "HEAD")
    r = up.gun("app:shop", "deploy", f"dir={repo}")
    assert r.code == 0, r.err
    assert r.out == "v2\n"
    for line in (
        f"Packed git archive {first[:7]}",
        "-----> Python app detected",
        "Procfile declares types -> web, worker, release",
        "-----> Running the release command of v2",
        "release phase: migrating done",
        "-----> Release command of v2 done",
        "v2 is up: 1 processes on 1 instances",
    ):
        assert line in r.err
    assert up.ok("app:shop", "scale", "web=2", "worker=1") == "Scaled shop to web=2 worker=1\n"
    procs = up.json("app:shop", "ps")
    assert {p["instance"] for p in procs if p["type"] == "web"} == {
        i["id"] for i in up.json("app:shop", "instances")
    }
    for name, port in webs(up, "shop").items():
        assert answers(port) | {"release_ran": None} == {
            "app": "python-web",
            "dyno": name,
            "message": "hello from gun",
            "release_ran": None,
        }
    releases = up.json("app:shop", "releases")
    assert (releases[0]["version"], releases[0]["description"], releases[0]["commit"]) == (
        2,
        f"Deploy {first[:7]}",
        first,
    )

    second = commit(repo, "message.txt", "hello again\n", "Say hello again")
    with Load(up, "shop") as load:
        r = up.gun("app:shop", "deploy", f"dir={repo}")
        time.sleep(1.5)  # the replaced processes drain (1 s) and stop while the load goes on
    assert r.code == 0, r.err
    assert r.out == "v3\n"
    assert load.failed == []
    assert load.ok > 50
    assert load.messages == {"hello from gun", "hello again"}
    for name, port in webs(up, "shop").items():
        assert answers(port)["message"] == "hello again", name
    assert [p["release"] for p in up.json("app:shop", "ps")] == [3, 3, 3]
    assert up.json("app:shop", "releases.info:v3")["commit"] == second

    # git.compare: what the next deploy would bring
    third = commit(repo, "message.txt", "hello a third time\n", "Third hello")
    compare = up.gun("app:shop", "git.compare", f"dir={repo}")
    assert compare.code == 0, compare.err
    assert compare.out.startswith(f"{third[:7]}  Third hello  (Dev)\n")


def test_rollback_runs_the_previous_slug_from_the_agents_cache(up: Up, repo: Path) -> None:
    up.ok("apps.create", "roll")
    up.ok("app:roll", "deploy", f"dir={repo}")
    commit(repo, "message.txt", "second\n", "Second")
    up.ok("app:roll", "deploy", f"dir={repo}")
    (port,) = webs(up, "roll").values()
    assert answers(port)["message"] == "second"

    assert up.ok("app:roll", "rollback") == "v4\n"
    up.until(
        lambda: [(p["release"], p["state"]) for p in up.processes("roll")] == [(4, "up")],
        30,
        "the rollback to run",
    )
    (port,) = webs(up, "roll").values()
    assert answers(port)["message"] == "hello from gun"
    instance = up.processes("roll")[0]["instance"]
    agent_log = (up.home / "instances" / instance / "log" / "agent.log").read_text()
    assert "release v4: slug" in agent_log and "is in the cache" in agent_log


def test_a_failing_release_command_leaves_the_old_release_serving(up: Up, repo: Path) -> None:
    up.ok("apps.create", "failrel")
    up.ok("app:failrel", "deploy", f"dir={repo}")
    up.ok("app:failrel", "config.set", "FAIL_RELEASE=1")  # v3, same build
    commit(repo, "message.txt", "never served\n", "Broken")
    r = up.gun("app:failrel", "deploy", f"dir={repo}")
    assert r.code == 1
    assert "release phase: failing as FAIL_RELEASE asks" in r.err
    assert r.err.endswith(
        "gun: deploy of failrel failed: v4 failed: the release command exited with status 1\n"
    )
    assert r.out == ""
    assert [(x["version"], x["status"], x["current"]) for x in up.json("app:failrel", "releases")][
        :2
    ] == [(4, "failed", False), (3, "succeeded", True)]
    (port,) = webs(up, "failrel").values()
    assert answers(port)["message"] == "hello from gun"
    assert [p["release"] for p in up.processes("failrel")] == [3]


def test_a_release_command_that_times_out_fails_the_release(up: Up, repo: Path) -> None:
    up.ok("apps.create", "slowrel")
    up.ok("app:slowrel", "deploy", f"dir={repo}")
    up.ok("app:slowrel", "config.set", f"RELEASE_SLEEP={RELEASE_TIMEOUT * 10}")
    began = time.monotonic()
    r = up.gun("app:slowrel", "deploy", f"dir={repo}")
    assert r.code == 1
    assert time.monotonic() - began < RELEASE_TIMEOUT + 20
    assert r.err.endswith(
        f"v4 failed: the release command timed out after {RELEASE_TIMEOUT} seconds\n"
    )
    assert [p["release"] for p in up.processes("slowrel")] == [3]


def test_a_second_deploy_while_one_runs_is_refused(up: Up, repo: Path) -> None:
    up.ok("apps.create", "twice")
    up.ok("app:twice", "config.set", "RELEASE_SLEEP=3")
    first = subprocess.Popen(
        [*GUN, "app:twice", "deploy", f"dir={repo}"],
        env=up.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        (build,) = up.until(lambda: api(up, "GET", "/v1/apps/twice/builds").json(), 60, "build")
        wait_for_output(up, "twice", build["id"], "release phase: sleeping")
        r = up.gun("app:twice", "deploy", f"dir={repo}")
        assert r.code == 1
        assert r.err.endswith(
            f"gun: a deploy of twice is already under way (build {build['id']} by admin, "
            "releasing): wait for it to finish, then deploy again\n"
        )
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        assert out == "v3\n"
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def wait_for_output(up: Up, app: str, build_id: int, text: str) -> None:
    """Follow the build's output stream (as `deploy` does) until `text` appears in it."""
    token = (up.home / "admin.token").read_text().strip()
    seen = ""
    url = f"{up.url}/v1/apps/{app}/builds/{build_id}/output"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(60)) as r:
        for chunk in r.iter_text():
            seen += chunk
            if text in seen:
                return
    raise AssertionError(f"the build ended without printing {text!r}: {seen}")


def api(up: Up, method: str, path: str, **kw: Any) -> httpx.Response:
    token = (up.home / "admin.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    return httpx.request(method, f"{up.url}{path}", headers=headers, timeout=30, **kw)


def upload(up: Up, app: str, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/gzip"}
    return api(up, "POST", f"/v1/apps/{app}/builds", content=body, headers=headers)


def tarball(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return raw.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


PROCFILE = (member("app/Procfile"), b"web: python -m http.server $PORT\n")


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([PROCFILE, (member("app/../../escaped"), b"x")], "'app/../../escaped'"),
        ([PROCFILE, (member("/etc/evil"), b"x")], "'/etc/evil'"),
        ([PROCFILE, (member("app/out", tarfile.SYMTYPE, "../../../etc/passwd"), None)], "app/out"),
        ([PROCFILE, (member("app/dev", tarfile.CHRTYPE), None)], "character device"),
    ],
    ids=["dotdot", "absolute", "symlink-outside", "device"],
)
def test_bad_source_tarballs_are_refused_and_write_nothing(
    up: Up, members: list[tuple[tarfile.TarInfo, bytes | None]], why: str
) -> None:
    app = "bad-" + str(abs(hash(why)) % 10_000)
    up.ok("apps.create", app)
    r = upload(up, app, tarball(*members))
    assert r.status_code == 201, r.text
    build = up.until(lambda: _finished(up, app, r.json()["id"]), 30, "the build to fail")
    assert build["status"] == "failed"
    assert build["error"].startswith("the uploaded source was refused: ")
    assert why in build["error"]
    assert build["release"] is None
    assert [x["version"] for x in up.json(f"app:{app}", "releases")] == [1]
    assert not (up.home / "escaped").exists()
    assert not list((up.home / "builds" / "work").iterdir())


def _finished(up: Up, app: str, build_id: int) -> dict[str, Any] | None:
    body: dict[str, Any] = api(up, "GET", f"/v1/apps/{app}/builds/{build_id}").json()
    return body if body["status"] in ("succeeded", "failed") else None


def test_an_upload_over_the_cap_is_refused_and_nothing_is_stored(up: Up) -> None:
    up.ok("apps.create", "huge")
    r = upload(up, "huge", b"\0" * (SOURCE_CAP + 1))
    assert r.status_code == 413
    assert r.json() == {
        "id": "payload_too_large",
        "message": f"the source is over the limit of {SOURCE_CAP} bytes set by GUN_SLUG_MAX_BYTES",
    }
    assert r.status_code == 413
    assert [x["version"] for x in up.json("app:huge", "releases")] == [1]
    # nothing queued: a deploy goes ahead at once
    assert upload(up, "huge", tarball(PROCFILE)).status_code == 201


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"app.py": "print(1)\n"}, "the app has no Procfile: add one naming your process types"),
        ({"Procfile": "web: python app.py\nworker python w.py\n"}, "Procfile:2: 'worker python"),
        (
            {"Procfile": "web: x\n", "requirements.txt": "no-such-package-gun-test==1.0\n"},
            "No matching distribution found for no-such-package-gun-test==1.0",
        ),
        (
            {"Procfile": "web: x\n", "requirements.txt": "\n", ".python-version": "2.7\n"},
            "Python 2.7",
        ),
    ],
    ids=["no-procfile", "procfile-error", "failing-buildpack", "python-unavailable"],
)
def test_a_failing_build_shows_why_and_makes_no_release(
    up: Up, tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    app = "build-" + str(abs(hash(expected)) % 10_000)
    up.ok("apps.create", app)
    src = tmp_path / "src"
    src.mkdir()
    for name, text in files.items():
        (src / name).write_text(text)
    r = up.gun(f"app:{app}", "deploy", f"dir={src}")
    assert r.code == 1
    assert r.err.startswith(f"Packed directory {src}")
    assert expected in r.err
    assert r.err.rstrip("\n").splitlines()[-1].startswith(f"gun: deploy of {app} failed: ")
    assert r.out == ""
    assert [x["version"] for x in up.json(f"app:{app}", "releases")] == [1]


def test_deploy_refuses_a_ref_that_does_not_exist(up: Up, repo: Path) -> None:
    up.ok("apps.create", "noref")
    r = up.gun("app:noref", "deploy", "no-such-branch", f"dir={repo}")
    assert r.code == 2
    assert r.err == f"gun: REF 'no-such-branch' does not exist in the git repository at {repo}\n"


def test_a_git_strategy_deploy_fetches_and_builds_on_every_instance(
    up: Up, repo: Path, tmp_path: Path
) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", f"file://{origin}")
    git(repo, "push", "-q", "origin", "main")
    bad = up.gun("apps.create", "gitbad", "repo=not a url")
    assert (bad.code, bad.err) == (
        1,
        "gun: repo 'not a url' is not a git URL: use https://, ssh://, git://, file:// "
        "or user@host:path\n",
    )
    up.ok("apps.create", "gitapp", f"repo=file://{origin}")

    r = up.gun("app:gitapp", "deploy", "main", "strategy=git")
    assert r.code == 0, r.err
    assert r.out == "v2\n"
    head = git(repo, "rev-parse", "HEAD")
    assert f"main is {head[:7]} First version" in r.err
    assert "release phase: migrating done" in r.err
    up.ok("app:gitapp", "scale", "web=2")
    for name, port in webs(up, "gitapp").items():
        assert answers(port)["message"] == "hello from gun", name
    for i in up.json("app:gitapp", "instances"):  # each instance built its own checkout
        checkout = Path(i["address"]) / "git" / "checkout"
        assert git(checkout, "rev-parse", "HEAD") == head
        assert (Path(i["address"]) / "releases" / "v2" / ".venv" / "bin" / "python").exists()

    second = commit(repo, "message.txt", "from git\n", "From git")
    git(repo, "push", "-q", "origin", "main")
    r = up.gun("app:gitapp", "deploy", "main", "strategy=git")
    assert r.code == 0, r.err
    assert r.out == "v3\n"
    for name, port in webs(up, "gitapp").items():
        assert answers(port)["message"] == "from git", name
    assert up.json("app:gitapp", "releases.info:v3")["commit"] == second

    missing = up.gun("app:gitapp", "deploy", "no-such-branch", "strategy=git")
    assert missing.code == 1
    assert missing.err.endswith(
        "gun: deploy of gitapp failed: REF 'no-such-branch' does not exist in the app's "
        "repository\n"
    )
    assert [x["version"] for x in up.json("app:gitapp", "releases")][0] == 3


def test_an_agent_refuses_a_slug_whose_sha256_does_not_match_and_says_why(
    up: Up, repo: Path
) -> None:
    up.ok("apps.create", "tampered")
    up.ok("app:tampered", "deploy", f"dir={repo}")
    (stored,) = (up.home / "slugs" / "tampered").iterdir()
    sha256 = stored.name.removesuffix(".tar.gz")
    with open(stored, "ab") as f:  # the slug store's copy changes after the build
        f.write(b"tampered")
    before = {i["id"] for i in up.json("app:tampered", "instances")}
    up.ok("app:tampered", "instances.create:default", "count=1")  # a new one must download it
    (other,) = {i["id"] for i in up.json("app:tampered", "instances")} - before
    r = up.gun("app:tampered", "scale", "web=3", "timeout=30")
    assert r.code == 1
    assert f"instances cannot run v2 ({other}: release v2 refused: slug " in r.err
    assert f"expected {sha256}; refusing to unpack it)" in r.err
    problem = next(i for i in up.json("app:tampered", "instances") if i["id"] == other)["problem"]
    assert problem.startswith("release v2 refused: slug ")
    assert not (up.home / "instances" / other / "releases" / "v2").exists()
    for p in up.processes("tampered"):
        if p["instance"] != other:  # the others serve on
            assert answers(p["port"])["message"] == "hello from gun"


SLOW_STOP = (
    'worker: python3 -c "import signal, sys, time; '
    "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.7), sys.exit(0))); "
    'time.sleep(3600)"\n'
)


def test_workers_are_replaced_one_at_a_time_across_instances(up: Up, tmp_path: Path) -> None:
    app = tmp_path / "slow"
    app.mkdir()
    (app / "Procfile").write_text(SLOW_STOP)  # each takes 0.7 s to stop: windows would overlap
    up.ok("apps.create", "rolling")
    up.ok("app:rolling", "deploy", f"dir={app}")
    up.ok("app:rolling", "scale", "worker=4")
    hosts = {p["instance"] for p in up.processes("rolling") if p["type"] == "worker"}
    assert len(hosts) == 2
    (app / "VERSION").write_text("2\n")
    r = up.gun("app:rolling", "deploy", f"dir={app}")
    assert r.code == 0, r.err
    assert {(p["release"], p["state"]) for p in up.processes("rolling")} == {(3, "up")}

    lines = []
    for i in up.json("app:rolling", "instances"):
        lines += (Path(i["address"]) / "log" / "app.log").read_text().splitlines()
    lines.sort()
    down: dict[str, str] = {}  # worker -> when its old copy got SIGTERM
    windows = []  # (from, to) during which one worker was down
    for line in lines:
        when, _, rest = line.partition(" ")
        source, _, text = rest.partition(": ")
        name = source.removeprefix("heroku[").removesuffix("]")
        if not name.startswith("worker."):
            continue
        if text == "Stopping all processes with SIGTERM":
            down[name] = when
        elif text == "State changed from starting to up" and name in down:
            windows.append((down.pop(name), when))
    assert len(windows) == 4
    windows.sort()
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert end <= start, f"two workers down at once: {windows}"
