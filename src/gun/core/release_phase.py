"""The release phase: a release whose Procfile has `release:` is `pending` until that command
has run once, on the app's first online instance (by id), and exited 0; then it succeeds and
rolls out, else it fails and the old release keeps running.

Rules:
- Nothing makes a release on top of a pending one: config changes, rollbacks and deploys are
  refused (Conflict) while it waits, else it would succeed underneath a newer one and never
  run. They look with the app's row locked, as the phase's result is written under that lock.
- A release phase nobody finished (its instance died with the result unsent) stops blocking
  once it is STALE_GRACE past its timeout: it is failed, saying so, and so is its build.
- The agent's output goes to the release's build, read back by `deploy` as it grows.
"""

from __future__ import annotations

from gun.core.placing import write_placement
from gun.errors import Conflict, NotFound
from gun.model import App, Build, Principal, Release
from gun.procfile import RELEASE
from gun.protocol import GitSource, ReleasePhaseOrder, slug_ref
from gun.store import Store, Tx
from gun.store.time import now

STALE_GRACE = 300.0  # seconds past the release timeout after which a release phase is given up
SlugRow = tuple[str, int]  # a slug's sha256 and size


def releasing(app: str, version: int, doing: str) -> Conflict:
    """The refusal of a change that would make a release on top of a pending one."""
    return Conflict(
        f"v{version} of app {app} is being released (its release phase is running): "
        f"{doing} when it is done; `gun app:{app} releases` shows it"
    )


def git_source(app: App, release: Release) -> GitSource | None:
    """Strategy git: the commit an instance fetches and builds itself (None for a slug)."""
    if release.slug_id is not None or release.commit is None or not app.repo:
        return None
    return GitSource(repo=app.repo, commit=release.commit)


def slug_of(tx: Tx, release: Release | None) -> SlugRow | None:
    """The (sha256, size) of the release's slug, if it has one."""
    slug = tx.slugs.get(release.slug_id) if release and release.slug_id else None
    return (slug[0], slug[1]) if slug else None


def order(
    app: App, instance: str, release: Release, slug: SlugRow | None, timeout: float
) -> ReleasePhaseOrder | None:
    """The release phase of a pending release as `instance` is told to run it (pure); None if
    the release has neither a slug nor a commit to run it in, or no release command."""
    git = git_source(app, release)
    command = (release.process_types or {}).get(RELEASE)
    if (slug is None and git is None) or command is None:
        return None
    return ReleasePhaseOrder(
        release=release.version,
        command=command,
        slug=slug_ref(instance, *slug) if slug else None,
        git=git,
        env=dict(release.config),
        timeout=timeout,
    )


class ReleasePhase:
    def __init__(self, store: Store, timeout: float) -> None:
        self.store = store
        self.timeout = timeout  # seconds the release command may run (GUN_RELEASE_TIMEOUT)

    # what the others ask ---------------------------------------------------------------------

    def refuse_while_pending(self, tx: Tx, app: App, doing: str) -> tuple[int, str] | None:
        """Refuse (Conflict) what would make a release on top of one whose release phase is
        running; call with the app's row locked. A stale one is failed instead. Returns the
        newest release's (version, status) as it then is, for the caller's next version."""
        newest = tx.releases.newest(app.id)
        if newest is None or newest[1] != "pending":
            return newest
        version = newest[0]
        release = tx.releases.get(app, version)
        assert release is not None
        age = (now() - release.created_at).total_seconds()
        if age <= self.timeout + STALE_GRACE:
            raise releasing(app.name, version, doing)
        why = f"the release phase of v{version} never reported back"
        tx.releases.set_status(app.id, version, "failed")
        build = tx.builds.of_release(app, version)
        if build is not None and not build.done:
            tx.builds.append_output(build.id, f" !     {why}\n")
            tx.builds.update(build.id, status="failed", error=why)
        tx.apps.bump_generation(app.id)
        tx.events.record(
            app, "meta", "release.phase", {"version": version, "ok": False, "error": why}
        )
        return version, "failed"

    def stale(self, build: Build) -> bool:
        """A build waiting for a release phase that is STALE_GRACE past its timeout."""
        age = (now() - build.created_at).total_seconds()
        return (
            build.status == "releasing"
            and build.release is not None
            and age > self.timeout + STALE_GRACE
        )

    def abandon_stale(self, tx: Tx, busy: Build | None) -> Build | None:
        """The app's active build, unless it is stale: then it and its release are failed,
        saying so, and it stops blocking deploys (None)."""
        if busy is None or not self.stale(busy):
            return busy
        assert busy.release is not None
        why = f"the release phase of v{busy.release} never reported back"
        tx.builds.append_output(busy.id, f" !     {why}\n")
        tx.builds.update(busy.id, status="failed", error=why)
        tx.releases.set_status(tx.apps.existing(busy.app).id, busy.release, "failed")
        return None

    def command_for(self, tx: Tx, app: App, instance_id: str) -> ReleasePhaseOrder | None:
        """The pending release's command, if this is the instance to run it: the first online
        instance of the app, by id."""
        version = tx.releases.pending(app.id)
        if version is None:
            return None
        online = sorted(i.id for i in tx.instances.of(app.id) if i.state == "online")
        if not online or online[0] != instance_id:
            return None
        release = tx.releases.get(app, version)
        if release is None:
            return None
        return order(app, instance_id, release, slug_of(tx, release), self.timeout)

    # the agent running it --------------------------------------------------------------------

    def output(self, who: Principal, instance_id: str, version: int, text: str) -> None:
        """Lines of the release command, as the agent running it sends them."""
        with self.store.write() as tx:
            app, _ = self._phase(tx, who, instance_id, version)
            build = tx.builds.of_release(app, version)
            if build is not None:
                tx.builds.append_output(build.id, text)

    def done(
        self,
        who: Principal,
        instance_id: str,
        version: int,
        exit_code: int | None,
        error: str | None,
    ) -> str:
        """The release command ended: the release succeeds and rolls out, or fails."""
        with self.store.write() as tx:
            app, release = self._phase(tx, who, instance_id, version)
            if release.status != "pending":
                return release.status
            ok = exit_code == 0 and not error
            why = error or f"the release command exited with status {exit_code}"
            tx.releases.set_status(app.id, version, "succeeded" if ok else "failed")
            build = tx.builds.of_release(app, version)
            if build is not None:
                if ok:
                    done = f"-----> Release command of v{version} done\n"
                    tx.builds.append_output(build.id, done)
                    tx.builds.update(build.id, status="succeeded")
                else:
                    tx.builds.append_output(build.id, f" !     v{version} failed: {why}\n")
                    tx.builds.update(build.id, status="failed", error=f"v{version} failed: {why}")
            if ok:
                write_placement(tx, app)
            else:
                tx.apps.bump_generation(app.id)
            tx.events.record(
                app,
                who.name,
                "release.phase",
                {"version": version, "instance": instance_id, "ok": ok, "exit_code": exit_code},
            )
            return "succeeded" if ok else "failed"

    @staticmethod
    def _phase(tx: Tx, who: Principal, instance_id: str, version: int) -> tuple[App, Release]:
        if who.instance != instance_id:
            raise NotFound(f"instance {instance_id!r} does not exist")
        inst = tx.instances.get(instance_id)
        # locked: a config change or rollback looks at the release's status under this lock
        app = tx.apps.find(inst.app, lock=True) if inst else None
        release = tx.releases.get(app, version) if app else None
        if app is None or release is None:
            raise NotFound(f"release v{version} does not exist")
        return app, release
