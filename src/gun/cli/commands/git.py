"""git.compare: the commits between the deployed commit and a local ref."""

from __future__ import annotations

from typing import Any

import click

from gun import gitinfo
from gun.cli import output
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import GunError, NotFound, Unavailable, UsageError
from gun.git import Git

# the user's own git, as it is set up (the user's environment), for as long as it takes
_git = Git(
    missing=(Unavailable, "git is not installed: install it to compare commits"), timeout=None
)


def deployed_commit(ctx: Ctx, name: str, ref: str) -> str:
    releases: list[dict[str, Any]] = ctx.client().get(f"/v1/apps/{p(name)}/releases")
    current = next((r for r in releases if r["current"]), None)
    if current is None:
        raise NotFound(f"app {name!r} has no current release, so no deployed commit to compare")
    if not current["commit"]:
        raise NotFound(
            f"app {name!r} has no deployed commit to compare {ref} with: its current release "
            f"v{current['version']} was not built from a git commit"
        )
    return str(current["commit"])


@click.command("git.compare")
@click.argument("ref", default="HEAD")
@click.option("--dir", "directory", default=".", show_default=True, help="the local git repo")
@app_option
@pass_ctx
def compare(ctx: Ctx, ref: str, directory: str, app: str | None) -> None:
    """Commits between the deployed commit and REF: gun git.compare[:REF] (default HEAD)."""
    name = need_app(app)
    if _git.run(directory, "rev-parse", "--git-dir").returncode != 0:
        raise UsageError(f"dir={directory} is not a git repository")
    if ref.startswith("-"):
        raise UsageError(f"{ref!r} is not a git ref: name a branch, tag or commit")
    head = _git.commit(directory, ref)
    if head is None:
        raise UsageError(f"{ref!r} is not a commit in {directory}: name a branch, tag or commit")
    base = deployed_commit(ctx, name, ref)
    if _git.commit(directory, base) is None:
        raise NotFound(
            f"the deployed commit {base[:7]} of app {name!r} is not in {directory}: "
            "fetch it (git fetch) and try again"
        )
    log = _git.run(directory, "log", f"--format={gitinfo.LOG_FORMAT}", f"{base}..{head}")
    if log.returncode != 0:
        raise GunError(
            f"git log {base[:7]}..{head[:7]} failed in {directory}: {log.stderr.strip()}"
        )
    commits = gitinfo.parse_log(log.stdout)
    origin = _git.run(directory, "remote", "get-url", "origin")
    url = gitinfo.github_compare_url(origin.stdout, base, head) if origin.returncode == 0 else None
    if ctx.json:
        output.emit_json(
            {
                "base": base,
                "head": head,
                "commits": [c._asdict() for c in commits],
                "compare_url": url,
            }
        )
        return
    if base == head:
        output.line(f"Up to date with {head[:7]}")
        return
    for c in commits:
        output.line(f"{c.sha[:7]}  {c.subject}  ({c.author})")
    if not commits:
        output.line(f"No new commits: the deployed {base[:7]} is ahead of {ref} ({head[:7]})")
    if url:
        output.line(f"Compare: {url}")
