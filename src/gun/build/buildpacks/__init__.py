"""Buildpacks: turn an app's source, in place, into a directory that packs into a runnable slug.

`build(app_dir, cache_dir, env, out)` picks the first buildpack that applies, in this order,
and runs it in `app_dir` (a scratch copy of the source, which it changes):

1. custom: the buildpack the config var `BUILDPACK` names (a path on the build host or a git
   URL), following Heroku's buildpack API (`custom.py`);
2. python: `requirements.txt`, `pyproject.toml` or `uv.lock` (`python.py`, `pythons.py`);
3. node: `package.json` (`node.py`);
4. null: anything else, built as it is (`null.py`).

With `user` (gun.isolation), every command runs as that unprivileged Unix user: before each one,
`app_dir` and `cache_dir` are handed to it and its HOME is `cache_dir/home`; between builds the
cache is closed to everyone but root. Python interpreters it cannot run are not found.

`cache_dir` is the app's own build cache, kept between its builds (pip's cache and wheelhouse,
uv's cache and a pinned uv, npm's cache, git buildpack checkouts and each custom buildpack's
CACHE_DIR); a build holds a lock on it, so two builds of one app take turns. `env` is the
app's config vars: python and node builds see them as environment variables (as on Heroku),
custom buildpacks get them in ENV_DIR. Build commands inherit only a few of the build host's
variables (`PATH`, `HOME`, locale, proxies, CA bundles, `PIP_*`, `UV_*`, `npm_config_*`), never
the build worker's secrets. Every line of output goes to `out` as it is produced, with
Heroku's `-----> ` step and ` !     ` warning prefixes; a failure raises `BuildError`, whose
message names the buildpack and what failed, after the failing command's output was passed to
`out`; no `BuildResult` is returned then.

Runtime contract for built apps (what the agent must do, and what buildpacks guarantee):
- The slug is packed from `app_dir` and unpacked anywhere else, maybe on another host: nothing
  in it depends on the build directory's absolute path, and it holds no symlink out of itself.
- The agent starts every process as `bash -c COMMAND` with the unpacked app directory as the
  working directory, after sourcing `.profile.d/*.sh` in lexical order in that same shell
  (Heroku's convention). Those scripts use `$PWD` to find the app.
- python: `.venv` is a virtualenv made relocatable: `.venv/bin/python` is a copied launcher
  that reads the standard library from the interpreter that built it, named by absolute path
  in `.venv/pyvenv.cfg`, so a host that runs the app needs that interpreter at that same path
  (pyenv's `~/.pyenv/versions/3.X.Y`, or the distribution's `/usr/bin/python3.X`); console
  scripts find `.venv/bin/python` relative to themselves. `.profile.d/python.sh` sets
  `VIRTUAL_ENV=$PWD/.venv`, puts `$PWD/.venv/bin` first on `PATH` and says on stderr when
  the interpreter is missing. `python` and console scripts then work as on Heroku; pip is
  not in `.venv` unless the app lists it (it runs from the interpreter's bundled wheel at
  build time); the interpreter must be readable by the user the processes run as.
- node: `.profile.d/node.sh` puts `$PWD/node_modules/.bin` first on `PATH` and defaults
  `NODE_ENV` to `production`; `node` itself comes from the running host's `PATH`.
- custom buildpacks keep the same contract by writing their own `.profile.d` scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gun import isolation
from gun.build.buildpacks import custom, node, null, python
from gun.build.buildpacks.base import (
    BuildError,
    BuildResult,
    Context,
    Deadline,
    Output,
    Partial,
    cache_lock,
)
from gun.isolation import UnixUser

__all__ = ["BuildError", "BuildResult", "Output", "Partial", "build", "detect"]


@dataclass(frozen=True)
class Builtin:
    name: str
    detect: Callable[[Path], bool]
    compile: Callable[[Context], dict[str, str]]


BUILTIN = tuple(Builtin(m.NAME, m.detect, m.compile) for m in (python, node, null))


def detect(app_dir: Path, env: Mapping[str, str]) -> str:
    """The name of the buildpack that `build` would use for this app."""
    spec = env.get("BUILDPACK", "").strip()
    if spec:
        return spec
    return next(pack.name for pack in BUILTIN if pack.detect(app_dir))


def build(
    app_dir: Path,
    cache_dir: Path,
    env: Mapping[str, str],
    out: Output,
    *,
    timeout: float = 900,
    user: UnixUser | None = None,
    partial: Partial | None = None,
) -> BuildResult:
    """Build the app in `app_dir` in place with the first buildpack that applies; every command
    runs as `user` if given (see Context). `partial`, if given, gets the start of a line a
    command has not ended yet (see `base.Lines`)."""
    app_dir = app_dir.resolve()
    if not app_dir.is_dir():
        raise BuildError(f"cannot build {str(app_dir)!r}: it is not a directory")
    cache_dir = cache_dir.resolve()
    if cache_dir.is_relative_to(app_dir):
        raise BuildError(f"the build cache {str(cache_dir)!r} must not be inside the app")
    cache_dir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        for path in (app_dir, cache_dir):
            where = isolation.blocked(path.parent, user)
            if where is not None:
                raise BuildError(isolation.unreachable("the build", path, user, where))
        (cache_dir / "home").mkdir(exist_ok=True)
    deadline = Deadline(timeout)
    name = detect(app_dir, env)
    ctx = Context(name, app_dir, cache_dir, env, out, deadline, user, partial)
    try:
        with cache_lock(cache_dir, deadline, out):
            if env.get("BUILDPACK", "").strip():
                types = custom.compile(ctx, name)
            else:
                pack = next(pack for pack in BUILTIN if name == pack.name)
                types = pack.compile(ctx)
    finally:
        if user is not None:
            isolation.take_back(cache_dir)
    return BuildResult(name, types)
