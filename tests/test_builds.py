"""Builds and slugs in the Platform, on both stores: one deploy at a time, output read back
from any offset, interrupted builds failed at start, old slugs pruned and refused by rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from gun.build.slug import pack
from gun.build.slugstore import LocalSlugStore
from gun.core import Platform
from gun.core.builds import BuildOptions
from gun.core.release_phase import STALE_GRACE
from gun.errors import Conflict, InvalidParams
from gun.model import Principal
from gun.store import Store
from gun.store.schema import builds


@pytest.fixture
def gun(store: Store, tmp_path: Path) -> Platform:
    return Platform(
        store,
        slugs=LocalSlugStore(tmp_path / "slugs"),
        build_options=BuildOptions(tmp_path / "builds", keep_slugs=2),
    )


@pytest.fixture
def admin(gun: Platform) -> Principal:
    token = gun.tokens.bootstrap_admin(None)
    assert token is not None
    return gun.tokens.authenticate(token)


def deploy_version(gun: Platform, who: Principal, tmp_path: Path, n: int) -> int:
    src = tmp_path / f"src{n}"
    src.mkdir()
    (src / "Procfile").write_text("web: python -m http.server $PORT\n")
    (src / "version.txt").write_text(f"{n}\n")
    slug = pack(src, tmp_path / f"slug{n}.tar.gz")
    slug_id, _ = gun.slugs.add(who, "shop", slug.path, slug.sha256, slug.size)
    return gun.deploys.release(who, "shop", slug_id).version


def test_the_slug_store_keeps_the_slugs_of_the_newest_releases(
    gun: Platform, admin: Principal, tmp_path: Path
) -> None:
    gun.apps.create(admin, "shop")
    versions = [deploy_version(gun, admin, tmp_path, n) for n in (1, 2, 3)]
    assert versions == [2, 3, 4]
    assert len(gun.slugs.slug_store.keys("shop")) == 2  # v3's and v4's

    with pytest.raises(InvalidParams) as e:
        gun.releases.rollback(admin, "shop", 2)
    assert e.value.message == (
        "the slug of v2 is no longer kept (the slug store keeps those of the last 2 "
        "releases): deploy its code again instead"
    )
    assert gun.releases.rollback(admin, "shop", 3).version == 5
    assert len(gun.slugs.slug_store.keys("shop")) == 2  # the rollback reuses v3's slug


def test_one_build_per_app_at_a_time(gun: Platform, admin: Principal) -> None:
    gun.apps.create(admin, "shop")
    gun.apps.create(admin, "blog")
    first = gun.builds.create(admin, "shop", commit="a" * 40)
    with pytest.raises(Conflict) as e:
        gun.builds.create(admin, "shop")
    assert e.value.message == (
        f"a deploy of shop is already under way (build {first.id} by admin, pending): "
        "wait for it to finish, then deploy again"
    )
    with pytest.raises(Conflict):
        gun.builds.may_create(admin, "shop")
    assert gun.builds.create(admin, "blog").status == "pending"  # another app: fine


def test_output_is_read_back_from_any_offset_in_characters(
    gun: Platform, admin: Principal, store: Store
) -> None:
    gun.apps.create(admin, "shop")
    build = gun.builds.create(admin, "shop")
    with store.write() as tx:
        tx.builds.append_output(build.id, "-----> Héllo wörld\n")
        tx.builds.append_output(build.id, "ünïcode ✓\n")
    text, status = gun.builds.output(admin, "shop", build.id, 0)
    assert (text, status) == ("-----> Héllo wörld\nünïcode ✓\n", "pending")
    assert gun.builds.output(admin, "shop", build.id, len("-----> Héllo wörld\n")) == (
        "ünïcode ✓\n",
        "pending",
    )
    assert gun.builds.output(admin, "shop", build.id, len(text)) == ("", "pending")


def test_builds_a_previous_meta_left_running_are_failed_at_start(
    gun: Platform, admin: Principal
) -> None:
    gun.apps.create(admin, "shop")
    build = gun.builds.create(admin, "shop")
    assert gun.builds.fail_interrupted() == 1
    after = gun.builds.get(admin, "shop", build.id)
    assert (after.status, after.error) == ("failed", "meta restarted during the build")
    assert after.finished_at is not None
    assert gun.builds.output(admin, "shop", build.id, 0)[0].endswith(
        "meta restarted during this build\n"
    )
    assert gun.builds.create(admin, "shop").status == "pending"  # no longer in the way


def test_a_release_phase_that_never_reports_back_stops_blocking_deploys(
    gun: Platform, admin: Principal, store: Store, tmp_path: Path
) -> None:
    gun.apps.create(admin, "shop")
    version = deploy_version(gun, admin, tmp_path, 1)
    stuck = gun.builds.create(admin, "shop")
    late = datetime.now(UTC) - timedelta(seconds=3600 + STALE_GRACE + 1)  # the default timeout
    with store.write() as tx:
        tx.builds.update(stuck.id, status="releasing", release=version)
        tx.conn.execute(update(builds).where(builds.c.id == stuck.id).values(created_at=late))
    fresh = gun.builds.create(admin, "shop")
    assert fresh.status == "pending"
    old = gun.builds.get(admin, "shop", stuck.id)
    assert (old.status, old.error) == (
        "failed",
        f"the release phase of v{version} never reported back",
    )
    with pytest.raises(Conflict):  # the new one is under way now
        gun.builds.create(admin, "shop")
