"""Buildpacks: each build reads like the transcript a developer sees, then the built app is
packed into a slug, unpacked somewhere else, and run there the way the agent runs it.

The build host is pinned for the whole module: PATH is /usr/bin:/bin (Debian's python3.11,
node, npm, git; Node's directory first when tests.tools finds node elsewhere) and PYENV_ROOT is
a fake pyenv holding only 3.11.7 and 3.12.1 (symlinks to the real ones), so "3.9 is not
installed" is true here. Python builds reach PyPI for six, setuptools, Django and uv; the node
build reaches the npm registry for is-number.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gun import isolation
from gun.build import slug
from gun.build.buildpacks import BuildError, BuildResult, build
from gun.build.buildpacks.custom import parse_release
from gun.build.buildpacks.pythons import Interpreter, Request, choose, parse_request
from tests import tools
from tests.appusers import made_under

APPS = Path(__file__).parent / "apps"
REAL_PYENV = Path.home() / ".pyenv" / "versions"
HOST_PATH = "/usr/bin:/bin"
AVAILABLE = "3.11.2, 3.11.7, 3.12.1"  # Debian's /usr/bin/python3.11, then the fake pyenv's


@pytest.fixture(scope="module", autouse=True)
def build_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    root = tmp_path_factory.mktemp("pyenv")
    for version, minor in (("3.11.7", "3.11"), ("3.12.1", "3.12")):
        real = REAL_PYENV / version / "bin" / f"python{minor}"
        if not real.exists():
            why = f"needs pyenv's Python {version} at {real}"
            if os.environ.get("CI"):
                pytest.fail(why)  # CI's machines have it: missing there is a failure
            pytest.skip(why)
        (root / "versions" / version / "bin").mkdir(parents=True)
        (root / "versions" / version / "bin" / "python3").symlink_to(real)
    node = str(tools.node_bindir())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", HOST_PATH if node in HOST_PATH.split(":") else f"{node}:{HOST_PATH}")
        mp.setenv("PYENV_ROOT", str(root))
        yield


class Transcript(list[str]):
    """What `out` was given, line by line."""

    def __call__(self, line: str) -> None:
        self.append(line)

    def steps(self) -> list[str]:
        return [line for line in self if line.startswith(("-----> ", " !     "))]


def app(tmp_path: Path, files: dict[str, str] | None = None, like: str = "") -> Path:
    """A scratch copy of a source tree: a fixture app under tests/apps, plus `files`."""
    where = tmp_path / "src"
    for n in range(1, 100):  # a fresh directory per build, as the build worker passes
        if not where.exists():
            break
        where = tmp_path / f"src{n}"
    if like:
        shutil.copytree(APPS / like, where)
    where.mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_text(text)
    return where


def run_elsewhere(built: Path, tmp_path: Path, command: str) -> str:
    """Pack `built` into a slug, delete it, unpack the slug at another path and run `command`
    there as the agent does: `bash -c` in the app directory after sourcing .profile.d/*.sh."""
    tarball = tmp_path / "slug.tgz"
    packed = slug.pack(built, tarball)
    shutil.rmtree(built)
    moved = tmp_path / "elsewhere" / "app"
    slug.unpack(tarball, moved, packed.sha256)
    script = f'for f in .profile.d/*.sh; do . "$f"; done; {command}'
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=moved,
        env={"PATH": HOST_PATH, "HOME": str(Path.home())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.replace(str(moved), "$APP")


# -- python ----------------------------------------------------------------------------------


def test_python_requirements_build_runs_elsewhere_and_rebuilds_from_the_cache(
    tmp_path: Path,
) -> None:
    files = {"requirements.txt": "six==1.16.0\n", ".python-version": "3.11\n"}
    cache = tmp_path / "cache"
    out = Transcript()
    assert build(app(tmp_path, files), cache, {}, out) == BuildResult("python", {})
    assert out.steps() == [
        "-----> Python app detected",
        f"-----> Using Python 3.11.7 ({REAL_PYENV}/3.11.7/bin/python3.11),"
        " asked for in .python-version",
        "-----> Creating a virtualenv in .venv",
        "-----> Downloading dependencies from requirements.txt with pip into the build cache",
        "-----> Installing dependencies from requirements.txt with pip",
        "-----> Wrote .profile.d/python.sh: .venv/bin first on PATH, wherever the app runs",
    ]
    assert "       Successfully installed six-1.16.0" in out

    # The same source again, with the package index unreachable: the cache is enough.
    again = Transcript()
    built = app(tmp_path, files)
    build(built, cache, {"PIP_INDEX_URL": "http://127.0.0.1:9/simple"}, again)
    cached = "-----> Installing dependencies from requirements.txt with pip, from the build cache"
    assert cached in again
    assert not [line for line in again if "Downloading" in line]
    assert "       Successfully installed six-1.16.0" in again

    # A build cache that lost its wheels: the offline install fails, and pip fetches again.
    for wheel in (cache / "python" / "wheels").iterdir():
        wheel.unlink()
    refetched = Transcript()
    build(app(tmp_path, files), cache, {}, refetched)
    assert refetched.steps()[3:6] == [
        cached,
        " !     The build cache lacks something the app needs; fetching from the package index",
        "-----> Downloading dependencies from requirements.txt with pip into the build cache",
    ]
    assert "       Successfully installed six-1.16.0" in refetched

    check = (
        'python -c "import six, sys; print(six.__version__, sys.version.split()[0], sys.prefix)";'
        " command -v python; echo $VIRTUAL_ENV"
    )
    assert run_elsewhere(built, tmp_path, check).splitlines() == [
        "1.16.0 3.11.7 $APP/.venv",
        "$APP/.venv/bin/python",
        "$APP/.venv",
    ]


def test_python_packaged_pyproject_installs_the_app_and_its_console_script(
    tmp_path: Path,
) -> None:
    files = {
        ".python-version": "3.12\n",
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools>=61"]\n'
            'build-backend = "setuptools.build_meta"\n'
            '[project]\nname = "hello"\nversion = "0.1.0"\ndependencies = ["six==1.16.0"]\n'
            '[project.scripts]\nhello = "hello:main"\n'
            "[tool.setuptools]\npy-modules = ['hello']\n"
        ),
        "hello.py": (
            "import sys\n\nimport six\n\n\ndef main():\n"
            "    print('hello from', sys.executable, 'six', six.__version__)\n"
        ),
    }
    out = Transcript()
    built = app(tmp_path, files)
    build(built, tmp_path / "cache", {}, out)
    assert out.steps()[1].startswith("-----> Using Python 3.12.1 (")
    assert "-----> Installing dependencies from pyproject.toml with pip" in out
    shebang = (built / ".venv" / "bin" / "hello").read_text().splitlines()[0]
    assert shebang == "#!/bin/sh"
    assert run_elsewhere(built, tmp_path, "hello").splitlines() == [
        "hello from $APP/.venv/bin/python six 1.16.0"
    ]


def test_python_uv_lock_syncs_with_a_pinned_uv_then_offline(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    out = Transcript()
    build(app(tmp_path, like="uv_app"), cache, {}, out)
    assert out.steps()[2:] == [
        "-----> Creating a virtualenv in .venv",
        "-----> Installing uv 0.13.9 into the build cache",
        "-----> Installing dependencies from uv.lock with uv",
        "-----> Wrote .profile.d/python.sh: .venv/bin first on PATH, wherever the app runs",
    ]
    assert "        + six==1.16.0" in out

    again = Transcript()
    built = app(tmp_path, like="uv_app")
    build(built, cache, {}, again)
    assert "-----> Installing dependencies from uv.lock with uv, offline" in again
    out_ = run_elsewhere(built, tmp_path, 'python -c "import six; print(six.__version__)"')
    assert out_ == "1.16.0\n"


def test_python_django_runs_collectstatic_unless_disabled(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    out = Transcript()
    built = app(tmp_path, like="django_app")
    build(built, cache, {}, out)
    assert "-----> $ python manage.py collectstatic --noinput" in out
    assert [line for line in out if "static file copied" in line] == [
        f"       1 static file copied to '{built}/staticfiles'."
    ]
    assert (built / "staticfiles" / "css" / "site.css").is_file()

    skipped = Transcript()
    built = app(tmp_path, like="django_app")
    build(built, cache, {"DISABLE_COLLECTSTATIC": "1"}, skipped)
    assert "-----> Skipping Django collectstatic since DISABLE_COLLECTSTATIC is set" in skipped
    assert not (built / "staticfiles").exists()


def test_python_version_not_on_the_host_fails_naming_both(tmp_path: Path) -> None:
    out = Transcript()
    source = app(tmp_path, {"requirements.txt": "", ".python-version": "3.9\n"})
    with pytest.raises(BuildError) as failed:
        build(source, tmp_path / "cache", {}, out)
    assert failed.value.message == (
        "buildpack python failed: Python 3.9 (asked for in .python-version) is not available on"
        f" this build host, which has {AVAILABLE}; install it there, ask for one of those, or set"
        " PYTHON_VERSION_POLICY=nearest"
    )
    assert not (source / ".venv").exists()


def test_python_nearest_policy_builds_with_a_warning(tmp_path: Path) -> None:
    """Also: a pyproject.toml without [build-system] installs its dependencies, not the app."""
    out = Transcript()
    pyproject = '[project]\nname = "site"\nversion = "1"\ndependencies = ["six==1.16.0"]\n'
    source = app(tmp_path, {"pyproject.toml": pyproject, "runtime.txt": "python-3.9.18\n"})
    build(source, tmp_path / "cache", {"PYTHON_VERSION_POLICY": "nearest"}, out)
    assert out.steps() == [
        "-----> Python app detected",
        " !     Python 3.9.18 (asked for in runtime.txt) is not available (this host has"
        f" {AVAILABLE}); building with Python 3.11.7 instead because"
        " PYTHON_VERSION_POLICY=nearest",
        f"-----> Using Python 3.11.7 ({REAL_PYENV}/3.11.7/bin/python3.11),"
        " asked for in runtime.txt",
        "-----> Creating a virtualenv in .venv",
        "-----> pyproject.toml has no [build-system]: installing its dependencies, not the app",
        "-----> Downloading dependencies from pyproject.toml with pip into the build cache",
        "-----> Installing dependencies from pyproject.toml with pip",
        "-----> Wrote .profile.d/python.sh: .venv/bin first on PATH, wherever the app runs",
    ]
    assert "       Successfully installed six-1.16.0" in out


def test_python_pip_failure_shows_pips_output(tmp_path: Path) -> None:
    out = Transcript()
    files = {"requirements.txt": "gun-no-such-package-xyzzy==1.0\n", ".python-version": "3.11.7"}
    with pytest.raises(BuildError) as failed:
        build(app(tmp_path, files), tmp_path / "cache", {}, out)
    assert failed.value.message == "buildpack python failed: pip wheel exited 1"
    assert [line for line in out if "No matching distribution" in line] == [
        "       ERROR: No matching distribution found for gun-no-such-package-xyzzy==1.0"
    ]


CHOICES = [
    # asked for, policy, chosen (or the start of the error)
    (None, "exact", "3.12.1"),
    ("3.11", "exact", "3.11.7"),
    ("3.11.2", "exact", "3.11.2"),
    ("3.11.5", "exact", "error: Python 3.11.5 (asked for in .python-version) is not available"),
    ("3.11.5", "nearest", "3.11.7"),
    ("3.11.3", "nearest", "3.11.2"),
    ("3.9", "nearest", "3.11.7"),
    ("3.13", "nearest", "3.12.1"),
    ("2.7", "nearest", "3.11.7"),
    ("3.12", "sometimes", "error: PYTHON_VERSION_POLICY is 'sometimes'; it must be exact or"),
]


@pytest.mark.parametrize(("asked", "policy", "chosen"), CHOICES)
def test_choosing_an_interpreter(asked: str | None, policy: str, chosen: str) -> None:
    available = [
        Interpreter((3, 11, 2), "/usr/bin/python3.11"),
        Interpreter((3, 11, 7), "/pyenv/3.11.7/bin/python3.11"),
        Interpreter((3, 12, 1), "/pyenv/3.12.1/bin/python3.12"),
    ]
    request = parse_request(asked, ".python-version") if asked else None
    try:
        got, _ = choose(request, available, policy)
    except BuildError as e:
        assert ("error: " + e.message).startswith(chosen)
    else:
        assert got.shown == chosen


@pytest.mark.parametrize(
    ("text", "source", "wanted"),
    [
        ("3.12\n", ".python-version", (3, 12)),
        ("# pinned\n3.11.7\n", ".python-version", (3, 11, 7)),
        ("python-3.11.7\n", "runtime.txt", (3, 11, 7)),
        ("system\n", ".python-version", "error: .python-version asks for Python 'system'"),
        ("python-3\n", "runtime.txt", "error: runtime.txt asks for Python 'python-3'"),
    ],
)
def test_reading_a_python_version_request(
    text: str, source: str, wanted: tuple[int, ...] | str
) -> None:
    try:
        assert parse_request(text, source) == Request(wanted, source)  # type: ignore[arg-type]
    except BuildError as e:
        assert isinstance(wanted, str) and ("error: " + e.message).startswith(wanted)


# -- node and null ---------------------------------------------------------------------------


def test_node_npm_ci_and_build_then_runs_elsewhere(tmp_path: Path) -> None:
    out = Transcript()
    built = app(tmp_path, like="node_app")
    assert build(built, tmp_path / "cache", {}, out) == BuildResult("node", {})
    steps = out.steps()
    assert steps[0] == "-----> Node.js app detected"
    assert steps[1].startswith("-----> Using node v")
    assert steps[2:] == [
        "-----> Installing dependencies with npm ci",
        "-----> Running npm run build",
        "-----> Wrote .profile.d/node.sh: node_modules/.bin first on PATH, wherever the app runs",
    ]
    assert (built / "public" / "built.txt").read_text() == "built by npm run build\n"
    assert list((tmp_path / "cache" / "node" / "npm").iterdir())
    check = (
        """node -e 'console.log(require("is-number")(5))';"""
        ' echo "$PATH" | cut -d: -f1; echo "$NODE_ENV"'
    )
    assert run_elsewhere(built, tmp_path, check).splitlines() == [
        "true",
        "$APP/node_modules/.bin",
        "production",
    ]


def test_null_buildpack_takes_files_as_they_are(tmp_path: Path) -> None:
    out = Transcript()
    built = app(tmp_path, {"Procfile": "web: ./serve\n", "serve": "#!/bin/sh\necho hi\n"})
    assert build(built, tmp_path / "cache", {}, out) == BuildResult("null", {})
    assert out == [
        "-----> No language detected; using the null buildpack: files as pushed, nothing to build"
    ]
    assert sorted(p.name for p in built.iterdir()) == ["Procfile", "serve"]


# -- custom buildpacks -----------------------------------------------------------------------

DETECT = "#!/bin/sh\necho Greeter\n"
COMPILE = """#!/bin/sh
set -e
echo "-----> Compiling $(basename "$1") with $(cat "$3/GREETING")"
echo "       a line on stderr" >&2
builds=$(($(cat "$2/builds" 2>/dev/null || echo 0) + 1))
echo $builds > "$2/builds"
echo "hello, build $builds" > "$1/greeting.txt"
"""
RELEASE = """#!/bin/sh
cat <<'YAML'
---
addons: []
config_vars:
  GREETER: "yes"
default_process_types:
  web: ./server --port $PORT  # the web process
  worker: 'python -m worker'
YAML
"""


def buildpack(where: Path, **programs: str) -> Path:
    """A buildpack directory with `bin/NAME` for each program given."""
    (where / "bin").mkdir(parents=True)
    for name, text in programs.items():
        (where / "bin" / name).write_text(text)
        (where / "bin" / name).chmod(0o755)
    return where


def test_custom_buildpack_from_a_path(tmp_path: Path) -> None:
    bp = buildpack(tmp_path / "bp", detect=DETECT, compile=COMPILE, release=RELEASE)
    config = {"BUILDPACK": str(bp), "GREETING": "kindness"}
    out = Transcript()
    built = app(tmp_path, {"Procfile": "web: ./server\n", "requirements.txt": ""})
    result = build(built, tmp_path / "cache", config, out)
    assert result == BuildResult(
        str(bp), {"web": "./server --port $PORT", "worker": "python -m worker"}
    )
    assert out == [
        "-----> Greeter app detected",
        f"-----> Compiling {built.name} with kindness",
        "       a line on stderr",
    ]
    assert (built / "greeting.txt").read_text() == "hello, build 1\n"
    build(app(tmp_path), tmp_path / "cache", config, Transcript())
    assert sorted((tmp_path / "cache" / "custom").glob("*/builds"))[0].read_text() == "2\n"


