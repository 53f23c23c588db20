"""Slices: what an instance's agent must run, built from one read of its app per generation.

Every change to what an app's agents run (a deploy, config, a scale, a restart, a drain, a
layer, an instance coming or going, the release phase) bumps the app's generation in the
transaction that makes it. So everything an app's slices are made of can be read once per
generation (`read_app`, one snapshot for all its instances) and each agent's slice built from
it without the store (`AppSlices.slice_for`, pure). With 1,000 agents long-polling, a scale
used to read the release, the processes and the rest again for each: ~8 ms each, 1,000 slices
over ~8 s (bench/fleet.py).

`SliceCache` keeps the newest snapshot of each app. A slice is never older than the
generation its caller knew of before asking: a snapshot is used only if it was read at that
generation or later (the snapshot reads the generation first, so what follows is as new or
newer). A snapshot is read again after MAX_AGE seconds whatever the generation says, so a
change made by a path that forgot to bump it still arrives, as it did before (at the next
long-poll).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from gun.core.release_phase import ReleasePhase, SlugRow, git_source, slug_of
from gun.core.runs import order_of
from gun.model import App, Instance, Process, Release
from gun.protocol import (
    VERSION,
    DesiredProcess,
    Lease,
    ReleasePhaseOrder,
    Rollout,
    RunOrder,
    Slice,
    slug_ref,
)
from gun.rendezvous import Address
from gun.store import Store, Tx

MAX_AGE = 5.0  # seconds a snapshot serves before it is read again, its generation unmoved
UNFENCED = frozenset({"local"})  # providers whose instances share meta's machine
PROCESS_GRACE = 30.0  # SIGTERM to SIGKILL of a process stopped as usual (the supervisor's)


def lease_terms(provider: str, timeout: float) -> Lease | None:
    """How an instance's processes are fenced, from its provider and meta's instance timeout
    (pure); None for an instance on meta's own machine (provider local: `gun up`), whose
    processes keep running while meta is away.

    The grace is a third of the timeout (at most PROCESS_GRACE), the margin a tenth (from 1 s
    to 5 s, but at most a quarter): GUN_INSTANCE_TIMEOUT=30 stops at 17 s with 10 s of grace
    and 3 s to spare; 6 stops at 3 s with 2 s of grace and 1 s to spare."""
    if provider in UNFENCED:
        return None
    grace = min(PROCESS_GRACE, timeout / 3)
    margin = min(5.0, max(1.0, timeout / 10), timeout / 4)
    return Lease(timeout=timeout, grace=grace, margin=margin)


def build_slice(
    *,
    generation: int,
    app: App,
    instance: str,
    release: Release | None,
    slug: SlugRow | None,
    placed: Sequence[Process],
    nonces: Mapping[str, int],
    release_phase: ReleasePhaseOrder | None,
    drains: Sequence[str],
    rollout: Rollout,
    lease: Lease | None,
    setup: str | None = None,
    teardown: str | None = None,
    runs: Sequence[RunOrder] = (),
    rendezvous: Address | None = None,
) -> Slice:
    """The slice of `instance`, from what one read of the store gave (pure): the app's current
    `release` (and its `slug`), the processes `placed` there that are still wanted and that the
    release has a command for (sorted by name, each with its restart nonce), the release phase
    it is to run, if any, where the app's logs go, how its processes are fenced, and the
    one-off processes (`runs`) it is to run, attached ones meeting their clients at
    `rendezvous`."""
    types = (release.process_types or {}) if release else {}
    processes = [
        DesiredProcess(p.name, p.type, types[p.type], nonces.get(p.name, 0))
        for p in placed
        if p.desired and p.type in types
    ]
    return Slice(
        version=VERSION,
        generation=generation,
        app=app.name,
        instance=instance,
        release=release.version if release else None,
        slug=slug_ref(instance, *slug) if slug else None,
        env=dict(release.config) if release else {},
        processes=tuple(sorted(processes, key=lambda p: p.name)),
        release_phase=release_phase,
        git=git_source(app, release) if release else None,
        drains=tuple(drains),
        rollout=rollout,
        lease=lease,
        setup=setup,
        teardown=teardown,
        runs=tuple(sorted(runs, key=lambda r: int(r.name.removeprefix("run.")))),
        rendezvous=rendezvous.url if rendezvous else None,
        rendezvous_tls=rendezvous.tls if rendezvous else False,
        rendezvous_ca=rendezvous.ca if rendezvous else None,
    )


@dataclass(frozen=True)
class AppSlices:
    """Everything an app's slices are made of, at one generation (or newer)."""

    generation: int
    app: App
    release: Release | None
    slug: SlugRow | None
    placed: Mapping[str, tuple[Process, ...]]  # by instance id
    nonces: Mapping[str, int]  # by process name
    release_phase: tuple[str, ReleasePhaseOrder] | None  # the instance to run it, and how
    drains: tuple[str, ...]
    teardowns: Mapping[str, str | None]  # by layer
    instances: Mapping[str, Instance]  # by id
    read_at: float  # time.monotonic() when read
    runs: Mapping[str, tuple[RunOrder, ...]] = field(default_factory=dict)  # by instance id

    def slice_for(
        self, inst: Instance, rollout: Rollout, timeout: float, rendezvous: Address | None = None
    ) -> Slice:
        """The slice of one of the app's instances (pure)."""
        phase = self.release_phase
        return build_slice(
            generation=self.generation,
            app=self.app,
            instance=inst.id,
            release=self.release,
            slug=self.slug,
            placed=self.placed.get(inst.id, ()),
            nonces=self.nonces,
            release_phase=phase[1] if phase and phase[0] == inst.id else None,
            drains=self.drains,
            rollout=rollout,
            lease=lease_terms(inst.provider, timeout),
            setup=inst.setup,
            teardown=self.teardowns.get(inst.layer),
            runs=self.runs.get(inst.id, ()),
            rendezvous=rendezvous,
        )


