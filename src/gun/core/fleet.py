"""Instances, processes and the agent protocol: placement written, agents' reports read."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gun import placement
from gun.core.access import authorize
from gun.core.placing import placement_instances, write_placement
from gun.core.release_phase import ReleasePhase, git_source, slug_source
from gun.core.shipping import Shipping
from gun.crypto import hash_token, new_token
from gun.errors import Forbidden, InvalidParams, NotFound
from gun.model import (
    Instance,
    Layer,
    Principal,
    Process,
    check_layer_name,
    check_process_state,
    show,
)
from gun.providers import InstanceProvider, NewInstance
from gun.store import Store
from gun.store.time import now

MAX_NEW_INSTANCES = 20
LEASE_SECONDS = 120.0  # a replacement lease lapses after this (an agent that died mid-way)


@dataclass(frozen=True)
class DesiredProcess:
    name: str
    type: str
    command: str
    nonce: int


@dataclass(frozen=True)
class Slice:
    """What one instance's agent must run: everything it may see, and nothing of other apps."""

    generation: int
    app: str
    instance: str
    release: int | None
    slug: dict[str, Any] | None
    env: dict[str, str] = field(repr=False)
    processes: list[DesiredProcess]
    # the release command of a pending release, for the one instance that is to run it
    release_phase: dict[str, Any] | None = field(default=None, repr=False)
    # strategy git: the commit this instance fetches and builds, instead of a slug
    git: dict[str, str] | None = None
    # logplex URLs the agent ships the app's logs to: the platform's drain, then the app's own
    drains: list[str] = field(default_factory=list, repr=False)
    # how replacements roll: seconds a replaced web process keeps serving after its successor
    # is up (routers notice), and processes of a type that may be down at once here
    rollout: dict[str, float] = field(default_factory=dict)


def _instance_id() -> str:
    return f"i-{secrets.token_hex(4)}"


