"""Git facts for `gun git.compare`, parsed from text (pure): compare URLs and `git log` lines."""

from __future__ import annotations

import re
from typing import NamedTuple

# The git log format parse_log reads: sha, author, subject, NUL-separated, one commit a line.
LOG_FORMAT = "%H%x00%an%x00%s"

_GITHUB = re.compile(
    r"(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"(?P<owner>[A-Za-z0-9-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?"
)


class Commit(NamedTuple):
    sha: str
    author: str
    subject: str


def github_compare_url(remote_url: str, base: str, head: str) -> str | None:
    """GitHub's compare page from `base` to `head` for a GitHub remote; None for other hosts."""
    m = _GITHUB.fullmatch(remote_url.strip())
    if m is None:
        return None
    return f"https://github.com/{m['owner']}/{m['repo']}/compare/{base}...{head}"


def parse_log(text: str) -> list[Commit]:
    """The commits in the output of `git log --format=LOG_FORMAT`, in its order."""
    commits = []
    # split("\n"), not splitlines(): that also splits on \x1c, \x85 and \u2028 in subjects
    for number, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        fields = line.split("\x00", 2)
        if len(fields) != 3 or not fields[0]:
            raise ValueError(f"git log line {number} is not sha NUL author NUL subject: {line!r}")
        commits.append(Commit(*fields))
    return commits
