"""While a deploy's release runs its release phase, nothing makes a release on top of it: the
Platform on a real store (SQLite and PostgreSQL), with an agent's real credentials."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from gun.core import Platform
from gun.core.release_phase import STALE_GRACE
from gun.errors import Conflict
from gun.model import Principal
from gun.store import Store
from gun.store.schema import releases
from tests.fakes import RecordingProvider

APP = "shop"


class World:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.provider = RecordingProvider()
        self.gun = Platform(store, providers={"fake": self.provider}, meta_url="http://meta")
        token = self.gun.tokens.bootstrap_admin(None)
        assert token is not None
        self.admin = self.gun.tokens.authenticate(token)
        self.gun.apps.create(self.admin, APP)
        (self.instance,) = self.gun.instances.create(self.admin, APP, "default", provider="fake")
        self.agent: Principal = self.gun.tokens.authenticate(self.provider.made[0].token)
        self.gun.agents.register(self.agent, self.instance.id, None)
        self.slugs = 0

    def slug(self, types: dict[str, str]) -> int:
        self.slugs += 1
        with self.store.write() as tx:
            app = tx.apps.existing(APP)
            return tx.slugs.insert(app.id, f"{self.slugs:064x}", 10, types, None, None)

    def deploy(self, *, release: bool = True) -> tuple[int, int]:
        """(slug, version) of a new deploy, pending when its Procfile has `release:`."""
        types = {"web": "serve"} | ({"release": "migrate"} if release else {})
        slug = self.slug(types)
        return slug, self.gun.deploys.release(self.admin, APP, slug).version

    def phase_done(self, version: int, exit_code: int) -> str:
        return self.gun.release_phase.done(self.agent, self.instance.id, version, exit_code, None)

    def history(self) -> list[tuple[int, str, bool]]:
        return [(r.version, r.status, r.current) for r in self.gun.releases.all(self.admin, APP)]


@pytest.fixture
def world(store: Store) -> World:
    return World(store)


def refusal(version: int, doing: str) -> str:
    return (
        f"v{version} of app {APP} is being released (its release phase is running): {doing} "
        f"when it is done; `gun app:{APP} releases` shows it"
    )


def test_nothing_makes_a_release_on_top_of_a_pending_one(world: World) -> None:
    gun, admin = world.gun, world.admin
    _, first = world.deploy(release=False)
    slug, version = world.deploy()
    assert world.history()[0] == (version, "pending", False)
    calls = [
        ("change config", lambda: gun.config.change(admin, APP, {"A": "1"})),
        ("change config", lambda: gun.config.change(admin, APP, {"A": None})),
        ("roll back", lambda: gun.releases.rollback(admin, APP)),
        ("roll back", lambda: gun.releases.rollback(admin, APP, first)),
        ("deploy", lambda: gun.deploys.release(admin, APP, world.slug({"web": "other"}))),
    ]
    for doing, call in calls:
        with pytest.raises(Conflict) as e:
            call()
        assert e.value.message == refusal(version, doing)

    async def twenty() -> list[BaseException | object]:
        return await asyncio.gather(
            *(gun.config.achange(admin, APP, {f"K{n}": "v"}) for n in range(20)),
            return_exceptions=True,
        )

    answers = asyncio.run(twenty())
    assert [str(a) for a in answers] == [refusal(version, "change config")] * 20
    assert world.history() == [
        (version, "pending", False),
        (first, "succeeded", True),
        (1, "succeeded", False),
    ]
    assert gun.config.get(admin, APP) == {}

    assert world.phase_done(version, 0) == "succeeded"
    made = gun.config.change(admin, APP, {"A": "1"})
    assert (made.version, made.slug_id, made.current) == (version + 1, slug, True)
    assert gun.releases.rollback(admin, APP).description == f"Rollback to v{version}"


def test_a_failed_release_phase_unblocks_config_changes(world: World) -> None:
    old, first = world.deploy(release=False)
    _, version = world.deploy()
    assert world.phase_done(version, 1) == "failed"
    made = world.gun.config.change(world.admin, APP, {"A": "1"})
    assert (made.version, made.slug_id) == (version + 1, old)  # on the code that runs
    assert world.history()[:3] == [
        (version + 1, "succeeded", True),
        (version, "failed", False),
        (first, "succeeded", False),
    ]


def test_a_release_phase_that_never_reports_back_stops_blocking_after_its_timeout(
    world: World,
) -> None:
    _, version = world.deploy()
    late = datetime.now(UTC) - timedelta(seconds=world.gun.release_phase.timeout + STALE_GRACE + 1)
    with world.store.write() as tx:
        tx.conn.execute(
            update(releases).where(releases.c.version == version).values(created_at=late)
        )
    made = world.gun.config.change(world.admin, APP, {"A": "1"})
    assert made.version == version + 1
    assert world.history()[1] == (version, "failed", False)
    events = [(e.action, e.detail) for e in world.gun.apps.events(world.admin, APP)]
    assert (
        "release.phase",
        {
            "version": version,
            "ok": False,
            "error": f"the release phase of v{version} never reported back",
        },
    ) in events
    assert world.phase_done(version, 0) == "failed"  # too late: it stays failed


def test_a_config_change_racing_the_end_of_the_release_phase_never_builds_on_old_code(
    world: World,
) -> None:
    """The look at the release's status and the config release are one transaction, under
    the app's lock: whichever comes first, the config release runs the deploy's code."""
    for _ in range(15):
        slug, version = world.deploy()
        outcome: dict[str, object] = {}

        def change(into: dict[str, object]) -> None:
            try:
                into["config"] = world.gun.config.change(world.admin, APP, {"A": "1"})
            except Conflict as e:
                into["config"] = e

        racer = threading.Thread(target=change, args=(outcome,))
        racer.start()
        assert world.phase_done(version, 0) == "succeeded"
        racer.join()
        made = outcome["config"]
        if isinstance(made, Conflict):
            assert made.message == refusal(version, "change config")
            assert world.history()[0] == (version, "succeeded", True)
        else:
            assert not isinstance(made, BaseException)
            assert (made.version, made.slug_id) == (version + 1, slug)  # type: ignore[attr-defined]
            assert world.history()[:2] == [
                (version + 1, "succeeded", True),
                (version, "succeeded", False),
            ]
