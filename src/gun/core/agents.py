"""The agent protocol: an instance's agent registers, long-polls for its desired slice,
reports what it runs (its heartbeat), asks for rollout leases and downloads slugs.

Every call is made with the instance's own agent token and is refused for any other token or
instance; an agent sees its app's slice for its instance and nothing of other apps. (The
release phase's output and result are the release phase's: core/release_phase.py.) What goes
over the wire is gun.protocol's: meta builds a Slice from its app's snapshot (core/slices.py)
and takes a Report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, BinaryIO

from gun.core import reports
from gun.core.batch import Batcher
from gun.core.placing import write_placement
from gun.core.release_phase import ReleasePhase
from gun.core.reports import check_agent, state_after_setup
from gun.core.shipping import Shipping
from gun.core.slices import AppSlices, SliceCache, read_app
from gun.core.slugs import Slugs
from gun.errors import GunError, NotFound
from gun.model import App, Instance, Principal
from gun.protocol import Report, Rollout, Slice
from gun.providers import bundle
from gun.rendezvous import Address
from gun.store import Store, Tx
from gun.store.time import now

LEASE_SECONDS = 120.0  # a replacement lease lapses after this (an agent that died mid-way)
REPORTS_AT_ONCE = 100  # heartbeats in one transaction at most

# a registration: who calls, for which instance, its address (the agent's directory) and its ip
Registering = tuple[Principal, str, str | None, str | None]


def _instance(tx: Tx, instance_id: str) -> Instance:
    inst = tx.instances.get(instance_id)
    if inst is None:
        raise NotFound(f"instance {instance_id!r} does not exist")
    return inst


class Agents:
    def __init__(
        self,
        store: Store,
        slugs: Slugs,
        shipping: Shipping,
        release_phase: ReleasePhase,
        rollout: Rollout,
        instance_timeout: float = 30.0,
        rendezvous: Address | None = None,
    ) -> None:
        self.store = store
        self.rendezvous = rendezvous  # where attached runs meet their clients
        self.instance_timeout = instance_timeout  # meta's: when a silent instance is lost
        self.slugs = slugs
        self.shipping = shipping
        self.release_phase = release_phase
        self.rollout = rollout
        self.slices = SliceCache()
        self._registrations: Batcher[Registering, Instance] = Batcher()
        # a batch holds its apps' rows locked: a scale waits for one batch at most
        self._reports: Batcher[reports.Call, None] = Batcher(most=REPORTS_AT_ONCE)
        self._homes: dict[str, tuple[int, str]] = {}  # instance id: its app's id and name
        self._reading: dict[int, tuple[int, asyncio.Future[AppSlices]]] = {}  # by app id

    def register(
        self, who: Principal, instance_id: str, address: str | None, ip: str | None = None
    ) -> Instance:
        """The agent is up: the instance is online (at `address`, if given; routers reach its
        web processes at `ip`, if given); back from pending or lost, its app's processes are
        placed again."""
        got = self.register_many([(who, instance_id, address, ip)])[0]
        if isinstance(got, BaseException):
            raise got
        return got

    async def registered(
        self, who: Principal, instance_id: str, address: str | None, ip: str | None = None
    ) -> Instance:
        """`register`, group-committed with the registrations that arrive meanwhile
        (core/batch.py): a fleet starting at once is placed once per batch, not once per
        agent (1,000 registrations, each placing the whole app again, took 118 s)."""
        return await self._registrations.run(
            "register", (who, instance_id, address, ip), self.register_many
        )

    def register_many(self, calls: Sequence[Registering]) -> list[Instance | BaseException]:
        """Registrations in one transaction: each app's row locked (in name order) before any
        write, then placed once if any of its instances came online. A caller's own refusal
        (a token not the instance's, an instance or app gone) is its own."""
        refused: dict[int, GunError] = {}
        with self.store.write() as tx:
            names = set()
            for n, (who, instance_id, _, _) in enumerate(calls):
                try:
                    check_agent(who, instance_id)
                    names.add(_instance(tx, instance_id).app)
                except GunError as e:
                    refused[n] = e
            apps = {name: tx.apps.find(name, lock=True) for name in sorted(names)}
            placing: dict[str, App] = {}
            for n, (who, instance_id, address, ip) in enumerate(calls):
                inst = None if n in refused else tx.instances.get(instance_id)
                app = apps.get(inst.app) if inst else None
                if inst is None or app is None:
                    refused.setdefault(n, NotFound(f"instance {instance_id!r} does not exist"))
                    continue
                state = state_after_setup(inst.setup, inst.setup_state)
                values: dict[str, Any] = {"state": state, "last_heartbeat": now()}
                if address:
                    values["address"] = address
                if ip:
                    values["ip"] = ip
                tx.instances.update(instance_id, **values)
                if inst.state != state:
                    placing[app.name] = app
                    tx.events.record(app, who.name, f"instance.{state}", {"id": instance_id})
            for app in placing.values():
                write_placement(tx, app)
            return [
                refused[n] if n in refused else _instance(tx, instance_id)
                for n, (_, instance_id, _, _) in enumerate(calls)
            ]

    def generation(self, who: Principal, instance_id: str) -> tuple[int, int]:
        """(the app's id, its generation): the long-poll answers once the generation is past
        the agent's."""
        check_agent(who, instance_id)
        with self.store.read() as tx:
            inst = _instance(tx, instance_id)
            found = tx.apps.generation_of(inst.app)
        if found is None:
            raise NotFound(f"app {inst.app!r} does not exist")
        self._homes[instance_id] = (found[0], inst.app)
        return found

    def generations(self) -> dict[int, int]:
        """Every app's generation, by app id: what meta's long-polls wait on (api/longpoll.py).
        Meta's own read; no principal: it says nothing of any app but that it changed."""
        with self.store.read() as tx:
            return tx.apps.generations()

    def desired(self, who: Principal, instance_id: str) -> Slice:
        """What the instance must run now: its slice of the app's current release, built from
        the app's snapshot at its current generation (core/slices.py: one read for all)."""
        check_agent(who, instance_id)
        with self.store.read() as tx:
            inst = _instance(tx, instance_id)
            found = tx.apps.generation_of(inst.app)
            if found is None:
                raise NotFound(f"app {inst.app!r} does not exist")
        self._homes[instance_id] = (found[0], inst.app)
        snapshot = self._snapshot(found[0], inst.app, found[1])
        return snapshot.slice_for(inst, self.rollout, self.instance_timeout, self.rendezvous)

    def home(self, who: Principal, instance_id: str) -> int | None:
        """The app id of the agent's instance, if this meta knows it without a query (an
        instance never changes app)."""
        check_agent(who, instance_id)
        home = self._homes.get(instance_id)
        return home[0] if home else None

    async def slice_at(self, who: Principal, instance_id: str, generation: int) -> Slice:
        """The instance's slice at `generation` or newer, from its app's snapshot: no query
        when the snapshot is cached, else one read shared by every caller waiting for it (a
        scale wakes 1,000 long-polls at once); `desired` for an instance not known here."""
        check_agent(who, instance_id)
        home = self._homes.get(instance_id)
        if home is not None:
            snapshot = self.slices.fresh(home[0], generation)
            if snapshot is None:
                snapshot = await self._shared_read(home, generation)
            inst = snapshot.instances.get(instance_id)
            if inst is not None:
                return snapshot.slice_for(
                    inst, self.rollout, self.instance_timeout, self.rendezvous
                )
        return await asyncio.to_thread(self.desired, who, instance_id)

    async def _shared_read(self, home: tuple[int, str], generation: int) -> AppSlices:
        app_id, name = home
        loop = asyncio.get_running_loop()
        pending = self._reading.get(app_id)
        if pending is None or pending[0] < generation or pending[1].get_loop() is not loop:
            read = asyncio.ensure_future(
                asyncio.to_thread(self._snapshot, app_id, name, generation)
            )
            self._reading[app_id] = pending = (generation, read)
            mine = pending

            def done(_: object) -> None:
                if self._reading.get(app_id) is mine:
                    del self._reading[app_id]

            read.add_done_callback(done)
        return await asyncio.shield(pending[1])

    def _snapshot(self, app_id: int, name: str, generation: int) -> AppSlices:
        def read(tx: Tx) -> AppSlices:
            app = tx.apps.existing(name)
            return read_app(tx, app, self.shipping.urls(tx, app.id), self.release_phase)

        return self.slices.get(self.store, app_id, generation, read)

    def lease_replacements(
        self, who: Principal, instance_id: str, names: Sequence[str]
    ) -> list[str]:
        """Which of these processes the agent may take down now to replace them: at most
        `max_unavailable` of a type at once across all instances (a web process is prebooted,
        never down, so its agent does not ask)."""
        check_agent(who, instance_id)
        limit = self.rollout.max_unavailable
        until = now() + timedelta(seconds=LEASE_SECONDS)
        with self.store.write() as tx:
            inst = _instance(tx, instance_id)
            app = tx.apps.existing(inst.app, lock=True)
            return [
                n
                for n in names
                if tx.processes.lease_replacement(app.id, instance_id, n, limit, until)
            ]

    def report(self, who: Principal, instance_id: str, report: Report) -> None:
        """An agent's heartbeat with the state of every process it runs (core/reports.py)."""
        got = self.report_many([reports.Call(who, instance_id, report)])[0]
        if got is not None:
            raise got

    async def reported(self, who: Principal, instance_id: str, report: Report) -> None:
        """`report`, group-committed with the reports that arrive meanwhile (core/batch.py)."""
        await self._reports.run("report", reports.Call(who, instance_id, report), self.report_many)

    def report_many(self, calls: Sequence[reports.Call]) -> list[None | BaseException]:
        with self.store.write() as tx:
            return reports.apply(tx, calls)

    def bundle(self, who: Principal, instance_id: str) -> bundle.Archive:
        """The agent's wheels in one tar, for an instance's own bootstrap (provider ec2's
        user-data downloads it with the instance's token and checks its sha256)."""
        check_agent(who, instance_id)
        with self.store.read() as tx:
            _instance(tx, instance_id)
        return bundle.archive()

    def slug(self, who: Principal, instance_id: str, sha256: str) -> BinaryIO:
        """The stored slug an agent may download: only one of its own app's."""
        if who.instance != instance_id:
            raise NotFound(f"slug {sha256} does not exist")
        with self.store.read() as tx:
            inst = tx.instances.get(instance_id)
            app = tx.apps.find(inst.app) if inst else None
            if app is None or tx.slugs.by_sha(app.id, sha256) is None:
                raise NotFound(f"slug {sha256} does not exist")
        return self.slugs.open(app.name, sha256)
