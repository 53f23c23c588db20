"""The python buildpack: a relocatable virtualenv in `.venv`, dependencies from the app's files.

Detected by `requirements.txt`, `pyproject.toml` or `uv.lock`. The interpreter is chosen by
`pythons` (`.python-version`, `runtime.txt`, `PYTHON_VERSION_POLICY`). The virtualenv is
created with `--copies`, so `.venv/bin/python` is a copy of the interpreter's small launcher
(no symlink out of the app, which a slug may not hold) and finds the standard library through
`pyvenv.cfg`'s `home`, which names the interpreter's directory on the build host: the app runs
wherever it is unpacked, on any host with the same interpreter at the same path. Console
scripts get a `/bin/sh` trampoline instead of the absolute shebang pip and uv write, and
`.profile.d/python.sh` puts `$PWD/.venv/bin` first on `PATH` and sets `VIRTUAL_ENV`.

Dependencies (the first of these the app has):
- `uv.lock`: `uv sync --frozen --no-dev --no-editable` with a pinned uv, installed once into
  the app's build cache with pip.
- `requirements.txt`: `pip install -r requirements.txt`.
- `pyproject.toml` with a `[build-system]`: `pip install .` (the app is a package); without
  one: only its `[project] dependencies` (the app is not a package).
pip itself comes from the wheel bundled with the interpreter (`ensurepip`'s, or Debian's
`/usr/share/python-wheels`), unpacked into the build cache; it is not installed into `.venv`
(as with uv), so an app that wants pip at run time lists it. (An interpreter without a bundled
wheel gets pip installed into `.venv` by `venv`, and that pip does the work.)

The build cache keeps pip's cache, a wheelhouse of every wheel the app needed, and uv's cache.
When the dependency file and the interpreter are unchanged since the last successful build,
install runs with `--no-index` from the wheelhouse (uv: `--offline`): nothing is downloaded,
and unpinned requirements stay at the versions that build got, as on Heroku. Should that
install fail (a packaged app's dependencies changed outside pyproject.toml, say), the build
says so and fetches from the index.

Django: when `manage.py` exists and the virtualenv can import `django`, the build runs
`python manage.py collectstatic --noinput` (with the app's config vars), unless the config var
`DISABLE_COLLECTSTATIC` is set to anything but `0` or empty.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import tempfile
import tomllib
import zipfile
from pathlib import Path

from gun.build.buildpacks import pythons
from gun.build.buildpacks.base import BuildError, Context

NAME = "python"
MARKERS = ("requirements.txt", "pyproject.toml", "uv.lock")
VENV = ".venv"
UV_VERSION = "0.13.9"
_TRAMPOLINE = """#!/bin/sh
'''exec' "$(dirname -- "$(realpath -- "$0")")"/{argv} "$0" "$@"
' '''
"""
# The shebangs pip and uv write: `#!/venv/bin/python`, or for long paths a /bin/sh exec line.
_SHEBANG = re.compile(rb"#!(?P<dir>/[^\n]*)/bin/(?P<argv>python[^\n/]*)\n")
_SH_SHEBANG = re.compile(
    rb"#!/bin/sh\n'''exec' \"(?P<dir>/[^\n]*)/bin/(?P<argv>python[^\"/]*)\""
    rb" \"\$0\" \"\$@\"\n' '''\n"
)
_PROFILE = """\
# Written by gun's python buildpack; sourced with the app directory as the working directory.
export VIRTUAL_ENV="$PWD/{venv}"
export PATH="$VIRTUAL_ENV/bin:$PATH"
unset PYTHONHOME
export PYTHONUNBUFFERED="${{PYTHONUNBUFFERED:-1}}"
if [ ! -x {interpreter} ]; then
  echo {missing} >&2
