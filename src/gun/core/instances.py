"""Instances: hosts that run an app's processes, in layers, made by a provider (local, ssh,
ec2): the one `instances.create` names, else its layer's (layers.set provider=), else local.

An instance is `pending` until its agent registers, `online` while it heartbeats, and `lost`
when meta heard nothing from it for the instance timeout (its processes are placed on the
others until it is back). An ec2 instance is `requested` once RunInstances answered and
`booting` once EC2 says it runs (`cloud_states`, from meta's EC2 watch), until its agent
registers; `terminated` if EC2 says it ended without `instances.delete` (its processes are
placed on the others; the row stays until `instances.delete`, so that it is seen). Each has
an agent token of its own, made and revoked with it. `instances.delete` removes the row at
once: EC2 itself keeps showing a terminated instance for a while; gun does not.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from gun.core.access import authorize
from gun.core.placing import write_placement
from gun.crypto import hash_token, new_token
from gun.errors import InvalidParams, NotFound
from gun.layersettings import LayerSettings
from gun.model import Host, Instance, Layer, Principal, check_layer_name, show
from gun.providers import InstanceProvider, NewInstance
from gun.store import Store
from gun.store.time import now

MAX_NEW_INSTANCES = 20


def _instance_id() -> str:
    return f"i-{secrets.token_hex(4)}"


class Instances:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, InstanceProvider],
        meta_url: str | None,
        meta_ca: str | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.meta_url = meta_url  # what agents are given to reach meta
        self.meta_ca = meta_ca  # PEM: the CA they pin meta's HTTPS to (None: the system's)

    def all(self, who: Principal, name: str) -> list[Instance]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.instances.of(tx.apps.existing(name).id)

    def create(
        self,
        who: Principal,
        name: str,
        layer: str,
        count: int = 1,
        *,
        instance_type: str | None = None,
        availability_zone: str | None = None,
        provider: str | None = None,
        host: str | None = None,
    ) -> list[Instance]:
        """`count` new instances in `layer` (made, running every type, if the app has no
        such layer), each with an agent token of its own, started by `provider` (None: the
        layer's, else local; ssh: on the registered `host`; ec2: with the layer's settings)."""
        authorize(who, "developer", name)
        check_layer_name(layer)
        if not 1 <= count <= MAX_NEW_INSTANCES:
            raise InvalidParams(f"count={count} is out of range: use 1 to {MAX_NEW_INSTANCES}")
        settings = LayerSettings()
        with self.store.read() as tx:
            found = tx.apps.find(name)
            layers = tx.layers.of(found.id) if found else []
        the_layer = next((la for la in layers if la.name == layer), None)
        if the_layer is not None:
            settings = the_layer.settings
            if provider is None:
                provider = the_layer.provider
        provider = provider or "local"
        chosen = self.providers.get(provider)
        if chosen is None:
            known = ", ".join(sorted(self.providers)) or "none"
            raise InvalidParams(f"provider {provider!r} is not available here (available: {known})")
        if self.meta_url is None:
            raise InvalidParams("this meta was started without a URL agents can reach")
        if provider == "ec2" and settings.ami is None:
            raise InvalidParams(
                f"layer {layer} has no ami for provider ec2: gun layers.set:{layer} provider=ec2"
                " ami=ami-... [subnet=... security_groups=... key_name=...]"
            )
        if (provider == "ssh") != (host is not None):
            raise InvalidParams(
                "provider ssh needs host=NAME (gun hosts lists them)"
                if host is None
                else "host= is for provider ssh only"
            )
        for label, value in (
            ("instance_type", instance_type),
            ("availability_zone", availability_zone),
        ):
            if value is not None and not (0 < len(value) <= 40 and value.isprintable()):
                raise InvalidParams(f"{label} {show(value)} must be 1 to 40 printable characters")
        made: list[NewInstance] = []
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            if host is not None and tx.hosts.get(host) is None:
                raise NotFound(f"host {host!r} is not registered (gun hosts lists them)")
            joined = tx.layers.get(app.id, layer)
            if joined is None:
                joined = Layer(layer, None)
                tx.layers.put(app.id, joined)
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
                    setup=joined.setup,
                    token_id=token_id,
                    host=host,
                    state="requested" if provider == "ec2" else "pending",
                )
                made.append(
                    NewInstance(
                        iid,
                        name,
                        layer,
                        instance_type,
                        availability_zone,
                        self.meta_url,
                        token,
                        host,
                        self.meta_ca,
                        settings,
                    )
                )
            tx.events.record(
                app,
                who.name,
                "instances.create",
                {"layer": layer, "ids": [m.id for m in made], "provider": provider, "host": host},
            )
        for k, m in enumerate(made):
            try:
                got = chosen.create(m)
            except Exception:
                self._undo(made[k:], chosen)
                raise
            with self.store.write() as tx:
                tx.instances.update(
                    m.id, address=got.address, cloud_id=got.cloud_id, cloud_state=got.cloud_state
                )
        with self.store.read() as tx:
            return [
                i
                for i in tx.instances.of(tx.apps.existing(name).id)
                if i.id in {m.id for m in made}
            ]

    def _undo(self, made: list[NewInstance], provider: InstanceProvider) -> None:
        """Instances whose provider failed to make them (and those after them) go again, with
        their tokens and whatever the provider made of them: nothing half-made stays."""
        with self.store.write() as tx:
            for m in made:
                tx.instances.delete(m.id)
        for m in made[:1]:  # the provider never began those after the one that failed
            with contextlib.suppress(Exception):
                provider.delete(m.id, m.host)

    def delete(self, who: Principal, name: str, instance_id: str) -> str | None:
        """Remove an instance (and its agent token); its processes are placed on the others
        and its provider deletes it, running the layer's teardown first: its output."""
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
        said = provider.delete(instance_id, inst.host) if provider is not None else None
        if said is not None:
            with self.store.write() as tx:
                app = tx.apps.existing(name)
                tx.events.record(
                    app, who.name, "instance.teardown", {"id": instance_id, "output": said}
                )
        return said

    def shell(
        self, who: Principal, name: str, target: str | None = None
    ) -> tuple[Instance, Host | None]:
        """Where `ssh.host` opens a shell: the instance `target` (an id), or the one running the
        process `target` (web.1), or the app's first online instance; and its host, for
        provider ssh. The instance's address is its directory there."""
        authorize(who, "developer", name)
        with self.store.read() as tx:
            app = tx.apps.existing(name)
            instances = tx.instances.of(app.id)
            if target is None:
                chosen = next((i for i in instances if i.state == "online"), None)
                if chosen is None:
                    raise NotFound(f"app {name!r} has no online instance")
            elif target.startswith("i-"):
                chosen = next((i for i in instances if i.id == target), None)
                if chosen is None:
                    raise NotFound(f"instance {target!r} of app {name!r} does not exist")
            else:
                runs = next((p for p in tx.processes.of(app.id) if p.name == target), None)
                if runs is None or runs.instance is None:
                    raise NotFound(f"process {target!r} of app {name!r} does not run anywhere")
                chosen = next(i for i in instances if i.id == runs.instance)
            host = tx.hosts.get(chosen.host) if chosen.host else None
        if chosen.provider == "ec2":
            raise InvalidParams(
                f"instance {chosen.id} is on EC2 ({chosen.cloud_id}): gun opens no shell there"
                " yet; ssh to it with the layer's key pair"
            )
        if chosen.address is None:
            raise NotFound(f"instance {chosen.id} has not registered yet: try again soon")
        return chosen, host

    def stale(self, timeout: float, watching_since: datetime) -> set[str]:
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
                inst = tx.instances.get(instance_id)  # again, under the lock: a heartbeat?
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

    def track_cloud(self, provider: str, states: Callable[[list[str]], dict[str, str]]) -> None:
        """Record what the cloud says of the instances of `provider` (ec2): each one's state,
        `requested` -> `booting` once it runs, and `terminated` (its processes placed on the
        others) once it ends, or is gone, without instances.delete. `states` (DescribeInstances)
        is called outside any transaction."""
        with self.store.read() as tx:
            watched = {
                i.cloud_id: i
                for i in tx.instances.of()
                if i.provider == provider and i.cloud_id and i.state != "terminated"
            }
        if not watched:
            return
        seen = states(sorted(watched))
        for cloud_id, inst in watched.items():
            cloud = seen.get(cloud_id, "terminated")  # EC2 forgets terminated ones in time
            with self.store.write() as tx:
                now_ = tx.instances.get(inst.id)
                if now_ is None or now_.state == "terminated":
                    continue
                values: dict[str, str] = {}
                if cloud != now_.cloud_state:
                    values["cloud_state"] = cloud
                if cloud == "running" and now_.state == "requested":
                    values["state"] = "booting"
                ended = cloud in ("shutting-down", "terminated")
                if ended:
                    values["state"] = "terminated"
                if not values:
                    continue
                tx.instances.update(inst.id, **values)
                if ended:
                    app = tx.apps.find(now_.app, lock=True)
                    if app is not None:
                        write_placement(tx, app)
                        tx.events.record(
                            app, "meta", "instance.terminated", {"id": inst.id, "ec2": cloud_id}
                        )