class Fleet:
    """Mixed into Platform: needs `self.store`, `self.providers`, `self.meta_url`."""

    store: Store
    providers: Mapping[str, InstanceProvider]
    meta_url: str | None
    rollout: Mapping[str, float]
    release_phase: ReleasePhase
    shipping: Shipping

    def unplaceable(self, who: Principal, name: str) -> dict[str, str]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            app = tx.apps.existing(name)
            instances = placement_instances(tx, app.id)
            return placement.unplaceable(tx.formation.of(app.id), tx.layers.of(app.id), instances)

    # instances ------------------------------------------------------------------------------

    def instances(self, who: Principal, name: str) -> list[Instance]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.instances.of(tx.apps.existing(name).id)

    def create_instances(
        self,
        who: Principal,
        name: str,
        layer: str,
        count: int = 1,
        *,
        instance_type: str | None = None,
        availability_zone: str | None = None,
        provider: str = "local",
    ) -> list[Instance]:
        authorize(who, "developer", name)
        check_layer_name(layer)
        if not 1 <= count <= MAX_NEW_INSTANCES:
            raise InvalidParams(f"count={count} is out of range: use 1 to {MAX_NEW_INSTANCES}")
        chosen = self.providers.get(provider)
        if chosen is None:
            known = ", ".join(sorted(self.providers)) or "none"
            raise InvalidParams(f"provider {provider!r} is not available here (available: {known})")
        if self.meta_url is None:
            raise InvalidParams("this meta was started without a URL agents can reach")
        for label, value in (
            ("instance_type", instance_type),
            ("availability_zone", availability_zone),
        ):
            if value is not None and not (0 < len(value) <= 40 and value.isprintable()):
                raise InvalidParams(f"{label} {show(value)} must be 1 to 40 printable characters")
        made: list[NewInstance] = []
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            if layer not in {la.name for la in tx.layers.of(app.id)}:
                tx.layers.put(app.id, Layer(layer, None))
            for _ in range(count):
                iid = _instance_id()
                token = new_token()
                token_id = tx.tokens.insert(
                    name=f"agent {iid}",
                    digest=hash_token(token),
                    role="viewer",
                    app_id=app.id,
                    created_by="meta",
                    kind="instance",
                )
                tx.instances.insert(
                    id=iid,
                    app_id=app.id,
                    layer=layer,
                    provider=provider,
                    instance_type=instance_type,
                    availability_zone=availability_zone,
                    token_id=token_id,
                )
                made.append(
                    NewInstance(
                        iid, name, layer, instance_type, availability_zone, self.meta_url, token
                    )
                )
            tx.events.record(
                app,
                who.name,
                "instances.create",
                {"layer": layer, "ids": [m.id for m in made], "provider": provider},
            )
        for m in made:
            address = chosen.create(m)
            with self.store.write() as tx:
                tx.instances.update(m.id, address=address)
        with self.store.read() as tx:
            return [
                i
                for i in tx.instances.of(tx.apps.existing(name).id)
                if i.id in {m.id for m in made}
            ]

    def delete_instance(self, who: Principal, name: str, instance_id: str) -> None:
        authorize(who, "developer", name)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            inst = tx.instances.get(instance_id)
            if inst is None or inst.app != name:
                raise NotFound(f"instance {instance_id!r} of app {name!r} does not exist")
            tx.instances.delete(instance_id)
            write_placement(tx, app)
            tx.events.record(app, who.name, "instances.delete", {"id": instance_id})
        provider = self.providers.get(inst.provider)
        if provider is not None:
            provider.delete(instance_id)

    def stale_instances(self, timeout: float, watching_since: datetime) -> set[str]:
        """Online instances without a heartbeat for `timeout` s (read only).

        Only heartbeats meta could have heard count: nothing is stale until meta has itself
        been up and watching (`watching_since`) for `timeout`.
        """
        cutoff = now() - timedelta(seconds=timeout)
        if cutoff < watching_since:
            return set()
        with self.store.read() as tx:
            return {instance_id for _, instance_id in tx.instances.stale(cutoff)}

    def mark_lost(self, instance_ids: Iterable[str], timeout: float) -> list[str]:
        """Mark instances lost (still silent, checked again under the app's lock) and re-place
        their processes on the others."""
        lost = []
        for instance_id in sorted(instance_ids):
            with self.store.write() as tx:
                inst = tx.instances.get(instance_id)
                app = tx.apps.find(inst.app, lock=True) if inst else None
                if app is None or inst is None or inst.state != "online":
                    continue
                heard = inst.last_heartbeat
                if heard is not None and heard > now() - timedelta(seconds=timeout):
                    continue
                tx.instances.update(instance_id, state="lost")
                write_placement(tx, app)
                tx.events.record(app, "meta", "instance.lost", {"id": instance_id})
                lost.append(instance_id)
        return lost

    # processes ------------------------------------------------------------------------------

    def processes(self, who: Principal, name: str) -> list[Process]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.processes.of(tx.apps.existing(name).id)

    def restart_processes(self, who: Principal, name: str, target: str | None) -> list[str]:
        """Ask agents to restart processes (all, a type, or one name); returns the names."""
        authorize(who, "developer", name)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            procs = [p for p in tx.processes.of(app.id) if p.desired]
            chosen = [p for p in procs if target is None or target in (p.name, p.type)]
            if not chosen:
                raise NotFound(
                    f"app {name!r} has no process or process type {target!r} running"
                    if target
                    else f"app {name!r} has no processes running"
                )
            for p in chosen:
                tx.processes.bump_nonce(app.id, p.name)
            tx.apps.bump_generation(app.id)
            tx.events.record(app, who.name, "ps.restart", {"target": target})
            return sorted(p.name for p in chosen)

    # the agent protocol ---------------------------------------------------------------------

    @staticmethod
    def _agent(who: Principal, instance_id: str) -> None:
        if who.instance != instance_id:
            raise Forbidden(
                f"token {who.name!r} is not the agent token of instance {instance_id!r}"
            )

    def register(self, who: Principal, instance_id: str, address: str | None) -> Instance:
        self._agent(who, instance_id)
        with self.store.write() as tx:
            inst = tx.instances.get(instance_id)
            if inst is None:
                raise NotFound(f"instance {instance_id!r} does not exist")
            app = tx.apps.existing(inst.app, lock=True)
            values: dict[str, Any] = {"state": "online", "last_heartbeat": now()}
            if address:
                values["address"] = address
            tx.instances.update(instance_id, **values)
            if inst.state != "online":
                write_placement(tx, app)
                tx.events.record(app, who.name, "instance.online", {"id": instance_id})
            found = tx.instances.get(instance_id)
            assert found is not None
            return found

    def generation(self, who: Principal, instance_id: str) -> int:
        self._agent(who, instance_id)
        with self.store.read() as tx:
            inst = tx.instances.get(instance_id)
            if inst is None:
                raise NotFound(f"instance {instance_id!r} does not exist")
            app = tx.apps.existing(inst.app)
            return tx.apps.generation(app.id)

    def desired(self, who: Principal, instance_id: str) -> Slice:
        self._agent(who, instance_id)
        with self.store.read() as tx:
            inst = tx.instances.get(instance_id)
            if inst is None:
                raise NotFound(f"instance {instance_id!r} does not exist")
            app = tx.apps.existing(inst.app)
            generation = tx.apps.generation(app.id)
            version = tx.releases.current_version(app.id)
            release = tx.releases.get(app, version) if version else None
            slug = slug_source(tx, release.slug_id) if release else None
            types = (release.process_types or {}) if release else {}
            nonces = tx.processes.nonces(app.id)
            procs = [
                DesiredProcess(p.name, p.type, types[p.type], nonces.get(p.name, 0))
                for p in tx.processes.of(app.id, instance_id)
                if p.desired and p.type in types
            ]
            phase = self.release_phase.command_for(tx, app, instance_id)
            git = git_source(app, release) if release else None
            drains = self.shipping.urls(tx, app.id)
        return Slice(
            generation=generation,
            app=app.name,
            instance=instance_id,
            release=release.version if release else None,
            slug=slug,
            env=dict(release.config) if release else {},
            processes=sorted(procs, key=lambda p: p.name),
            release_phase=phase,
            rollout=dict(self.rollout),
            git=git,
            drains=drains,
        )

    def lease_replacements(
        self, who: Principal, instance_id: str, names: Sequence[str]
    ) -> list[str]:
        """Which of these processes the agent may take down now to replace them: at most
        `max_unavailable` of a type at once across all instances (a web process is prebooted,
        never down, so its agent does not ask)."""
        self._agent(who, instance_id)
        limit = int(self.rollout.get("max_unavailable", 1))
        until = now() + timedelta(seconds=LEASE_SECONDS)
        with self.store.write() as tx:
            inst = tx.instances.get(instance_id)
            if inst is None:
                raise NotFound(f"instance {instance_id!r} does not exist")
            app = tx.apps.existing(inst.app, lock=True)
            return [
                n
                for n in names
                if tx.processes.lease_replacement(app.id, instance_id, n, limit, until)
            ]

    def report(
        self,
        who: Principal,
        instance_id: str,
        observed: Sequence[Mapping[str, Any]],
        problem: str | None = None,
    ) -> None:
        """An agent's heartbeat with the state of every process it runs."""
        self._agent(who, instance_id)
        for o in observed:
            check_process_state(o["name"], o.get("state"))
        with self.store.write() as tx:
            inst = tx.instances.get(instance_id)
            if inst is None:
                raise NotFound(f"instance {instance_id!r} does not exist")
            app = tx.apps.existing(inst.app, lock=inst.state != "online")
            tx.instances.update(instance_id, state="online", last_heartbeat=now(), problem=problem)
            leased = tx.processes.leased(app.id, instance_id)
            current = tx.releases.current_version(app.id) if leased else None
            ended = False
            seen = set()
            for o in observed:
                seen.add(o["name"])
                tx.processes.report(
                    app.id,
                    instance_id,
                    o["name"],
                    state=o["state"],
                    release=o.get("release"),
                    port=o.get("port"),
                    pid=o.get("pid"),
                    restarts=o.get("restarts", 0),
                    exit_code=o.get("exit_code"),
                    since=o.get("since"),
                )
                # up on the current release: its replacement lease ends
                if o["name"] in leased and o["state"] == "up" and o.get("release") == current:
                    ended = tx.processes.end_lease(app.id, o["name"]) or ended
            if ended:  # the agents waiting for a lease hear of it at once (long-polls wake)
                tx.apps.bump_generation(app.id)
            for p in tx.processes.of(app.id, instance_id):
                if p.name in seen:
                    continue
                if not p.desired:
                    tx.processes.delete(app.id, p.name)
                elif p.state in ("up", "stopping", "crashed"):
                    # its agent reported it once and no longer does: it is not running, and
                    # must not be shown as it last was (placed ones stay `starting`)
                    tx.processes.report(
                        app.id, instance_id, p.name, state="down", pid=None, port=None, since=now()
                    )
            if inst.state != "online":
                write_placement(tx, app)
                tx.events.record(app, "meta", "instance.online", {"id": instance_id})
