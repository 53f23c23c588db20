"""Materialising a release on the instance: releases/vN from its slug (downloaded into the slug
cache, verified and unpacked) or, strategy git, built from its commit; each handed to the app's
Unix user before it is renamed into place, so a releases/vN that exists is ready to run.

A release refused here (a slug that fails its checks, a build that fails) is the instance's
`problem` until a new release comes; a build that failed is not tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from gun import atomic, isolation
from gun.agent import files
from gun.agent.config import AgentConfig
from gun.agent.metaclient import MetaClient, Refused, Unreachable
from gun.agent.supervisor import Supervisor
from gun.build.slug import SlugError, unpack
from gun.errors import GunError, InvalidParams, Unavailable
from gun.protocol import GitSource, ReleasePhaseOrder, Slice, SlugRef

log = logging.getLogger("gun.agent")


class Materialiser:
    """Makes the releases of one instance's slices; `problem` says why the current one cannot
    run here (None when it can)."""

    def __init__(
        self, config: AgentConfig, meta: MetaClient, api: str, supervisor: Supervisor
    ) -> None:
        self.config = config
        self.root = config.root
        self.meta = meta
        self._api = api  # the instance's prefix of meta's agent API
        self.supervisor = supervisor  # its user runs the releases; its app.log gets build output
        self.problem: str | None = None
        self._failed: dict[int, str] = {}  # strategy git: releases whose build failed here

    async def materialise(self, slice_: Slice) -> Path | None:
        """Download, verify and unpack the release's slug; write etc/env, etc/formation."""
        version = slice_.release
        if version is None or (slice_.slug is None and slice_.git is None):
            return None
        target = await self.prepared(version, slice_, slice_.app)
        files.write_etc(self.root, slice_.env, [p.type for p in slice_.processes])
        files.switch_current(self.root, target)
        files.prune_releases(self.root, self.config.keep_releases)
        files.prune_slugs(self.root, self.config.keep_releases)
        return target

    async def prepared(self, version: int, source: Slice | ReleasePhaseOrder, app: str) -> Path:
        """releases/vN of app from the source's slug, or (strategy git) built from its commit
        (a slice or a release phase names one of them)."""
        await self.app_user(app)
        if source.slug is not None:
            return await self._unpacked(version, source.slug)
        if source.git is None:
            raise InvalidParams(f"release v{version} has neither a slug nor a commit to run")
        return await self._built(version, source.git, source.env)

    # the app's Unix user (gun.isolation) -----------------------------------------------------

    async def app_user(self, app: str) -> None:
        """Make the instance's user (root only), once, before anything of the app runs; refuse
        (as the instance's problem) when that user could not reach its releases."""
        if self.supervisor.user is not None or not isolation.can_switch():
            return
        name = isolation.instance_user_name(self.root)
        comment = f"gun app {app} at {self.root}"
        releases = self.root / "releases"
        try:
            user = await asyncio.to_thread(isolation.ensure, name, comment)
            where = isolation.blocked(releases, user)
            if where is not None:
                raise Unavailable(isolation.unreachable("every process", releases, user, where))
        except GunError as e:
            self.problem = e.message
            log.error("%s", e.message)
            raise
        for made in [d for d in releases.glob("v*") if d.is_dir()]:  # by an agent before this
            await asyncio.to_thread(isolation.hand_over, user, made)
        self.supervisor.user = user
        log.info("app processes run as %s (uid %s)", user.name, user.uid)

    # a slug ----------------------------------------------------------------------------------

    async def _unpacked(self, version: int, slug: SlugRef) -> Path:
        """releases/vN, unpacked from the slug (downloaded unless it is in the slug cache)."""
        target = self.root / "releases" / f"v{version}"
        cache = self.root / "slugs" / f"{slug.sha256}.tar.gz"
        if not target.exists():
            if not cache.exists():
                await self._download(slug, cache)
            else:
                log.info("release v%s: slug %s is in the cache", version, slug.sha256[:12])
            staging = self.root / "releases" / f".v{version}.unpack"
            limits = self.config.slug_limits
            try:
                fill = functools.partial(
                    unpack,
                    cache,
                    staging,
                    slug.sha256,
                    max_bytes=limits.max_unpacked_bytes,
                    max_members=limits.max_members,
                )
                await asyncio.to_thread(self._stage, staging, fill)
                staging.rename(target)
            except SlugError as e:
                cache.unlink(missing_ok=True)
                self.problem = f"release v{version} refused: {e.message}"
                log.error("%s", self.problem)
                raise
        with contextlib.suppress(FileNotFoundError):
            os.utime(cache)  # recently used: pruned last
        self.problem = None
        return target

    async def _download(self, slug: SlugRef, dest: Path) -> None:
        """The slug into the slug cache, from where meta says, whole or not at all (`unpack`
        checks its sha256)."""
        with atomic.writer(dest, sync=False) as f:
            await self.meta.call("GET", slug.url, into=f, timeout=300)

    # strategy git ----------------------------------------------------------------------------

    async def _built(self, version: int, git: GitSource, env: dict[str, str]) -> Path:
        """Strategy git: fetch and reset the checkout to the commit, build a copy of it into
        releases/vN (or copy the build of an earlier release of the same commit)."""
        target = self.root / "releases" / f"v{version}"
        if target.exists():
            return target
        if version in self._failed:  # a build that failed fails again: wait for a new release
            raise InvalidParams(self._failed[version])
        built = self.root / "state" / "built" / git.commit
        try:
            earlier = self.root / "releases" / built.read_text().strip()
        except OSError:
            earlier = None
        try:
            if earlier is not None and earlier.is_dir():
                log.info("release v%s: commit %s is built already", version, git.commit[:7])
                staging = self.root / "releases" / f".v{version}.copy"
                copy = functools.partial(_copy_tree, earlier, staging)
                await asyncio.to_thread(self._stage, staging, copy)
                staging.rename(target)
            else:
                await self._build_commit(version, git, env, target)
        except GunError as e:
            self.problem = f"v{version} of commit {git.commit[:7]} failed here: {e.message}"
            self._failed[version] = self.problem
            log.error("%s", self.problem)
            raise
        atomic.write(built, target.name)
        self.problem = None
        return target

    async def _build_commit(
        self, version: int, git: GitSource, env: dict[str, str], target: Path
    ) -> None:
        from gun.build import buildpacks, gitrepo  # only agents that build pay for it

        lines: list[str] = []
        me = self.config.instance

        def out(line: str) -> None:
            lines.append(f"[{me}] {line}\n")
            self.supervisor.applog.write("heroku", "build", [line])

        checkout = self.root / "git" / "checkout"
        tmp = self.root / "releases" / f".v{version}.build"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            out(f"-----> git fetch origin && git reset --hard {git.commit[:7]}")
            await asyncio.to_thread(gitrepo.checkout, git.repo, checkout, git.commit)
            await asyncio.to_thread(_copy_tree, checkout, tmp)
            user = self.supervisor.user
            cache = self.root / "cache" / "build"
            await asyncio.to_thread(buildpacks.build, tmp, cache, env, out, user=user)
            await asyncio.to_thread(self._stage, tmp)  # root wrote some of it
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            with contextlib.suppress(Refused, Unreachable):
                text = "".join(lines)
                await self.meta.call(
                    "POST", f"{self._api}/releases/{version}/output", body={"text": text}
                )

    def _stage(self, staging: Path, fill: Callable[[], object] | None = None) -> None:
        """Fill a release directory under a temporary name (with `fill`, after removing what an
        earlier try left there) and give it to the app's user, private to it; the caller renames
        it into place, so a releases/vN that exists is ready to run."""
        if fill is not None:
            shutil.rmtree(staging, ignore_errors=True)
            fill()
        user = self.supervisor.user
        if user is not None:
            isolation.hand_over(user, staging)
            staging.chmod(isolation.PRIVATE_DIR)


def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
