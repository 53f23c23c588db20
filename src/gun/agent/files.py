"""The instance's files: etc/env, etc/formation, current, and the cached desired state.

Who may reach what (gun.isolation): the app's user passes through ROOT, releases/ and cache/
(0711: it cannot list them) to its own releases/vN and cache/build; etc/ (env, formation, the
agent's credential), state/, log/, slugs/ and git/ are 0700, the agent's alone. The app gets
its config vars in its environment: nothing it runs needs etc/env.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import Counter
from pathlib import Path

from gun import atomic, envfile, isolation, protocol
from gun import formation as formations
from gun.errors import ProtocolError

KEEP_RELEASES = 10
LAYOUT = {
    ".": isolation.SEARCHABLE,
    "releases": isolation.SEARCHABLE,
    "cache": isolation.SEARCHABLE,
    "etc": isolation.PRIVATE_DIR,
    "state": isolation.PRIVATE_DIR,
    "log": isolation.PRIVATE_DIR,
    "slugs": isolation.PRIVATE_DIR,
    "git": isolation.PRIVATE_DIR,
}

log = logging.getLogger(__name__)


def lock_down(root: Path) -> None:
    """Give the instance's directories the modes of LAYOUT, making those that are missing."""
    for name, mode in LAYOUT.items():
        try:
            isolation.make_dir(root / name, mode)
        except OSError as e:
            log.warning("cannot give %s mode %o: %s", root / name, mode, e)


def write_etc(root: Path, env: dict[str, str], types: list[str]) -> None:
    """The seed's two files: the release's env and this instance's share of the formation."""
    atomic.write(root / "etc" / "env", envfile.format(env), mode=0o600)
    counts = Counter(types)
    atomic.write(
        root / "etc" / "formation", formations.format_counts(dict(sorted(counts.items()))) + "\n"
    )


def switch_current(root: Path, release_dir: Path) -> None:
    """Point ROOT/current at releases/vN atomically (a new symlink renamed over the old)."""
    link = root / "current"
    tmp = root / ".current.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(release_dir.relative_to(root))
    os.replace(tmp, link)


def prune_releases(root: Path, keep: int = KEEP_RELEASES) -> None:
    """Keep the newest `keep` release directories and whatever `current` points at."""
    releases = root / "releases"
    if not releases.exists():
        return
    current = (root / "current").resolve() if (root / "current").exists() else None
    found = sorted(
        (p for p in releases.iterdir() if p.is_dir() and p.name[1:].isdigit()),
        key=lambda p: int(p.name[1:]),
    )
    for old in found[:-keep]:
        if old.resolve() != current:
            shutil.rmtree(old, ignore_errors=True)


def prune_slugs(root: Path, keep: int = KEEP_RELEASES) -> None:
    """Keep the `keep` most recently used slugs of the slug cache."""
    try:
        cached = sorted((root / "slugs").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    except FileNotFoundError:
        return
    for old in cached[:-keep]:
        old.unlink(missing_ok=True)


def save_desired(root: Path, desired: protocol.Slice) -> None:
    """Cache the slice, as meta sent it (the same JSON), for an agent started without meta."""
    atomic.write(root / "state" / "desired.json", json.dumps(protocol.to_json(desired)), mode=0o600)


def load_desired(root: Path) -> protocol.Slice | None:
    """The cached slice, read as one from meta is; None if there is none. One that cannot be
    read (an older protocol's, a damaged file) is said in one line and ignored: the agent asks
    meta again."""
    path = root / "state" / "desired.json"
    try:
        return protocol.read_slice(json.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except OSError as e:
        why = e.strerror or str(e)
    except ValueError:
        why = "it is not JSON"
    except ProtocolError as e:
        why = e.message
    log.warning("ignoring the cached desired state %s (%s); asking meta", path, why)
    return None