fi
"""


def detect(app_dir: Path) -> bool:
    return any((app_dir / name).is_file() for name in MARKERS)


def compile(ctx: Context) -> dict[str, str]:
    ctx.step("Python app detected")
    try:
        request, disagreement = pythons.requested(ctx.app_dir)
        policy = ctx.config.get("PYTHON_VERSION_POLICY", "").strip().lower() or "exact"
        wait = max(1.0, min(20.0, ctx.deadline.remaining()))
        found = pythons.discover(timeout=wait, user=ctx.user)
        interpreter, nearest = pythons.choose(request, found, policy)
    except BuildError as e:
        raise ctx.fail(e.message) from None
    for warning in (disagreement, nearest):
        if warning:
            ctx.warn(warning)
    why = (
        f"asked for in {request.source}"
        if request
        else "the newest on this build host (the app names none in .python-version)"
    )
    ctx.step(f"Using Python {interpreter.shown} ({interpreter.path}), {why}")
    venv = ctx.app_dir / VENV
    if venv.exists() or venv.is_symlink():
        ctx.warn(f"Removing the {VENV} directory that came with the source")
        _remove(venv)
    uv = (ctx.app_dir / "uv.lock").is_file()
    ctx.step(f"Creating a virtualenv in {VENV}")
    # pip runs from the interpreter's bundled wheel when it has one: no pip in the slug (as
    # with uv), and no seconds spent installing one into every build.
    with_pip = not uv and not interpreter.pip_wheel
    argv = [interpreter.path, "-m", "venv", "--copies", *([] if with_pip else ["--without-pip"])]
    argv.append(VENV)
    ctx.check(argv, what="python -m venv", env=ctx.build_env())
    if uv:
        _uv_sync(ctx, interpreter)
    else:
        _pip_install(ctx, interpreter)
    _collectstatic(ctx)
    _make_relocatable(ctx, interpreter)
    return {}


def _venv_env(ctx: Context, **extra: str) -> dict[str, str]:
    venv = ctx.app_dir / VENV
    env = ctx.build_env(VIRTUAL_ENV=str(venv), **extra)
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def _cache_key(ctx: Context, interpreter: pythons.Interpreter, *files: str) -> str:
    digest = hashlib.sha256(f"{interpreter.path} {interpreter.shown}".encode())
    for name in files:
        path = ctx.app_dir / name
        digest.update(f"\0{name}\0".encode() + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()


def _cache_hit(marker: Path, key: str) -> bool:
    return marker.is_file() and marker.read_text().strip() == key


def _pip_install(ctx: Context, interpreter: pythons.Interpreter) -> None:
    cache = ctx.cache_dir / "python"
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    env = _venv_env(ctx, PIP_CACHE_DIR=str(cache / "pip"), PIP_NO_INPUT="1")
    source, targets, fetch = _pip_targets(ctx)
    if not targets:
        ctx.step(f"{source} lists no dependencies; nothing to install")
        return
    pip = _pip(ctx, str(ctx.app_dir / VENV / "bin" / "python"), interpreter)
    quiet = ["--disable-pip-version-check", "--progress-bar", "off"]
    key = _cache_key(ctx, interpreter, source)
    marker = cache / "installed"
    install = [*pip, "install", *quiet, "--no-index", "--find-links", str(wheels), *targets]
    if _cache_hit(marker, key):
        ctx.step(f"Installing dependencies from {source} with pip, from the build cache")
        if ctx.run(install, what="pip install", env=env)[0] == 0:
            return
        ctx.warn("The build cache lacks something the app needs; fetching from the package index")
    marker.unlink(missing_ok=True)
    ctx.step(f"Downloading dependencies from {source} with pip into the build cache")
    ctx.check([*pip, "wheel", *quiet, "--wheel-dir", wheels, *fetch], what="pip wheel", env=env)
    ctx.step(f"Installing dependencies from {source} with pip")
    ctx.check(install, what="pip install", env=env)
    marker.write_text(key + "\n")


def _pip_targets(ctx: Context) -> tuple[str, list[str], list[str]]:
    """The file dependencies come from, what to install, and what to fetch into the wheelhouse
    (a packaged app's build requirements too, so that installing it needs no index)."""
    if (ctx.app_dir / "requirements.txt").is_file():
        return "requirements.txt", ["-r", "requirements.txt"], ["-r", "requirements.txt"]
    try:
        project = tomllib.loads((ctx.app_dir / "pyproject.toml").read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ctx.fail(f"pyproject.toml is not valid TOML ({e})") from None
    build_system = project.get("build-system")
    if isinstance(build_system, dict):
        requires = [str(r) for r in build_system.get("requires", [])]
        return "pyproject.toml", ["."], [*requires, "."]
    dependencies = project.get("project", {}).get("dependencies", [])
    if not isinstance(dependencies, list):
        raise ctx.fail("pyproject.toml's [project] dependencies is not a list")
    ctx.step("pyproject.toml has no [build-system]: installing its dependencies, not the app")
    return "pyproject.toml", [str(d) for d in dependencies], [str(d) for d in dependencies]


def _uv_sync(ctx: Context, interpreter: pythons.Interpreter) -> None:
    if not (ctx.app_dir / "pyproject.toml").is_file():
        raise ctx.fail("uv.lock needs a pyproject.toml beside it, and the app has none")
    uv = _install_uv(ctx, interpreter)
    cache = ctx.cache_dir / "python"
    key = _cache_key(ctx, interpreter, "uv.lock", "pyproject.toml")
    marker = cache / "uv-synced"
    venv = ctx.app_dir / VENV
    scratch = cache / "uv-tmp"  # uv leaves lock files in its temporary directory: keep them here
    scratch.mkdir(parents=True, exist_ok=True)
    env = _venv_env(
        ctx,
        TMPDIR=str(scratch),
        UV_CACHE_DIR=str(cache / "uv"),
        UV_PROJECT_ENVIRONMENT=str(venv),
        UV_PYTHON_DOWNLOADS="never",
        UV_LINK_MODE="copy",
        UV_NO_PROGRESS="1",
    )
    argv = [uv, "sync", "--frozen", "--no-dev", "--no-editable", "--compile-bytecode"]
    argv += ["--python", str(venv / "bin" / "python")]
    if _cache_hit(marker, key):
        ctx.step("Installing dependencies from uv.lock with uv, offline")
        if ctx.run([*argv, "--offline"], what="uv sync", env=env)[0] == 0:
            return
        ctx.warn("The build cache lacks something the app needs; fetching from the package index")
    else:
        ctx.step("Installing dependencies from uv.lock with uv")
    marker.unlink(missing_ok=True)
    ctx.check(argv, what="uv sync", env=env)
    if not (venv / "bin" / "python").is_file() or (venv / "bin" / "python").is_symlink():
        raise ctx.fail(f"uv sync replaced the virtualenv in {VENV} with one that cannot move")
    marker.write_text(key + "\n")


def _install_uv(ctx: Context, interpreter: pythons.Interpreter) -> str:
    """A pinned uv in the build cache, installed with pip on first use."""
    tool = ctx.cache_dir / "tools" / f"uv-{UV_VERSION}"
    uv = tool / "bin" / "uv"
    if uv.is_file():
        return str(uv)
    ctx.step(f"Installing uv {UV_VERSION} into the build cache")
    if tool.exists():
        _remove(tool)
    tool.parent.mkdir(parents=True, exist_ok=True)
    env = ctx.build_env(PIP_CACHE_DIR=str(ctx.cache_dir / "python" / "pip"))
    python = interpreter.path
    if not interpreter.pip_wheel:
        ctx.check([python, "-m", "venv", tool], what="python -m venv (for uv)", env=env)
        python = str(tool / "bin" / "python")
    pip = [*_pip(ctx, python, interpreter), "install", "--disable-pip-version-check"]
    ctx.check(
        [*pip, "--progress-bar", "off", "--target", tool, f"uv=={UV_VERSION}"],
        what="pip install uv",
        env=env,
    )
    return str(uv)


def _pip(ctx: Context, python: str, interpreter: pythons.Interpreter) -> list[str]:
    """How `python` runs pip: from the interpreter's bundled wheel, unpacked once into the
    build cache (so its bytecode is cached too), or else its own `-m pip`."""
    if not interpreter.pip_wheel:
        return [python, "-m", "pip"]
    wheel = Path(interpreter.pip_wheel)
    unpacked = ctx.cache_dir / "tools" / wheel.name.removesuffix(".whl")
    if not (unpacked / "pip" / "__main__.py").is_file():
        tmp = Path(tempfile.mkdtemp(prefix=".pip-", dir=unpacked.parent.parent))
        try:
            with zipfile.ZipFile(wheel) as z:
                z.extractall(tmp)
            if unpacked.exists():
                _remove(unpacked)
            unpacked.parent.mkdir(parents=True, exist_ok=True)
            tmp.rename(unpacked)
        except (OSError, zipfile.BadZipFile) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ctx.fail(f"could not unpack pip from {wheel} ({e})") from None
    return [python, str(unpacked / "pip")]


def _collectstatic(ctx: Context) -> None:
    if not (ctx.app_dir / "manage.py").is_file():
        return
    python = str(ctx.app_dir / VENV / "bin" / "python")
    env = _venv_env(ctx)
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('django') is None)"
    code, _ = ctx.run([python, "-c", probe], what="a check for Django", env=env)
    if code != 0:
        return
    if ctx.config.get("DISABLE_COLLECTSTATIC", "").strip() not in ("", "0"):
        ctx.step("Skipping Django collectstatic since DISABLE_COLLECTSTATIC is set")
        return
    ctx.step("$ python manage.py collectstatic --noinput")
    code, _ = ctx.run(
        [python, "manage.py", "collectstatic", "--noinput"], what="manage.py collectstatic", env=env
    )
    if code != 0:
        raise ctx.fail(
            f"manage.py collectstatic --noinput exited {code} (fix it, or set the config var"
            " DISABLE_COLLECTSTATIC=1 to skip it)"
        )


def _make_relocatable(ctx: Context, interpreter: pythons.Interpreter) -> None:
    """Point console scripts at the virtualenv relative to themselves; drop what names the
    build directory; write `.profile.d/python.sh`."""
    venv = ctx.app_dir / VENV
    bin_dir = venv / "bin"
    for script in sorted(bin_dir.iterdir()):
        if script.is_symlink() or not script.is_file():
            continue
        if script.name.startswith("activate") or script.name == "Activate.ps1":
            script.unlink()  # they hard-code the build directory; .profile.d does their job
            continue
        with open(script, "rb") as f:
            head = b"".join(f.readline(4096) for _ in range(3))
            m = _SHEBANG.match(head) or _SH_SHEBANG.match(head)
            if m is None or m["dir"] != bytes(venv):
                continue
            f.seek(m.end())
            body = f.read()
        argv = " ".join(shlex.quote(a) for a in m["argv"].decode().split())
        script.write_bytes(_TRAMPOLINE.format(argv=argv).encode() + body)
    cfg = venv / "pyvenv.cfg"
    lines = cfg.read_text().splitlines(keepends=True)
    cfg.write_text("".join(line for line in lines if not line.startswith("command =")))
    missing = (
        f"gun: this app was built with Python {interpreter.shown} at {interpreter.path},"
        " which this host does not have"
    )
    profile_dir = ctx.app_dir / ".profile.d"
    profile_dir.mkdir(exist_ok=True)
    (profile_dir / "python.sh").write_text(
        _PROFILE.format(
            venv=VENV, interpreter=shlex.quote(interpreter.path), missing=shlex.quote(missing)
        )
    )
    (venv / "gun-build.json").write_text(
        json.dumps({"python": interpreter.shown, "interpreter": interpreter.path}) + "\n"
    )
    ctx.step(f"Wrote .profile.d/python.sh: {VENV}/bin first on PATH, wherever the app runs")


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)