def test_custom_buildpack_from_git_is_fetched_again_on_each_build(tmp_path: Path) -> None:
    work = buildpack(tmp_path / "work", detect=DETECT, compile=COMPILE)
    bare = tmp_path / "bp.git"

    def git(*args: str, cwd: Path = work) -> None:
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=30)

    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=tmp_path)
    git("init", "--quiet", "--initial-branch=main")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "v1")
    git("push", "--quiet", str(bare), "main")
    config = {"BUILDPACK": f"file://{bare}", "GREETING": "git"}
    out = Transcript()
    built = app(tmp_path)
    assert build(built, tmp_path / "cache", config, out) == BuildResult(f"file://{bare}", {})
    assert out[:2] == [f"-----> Fetching buildpack file://{bare}", "-----> Greeter app detected"]

    (work / "bin" / "detect").write_text("#!/bin/sh\necho Greeter v2\n")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-am", "v2")
    git("push", "--quiet", str(bare), "main")
    out = Transcript()
    build(app(tmp_path), tmp_path / "cache", config, out)
    assert out[1] == "-----> Greeter v2 app detected"


BAD_RELEASE = "#!/bin/sh\nprintf 'default_process_types:\\n  web: [a, b]\\n'\n"
FAILURES = [
    # bin/ programs, BUILDPACK, the error
    (
        {"detect": "#!/bin/sh\necho not mine >&2\nexit 1\n", "compile": COMPILE},
        "{bp}",
        "buildpack {bp} failed: bin/detect exited 1, so it does not apply to this app",
    ),
    ({"detect": DETECT}, "{bp}", "buildpack {bp} failed: it has no executable bin/compile"),
    (
        {"detect": DETECT, "compile": "#!/bin/sh\necho compiling\necho oh no >&2\nexit 3\n"},
        "{bp}",
        "buildpack {bp} failed: bin/compile exited 3",
    ),
    (
        {"detect": DETECT, "compile": COMPILE, "release": BAD_RELEASE},
        "{bp}",
        "buildpack {bp} failed: bin/release output line 2: quote the command '[a, b]'",
    ),
    (
        {},
        "relative/bp",
        "buildpack relative/bp failed: BUILDPACK must be an absolute path on the build host",
    ),
    ({}, "{bp}/missing", "buildpack {bp}/missing failed: {bp}/missing is not a directory"),
    ({}, "file://{bp}/no.git", "buildpack file://{bp}/no.git failed: git fetch exited 128"),
]


