"""Releases: numbered, immutable snapshots `vN` of a build and config vars; rollbacks.

A rollback is a new release with an old one's build and config. It is refused while a
release phase runs, to a failed release, to one whose slug is no longer kept, and to a
release without a build once the app has one.
"""

from __future__ import annotations

from dataclasses import dataclass

from gun.core.access import authorize, visible_config
from gun.core.placing import write_placement
from gun.core.release_phase import ReleasePhase
from gun.core.slugs import Slugs
from gun.errors import InvalidParams, NotFound
from gun.model import Principal, Release
from gun.store import Store


@dataclass(frozen=True)
class ReleaseInfo:
    """`releases.info`: a release, and its config as the caller may see it."""

    release: Release
    config: dict[str, str | None]


class Releases:
    def __init__(self, store: Store, slugs: Slugs, release_phase: ReleasePhase) -> None:
        self.store = store
        self.slugs = slugs
        self.release_phase = release_phase

    def all(
        self, who: Principal, name: str, limit: int = 200, before: int | None = None
    ) -> list[Release]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.releases.of(tx.apps.existing(name), limit, before)

    def get(self, who: Principal, name: str, version: int) -> Release:
        """A release with its config values: for developers and admins."""
        authorize(who, "developer", name)
        return self._release(name, version)

    def info(self, who: Principal, name: str, version: int) -> ReleaseInfo:
        """A release and its config as `who` may see it (a viewer: names, null values)."""
        authorize(who, "viewer", name)
        found = self._release(name, version)
        return ReleaseInfo(found, visible_config(who, found.config))

    def _release(self, name: str, version: int) -> Release:
        with self.store.read() as tx:
            found = tx.releases.get(tx.apps.existing(name), version)
        if found is None:
            raise NotFound(f"release v{version} of app {name!r} does not exist")
        return found

    def rollback(self, who: Principal, name: str, version: int | None = None) -> Release:
        """A new release with vN's build and config (default: the release before the current)."""
        authorize(who, "developer", name)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            self.release_phase.refuse_while_pending(tx, app, "roll back")
            current = tx.releases.current_version(app.id) or 0
            target = version if version is not None else current - 1
            old = tx.releases.get(app, target) if target > 0 else None
            if old is None:
                if version is None:
                    raise NotFound(f"app {name!r} has no release before v{current} to roll back to")
                raise NotFound(f"release v{version} of app {name!r} does not exist")
            if old.status == "failed":
                raise InvalidParams(f"release v{target} of app {name!r} failed; pick another")
            slug = tx.slugs.get(old.slug_id) if old.slug_id is not None else None
            if slug and not self.slugs.kept(name, slug[0]):
                raise InvalidParams(
                    f"the slug of v{target} is no longer kept (the slug store keeps those of the "
                    f"last {self.slugs.keep} releases): deploy its code again instead"
                )
            has_build = tx.releases.get(app, current) if current else None
            if not old.has_build and has_build is not None and has_build.has_build:
                raise InvalidParams(
                    f"release v{target} of app {name!r} has no build (it predates the first "
                    "deploy): roll back to a release that has one"
                )
            tx.config.replace(app.id, dict(old.config))
            release = tx.releases.insert(
                app,
                description=f"Rollback to v{target}",
                config=dict(old.config),
                process_types=old.process_types,
                slug_id=old.slug_id,
                commit=old.commit,
                actor=who.name,
            )
            write_placement(tx, app)  # the old build may have other process types
            tx.events.record(
                app, who.name, "release.rollback", {"to": target, "version": release.version}
            )
            return release
