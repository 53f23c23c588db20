"""Deploys: a build (a slug, or a commit that instances build) becomes release `vN`."""

from __future__ import annotations

from gun import procfile
from gun.core.access import authorize
from gun.core.placing import write_placement
from gun.core.release_phase import ReleasePhase
from gun.core.slugs import Slugs
from gun.errors import InvalidParams, NotFound
from gun.model import App, Principal, Release, check_no_nul, check_process_type
from gun.store import Store, Tx


def check_process_types(types: dict[str, str]) -> None:
    """What a release runs, from a Procfile (parsed strictly already) or a buildpack's
    defaults: names the agent can use in process names and files, commands execve can take."""
    for name, command in types.items():
        check_process_type(name)
        check_no_nul(f"the command of process type {name!r}", command)


class Deploys:
    """Builds in, releases out. The `release_*` methods that take a transaction write in the
    caller's (a build's); `release` in its own."""

    def __init__(self, store: Store, slugs: Slugs, release_phase: ReleasePhase) -> None:
        self.store = store
        self.slugs = slugs
        self.release_phase = release_phase

    def release(
        self, who: Principal, name: str, slug_id: int, description: str | None = None
    ) -> Release:
        """A new release of the slug with the current config vars."""
        authorize(who, "developer", name)
        with self.store.write() as tx:
            release = self.release_slug(tx, who, name, slug_id, description=description)
        self.slugs.prune(name)
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
