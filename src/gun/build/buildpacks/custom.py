"""The custom buildpack: one that follows Heroku's buildpack API, named by the config var BUILDPACK.

`BUILDPACK` is an absolute path on the build host, or a git URL (`https://...`, `ssh://...`,
`file://...`, `git@host:path`), optionally with `#ref` (a branch or tag). A git buildpack is
fetched into the app's build cache and updated from its URL on every build.

The buildpack's programs, run with the build host's environment (not the app's config vars):
- `bin/detect BUILD_DIR` (required): exit 0 and print a name, or the build fails.
- `bin/compile BUILD_DIR CACHE_DIR ENV_DIR` (required): builds in place. CACHE_DIR is kept
  between builds of the app (one per buildpack); ENV_DIR holds one file per config var, named
  by the key, holding the value. Its output is passed through as it is.
- `bin/release BUILD_DIR` (optional): prints YAML; gun reads its `default_process_types`
  mapping (a strict reader for that one mapping: plain, 'single' or "double" quoted commands).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from gun import isolation
from gun.build.buildpacks.base import BuildError, Context, host_env

_GIT_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|[\w.-]+@[\w.-]+:)")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_TYPE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)\s*:(?:\s+(?P<value>.*))?\Z")
_PLAIN_UNSAFE = tuple("[]{}>|*&!%@`\"'")


def compile(ctx: Context, spec: str) -> dict[str, str]:
    buildpack = _locate(ctx, spec)
    programs = {name: buildpack / "bin" / name for name in ("detect", "compile", "release")}
    for name in ("detect", "compile"):
        if not programs[name].is_file() or not os.access(programs[name], os.X_OK):
            raise ctx.fail(f"it has no executable bin/{name}")
    env = host_env()
    code, detected = ctx.run(
        [programs["detect"], ctx.app_dir], what="bin/detect", env=env, indent="", capture=True
    )
    if code != 0:
        raise ctx.fail(f"bin/detect exited {code}, so it does not apply to this app")
    ctx.step(f"{detected.strip() or spec} app detected")
    cache = ctx.cache_dir / "custom" / hashlib.sha256(spec.encode()).hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    # next to the app's tree (in meta's scratch directory, emptied when meta starts): the
    # config vars it holds must not outlive a meta killed mid-build, in the shared /tmp or in
    # the app's build cache
    env_dir = Path(tempfile.mkdtemp(prefix="gun-env-", dir=ctx.app_dir.parent))
    try:
        for key, value in ctx.config.items():
            if not _KEY.match(key):
                raise ctx.fail(f"config var {key!r} cannot be a file name in ENV_DIR")
            (env_dir / key).write_text(value)
        if ctx.user is not None:
            isolation.hand_over(ctx.user, env_dir)
        argv = [programs["compile"], ctx.app_dir, cache, env_dir]
        code, _ = ctx.run(argv, what="bin/compile", env=env, indent="")
    finally:
        shutil.rmtree(env_dir)
    if code != 0:
        raise ctx.fail(f"bin/compile exited {code}")
    if not programs["release"].is_file():
        return {}
    code, yaml = ctx.run(
        [programs["release"], ctx.app_dir], what="bin/release", env=env, indent="", capture=True
    )
    if code != 0:
        raise ctx.fail(f"bin/release exited {code}")
    try:
        return parse_release(yaml)
    except BuildError as e:
        raise ctx.fail(e.message) from None


def _locate(ctx: Context, spec: str) -> Path:
    if _GIT_URL.match(spec):
        return _fetch(ctx, spec)
    path = Path(spec)
    if not path.is_absolute():
        raise ctx.fail("BUILDPACK must be an absolute path on the build host or a git URL")
    if not path.is_dir():
        raise ctx.fail(f"{spec} is not a directory on the build host")
    return path


def _fetch(ctx: Context, spec: str) -> Path:
    """Fetch the buildpack into the build cache: once, then updated on every build."""
    url, _, ref = spec.partition("#")
    if ref.startswith("-"):
        raise ctx.fail(f"#{ref} is not a git branch or tag")
    stem = re.sub(r"[^\w.-]", "_", url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))
    checkout = (
        ctx.cache_dir / "buildpacks" / f"{stem}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"
    )
    env = host_env() | {"GIT_TERMINAL_PROMPT": "0"}
    if not (checkout / ".git").is_dir():
        shutil.rmtree(checkout, ignore_errors=True)
        checkout.mkdir(parents=True)
        ctx.check(["git", "init", "--quiet", checkout], what="git init", env=env)
    ctx.step(f"Fetching buildpack {url}" + (f" at {ref}" if ref else ""))
    git = ["git", "-C", str(checkout)]
    fetch = [*git, "fetch", "--quiet", "--depth", "1", "--no-tags", url, ref or "HEAD"]
    ctx.check(fetch, what="git fetch", env=env)
    ctx.check(
        [*git, "checkout", "--quiet", "--force", "--detach", "FETCH_HEAD"],
        what="git checkout",
        env=env,
    )
    ctx.check([*git, "clean", "-ffdxq"], what="git clean", env=env)
    return checkout


def parse_release(text: str) -> dict[str, str]:
    """`default_process_types` from `bin/release`'s YAML; other keys are ignored."""
    types: dict[str, str] = {}
    inside = False
    indent: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#") or line in ("---", "..."):
            continue
        where = f"bin/release output line {number}"
        if not line[0].isspace():
            key, _, rest = line.partition(":")
            inside = False
            if key.strip() != "default_process_types":
                continue
            rest = _strip_comment(rest).strip()
            if rest == "":
                inside = True
            elif rest not in ("{}", "~", "null"):
                raise BuildError(f"{where}: default_process_types must be a mapping of commands")
            continue
        if not inside:
            continue
        width = len(line) - len(line.lstrip())
        indent = width if indent is None else indent
        m = _TYPE.match(line.strip())
        if width != indent or m is None:
            raise BuildError(f"{where}: {line.strip()!r} is not `type: command`")
        if m["name"] in types:
            raise BuildError(f"{where}: process type {m['name']!r} appears twice")
        types[m["name"]] = _scalar(m["value"] or "", where)
    return types


def _scalar(text: str, where: str) -> str:
    text = text.strip()
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'") or "'" in text[1:-1].replace("''", ""):
            raise BuildError(f"{where}: {text!r} is not a single-quoted string")
        value = text[1:-1].replace("''", "'")
    elif text.startswith('"'):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, str):
            raise BuildError(f"{where}: {text!r} is not a double-quoted string gun can read")
    else:
        value = _strip_comment(text).strip()
        if value.startswith(_PLAIN_UNSAFE) or ": " in value:
            raise BuildError(f"{where}: quote the command {value!r}")
    if not value:
        raise BuildError(f"{where}: the command is empty")
    return value


def _strip_comment(text: str) -> str:
    """A plain YAML scalar ends where ` #` starts a comment."""
    at = text.find(" #")
    return text if at < 0 else text[:at]