@pytest.mark.parametrize(("programs", "spec", "error"), FAILURES)
def test_custom_buildpack_failures(
    tmp_path: Path, programs: dict[str, str], spec: str, error: str
) -> None:
    bp = buildpack(tmp_path / "bp", **programs)
    out = Transcript()
    config = {"BUILDPACK": spec.format(bp=bp), "GREETING": "x"}
    with pytest.raises(BuildError) as failed:
        build(app(tmp_path), tmp_path / "cache", config, out)
    assert failed.value.message.startswith(error.format(bp=bp)), failed.value.message
    if "exited 3" in error:
        assert out == ["-----> Greeter app detected", "compiling", "oh no"]


@pytest.mark.parametrize(
    ("yaml", "types"),
    [
        ("---\naddons: []\n", {}),
        ("default_process_types: {}\n", {}),
        ("default_process_types:\n  web: ./server\nconfig_vars: {}\n", {"web": "./server"}),
        ('default_process_types:\n  web: "a \\"b\\""\n', {"web": 'a "b"'}),
        ("default_process_types:\n  web: 'it''s'  \n", {"web": "it's"}),
        ("default_process_types: [web]\n", "line 1: default_process_types must be a mapping"),
        ("default_process_types:\n  web: ok\n  worker: a: b\n", "line 3: quote the command"),
        ("default_process_types:\n  web: a\n    b: c\n", "line 3: 'b: c' is not `type: command`"),
        ("default_process_types:\n  web: a\n  web: b\n", "line 3: process type 'web' appears"),
    ],
)
def test_reading_bin_release_output(yaml: str, types: dict[str, str] | str) -> None:
    try:
        assert parse_release(yaml) == types
    except BuildError as e:
        assert isinstance(types, str) and e.message.startswith(f"bin/release output {types}")


