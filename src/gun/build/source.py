"""What `deploy` uploads: `git archive REF` of a git work tree, or a directory as it is.

Both are gzipped tars of `./app`, like slugs, so meta unpacks them with the same checks.
A directory inside a larger repository deploys only its own subtree (`REF:path/to/dir`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gun.build.slug import pack, sha256_of
from gun.errors import UsageError
from gun.git import Git


@dataclass(frozen=True)
class Source:
    path: Path
    sha256: str
    size: int
    commit: str | None  # full sha, when packed from git
    subject: str | None  # the commit's subject line
    described: str  # for the terminal: "git archive 1a2b3c4 (main)" or the directory
    dirty: bool = False  # a git work tree with changes that are not in the commit


# the user's own git, as it is set up (the user's environment)
_git = Git(
    missing=(UsageError, "git is not installed: deploy the directory without a REF"), timeout=120
)


def work_tree_prefix(directory: Path) -> str | None:
    """The directory's path inside its git work tree ("" at the top), None if not in one."""
    done = _git.run(directory, "rev-parse", "--is-inside-work-tree", "--show-prefix")
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not lines or lines[0] != "true":
        return None
    return lines[1] if len(lines) > 1 else ""


def resolve(directory: Path, ref: str) -> tuple[str, str]:
    """(full commit sha, subject) of REF, or a UsageError naming it."""
    if ref.startswith("-"):
        raise UsageError(f"REF {ref!r} is not a git revision")
    commit = _git.commit(directory, ref)
    if commit is None:
        raise UsageError(f"REF {ref!r} does not exist in the git repository at {directory}")
    return commit, _git.subject(directory, commit)


def pack_source(directory: Path, ref: str | None, dest: Path) -> Source:
    """Pack `git archive REF` (default HEAD) of the work tree at `directory`, or the directory
    itself when it is not in a git work tree (a REF is then an error)."""
    if not directory.is_dir():
        raise UsageError(f"dir={directory} is not a directory")
    prefix = work_tree_prefix(directory)
    if prefix is None:
        if ref is not None:
            raise UsageError(
                f"cannot deploy REF {ref!r}: dir={directory} is not in a git work tree "
                "(leave REF out to deploy the directory as it is)"
            )
        slug = pack(directory, dest)
        return Source(dest, slug.sha256, slug.size, None, None, f"directory {directory}")
    commit, subject = resolve(directory, ref or "HEAD")
    tree = f"{commit}:{prefix}" if prefix else commit
    if prefix and _git.run(directory, "cat-file", "-e", tree).returncode != 0:
        raise UsageError(
            f"dir={directory} is not in commit {commit[:7]} ({ref or 'HEAD'}): commit it first"
        )
    top = Path(_git.run(directory, "rev-parse", "--show-toplevel").stdout.strip())
    # from the top: in a subdirectory, git archive would also limit the tree to that path
    done = _git.run(
        top, "archive", "--format=tar.gz", "--prefix=app/", "-o", str(dest.resolve()), tree
    )
    if done.returncode != 0:
        raise UsageError(f"git archive of {tree} failed: {done.stderr.strip() or done.returncode}")
    dirty = bool(_git.run(directory, "status", "--porcelain", "--", ".").stdout.strip())
    label = f"git archive {commit[:7]}" + (f" ({ref})" if ref else "")
    return Source(dest, sha256_of(dest), dest.stat().st_size, commit, subject, label, dirty)
