"""Agents registering together are one transaction and one placement of their app
(core/agents.py register_many; the route group-commits them, core/batch.py), and each caller
still hears its own refusal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from gun import protocol
from gun.api.app import create_app
from gun.api.fleet_routes import instance_json
from gun.core import Platform
from gun.errors import Forbidden
from gun.model import Instance
from gun.protocol import ObservedProcess
from gun.store import Store
from tests import fleets
from tests.fakes import RecordingProvider
from tests.statements import recorded


@pytest.fixture
def fleet(store: Store, tmp_path: Path) -> tuple[Platform, RecordingProvider]:
    fake = RecordingProvider()
    platform = Platform(store, providers={"fake": fake}, meta_url="http://meta")
    admin = platform.tokens.authenticate(platform.tokens.bootstrap_admin(None) or "")
    platform.apps.create(admin, "shop")
    platform.instances.create(admin, "shop", "default", 20, provider="fake")
    return platform, fake


def test_twenty_registrations_at_once_place_the_app_once(
    fleet: tuple[Platform, RecordingProvider], store: Store
) -> None:
    platform, fake = fleet
    calls = [
        (platform.tokens.authenticate(m.token), m.id, f"/srv/gun/{n}", f"10.0.0.{n}")
        for n, m in enumerate(fake.made)
    ]
    bumps = recorded(store, "UPDATE apps SET generation")  # each placement bumps it
    got = platform.agents.register_many(calls)
    assert len(bumps) == 1
    assert all(isinstance(i, Instance) and i.state == "online" for i in got)
    assert [i.address for i in got if isinstance(i, Instance)] == [c[2] for c in calls]
    with store.read() as tx:
        actions = [e.action for e in tx.events.of("shop", 100)]
    assert actions.count("instance.online") == 20
    # again: nothing comes online, nothing is placed
    assert all(isinstance(i, Instance) for i in platform.agents.register_many(calls))
    assert len(bumps) == 1


def test_in_one_batch_each_caller_hears_its_own_refusal(
    fleet: tuple[Platform, RecordingProvider], store: Store
) -> None:
    platform, fake = fleet
    one, two, three = fake.made[:3]
    who = {m.id: platform.tokens.authenticate(m.token) for m in (one, two, three)}
    got = platform.agents.register_many(
        [
            (who[one.id], one.id, None, None),
            (who[one.id], two.id, None, None),  # another instance's token
            (who[three.id], "i-nosuch", None, None),
            (who[three.id], three.id, None, None),
        ]
    )
    assert isinstance(got[0], Instance) and got[0].state == "online"
    assert isinstance(got[1], Forbidden)
    name = who[one.id].name
    assert got[1].message == f"token {name!r} is not the agent token of instance {two.id!r}"
    assert isinstance(got[2], Forbidden)  # the token is refused before the instance is looked at
    assert isinstance(got[3], Instance) and got[3].state == "online"
    with store.read() as tx:
        assert tx.instances.get(two.id).state == "pending"  # type: ignore[union-attr]


def test_twenty_agents_registering_over_http_at_once(
    fleet: tuple[Platform, RecordingProvider],
) -> None:
    platform, fake = fleet
    transport = httpx.ASGITransport(app=create_app(platform))
    body = protocol.to_json(protocol.Registration(protocol.VERSION, None))

    async def register_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://meta") as c:
            return await asyncio.gather(
                *(
                    c.post(
                        f"/v1/agent/instances/{m.id}/register",
                        json=body,
                        headers={
                            "Authorization": f"Bearer {m.token}",
                            protocol.HEADER: str(protocol.VERSION),
                        },
                    )
                    for m in fake.made
                )
            )

    answers = asyncio.run(register_all())
    assert [r.status_code for r in answers] == [200] * 20, answers[0].text
    assert [r.json()["id"] for r in answers] == [m.id for m in fake.made]
    assert {r.json()["state"] for r in answers} == {"online"}
    nosuch = asyncio.run(_register_as(transport, fake.made[0].token, "i-0"))
    assert nosuch.status_code == 403
    assert nosuch.json()["message"].endswith("is not the agent token of instance 'i-0'")


async def _register_as(transport: httpx.ASGITransport, token: str, instance: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport, base_url="http://meta") as c:
        return await c.post(
            f"/v1/agent/instances/{instance}/register",
            json=protocol.to_json(protocol.Registration(protocol.VERSION, None)),
            headers={"Authorization": f"Bearer {token}", protocol.HEADER: str(protocol.VERSION)},
        )


def test_the_ip_an_agent_registers_is_where_routers_reach_its_web_processes(
    store: Store, tmp_path: Path
) -> None:
    fleet = fleets.Fleet(store, tmp_path, 2)  # provider fake: like ec2, gun knows no host
    gun, one, two = fleet.platform, *fleet.ids
    fleet.scale("web=2")
    for iid in (one, two):
        placed = gun.agents.desired(fleet.who[iid], iid).processes
        up = tuple(ObservedProcess(d.name, "up", 1, 5000, 100, 0, None, None) for d in placed)
        gun.agents.report(fleet.who[iid], iid, protocol.Report(protocol.VERSION, up, None, None))
    where = {p.name: p.instance for p in gun.processes.all(fleet.admin, "shop")}

    def backends() -> dict[str, str]:
        routes = gun.routing.table(fleet.admin).routes
        return {where[b.name]: b.host for b in routes[0].backends}

    assert backends() == {}  # registered without an ip: not routed
    gun.agents.register(fleet.who[one], one, None, "10.0.0.1")
    assert backends() == {one: "10.0.0.1"}
    gun.agents.register_many([(fleet.who[two], two, None, "2001:db8::2")])
    gun.agents.register(fleet.who[one], one, None)  # could not tell this time: the one it knew
    assert backends() == {one: "10.0.0.1", two: "2001:db8::2"}
    shown = [instance_json(i) for i in gun.instances.all(fleet.admin, "shop")]
    assert all("ip" not in i for i in shown)  # `gun instances` keeps CLI.md's shape