def test_output_is_streamed_live_and_a_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "sleeper.pid"
    compile_ = (
        f"#!/bin/sh\necho first\nsleep 30 &\necho $! > {pidfile}\nsleep 1\necho second\nsleep 30\n"
    )
    bp = buildpack(tmp_path / "bp", detect=DETECT, compile=compile_)
    seen: list[tuple[float, str]] = []
    with pytest.raises(BuildError) as failed:
        build(
            app(tmp_path),
            tmp_path / "cache",
            {"BUILDPACK": str(bp)},
            lambda line: seen.append((time.monotonic(), line)),
            timeout=3,
        )
    assert failed.value.message == (
        f"buildpack {bp} failed: the build ran past its 3 s limit during bin/compile"
    )
    lines = [line for _, line in seen]
    assert lines == ["-----> Greeter app detected", "first", "second"]
    assert seen[2][0] - seen[1][0] > 0.8  # "first" arrived while compile was still running
    assert not alive(int(pidfile.read_text()))


def test_what_a_compile_leaves_running_is_killed_and_does_not_hold_up_the_build(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "daemon.pid"
    compile_ = (
        f"#!/bin/sh\nsleep 300 >/dev/null 2>&1 &\necho $! > {pidfile}\n"
        "setsid sleep 8 &\necho compiled\n"  # escapes the group, holding the output pipe
    )
    bp = buildpack(tmp_path / "bp", detect=DETECT, compile=compile_)
    out = Transcript()
    started = time.monotonic()
    build(app(tmp_path), tmp_path / "cache", {"BUILDPACK": str(bp)}, out)
    assert time.monotonic() - started < 6
    assert out == ["-----> Greeter app detected", "compiled"]
    assert not alive(int(pidfile.read_text()))


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for init to reap it does not)."""
    stat = Path(f"/proc/{pid}/stat")
    for _ in range(50):
        if not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        time.sleep(0.05)
    return True


# -- as an unprivileged build user (gun.isolation; as root only) ----------------------------

AS_ROOT = pytest.mark.skipif(not isolation.can_switch(), reason="making users needs root")
SNOOP_COMPILE = """#!/bin/sh
cat "$(cat "$3/META")/admin.token" "$(cat "$3/META")/secret.key"
echo "compiled as $(id -un) with HOME=$HOME in $(pwd)"
echo kept > "$2/kept" && echo "cache ok"
"""


@pytest.fixture
def meta_home(tmp_path: Path) -> Iterator[Path]:
    """A meta data directory as meta keeps it: secrets 0600 in a directory others pass."""
    home = isolation.make_dir(tmp_path / "home", isolation.SEARCHABLE)
    for name in ("admin.token", "secret.key"):
        (home / name).write_text(f"the {name}\n")
        (home / name).chmod(0o600)
    yield home
    assert made_under(home) == []  # each build's user went with it


def workdir(home: Path, source: Path) -> Path:
    """The build's copy of the source, as meta makes it: work/BUILD/app."""
    work = isolation.make_dir(home / "builds" / "work" / "b1", isolation.SEARCHABLE)
    shutil.copytree(source, work / "app")
    return work / "app"


