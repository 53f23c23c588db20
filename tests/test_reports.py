"""Heartbeats taken many at a time (core/reports.py): a batch is a few statements whatever its
size, every report in it means what it meant alone, and each caller hears its own refusal."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gun import formation, protocol
from gun.api.app import create_app
from gun.core.reports import Call
from gun.crypto import Box
from gun.errors import Forbidden, NotFound
from gun.model import Process
from gun.protocol import ObservedProcess, Report
from gun.store import Store
from tests import fleets
from tests.conftest import PgDatabases
from tests.statements import recorded

SINCE = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class Fleet(fleets.Fleet):
    """10 instances, web=10 worker=5."""

    def __init__(self, store: Store, tmp_path: Path) -> None:
        super().__init__(store, tmp_path, 10)
        self.scale("web=10 worker=5")

    def placed(self, iid: str) -> list[str]:
        return [d.name for d in self.platform.agents.desired(self.who[iid], iid).processes]

    def up(self, iid: str, pid: int = 100, names: list[str] | None = None) -> Call:
        """A report of the instance's placed processes (or `names`), all up."""
        procs = tuple(
            ObservedProcess(name, "up", 1, 5000 + n, pid + n, 0, None, SINCE)
            for n, name in enumerate(self.placed(iid) if names is None else names)
        )
        return Call(self.who[iid], iid, Report(protocol.VERSION, procs, None, None))

    def processes(self) -> dict[str, Process]:
        with self.store.read() as tx:
            return {p.name: p for p in tx.processes.of(tx.apps.existing("shop").id)}

    def instance(self, iid: str) -> Any:
        with self.store.read() as tx:
            return tx.instances.get(iid)


@pytest.fixture
def fleet(store: Store, tmp_path: Path) -> Fleet:
    return Fleet(store, tmp_path)


def test_a_batch_of_ten_reports_is_a_few_statements_and_each_is_written(fleet: Fleet) -> None:
    agents = fleet.platform.agents
    calls = [fleet.up(i) for i in fleet.ids]
    said = recorded(fleet.store, r"(SELECT|UPDATE|INSERT|DELETE)\b")
    assert agents.report_many(calls) == [None] * 10
    # the instances, the app (locked), the instances again (under the lock), the processes
    # and their leases, then the heartbeats and the processes' changes: one statement each
    assert len([s for s in said if s.lstrip().startswith("SELECT")]) == 5, said
    writes = [s for s in said if not s.lstrip().startswith("SELECT")]
    assert len(writes) == 2, writes
    procs = fleet.processes()
    assert {p.state for p in procs.values()} == {"up"}
    assert all(p.since == SINCE and p.pid and p.port for p in procs.values())
    beats = [fleet.instance(i).last_heartbeat for i in fleet.ids]
    assert all(b is not None and b > datetime.now(UTC) - timedelta(seconds=30) for b in beats)

    # again, nothing new: only the instances' heartbeats are written
    calls = [fleet.up(i) for i in fleet.ids]
    said.clear()
    assert agents.report_many(calls) == [None] * 10
    writes = [s for s in said if not s.lstrip().startswith("SELECT")]
    assert len(writes) == 1 and writes[0].lstrip().startswith("UPDATE instances"), writes


def test_each_report_in_a_batch_means_what_it_meant_alone(fleet: Fleet) -> None:
    agents = fleet.platform.agents
    assert agents.report_many([fleet.up(i) for i in fleet.ids]) == [None] * 10
    one, two, three = fleet.ids[:3]
    gone = fleet.placed(two)[0]
    fleet.platform.formation.scale(fleet.admin, "shop", formation.parse("worker=0"))
    undesired = {n for n, p in fleet.processes().items() if not p.desired}
    assert undesired
    quiet = [n for n in undesired if fleet.processes()[n].instance == three]
    calls = [
        fleet.up(one, pid=900),  # new pids: written
        fleet.up(two, names=[n for n in fleet.placed(two) if n != gone]),  # one no longer said
        fleet.up(three, names=[]),  # says nothing: its undesired worker goes
    ]
    assert agents.report_many(calls) == [None] * 3
    procs = fleet.processes()
    assert {procs[n].pid for n in fleet.placed(one)} >= {900}
    assert procs[gone].state == "down" and procs[gone].pid is None
    assert all(n not in procs for n in quiet)


def test_a_lost_instance_that_reports_is_online_and_placed_again(fleet: Fleet) -> None:
    iid = fleet.ids[4]
    with fleet.store.write() as tx:
        tx.instances.update(iid, state="lost")
    assert fleet.platform.agents.report_many([fleet.up(iid, names=[])]) == [None]
    assert fleet.instance(iid).state == "online"
    with fleet.store.read() as tx:
        actions = [e.action for e in tx.events.of("shop", 5)]
    assert "instance.online" in actions
    assert fleet.placed(iid)  # processes placed on it again


