"""Builds: an uploaded source becomes a slug, the slug a release, the release phase runs once.

A build is queued (`pending`), run by the build worker pool (`building`: buildpacks, slug,
release), then, when the Procfile has `release:`, waits for the release phase on one instance
(`releasing`), and ends `succeeded` or `failed`. One build per app at a time: a second deploy
while one is under way is refused, so two never interleave. Output (buildpack lines, then the
release command's) is appended to the build and read back from any offset while it grows.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import NoResultFound

from gun import isolation, procfile
from gun.build import buildpacks, gitrepo
from gun.build.slug import SlugError, pack, sha256_of, unpack
from gun.core.access import authorize
from gun.core.build_output import OutputBuffer
from gun.core.deploys import Deploys
from gun.core.release_phase import ReleasePhase
from gun.core.slugs import Slugs
from gun.errors import Conflict, GunError, InvalidParams, NotFound, disk_full
from gun.model import Build, Principal, check_no_nul
from gun.settings import SlugLimits
from gun.store import Store

log = logging.getLogger("gun.build")
STEP = "-----> "


@dataclass(frozen=True)
class BuildOptions:
    # build caches in home/cache/APP; scratch (uploads on their way in, build trees, ENV_DIRs)
    # in home/work, which meta empties at start: nothing of a build outlives a meta killed
    # mid-build, and nothing of one goes to the shared /tmp
    home: Path
    concurrency: int = 2
    timeout: float = 900.0
    release_timeout: float = 3600.0
    preboot_drain: float = 2.0
    max_unavailable: int = 1
    keep_slugs: int = 10  # slugs of the newest releases kept in the slug store
    slug_limits: SlugLimits = SlugLimits()  # what an uploaded source may unpack to


def short(commit: str | None, sha256: str) -> str:
    return (commit or sha256)[:7]


class Builds:
    """Deploys that start from source: the build makes the slug (Slugs keeps it), Deploys
    releases it."""

    def __init__(
        self,
        store: Store,
        options: BuildOptions | None,
        slugs: Slugs,
        deploys: Deploys,
        release_phase: ReleasePhase,
    ) -> None:
        self.store = store
        self.options = options  # None: this meta runs no builds
        self.slugs = slugs
        self.deploys = deploys
        self.release_phase = release_phase
        self._pool: ThreadPoolExecutor | None = None

    # the API's side ------------------------------------------------------------------------

    def may_create(
        self,
        who: Principal,
        name: str,
        *,
        ref: str | None = None,
        commit_description: str | None = None,
    ) -> None:
        """Refuse early (before a large upload) what `create` would refuse."""
        authorize(who, "developer", name)
        _check_build_text(ref, commit_description)
        with self.store.read() as tx:
            busy = tx.builds.active(tx.apps.existing(name))
        if busy is not None and not self.release_phase.stale(busy):
            raise _busy(name, busy)

    def create(
        self,
        who: Principal,
        name: str,
        *,
        strategy: str = "slug",
        ref: str | None = None,
        commit: str | None = None,
        commit_description: str | None = None,
    ) -> Build:
        """Queue a build; refused while another build of the app is under way."""
        authorize(who, "developer", name)
        if self.options is None:
            raise InvalidParams("this meta runs no builds: it was started without a build home")
        _check_build_text(ref, commit_description)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            busy = self.release_phase.abandon_stale(tx, tx.builds.active(app))
            if busy is not None:
                raise _busy(name, busy)
            build = tx.builds.insert(
                app,
                strategy=strategy,
                ref=ref,
                commit=commit,
                commit_description=commit_description,
                actor=who.name,
            )
            tx.events.record(app, who.name, "build.create", {"id": build.id, "commit": commit})
        return build

    def start(self, who: Principal, build: Build, source: Path | None) -> None:
        """Hand the build to the worker pool, with its source tarball (now the build's to
        delete), or none for strategy git."""
        if self._pool is None:
            assert self.options is not None
            self._pool = ThreadPoolExecutor(
                self.options.concurrency, thread_name_prefix="gun-build"
            )
        self._pool.submit(self._run_build, who, build, source)

    def all(self, who: Principal, name: str, limit: int = 20) -> list[Build]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.builds.of(tx.apps.existing(name), limit)

    def get(self, who: Principal, name: str, build_id: int) -> Build:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            found = tx.builds.get(tx.apps.existing(name), build_id)
        if found is None:
            raise NotFound(f"build {build_id} of app {name!r} does not exist")
        return found

    def output(self, who: Principal, name: str, build_id: int, offset: int) -> tuple[str, str]:
        """The output from `offset` on and the build's status (checked once per stream)."""
        return self.output_of(build_id, offset)

    def output_of(self, build_id: int, offset: int) -> tuple[str, str]:
        """`output` for a reader let in by other means: the API checked a URL's token that
        names this one build (the Heroku API's `output_stream_url`)."""
        try:
            with self.store.read() as tx:
                return tx.builds.output(build_id, offset)
        except NoResultFound:  # its app was destroyed
            raise NotFound(f"build {build_id} does not exist") from None

    def scratch(self) -> Path | None:
        """Where uploads and build trees go while they are worked on (None: the system's
        temporary directory, for a meta that runs no builds)."""
        if self.options is None:
            return None
        home = self.options.home
        # a build's user passes through these to its own work directory and cache
        isolation.make_dir(home, isolation.SEARCHABLE)
        isolation.make_dir(home / "cache", isolation.SEARCHABLE)
        return isolation.make_dir(home / "work", isolation.SEARCHABLE)

    def stop(self) -> None:
        """Meta is exiting: queued builds are dropped (they are failed at the next start)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def fail_interrupted(self) -> int:
        """At start: builds a previous meta was running cannot finish; say so, and remove
        what they left in the scratch directory (uploaded sources, half-built trees)."""
        with self.store.write() as tx:
            stuck = tx.builds.in_statuses(("pending", "building"))
            for _, build_id in stuck:
                tx.builds.append_output(build_id, " !     meta restarted during this build\n")
                tx.builds.update(build_id, status="failed", error="meta restarted during the build")
        work = self.scratch()
        left = sorted(work.iterdir()) if work is not None else []
        for path in left:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if left:
            log.warning(
                "removed %d leftovers of interrupted uploads and builds in %s", len(left), work
            )
        return len(stuck)

    # the worker's side ---------------------------------------------------------------------

    def _run_build(self, who: Principal, build: Build, source: Path | None) -> None:
        out = OutputBuffer(self.store, build.id)
        try:
            with self.store.write() as tx:
                tx.builds.update(build.id, status="building")
            if source is None:
                self._resolve_git(who, build, out)
            else:
                self._build(who, build, source, out)
        except GunError as e:
            out.line(f" !     {e.message}")
            self._fail(build, out, e.message)
        except Exception as e:  # a full disk, or a bug: the build fails, meta lives on
            full = disk_full(e)
            if full is None:
                log.exception("build %s of %s failed", build.id, build.app)
            else:
                log.error("build %s of %s failed: %s", build.id, build.app, full)
                out.line(f" !     {full}")
            crashed = f"the build crashed ({type(e).__name__}); see meta's log"
            self._fail(build, out, full or crashed)
        finally:
            if source is not None:
                source.unlink(missing_ok=True)
            out.close()

    def _fail(self, build: Build, out: OutputBuffer, why: str) -> None:
        out.flush()
        with self.store.write() as tx:
            tx.builds.update(build.id, status="failed", error=why)

    def _resolve_git(self, who: Principal, build: Build, out: OutputBuffer) -> None:
        """Strategy git: resolve REF to a commit in meta's mirror of the app's repo, read its
        Procfile, release the commit; every instance fetches it and builds it."""
        assert self.options is not None and build.ref is not None
        with self.store.read() as tx:
            repo = tx.apps.existing(build.app).repo
        if not repo:
            raise InvalidParams(
                f"app {build.app!r} has no repo: strategy=git deploys from the app's repository "
                f"(gun apps.create {build.app} repo=GIT_URL)"
            )
        git = isolation.make_dir(self.options.home / "git", isolation.PRIVATE_DIR)
        mirror = git / f"{build.app}.git"
        out.line(f"{STEP}Fetching {repo}")
        gitrepo.mirror(repo, mirror)
        commit = gitrepo.resolve(mirror, build.ref)
        subject = gitrepo.subject(mirror, commit)
        out.line(f"       {build.ref} is {commit[:7]} {subject}")
        types = _git_types(mirror, commit)
        out.line(f"       Procfile declares types -> {', '.join(types)}")
        out.line(f"{STEP}Releasing {commit[:7]}: every instance fetches it and builds it")
        out.flush()
        with self.store.write() as tx:
            tx.builds.update(build.id, commit=commit, commit_description=subject)
            release = self.deploys.release_commit(
                tx, who, build.app, commit, types, f"Deploy {commit[:7]}"
            )
            pending = release.status == "pending"
            tx.builds.update(
                build.id, status="releasing" if pending else "succeeded", release=release.version
            )
            if pending:
                tx.builds.append_output(
                    build.id, f"{STEP}Running the release command of v{release.version}\n"
                )

    def _build(self, who: Principal, build: Build, source: Path, out: OutputBuffer) -> None:
        assert self.options is not None
        opts = self.options
        work = self.scratch()
        with self.store.read() as tx:
            config = tx.config.of(tx.apps.existing(build.app).id)
        with (
            isolation.build_user(opts.home, build.app) as user,
            tempfile.TemporaryDirectory(prefix=f"{build.app}-{build.id}-", dir=work) as tmp,
        ):
            os.chmod(tmp, isolation.SEARCHABLE)
            app_dir = Path(tmp) / "app"
            try:
                limits = opts.slug_limits
                unpack(
                    source,
                    app_dir,
                    sha256_of(source),
                    max_bytes=limits.max_unpacked_bytes,
                    max_members=limits.max_members,
                )
            except SlugError as e:
                raise InvalidParams(f"the uploaded source was refused: {e.message}") from None
            out.line(f"{STEP}Building {build.app} ({short(build.commit, '') or 'upload'})")
            result = buildpacks.build(
                app_dir,
                opts.home / "cache" / build.app,
                config,
                out.line,
                timeout=opts.timeout,
                user=user,
                partial=out.text,
            )
            if user is not None:  # nothing of the build may change what is read from here on
                isolation.kill_all(user)
            types = _process_types(app_dir, result.process_types)
            out.line(f"{STEP}Discovering process types")
            out.line(f"       Procfile declares types -> {', '.join(types)}")
            slug = pack(app_dir, Path(tmp) / "slug.tar.gz")
            out.line(f"{STEP}Compressing... done, {slug.size / 1e6:.1f}MB")
            slug_id, _ = self.slugs.put(
                who,
                build.app,
                slug.path,
                slug.sha256,
                slug.size,
                commit=build.commit,
                commit_description=build.commit_description,
            )
            shutil.rmtree(app_dir)
        out.line(f"{STEP}Releasing")
        out.flush()  # all of it before the status says done: readers stop at a final status
        with self.store.write() as tx:
            release = self.deploys.release_slug(
                tx,
                who,
                build.app,
                slug_id,
                description=f"Deploy {short(build.commit, slug.sha256)}",
                commit=build.commit,
            )
            pending = release.status == "pending"
            tx.builds.update(
                build.id,
                status="releasing" if pending else "succeeded",
                slug_id=slug_id,
                release=release.version,
            )
            if pending:
                tx.builds.append_output(
                    build.id, f"{STEP}Running the release command of v{release.version}\n"
                )
        self.slugs.prune(build.app)


def _git_types(mirror: Path, commit: str) -> dict[str, str]:
    data = gitrepo.read_file(mirror, commit, "Procfile")
    if data is None:
        raise InvalidParams(
            f"commit {commit[:7]} has no Procfile: add one naming your process types, "
            "e.g. `web: python app.py`"
        )
    return procfile.parse(data, "Procfile")


def _check_build_text(ref: str | None, commit_description: str | None) -> None:
    for what, text in (("ref", ref), ("commit_description", commit_description)):
        if text is not None:
            check_no_nul(what, text)  # git's argv, and the store, cannot hold one


def _busy(name: str, busy: Build) -> Conflict:
    return Conflict(
        f"a deploy of {name} is already under way (build {busy.id} by {busy.actor}, "
        f"{busy.status}): wait for it to finish, then deploy again"
    )


def _process_types(app_dir: Path, defaults: dict[str, str]) -> dict[str, str]:
    """The Procfile's types (errors name its line), else the buildpack's defaults."""
    path = app_dir / "Procfile"
    if path.is_file() and not path.is_symlink():  # never read through a link the build made
        return procfile.parse(path.read_bytes(), "Procfile")
    if path.exists() or path.is_symlink():
        raise InvalidParams("Procfile is not a regular file")
    if defaults:
        return defaults
    raise InvalidParams(
        "the app has no Procfile: add one naming your process types, e.g. `web: python app.py`"
    )