@AS_ROOT
def test_a_build_step_as_the_build_user_cannot_read_metas_secrets(
    tmp_path: Path, meta_home: Path
) -> None:
    bp = buildpack(tmp_path / "bp", detect=DETECT, compile=SNOOP_COMPILE)
    built = workdir(meta_home, app(tmp_path, {"Procfile": "web: x\n"}))
    cache = meta_home / "builds" / "cache" / "snoop"
    config = {"BUILDPACK": str(bp), "META": str(meta_home)}
    out = Transcript()
    with isolation.build_user(meta_home / "builds", "snoop") as user:
        assert user is not None
        build(built, cache, config, out, user=user)
        assert (cache / "custom").stat().st_uid == user.uid
    assert out == [
        "-----> Greeter app detected",
        f"cat: {meta_home}/admin.token: Permission denied",
        f"cat: {meta_home}/secret.key: Permission denied",
        f"compiled as {user.name} with HOME={cache}/home in {built}",
        "cache ok",
    ]
    assert (cache.stat().st_uid, stat.S_IMODE(cache.stat().st_mode)) == (0, 0o700)  # taken back


@AS_ROOT
def test_a_python_build_as_the_build_user_uses_an_interpreter_it_can_run(
    tmp_path: Path, meta_home: Path
) -> None:
    """The fake pyenv's interpreters live under /root: the build user cannot run them, so
    the build finds only Debian's /usr/bin/python3.11, and the app runs with it."""
    built = workdir(meta_home, app(tmp_path, {"requirements.txt": "six==1.16.0\n"}))
    out = Transcript()
    with isolation.build_user(meta_home / "builds", "py") as user:
        build(built, meta_home / "builds" / "cache" / "py", {}, out, user=user)
        assert user is not None and built.stat().st_uid == user.uid
    assert out.steps()[1] == (
        "-----> Using Python 3.11.2 (/usr/bin/python3.11), the newest on this build host"
        " (the app names none in .python-version)"
    )
    assert "       Successfully installed six-1.16.0" in out
    check = 'python -c "import six, sys; print(six.__version__, sys.version.split()[0])"'
    assert run_elsewhere(built, tmp_path, check) == "1.16.0 3.11.2\n"


