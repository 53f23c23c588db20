"""Files written whole or not at all: new contents go to a temporary file beside the target,
which is renamed over it once complete, so a reader sees the old file or the new one, never part.

Every atomic write in gun comes here (the agent's state, process records, the drain's frame ids,
the CLI's credentials, slugs). The rules:
- the temporary file is `.NAME.XXXXXXXX.tmp` in the target's directory (made if missing), created
  exclusively, so two writers of one target never share it; its mode is `mode` (less the umask);
- with `sync`, it is fsynced before the rename (a crash of the machine then leaves the old file
  or the new one); without, only the rename is atomic (a crash of the process is covered);
- when anything fails (a full disk, the block raising) the temporary file is removed, the target
  is untouched, and the error is raised as it came, an OSError naming the target rather than the
  temporary file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def writer(path: Path, mode: int = 0o644, *, sync: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write the new contents of `path` into; they replace `path` when the
    block ends without an exception (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = _create(path, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _naming(e, tmp, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write(path: Path, data: str | bytes, mode: int = 0o644, *, sync: bool = True) -> None:
    """Replace path's contents with data (text is written as UTF-8), all or nothing."""
    with writer(path, mode, sync=sync) as f:
        f.write(data.encode() if isinstance(data, str) else data)


def fsync_dir(directory: Path) -> None:
    """Make the renames in `directory` durable (after `writer`, when a crash of the machine must
    not lose the new name)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create(path: Path, mode: int) -> tuple[Path, int]:
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        except FileExistsError:
            continue
        except OSError as e:
            raise _naming(e, tmp, path) from None


def _naming(e: OSError, tmp: Path, path: Path) -> OSError:
    """e, naming path where it named the temporary file (or nothing)."""
    if e.filename not in (None, str(tmp)):
        return e
    if e.filename2 is None:
        e.filename = str(path)
        return e
    return OSError(e.errno, e.strerror, str(path))  # the same subclass, without `tmp -> path`
