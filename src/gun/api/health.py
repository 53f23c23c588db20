"""meta's /health: 200 `{"status": "ok"}`, or 503 `{"status": "unhealthy", "problems": [...]}`.

It is unhealthy, one sentence per problem, while:
- one of meta's loops (the instance watch) is failing: its passes are being retried;
- a filesystem meta writes to has less than MIN_FREE bytes available: its data directory, the
  SQLite database's, a local slug store's, the temporary directory uploads go through.
What a request met (a write that did not fit) is said in that request's 507 answer; /health says
how things are now.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from gun import __version__
from gun.build.slugstore import LocalSlugStore
from gun.core import Platform
from gun.loops import Loops

MIN_FREE = 1024 * 1024  # bytes: below this a filesystem counts as full


def storage(platform: Platform) -> list[Path]:
    """The directories meta writes to."""
    paths = [Path(tempfile.gettempdir())]
    engine = platform.store.engine
    if engine.dialect.name == "sqlite" and engine.url.database:
        paths.append(Path(engine.url.database).parent)
    if isinstance(platform.slugs.slug_store, LocalSlugStore):
        paths.append(platform.slugs.slug_store.root)
    if platform.builds.options is not None:  # builds, and the uploads in its work directory
        paths += [platform.builds.options.home, platform.builds.options.home / "work"]
    return paths


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def low_space(paths: Iterable[Path], minimum: int = MIN_FREE) -> list[str]:
    """A sentence for each filesystem of `paths` with less than `minimum` bytes available (to
    meta's user: root may use the blocks kept for root), named by the first path on it."""
    found, seen = [], set()
    for path in paths:
        where = _existing(path)
        try:
            st = os.statvfs(where)
            dev = os.stat(where).st_dev
        except OSError:
            continue
        if dev in seen:
            continue
        seen.add(dev)
        free = (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize
        if free < minimum:
            found.append(f"no space left on {path} ({free} bytes available)")
    return found


def answer(platform: Platform, loops: Loops) -> tuple[int, dict[str, object]]:
    """The status and body of /health."""
    problems = [
        f"meta's {name} loop is failing ({why}): retrying" for name, why in loops.down().items()
    ]
    problems += low_space(storage(platform))
    if not problems:
        return 200, {"status": "ok", "version": __version__}
    return 503, {"status": "unhealthy", "version": __version__, "problems": problems}
