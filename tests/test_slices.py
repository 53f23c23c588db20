"""An app's slices come from one read of the store per generation (core/slices.py): 40 agents
asking after a scale cost one read, each slice is what it would be built alone, and every kind
of change (scale, config, restart, drain, layer) reaches the next ask."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gun.core.release_phase import slug_of
from gun.core.slices import SliceCache, build_slice, lease_terms
from gun.protocol import Slice
from gun.store import Store
from tests import fleets
from tests.statements import recorded


class Fleet(fleets.Fleet):
    """40 instances."""

    def __init__(self, store: Store, tmp_path: Path) -> None:
        super().__init__(store, tmp_path, 40)

    def slices(self) -> list[Slice]:
        return [self.platform.agents.desired(who, iid) for who, iid in self.agents]

    def alone(self, instance_id: str) -> Slice:
        """The slice as built from a read of its own, the way meta built each before."""
        agents = self.platform.agents
        with self.store.read() as tx:
            inst = tx.instances.get(instance_id)
            assert inst is not None
            app = tx.apps.existing("shop")
            version = tx.releases.current_version(app.id)
            release = tx.releases.get(app, version) if version else None
            layer = tx.layers.get(app.id, inst.layer)
            return build_slice(
                generation=tx.apps.generation(app.id),
                app=app,
                instance=instance_id,
                release=release,
                slug=slug_of(tx, release),
                placed=[p for p in tx.processes.of(app.id) if p.instance == instance_id],
                nonces=tx.processes.nonces(app.id),
                release_phase=agents.release_phase.command_for(tx, app, instance_id),
                drains=agents.shipping.urls(tx, app.id),
                rollout=agents.rollout,
                lease=lease_terms(inst.provider, agents.instance_timeout),
                setup=inst.setup,
                teardown=layer.teardown if layer else None,
            )


@pytest.fixture
def fleet(store: Store, tmp_path: Path) -> Fleet:
    return Fleet(store, tmp_path)


def test_forty_agents_asking_after_a_scale_cost_one_read_and_get_what_a_read_alone_gives(
    fleet: Fleet,
) -> None:
    fleet.scale("web=60 worker=20")
    selects = recorded(fleet.store, r"SELECT\b.*\bFROM processes\b")
    cache = fleet.platform.agents.slices
    before = cache.reads
    slices = fleet.slices()
    assert cache.reads == before + 1
    assert len(selects) == 2  # the app's processes and their nonces, once for all 40
    assert sum(len(s.processes) for s in slices) == 80
    assert {s.generation for s in slices} == {slices[0].generation}
    for (_, iid), got in zip(fleet.agents, slices, strict=True):
        assert got == fleet.alone(iid)
        assert got.instance == iid and got.slug is not None and iid in got.slug.url


@pytest.mark.parametrize(
    "change",
    ["scale", "config", "restart", "drain", "layer teardown"],
)
def test_every_change_reaches_the_next_ask(fleet: Fleet, change: str) -> None:
    p, admin = fleet.platform, fleet.admin
    fleet.scale("web=40")
    first = fleet.slices()
    if change == "scale":
        fleet.scale("web=80")
    elif change == "config":
        p.config.change(admin, "shop", {"COLOR": "blue"})
    elif change == "restart":
        p.processes.restart(admin, "shop", "web.7")
    elif change == "drain":
        p.drains.add(admin, "shop", "https://logs.example.com/in")
    else:
        p.layers.set(admin, "shop", "default", None, teardown="echo bye")
    after = fleet.slices()
    assert all(a.generation > b.generation for a, b in zip(after, first, strict=True))
    assert [a != b for a, b in zip(after, first, strict=True)].count(True) >= 1
    for (_, iid), got in zip(fleet.agents, after, strict=True):
        assert got == fleet.alone(iid)


def test_a_snapshot_is_read_again_when_it_is_older_than_its_max_age(fleet: Fleet) -> None:
    """A change made without bumping the generation (none should be) still arrives once the
    snapshot is MAX_AGE old, as it did before at the next long-poll."""
    fleet.scale("web=40")
    agents = fleet.platform.agents
    agents.slices = SliceCache(max_age=0.0)
    first = fleet.slices()
    with fleet.store.write() as tx:  # behind meta's back: a nonce, the generation left
        app_id = tx.apps.existing("shop").id
        tx.processes.bump_nonce(app_id, "web.1")
    again = fleet.slices()
    assert again != first
    assert {s.generation for s in again} == {first[0].generation}


def test_forty_long_polls_woken_together_share_one_read_and_then_need_no_query(
    fleet: Fleet,
) -> None:
    """What a scale does to 1,000 long-polls: every one wakes at once and wants the new
    generation's slice (api/agent_routes.py `desired`, core/agents.py `slice_at`)."""
    agents = fleet.platform.agents
    fleet.scale("web=40")
    for who, iid in fleet.agents:  # each long-poll's first call: meta learns its app
        agents.generation(who, iid)
    fleet.scale("web=80")
    with fleet.store.read() as tx:
        generation = tx.apps.generation(tx.apps.existing("shop").id)
    statements = recorded(fleet.store, "")

    async def woken() -> list[Slice]:
        return await asyncio.gather(
            *(agents.slice_at(who, iid, generation) for who, iid in fleet.agents)
        )

    before = agents.slices.reads
    got = asyncio.run(woken())
    assert agents.slices.reads == before + 1
    read = len(statements)
    assert 0 < read < 20
    assert [s.generation for s in got] == [generation] * 40
    assert sum(len(s.processes) for s in got) == 80
    assert asyncio.run(woken()) == got
    assert len(statements) == read  # the second time, not one query
    for (_, iid), s in zip(fleet.agents, got, strict=True):
        assert s == fleet.alone(iid)