def read_app(tx: Tx, app: App, drains: Sequence[str], release_phase: ReleasePhase) -> AppSlices:
    """The app's snapshot, at the generation read first (so what follows is as new or newer)."""
    generation = tx.apps.generation(app.id)
    version = tx.releases.current_version(app.id)
    release = tx.releases.get(app, version) if version else None
    placed: dict[str, list[Process]] = {}
    for p in tx.processes.of(app.id):
        if p.instance:
            placed.setdefault(p.instance, []).append(p)
    instances = {i.id: i for i in tx.instances.of(app.id)}
    online = sorted(i.id for i in instances.values() if i.state == "online")
    order = release_phase.command_for(tx, app, online[0]) if online else None
    runs: dict[str, list[RunOrder]] = {}
    for r in tx.runs.active(app.id):
        if r.instance:
            runs.setdefault(r.instance, []).append(order_of(r))
    return AppSlices(
        generation=generation,
        app=app,
        release=release,
        slug=slug_of(tx, release),
        placed={i: tuple(ps) for i, ps in placed.items()},
        nonces=tx.processes.nonces(app.id),
        release_phase=(online[0], order) if order else None,
        drains=tuple(drains),
        teardowns={layer.name: layer.teardown for layer in tx.layers.of(app.id)},
        instances=instances,
        read_at=time.monotonic(),
        runs={i: tuple(rs) for i, rs in runs.items()},
    )


class SliceCache:
    """The newest snapshot of each app; one reader at a time per app (the others wait for
    its snapshot rather than read the same again)."""

    def __init__(self, max_age: float = MAX_AGE) -> None:
        self.max_age = max_age
        self.reads = 0
        self._apps: dict[int, AppSlices] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def fresh(self, app_id: int, generation: int) -> AppSlices | None:
        """The app's snapshot if it is at `generation` or newer and young enough."""
        got = self._apps.get(app_id)
        if got is None or got.generation < generation:
            return None
        if time.monotonic() - got.read_at > self.max_age:
            return None
        return got

    def get(
        self, store: Store, app_id: int, generation: int, read: Callable[[Tx], AppSlices]
    ) -> AppSlices:
        """The app's snapshot at `generation` or newer: the cached one, else `read` (in a
        read transaction of `store`) by one thread while the others wait for it."""
        got = self.fresh(app_id, generation)
        if got is not None:
            return got
        with self._guard:
            lock = self._locks.setdefault(app_id, threading.Lock())
        with lock:
            got = self.fresh(app_id, generation)
            if got is not None:
                return got
            with store.read() as tx:
                got = read(tx)
            self.reads += 1
            was = self._apps.get(app_id)
            if was is None or was.generation <= got.generation:
                self._apps[app_id] = got
            return got
