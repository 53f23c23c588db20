"""The git strategy's repository work: meta's mirror of an app's repo, an instance's checkout.

Meta keeps a bare mirror per app to resolve a REF to one commit and read its Procfile, so
every instance builds the same commit. Each instance keeps a checkout and, per the seed,
runs `git fetch origin` + `git reset --hard COMMIT` in it before building.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gun.errors import InvalidParams
from gun.model import show

TIMEOUT = 600.0
# what git itself accepts as a remote: a URL with a scheme, or scp-like user@host:path
# (no spaces or control characters: git would refuse some, and argv cannot hold a NUL)
_URL = re.compile(
    r"^(https?|ssh|git|file)://[^\s\x00-\x1f\x7f]+\Z"
    r"|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s\x00-\x1f\x7f]+\Z"
)
REPO_MAX = 2000


class GitError(InvalidParams):
    """A git command failed; the message names it and git's last line."""


def check_repo_url(url: str) -> str:
    if len(url) > REPO_MAX:
        raise InvalidParams(
            f"repo {show(url)} is {len(url)} characters long: use at most {REPO_MAX}"
        )
    if not _URL.match(url) or url.startswith("-"):
        raise InvalidParams(
            f"repo {show(url)} is not a git URL: use https://, ssh://, git://, file:// "
            "or user@host:path"
        )
    return url


def git(cwd: Path | None, *args: str, timeout: float = TIMEOUT) -> str:
    argv = ["git", *(["-C", str(cwd)] if cwd else []), *args]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"},
        )
    except FileNotFoundError:
        raise GitError("git is not installed on this host") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took over {timeout:g} seconds") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise GitError(f"git {args[0]} failed: {last}")
    return done.stdout


def mirror(url: str, directory: Path) -> None:
    """Make or refresh a bare mirror of `url` at `directory`."""
    if (directory / "HEAD").exists():
        git(directory, "remote", "set-url", "origin", url)
        git(directory, "fetch", "--prune", "--tags", "origin")
    else:
        directory.parent.mkdir(parents=True, exist_ok=True)
        git(None, "clone", "--mirror", "--quiet", "--", url, str(directory))


def resolve(directory: Path, ref: str) -> str:
    """The full sha of the commit REF names in the repository, or a GitError naming REF."""
    if ref.startswith("-"):
        raise GitError(f"REF {ref!r} is not a git revision")
    try:
        return git(
            directory, "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}"
        ).strip()
    except GitError:
        raise GitError(f"REF {ref!r} does not exist in the app's repository") from None


def subject(directory: Path, commit: str) -> str:
    return git(directory, "log", "-1", "--format=%s", commit).strip()


def read_file(directory: Path, commit: str, path: str) -> bytes | None:
    """A file of the commit, None if it has none at `path`."""
    done = subprocess.run(
        ["git", "-C", str(directory), "show", f"{commit}:{path}"],
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    return done.stdout if done.returncode == 0 else None


def checkout(url: str, directory: Path, commit: str) -> None:
    """The seed's deploy step: `git fetch origin` and `git reset --hard COMMIT` in a checkout
    (cloned first if there is none)."""
    if not (directory / ".git").exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        git(None, "clone", "--quiet", "--no-checkout", "--", url, str(directory))
    git(directory, "remote", "set-url", "origin", url)
    git(directory, "fetch", "--quiet", "--tags", "origin")
    git(directory, "reset", "--quiet", "--hard", commit)
    git(directory, "clean", "-qdffx")
