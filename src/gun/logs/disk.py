"""What the drain says when it cannot write to its disk.

When the archive or the frame-id file cannot be written, the drain keeps nothing of the body
it was taking and answers 503, so that a logplex sender retries and nothing is lost; `/health`
says so until a write succeeds again. The sentence names the filesystem: for a full one
(ENOSPC, or EDQUOT: the quota of the drain's user) "no space left on MOUNT", the mount point of
the path written; for any other error the error itself.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from gun.errors import Unavailable

FULL = (errno.ENOSPC, errno.EDQUOT)


class CannotWrite(Unavailable):
    """The drain could not write to its disk: HTTP 503."""


def cannot_write(e: OSError, path: Path, what: str) -> CannotWrite:
    """The sentence for `e`, raised writing `path` (which holds `what`)."""
    if e.errno in FULL:
        return CannotWrite(
            f"no space left on {mount_point(path)}, where the drain keeps {what} ({path}): "
            "free some space there; senders retry"
        )
    return CannotWrite(f"the drain cannot write {what} at {path}: {e.strerror or e}")


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem `path` is on, symbolic links followed (`path`
    itself need not exist)."""
    p = Path(os.path.realpath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p):
        p = p.parent
    return p
