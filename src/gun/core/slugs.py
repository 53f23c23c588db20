"""Slugs: gzipped tarballs of a built app, content-addressed by sha256, one row per app and
slug. The slug store (a directory, or S3) keeps those of the newest `keep` releases that have
one; older ones are pruned after each release, their rows kept as history, so a rollback to
one is refused by name."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import BinaryIO

from gun import procfile
from gun.build.slugstore import SlugStore, parse_key, slug_key
from gun.core.access import authorize
from gun.errors import InvalidParams, NotFound
from gun.model import Principal
from gun.store import Store

SLUG_MAX_BYTES = 500 * 1024 * 1024  # GUN_SLUG_MAX_BYTES: Heroku's compressed slug limit
PROCFILE_MAX_BYTES = 64 * 1024


def read_procfile(path: Path) -> dict[str, str]:
    """The process types of a slug (`./app/Procfile`), read without unpacking anything else."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name.lstrip("./") in ("app/Procfile", "Procfile"):
                    if not member.isfile() or member.size > PROCFILE_MAX_BYTES:
                        raise InvalidParams("the slug's Procfile is not a regular file under 64 kB")
                    f = tar.extractfile(member)
                    assert f is not None
                    return procfile.parse(f.read(), "Procfile")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise InvalidParams(f"the slug is not a gzipped tarball ({type(e).__name__})") from None
    raise InvalidParams(
        "the slug has no Procfile at ./app/Procfile: add one naming your "
        "process types, e.g. `web: python app.py`"
    )


class Slugs:
    def __init__(self, store: Store, slug_store: SlugStore | None, keep: int) -> None:
        self.store = store
        self.slug_store = slug_store  # None: this meta takes no slugs
        self.keep = keep  # the slugs of this many newest releases are kept (GUN_KEEP_RELEASES)

    def add(
        self,
        who: Principal,
        name: str,
        path: Path,
        sha256: str,
        size: int,
        expected: str | None = None,
    ) -> tuple[int, dict[str, str]]:
        """Store an uploaded slug (already hashed) and record it; returns (id, process types)."""
        authorize(who, "developer", name)
        if expected is not None and expected != sha256:
            raise InvalidParams(
                f"the slug's sha256 is {sha256}, not {expected} as the client "
                "said: the upload was damaged"
            )
        return self.put(who, name, path, sha256, size)

    def put(
        self,
        who: Principal,
        name: str,
        path: Path,
        sha256: str,
        size: int,
        *,
        commit: str | None = None,
        commit_description: str | None = None,
    ) -> tuple[int, dict[str, str]]:
        """Put a slug (or find the same one stored already) and record it."""
        types = read_procfile(path)
        with self.store.read() as tx:
            app = tx.apps.existing(name)
            existing = tx.slugs.by_sha(app.id, sha256)
        if existing is not None:
            return existing, types
        if self.slug_store is None:
            raise InvalidParams("this meta was started without a slug store: it takes no slugs")
        self.slug_store.put(name, path, sha256)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            slug_id = tx.slugs.insert(app.id, sha256, size, types, commit, commit_description)
            tx.events.record(app, who.name, "slug.create", {"sha256": sha256, "size": size})
        return slug_id, types

    def kept(self, name: str, sha256: str) -> bool:
        """Whether the slug store still has this slug of the app (or keeps none at all)."""
        return self.slug_store is None or self.slug_store.exists(slug_key(name, sha256))

    def open(self, name: str, sha256: str) -> BinaryIO:
        """The stored slug, to read."""
        if self.slug_store is None:
            raise NotFound(f"slug {sha256} does not exist: this meta keeps no slugs")
        return self.slug_store.open(slug_key(name, sha256))

    def prune(self, name: str) -> list[str]:
        """Remove stored slugs no release among the newest `keep` uses; their rows stay
        (history), so a rollback to one is refused by name. Returns the keys removed."""
        if self.slug_store is None:
            return []
        with self.store.read() as tx:
            app = tx.apps.find(name)
            if app is None:
                return []
            keep = tx.slugs.in_use(app.id, self.keep)
        removed = [k for k in self.slug_store.keys(name) if parse_key(k)[1] not in keep]
        for key in removed:
            self.slug_store.delete(key)
        return removed
