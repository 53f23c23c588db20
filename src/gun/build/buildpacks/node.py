"""The node buildpack: `npm ci` with the app's npm cache, `npm run build` when the script exists.

Detected by `package.json`. Uses the `node` and `npm` on the build host's PATH (the app runs on
the node of the host it is unpacked on). As on Heroku: devDependencies are installed for the
build and pruned after it; without a `package-lock.json` it falls back to `npm install`, with a
warning. `.profile.d/node.sh` puts `$PWD/node_modules/.bin` first on PATH and defaults
`NODE_ENV` to `production`. `node_modules/.bin` holds relative symlinks, so it moves as is.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gun.build.buildpacks.base import Context

NAME = "node"
_PROFILE = """\
# Written by gun's node buildpack; sourced with the app directory as the working directory.
export PATH="$PWD/node_modules/.bin:$PATH"
export NODE_ENV="${NODE_ENV:-production}"
"""


def detect(app_dir: Path) -> bool:
    return (app_dir / "package.json").is_file()


def compile(ctx: Context) -> dict[str, str]:
    ctx.step("Node.js app detected")
    try:
        package = json.loads((ctx.app_dir / "package.json").read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ctx.fail(f"package.json is not valid JSON ({e})") from None
    if not isinstance(package, dict):
        raise ctx.fail("package.json does not hold a JSON object")
    env = ctx.build_env(
        npm_config_cache=str(ctx.cache_dir / "node" / "npm"),
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="false",
        npm_config_progress="false",
    )
    npm = shutil.which("npm", path=env.get("PATH"))
    node = shutil.which("node", path=env.get("PATH"))
    if npm is None or node is None:
        raise ctx.fail("node and npm must be on the build host's PATH, and are not")
    _, version = ctx.run([node, "--version"], what="node --version", env=env, capture=True)
    ctx.step(f"Using node {version.strip()} ({node}) from the build host")
    if (ctx.app_dir / "package-lock.json").is_file():
        ctx.step("Installing dependencies with npm ci")
        install = [npm, "ci", "--include=dev", "--prefer-offline"]
    else:
        ctx.warn("package.json has no package-lock.json beside it, so npm ci cannot run;")
        ctx.warn("using npm install: commit package-lock.json for repeatable builds")
        install = [npm, "install", "--include=dev", "--prefer-offline", "--no-package-lock"]
    ctx.check(install, what=" ".join(install[:2]), env=env)
    scripts = package.get("scripts")
    if isinstance(scripts, dict) and "build" in scripts:
        ctx.step("Running npm run build")
        ctx.check([npm, "run", "build"], what="npm run build", env=env)
    if package.get("devDependencies") and (ctx.app_dir / "node_modules").is_dir():
        ctx.step("Pruning devDependencies")
        ctx.check([npm, "prune", "--omit=dev"], what="npm prune", env=env)
    profile_dir = ctx.app_dir / ".profile.d"
    profile_dir.mkdir(exist_ok=True)
    (profile_dir / "node.sh").write_text(_PROFILE)
    ctx.step("Wrote .profile.d/node.sh: node_modules/.bin first on PATH, wherever the app runs")
    return {}
