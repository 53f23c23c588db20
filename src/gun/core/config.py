"""Config vars: an app's environment. Every change is a new release with the current build.

Rules:
- One change (set and unset keys) is one release and one audit event, in one transaction.
- Concurrent changes to one app from the API are group-committed (core/batch.py): one
  transaction for all that queued while the last one ran, a release each, in order; a change
  that would break the size limit fails alone.
- Refused while a deploy's release phase runs (core/release_phase.py).
- Reads are cached per app and generation (core/cache.py): every change bumps the generation,
  so every meta replica sees it at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from gun.core.access import authorize, visible_config
from gun.core.batch import Batcher
from gun.core.cache import VersionedCache
from gun.core.release_phase import ReleasePhase
from gun.core.routing import HTTPS_ONLY, check_https_only
from gun.errors import InvalidParams, NotFound
from gun.model import (
    ROUTER_APP,
    Principal,
    Release,
    ReleaseBuild,
    check_config_key,
    check_config_size,
    check_config_value,
)
from gun.router import onhost
from gun.store import Store
from gun.store.time import now


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


def config_event(
    release: Release, changes: Mapping[str, str | None]
) -> tuple[str, str, dict[str, object]]:
    """(actor, action, detail) of the audit event for a config change."""
    set_keys = [k for k, v in changes.items() if v is not None]
    unset_keys = [k for k, v in changes.items() if v is None]
    action = "config.set" if set_keys else "config.unset"
    return release.actor, action, {"set": set_keys, "unset": unset_keys, "version": release.version}


class Config:
    def __init__(self, store: Store, release_phase: ReleasePhase) -> None:
        self.store = store
        self.release_phase = release_phase
        self._configs: VersionedCache[int, dict[str, str]] = VersionedCache()
        self._writes: Batcher[tuple[Principal, dict[str, str | None]], Release] = Batcher()

    def get(self, who: Principal, name: str) -> dict[str, str | None]:
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

    def change(self, who: Principal, name: str, changes: Mapping[str, str | None]) -> Release:
        """Set (str) and unset (None) config vars; makes a new release."""
        self._check(who, name, changes)
        (made,) = self.apply(name, [(who, dict(changes))])
        if isinstance(made, BaseException):
            raise made
        return made

    async def achange(
        self, who: Principal, name: str, changes: Mapping[str, str | None]
    ) -> Release:
        """`change` on the event loop (the API): concurrent changes to one app are
        group-committed, one transaction for all that queued while the last one ran."""
        self._check(who, name, changes)
        return await self._writes.run(
            name, (who, dict(changes)), lambda batch: self.apply(name, batch)
        )

    def _check(self, who: Principal, name: str, changes: Mapping[str, str | None]) -> None:
        authorize(who, "developer", name)
        if not changes:
            raise InvalidParams("no config vars given: pass KEY=value or KEY to unset")
        for key, value in changes.items():
            check_config_key(key)
            if value is not None and not isinstance(value, str):
                raise InvalidParams(f"config var {key!r} must be a string or null")
            if value is not None:
                check_config_value(key, value)
            if value is not None and key == HTTPS_ONLY:
                check_https_only(value)
            if value is not None and name == ROUTER_APP:
                onhost.check(key, value)

    def apply(
        self, name: str, batch: Sequence[tuple[Principal, dict[str, str | None]]]
    ) -> list[Release | BaseException]:
        """Config changes queued for one app, in one transaction: a release each, in order;
        one that would break the size limit fails alone. Refused, all of them, while a deploy's
        release waits for its release phase: each would be a release on top of it."""
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            newest = self.release_phase.refuse_while_pending(tx, app, "change config")
            stored = tx.config.of(app.id)
            if newest is not None and newest[1] == "succeeded":  # the usual case: one query less
                current: int | None = newest[0]
            else:
                current = tx.releases.current_version(app.id)
            build = tx.releases.build_of(app.id, current) if current else None
            top = newest[0] if newest is not None else 0
            out, config = config_releases(app.name, stored, build, batch, top + 1, now())
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
