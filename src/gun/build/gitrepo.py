"""The git strategy's repository work: meta's mirror of an app's repo, an instance's checkout.

Meta keeps a bare mirror per app to resolve a REF to one commit and read its Procfile, so
every instance builds the same commit. Each instance keeps a checkout and, per the seed,
runs `git fetch origin` + `git reset --hard COMMIT` in it before building.
"""

from __future__ import annotations

import re
from pathlib import Path

from gun.errors import InvalidParams
from gun.git import Git, GitError
from gun.model import show

# what git itself accepts as a remote: a URL with a scheme, or scp-like user@host:path
# (no spaces or control characters: git would refuse some, and argv cannot hold a NUL)
_URL = re.compile(
    r"^(https?|ssh|git|file)://[^\s\x00-\x1f\x7f]+\Z"
    r"|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s\x00-\x1f\x7f]+\Z"
)
REPO_MAX = 2000


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


# meta's and the agent's git: nothing of their environment (tokens, database URL), no prompt
_git = Git(env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"})


def mirror(url: str, directory: Path) -> None:
    """Make or refresh a bare mirror of `url` at `directory`."""
    if (directory / "HEAD").exists():
        _git.output(directory, "remote", "set-url", "origin", url)
        _git.output(directory, "fetch", "--prune", "--tags", "origin")
    else:
        directory.parent.mkdir(parents=True, exist_ok=True)
        _git.output(None, "clone", "--mirror", "--quiet", "--", url, str(directory))


def resolve(directory: Path, ref: str) -> str:
    """The full sha of the commit REF names in the repository, or a GitError naming REF."""
    if ref.startswith("-"):
        raise GitError(f"REF {ref!r} is not a git revision")
    commit = _git.commit(directory, ref)
    if commit is None:
        raise GitError(f"REF {ref!r} does not exist in the app's repository")
    return commit


def subject(directory: Path, commit: str) -> str:
    return _git.subject(directory, commit)


def read_file(directory: Path, commit: str, path: str) -> bytes | None:
    """A file of the commit, None if it has none at `path`."""
    done = _git.run_bytes(directory, "show", f"{commit}:{path}")
    return done.stdout if done.returncode == 0 else None


def checkout(url: str, directory: Path, commit: str) -> None:
    """The seed's deploy step: `git fetch origin` and `git reset --hard COMMIT` in a checkout
    (cloned first if there is none)."""
    if not (directory / ".git").exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        _git.output(None, "clone", "--quiet", "--no-checkout", "--", url, str(directory))
    _git.output(directory, "remote", "set-url", "origin", url)
    _git.output(directory, "fetch", "--quiet", "--tags", "origin")
    _git.output(directory, "reset", "--quiet", "--hard", commit)
    _git.output(directory, "clean", "-qdffx")