def test_in_one_batch_each_caller_hears_its_own_refusal_and_the_newer_report_wins(
    fleet: Fleet,
) -> None:
    one, two, three = fleet.ids[:3]
    stranger = Call(fleet.who[one], two, Report(protocol.VERSION, (), None, None))
    older, newer = fleet.up(three, pid=300), fleet.up(three, pid=700)
    nosuch = Call(fleet.who[one], one, Report(protocol.VERSION, (), None, None))
    with fleet.store.write() as tx:
        tx.instances.delete(one)
    got = fleet.platform.agents.report_many([stranger, older, nosuch, newer])
    assert isinstance(got[0], Forbidden)
    assert got[0].message == (
        f"token {fleet.who[one].name!r} is not the agent token of instance {two!r}"
    )
    assert got[1] is None and got[3] is None
    assert isinstance(got[2], NotFound) and got[2].message == f"instance {one!r} does not exist"
    procs = fleet.processes()
    assert sorted(procs[n].pid or 0 for n in fleet.placed(three))[0] == 700


def test_heartbeats_over_http_at_once(fleet: Fleet) -> None:
    """The route group-commits: twenty agents reporting together are all heard."""
    transport = httpx.ASGITransport(app=create_app(fleet.platform))
    tokens = {m.id: m.token for m in fleet.fake.made}

    async def report_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://meta") as c:
            return await asyncio.gather(
                *(
                    c.put(
                        f"/v1/agent/instances/{iid}/observed",
                        json=protocol.to_json(fleet.up(iid).report),
                        headers={
                            "Authorization": f"Bearer {tokens[iid]}",
                            protocol.HEADER: str(protocol.VERSION),
                        },
                    )
                    for iid in fleet.ids * 2
                )
            )

    answers = asyncio.run(report_all())
    assert [r.status_code for r in answers] == [204] * 20
    assert {p.state for p in fleet.processes().values()} == {"up"}


def test_processes_an_agent_made_up_cost_nothing(fleet: Fleet) -> None:
    """A compromised host may report 10,000 processes meta never placed there (the protocol's
    limit): nothing is written for them, and its own are taken as usual."""
    iid = fleet.ids[0]
    mine = fleet.up(iid, pid=500)
    made_up = tuple(
        ObservedProcess(f"web.{n}", "up", 1, 6000, 9000 + n, 0, None, SINCE)
        for n in range(1000, 11_000 - len(mine.report.processes))
    )
    report = Report(protocol.VERSION, mine.report.processes + made_up, None, None)
    said = recorded(fleet.store, r"(UPDATE|INSERT|DELETE)\b")
    assert fleet.platform.agents.report_many([Call(mine.who, iid, report)]) == [None]
    assert len(said) == 2  # its heartbeat, and its own processes in one statement
    procs = fleet.processes()
    placed = fleet.placed(iid)
    assert sorted(procs[n].pid or 0 for n in placed) == [500 + k for k in range(len(placed))]
    assert all((p.pid or 0) < 9000 for p in procs.values())


def test_an_instance_marked_lost_while_its_report_waited_for_the_lock_is_placed_again(
    pg_databases: PgDatabases, box: Box, tmp_path: Path
) -> None:
    """meta's watch marks an instance lost while a batch that read it online waits for the
    app's lock: the batch reads it again under the lock, so it comes back online *and* its
    app is placed again. On PostgreSQL only: SQLite's writers never interleave."""
    store = Store.open(pg_databases.fresh(), box)
    try:
        lost_meanwhile(store, tmp_path)
    finally:
        store.close()


def lost_meanwhile(store: Store, tmp_path: Path) -> None:
    fleet = Fleet(store, tmp_path)
    iid = fleet.ids[3]
    call = fleet.up(iid, names=[])
    holder = store.engine.connect()
    tx = holder.begin()
    holder.exec_driver_sql("SELECT id FROM apps WHERE name = 'shop' FOR UPDATE")
    done: list[list[None | BaseException]] = []
    batch = threading.Thread(target=lambda: done.append(fleet.platform.agents.report_many([call])))
    batch.start()
    time.sleep(0.5)  # the batch has read the instance online and waits for the app's lock
    assert not done
    holder.exec_driver_sql("UPDATE instances SET state = 'lost' WHERE id = %s", (iid,))
    tx.commit()
    holder.close()
    batch.join(10)
    assert done == [[None]]
    assert fleet.instance(iid).state == "online"
    with store.read() as rtx:
        actions = [e.action for e in rtx.events.of("shop", 3)]
    assert actions[0] == "instance.online", actions
