"""Platform methods for apps, config vars, formation, releases, layers and tokens."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gun import formation as formations
from gun import placement
from gun.build.gitrepo import check_repo_url
from gun.build.slugstore import slug_key
from gun.core.access import authorize, visible_config
from gun.core.agents import Agents
from gun.core.batch import Batcher
from gun.core.builds import BuildOptions, Builds
from gun.core.cache import VersionedCache
from gun.core.drains import Drains
from gun.core.instances import Instances
from gun.core.placing import placement_instances, write_placement
from gun.core.processes import Processes
from gun.core.release_phase import ReleasePhase
from gun.core.shipping import Shipping
from gun.core.tokens import CACHE_SECONDS, Tokens
from gun.errors import InvalidParams, NotFound
from gun.model import (
    ALL_TYPES,
    PROCESS_STATES,
    App,
    Event,
    Instance,
    Layer,
    Principal,
    Release,
    ReleaseBuild,
    check_config_key,
    check_config_size,
    check_config_value,
    check_layer_name,
    check_new_app_name,
    check_process_type,
)
from gun.providers import InstanceProvider
from gun.store import Store
from gun.store.time import now

DEFAULT_LAYER = Layer("default", None)
MAX_PROCESSES = 100  # per app, across process types (GUN_MAX_PROCESSES)


@dataclass(frozen=True)
class Scaled:
    """A scale's outcome: the formation totals, and {type: one sentence} for each type it
    changed that nothing can run yet (accepted: its processes start once an instance of its
    layer is there)."""

    totals: dict[str, int]
    warnings: dict[str, str]


@dataclass(frozen=True)
class Status:
    app: str
    release: int | None
    formation: dict[str, int]
    processes: dict[str, int]
    instances: int
    last_deploy: str | None


@dataclass(frozen=True)
class ReleaseInfo:
    """`releases.info`: a release, and its config as the caller may see it."""

    release: Release
    config: dict[str, str | None]


def _names(keys: Sequence[str]) -> str:
    return ", ".join(keys)


def config_description(set_keys: Sequence[str], unset_keys: Sequence[str]) -> str:
    if set_keys and unset_keys:
        return f"Set {_names(set_keys)} and unset {_names(unset_keys)} config vars"
    if set_keys:
        return f"Set {_names(set_keys)} config vars"
    return f"Unset {_names(unset_keys)} config vars"


def config_releases(
    app: str,
    config: Mapping[str, str],
    build: ReleaseBuild | None,
    batch: Sequence[tuple[Principal, Mapping[str, str | None]]],
    version: int,
    created: datetime,
) -> tuple[list[Release | BaseException], dict[str, str]]:
    """The releases a batch of config changes makes, numbered from `version`, and the config
    after them. A change that would break the size limit fails alone."""
    out: list[Release | BaseException] = []
    config = dict(config)
    for who, changes in batch:
        after = dict(config)
        for key, value in changes.items():
            if value is None:
                after.pop(key, None)
            else:
                after[key] = value
        try:
            check_config_size(after)
        except InvalidParams as e:
            out.append(e)
            continue
        config = after
        out.append(
            Release(
                app=app,
                version=version,
                description=config_description(
                    [k for k, v in changes.items() if v is not None],
                    [k for k, v in changes.items() if v is None],
                ),
                status="succeeded",
                created_at=created,
                config=after,
                process_types=build.process_types if build else None,
                slug_id=build.slug_id if build else None,
                commit=build.commit if build else None,
                actor=who.name,
                current=True,
            )
        )
        version += 1
    return out, config


def scale_warning(
    ptype: str, quantity: int, layers: Sequence[Layer], instances: Sequence[Instance]
) -> str | None:
    """Why no instance can run `quantity` processes of `ptype` (None when one can): the layers
    that run it have no instances, or only lost ones. A pending instance (its agent starting)
    counts as one that can."""
    running = sorted(la.name for la in layers if la.runs(ptype))
    if quantity <= 0 or not running:
        return None
    members = sorted(i.id for i in instances if i.layer in running)
    if any(i.state != "lost" for i in instances if i.layer in running):
        return None
    where = f"layer {running[0]} has" if len(running) == 1 else f"layers {', '.join(running)} have"
    if not members:
        return (
            f"no instance runs {ptype}: {where} no instances, so {ptype}={quantity} waits "
            f"until `gun instances.create:{running[0]}` adds one"
        )
    return (
        f"no instance runs {ptype} now: {where} only lost instances ({', '.join(members)}), so "
        f"{ptype}={quantity} waits until one is back"
    )


def config_event(
    release: Release, changes: Mapping[str, str | None]
) -> tuple[str, str, dict[str, object]]:
    """(actor, action, detail) of the audit event for a config change."""
    set_keys = [k for k, v in changes.items() if v is not None]
    unset_keys = [k for k, v in changes.items() if v is None]
    action = "config.set" if set_keys else "config.unset"
    return release.actor, action, {"set": set_keys, "unset": unset_keys, "version": release.version}


class Platform(Builds, Drains):
    def __init__(
        self,
        store: Store,
        *,
        slugs: Any = None,
        providers: Mapping[str, InstanceProvider] | None = None,
        meta_url: str | None = None,
        auto_instances: int = 0,
        token_cache_seconds: float = CACHE_SECONDS,
        build_options: BuildOptions | None = None,
        drain_url: str | None = None,
        max_processes: int = MAX_PROCESSES,
    ) -> None:
        self.shipping = Shipping(drain_url)
        self.max_processes = max_processes
        self.store = store
        self.slugs = slugs
        self.build_options = build_options
        opts = build_options or BuildOptions(Path("."))
        self.release_phase = ReleasePhase(store, opts.release_timeout)
        self.keep_slugs = opts.keep_slugs
        self.rollout = {"drain": opts.preboot_drain, "max_unavailable": opts.max_unavailable}
        self._build_pool = None
        self.providers = providers or {}
        self.meta_url = meta_url
        self.auto_instances = auto_instances  # local instances every new app gets (gun up)
        self.tokens = Tokens(store, token_cache_seconds)
        self.instances = Instances(store, self.providers, meta_url)
        self.processes = Processes(store)
        self.agents = Agents(store, slugs, self.shipping, self.release_phase, self.rollout)
        self._configs: VersionedCache[int, dict[str, str]] = VersionedCache()
        self._config_writes: Batcher[tuple[Principal, dict[str, str | None]], Release] = Batcher()

    # access (the rules are in core/tokens.py) -----------------------------------------------

    def authenticate(self, token: str | None) -> Principal:
        return self.tokens.authenticate(token)

    def bootstrap_admin(self, token: str | None) -> str | None:
        return self.tokens.bootstrap_admin(token)

    def create_token(
        self, who: Principal, name: str, role: str, app: str | None, expires: str | None = None
    ) -> tuple[str, Principal]:
        return self.tokens.create(who, name, role, app, expires)

    # apps -----------------------------------------------------------------------------------

    def apps(self, who: Principal) -> list[App]:
        authorize(who, "viewer", who.app)
        with self.store.read() as tx:
            return tx.apps.all(only=who.app)

    def app(self, who: Principal, name: str) -> App:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            found = tx.apps.all(only=name)
        if not found:
            raise NotFound(f"app {name!r} does not exist")
        return found[0]

    def create_app(self, who: Principal, name: str, repo: str | None = None) -> App:
        authorize(who, "developer")
        check_new_app_name(name)
        if repo is not None:
            check_repo_url(repo)
        with self.store.write() as tx:
            app = tx.apps.insert(name, repo)
            tx.layers.put(app.id, DEFAULT_LAYER)
            self.shipping.ingest_token(tx, app.id)
            tx.releases.insert(
                app,
                description="Initial release",
                config={},
                process_types=None,
                slug_id=None,
                commit=None,
                actor=who.name,
            )
            tx.events.record(app, who.name, "app.create", {"repo": repo})
        if self.auto_instances:
            self.instances.create(who, name, DEFAULT_LAYER.name, self.auto_instances)
        return App(app.id, app.name, app.repo, app.created_at, release=1)

    def destroy_app(self, who: Principal, name: str) -> None:
        authorize(who, "developer", name)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            instances = tx.instances.of(app.id)
            tx.events.record(app, who.name, "app.destroy", {"instances": [i.id for i in instances]})
            tx.apps.delete(app.id)
        for inst in instances:  # each agent stops its processes within their grace period
            provider = self.providers.get(inst.provider)
            if provider is not None:
                provider.delete(inst.id)

    def status(self, who: Principal, name: str) -> Status:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            app = tx.apps.existing(name)
            states = Counter(p.state if p.desired else "stopping" for p in tx.processes.of(app.id))
            deploys = [e for e in tx.events.of(name, 50) if e.action == "release.deploy"]
            return Status(
                app=name,
                release=tx.releases.current_version(app.id),
                formation=tx.formation.of(app.id),
                processes={s: states.get(s, 0) for s in PROCESS_STATES},
                instances=sum(tx.instances.counts(app.id).values()),
                last_deploy=deploys[0].created_at.isoformat() if deploys else None,
            )

    def events(self, who: Principal, name: str, limit: int = 100) -> list[Event]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            tx.apps.existing(name)
            return tx.events.of(name, limit)

    # config vars ----------------------------------------------------------------------------

    def config(self, who: Principal, name: str) -> dict[str, str | None]:
        """The app's config vars; a viewer gets their names with null values."""
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            found = tx.apps.generation_of(name)
            if found is None:
                raise NotFound(f"app {name!r} does not exist")
            app_id, generation = found
            config = self._configs.get(app_id, generation)
            if config is None:
                config = tx.config.of(app_id)
                self._configs.put(app_id, generation, config)
        return visible_config(who, config)

    def change_config(
        self, who: Principal, name: str, changes: Mapping[str, str | None]
    ) -> Release:
        """Set (str) and unset (None) config vars; makes a new release."""
        self._check_config_change(who, name, changes)
        (made,) = self._change_configs(name, [(who, dict(changes))])
        if isinstance(made, BaseException):
            raise made
        return made

    async def achange_config(
        self, who: Principal, name: str, changes: Mapping[str, str | None]
    ) -> Release:
        """`change_config` on the event loop (the API): concurrent changes to one app are
        group-committed, one transaction for all that queued while the last one ran."""
        self._check_config_change(who, name, changes)
        return await self._config_writes.run(
            name, (who, dict(changes)), lambda batch: self._change_configs(name, batch)
        )

    def _check_config_change(
        self, who: Principal, name: str, changes: Mapping[str, str | None]
    ) -> None:
        authorize(who, "developer", name)
        if not changes:
            raise InvalidParams("no config vars given: pass KEY=value or KEY to unset")
        for key, value in changes.items():
            check_config_key(key)
            if value is not None and not isinstance(value, str):
                raise InvalidParams(f"config var {key!r} must be a string or null")
            if value is not None:
                check_config_value(key, value)

    def _change_configs(
        self, name: str, batch: Sequence[tuple[Principal, dict[str, str | None]]]
    ) -> list[Release | BaseException]:
        """Config changes queued for one app, in one transaction: a release each, in order;
        one that would break the size limit fails alone. Refused, all of them, while a deploy's
        release waits for its release phase: each would be a release on top of it."""
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            self.release_phase.refuse_while_pending(tx, app, "change config")
            stored = tx.config.of(app.id)
            current = tx.releases.current_version(app.id)
            build = tx.releases.build_of(app.id, current) if current else None
            out, config = config_releases(
                app.name, stored, build, batch, tx.releases.next_version(app.id), now()
            )
            made = [r for r in out if isinstance(r, Release)]
            if made:
                tx.releases.add(app, made)
                events = zip(out, batch, strict=True)
                tx.events.record_all(
                    app, [config_event(r, c) for r, (_, c) in events if isinstance(r, Release)]
                )
                changed = {k for k in set(stored) | set(config) if stored.get(k) != config.get(k)}
                tx.config.replace(app.id, config, only=sorted(changed))
                tx.apps.bump_generation(app.id)  # same build: agents restart with the new env
        return out

    # formation ------------------------------------------------------------------------------

    def formation(self, who: Principal, name: str) -> tuple[dict[str, int], list[Layer]]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            app = tx.apps.existing(name)
            return tx.formation.of(app.id), tx.layers.of(app.id)

    def layer_shares(self, who: Principal, name: str) -> dict[str, dict[str, int]]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            app = tx.apps.existing(name)
            totals, layers = tx.formation.of(app.id), tx.layers.of(app.id)
            weights = tx.instances.counts(app.id)
        return formations.layer_shares(totals, layers, weights or None)

    def unplaceable(self, who: Principal, name: str) -> dict[str, str]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            app = tx.apps.existing(name)
            instances = placement_instances(tx, app.id)
            return placement.unplaceable(tx.formation.of(app.id), tx.layers.of(app.id), instances)

    def scale(self, who: Principal, name: str, changes: Sequence[formations.Change]) -> Scaled:
        """Set formation totals. Refused: an unknown or unscalable type, a relative change
        below 0, more than `max_processes` in all (unless it is fewer than before). Accepted
        with a warning: a type that no instance can run yet."""
        authorize(who, "developer", name)
        if not changes:
            raise InvalidParams("formation is empty: give at least one TYPE=N, e.g. web=2")
        named = [c.type for c in changes]
        for t in named:
            if named.count(t) > 1:
                raise InvalidParams(f"formation names process type {t!r} more than once")
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            current = tx.releases.current_version(app.id)
            release = tx.releases.get(app, current) if current else None
            known = release.process_types if release else None
            layers = tx.layers.of(app.id)
            totals = tx.formation.of(app.id)
            before = sum(totals.values())
            for change in changes:
                check_process_type(change.type)
                if change.type == "release":
                    raise InvalidParams(
                        "the release process type runs once per release and cannot be scaled"
                    )
                if known is not None and change.type not in known:
                    types = ", ".join(t for t in known if t != "release") or "none"
                    raise InvalidParams(
                        f"process type {change.type!r} is not in the Procfile of v{current} "
                        f"(it has: {types})"
                    )
                quantity = change.apply(totals.get(change.type, 0))
                if quantity > 0 and not any(la.runs(change.type) for la in layers):
                    raise InvalidParams(
                        f"no layer runs process type {change.type!r} (layers: "
                        f"{', '.join(la.name for la in layers) or 'none'}): add it with "
                        f"`gun layers.set:LAYER types=...`"
                    )
                if quantity > formations.MAX_QUANTITY:
                    raise InvalidParams(
                        f"formation {change}: quantity must be at most {formations.MAX_QUANTITY}"
                    )
                totals[change.type] = quantity
            total = sum(totals.values())
            if total > self.max_processes and total > before:
                words = " ".join(f"{t}={n}" for t, n in totals.items() if n)
                raise InvalidParams(
                    f"{words} would run {total} processes of app {name!r}, over the limit of "
                    f"{self.max_processes} per app (GUN_MAX_PROCESSES on meta)"
                )
            tx.formation.put(app.id, totals)
            write_placement(tx, app)
            tx.events.record(
                app, who.name, "formation.scale", {"changes": [str(c) for c in changes]}
            )
            instances = tx.instances.of(app.id)
        warnings = {
            c.type: w
            for c in changes
            if (w := scale_warning(c.type, totals[c.type], layers, instances)) is not None
        }
        return Scaled(totals, warnings)

    # releases -------------------------------------------------------------------------------

    def releases(
        self, who: Principal, name: str, limit: int = 200, before: int | None = None
    ) -> list[Release]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.releases.of(tx.apps.existing(name), limit, before)

    def release(self, who: Principal, name: str, version: int) -> Release:
        """A release with its config values: for developers and admins."""
        authorize(who, "developer", name)
        return self._release(name, version)

    def release_info(self, who: Principal, name: str, version: int) -> ReleaseInfo:
        """A release and its config as `who` may see it (a viewer: names, null values)."""
        authorize(who, "viewer", name)
        found = self._release(name, version)
        return ReleaseInfo(found, visible_config(who, found.config))

    def _release(self, name: str, version: int) -> Release:
        with self.store.read() as tx:
            found = tx.releases.get(tx.apps.existing(name), version)
        if found is None:
            raise NotFound(f"release v{version} of app {name!r} does not exist")
        return found

    def rollback(self, who: Principal, name: str, version: int | None = None) -> Release:
        """A new release with vN's build and config (default: the release before the current)."""
        authorize(who, "developer", name)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            self.release_phase.refuse_while_pending(tx, app, "roll back")
            current = tx.releases.current_version(app.id) or 0
            target = version if version is not None else current - 1
            old = tx.releases.get(app, target) if target > 0 else None
            if old is None:
                if version is None:
                    raise NotFound(f"app {name!r} has no release before v{current} to roll back to")
                raise NotFound(f"release v{version} of app {name!r} does not exist")
            if old.status == "failed":
                raise InvalidParams(f"release v{target} of app {name!r} failed; pick another")
            slug = tx.slugs.get(old.slug_id) if old.slug_id is not None else None
            if slug and self.slugs is not None and not self.slugs.exists(slug_key(name, slug[0])):
                raise InvalidParams(
                    f"the slug of v{target} is no longer kept (the slug store keeps those of the "
                    f"last {self.keep_slugs} releases): deploy its code again instead"
                )
            has_build = tx.releases.get(app, current) if current else None
            if not old.has_build and has_build is not None and has_build.has_build:
                raise InvalidParams(
                    f"release v{target} of app {name!r} has no build (it predates the first "
                    "deploy): roll back to a release that has one"
                )
            tx.config.replace(app.id, dict(old.config))
            release = tx.releases.insert(
                app,
                description=f"Rollback to v{target}",
                config=dict(old.config),
                process_types=old.process_types,
                slug_id=old.slug_id,
                commit=old.commit,
                actor=who.name,
            )
            write_placement(tx, app)  # the old build may have other process types
            tx.events.record(
                app, who.name, "release.rollback", {"to": target, "version": release.version}
            )
            return release

    # layers ---------------------------------------------------------------------------------

    def layers(self, who: Principal, name: str) -> list[Layer]:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.layers.of(tx.apps.existing(name).id)

    def set_layer(self, who: Principal, name: str, layer: str, types: Sequence[str]) -> Layer:
        authorize(who, "developer", name)
        check_layer_name(layer)
        if not types:
            raise InvalidParams("types is empty: give process types, e.g. types=web,worker")
        if ALL_TYPES in types:
            new = Layer(layer, None)
        else:
            new = Layer(layer, tuple(dict.fromkeys(check_process_type(t) for t in types)))
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            tx.layers.put(app.id, new)
            write_placement(tx, app)
            tx.events.record(app, who.name, "layer.set", {"layer": layer, "types": list(types)})
        return new