@AS_ROOT
def test_a_build_its_user_cannot_reach_is_refused_naming_the_directory(
    tmp_path: Path, meta_home: Path
) -> None:
    built = workdir(meta_home, app(tmp_path, {"Procfile": "web: x\n"}))
    (meta_home / "builds").chmod(0o700)
    with isolation.build_user(meta_home / "builds", "closed") as user:
        assert user is not None
        with pytest.raises(BuildError) as refused:
            build(built, meta_home / "builds" / "cache" / "closed", {}, Transcript(), user=user)
    assert refused.value.message == (
        f"the build runs as the unprivileged user {user.name}, which cannot reach {built}: "
        f"{meta_home / 'builds'} is drwx------; keep gun's data where every directory above it"
        " may be searched by others (chmod o+x, or e.g. GUN_HOME=/var/lib/gun)"
    )


def test_a_line_without_its_end_goes_to_the_partial_sink_at_once(tmp_path: Path) -> None:
    compile_ = (
        "#!/bin/sh\necho whole\nprintf 'step one'\nsleep 1.5\nprintf ' and é'\nsleep 1\n"
        "echo ' done'\nprintf 'no end'\n"
    )
    bp = buildpack(tmp_path / "bp", detect=DETECT, compile=compile_)
    lines: list[str] = []
    parts: list[tuple[float, str]] = []
    began = time.monotonic()
    build(
        app(tmp_path),
        tmp_path / "cache",
        {"BUILDPACK": str(bp)},
        lines.append,
        partial=lambda text: parts.append((time.monotonic() - began, text)),
    )
    assert lines == ["-----> Greeter app detected", "whole", "no end"]
    assert "".join(text for _, text in parts) == "step one and é done\n"
    assert parts[0][1] == "step one"
    assert parts[0][0] < 1.0  # shown while the step still slept
    assert parts[-1][1] == " done\n"
