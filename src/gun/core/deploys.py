"""Deploys: a slug arrives, its Procfile is read, and a release `vN` runs it."""

from __future__ import annotations

import tarfile
from pathlib import Path

from gun import procfile
from gun.build.slugstore import SlugStore, parse_key
from gun.core.access import authorize
from gun.core.placing import write_placement
from gun.core.release_phase import ReleasePhase
from gun.errors import InvalidParams, NotFound
from gun.model import App, Principal, Release, check_no_nul, check_process_type
from gun.store import Store, Tx

SLUG_MAX_BYTES = 500 * 1024 * 1024  # GUN_SLUG_MAX_BYTES: Heroku's compressed slug limit
PROCFILE_MAX_BYTES = 64 * 1024


def check_process_types(types: dict[str, str]) -> None:
    """What a release runs, from a Procfile (parsed strictly already) or a buildpack's
    defaults: names the agent can use in process names and files, commands execve can take."""
    for name, command in types.items():
        check_process_type(name)
        check_no_nul(f"the command of process type {name!r}", command)


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


class Deploys:
    """Slugs in, releases out. The `release_*` methods that take a transaction write in the
    caller's (a build's), the others in their own."""

    def __init__(
        self,
        store: Store,
        slugs: SlugStore | None,
        keep_slugs: int,
        release_phase: ReleasePhase,
    ) -> None:
        self.store = store
        self.slugs = slugs
        self.keep_slugs = keep_slugs  # slugs of the newest releases the slug store keeps
        self.release_phase = release_phase

    def add_slug(
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
        return self.store_slug(who, name, path, sha256, size)

    def store_slug(
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
        if self.slugs is None:
            raise InvalidParams("this meta was started without a slug store: it takes no slugs")
        self.slugs.put(name, path, sha256)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            slug_id = tx.slugs.insert(app.id, sha256, size, types, commit, commit_description)
            tx.events.record(app, who.name, "slug.create", {"sha256": sha256, "size": size})
        return slug_id, types

    def release(
        self, who: Principal, name: str, slug_id: int, description: str | None = None
    ) -> Release:
        """A new release of the slug with the current config vars."""
        authorize(who, "developer", name)
        with self.store.write() as tx:
            release = self.release_slug(tx, who, name, slug_id, description=description)
        self.prune_slugs(name)
        return release

    def release_slug(
        self,
        tx: Tx,
        who: Principal,
        name: str,
        slug_id: int,
        *,
        description: str | None = None,
        commit: str | None = None,
    ) -> Release:
        """Release the slug: `pending` until its release command succeeds, if it has one."""
        app = tx.apps.existing(name, lock=True)
        slug = tx.slugs.get(slug_id)
        if slug is None or tx.slugs.by_sha(app.id, slug[0]) != slug_id:
            raise NotFound(f"slug {slug_id} of app {name!r} does not exist")
        sha256, _, types = slug
        return self._release_code(
            tx, who, app, types, slug_id, commit, description or f"Deploy {sha256[:7]}"
        )

    def release_commit(
        self,
        tx: Tx,
        who: Principal,
        name: str,
        commit: str,
        types: dict[str, str],
        description: str,
    ) -> Release:
        """Release a commit that instances fetch and build themselves (strategy git)."""
        app = tx.apps.existing(name, lock=True)
        return self._release_code(tx, who, app, types, None, commit, description)

    def _release_code(
        self,
        tx: Tx,
        who: Principal,
        app: App,
        types: dict[str, str],
        slug_id: int | None,
        commit: str | None,
        description: str,
    ) -> Release:
        """`pending` until its release command succeeds, if it has one; else rolled out."""
        self.release_phase.refuse_while_pending(tx, app, "deploy")
        check_process_types(types)
        totals = tx.formation.of(app.id)
        missing = sorted(t for t, n in totals.items() if n > 0 and t not in types)
        if missing:
            words = " ".join(f"{t}=0" for t in missing)
            raise InvalidParams(
                f"the formation runs {', '.join(missing)} but this build's Procfile has no "
                f"such process type: add it to the Procfile or `gun scale {words}` first"
            )
        if not totals and "web" in types:
            tx.formation.put(app.id, {"web": 1})  # Heroku's default on the first deploy
        pending = procfile.RELEASE in types
        release = tx.releases.insert(
            app,
            description=description,
            config=tx.config.of(app.id),
            process_types=types,
            slug_id=slug_id,
            commit=commit,
            actor=who.name,
            status="pending" if pending else "succeeded",
        )
        if pending:
            tx.apps.bump_generation(
                app.id
            )  # the instance that runs the release command hears of it
        else:
            write_placement(tx, app)
        detail: dict[str, object] = {"version": release.version, "slug": slug_id, "commit": commit}
        tx.events.record(app, who.name, "release.deploy", detail)
        return release

    def prune_slugs(self, name: str) -> list[str]:
        """Remove stored slugs no release among the newest `keep_slugs` uses; their rows stay
        (history), so a rollback to one is refused by name. Returns the keys removed."""
        if self.slugs is None:
            return []
        with self.store.read() as tx:
            app = tx.apps.find(name)
            if app is None:
                return []
            keep = tx.slugs.in_use(app.id, self.keep_slugs)
        removed = [k for k in self.slugs.keys(name) if parse_key(k)[1] not in keep]
        for key in removed:
            self.slugs.delete(key)
        return removed
