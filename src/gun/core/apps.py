"""Apps: each a deployable codebase with its own config vars, releases and formation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gun.build.gitrepo import check_repo_url
from gun.core.access import authorize
from gun.core.instances import Instances
from gun.core.layers import DEFAULT_LAYER
from gun.core.shipping import Shipping
from gun.errors import NotFound
from gun.model import (
    PROCESS_STATES,
    ROUTER_APP,
    App,
    Event,
    Principal,
    ProcessState,
    check_new_app_name,
)
from gun.providers import InstanceProvider
from gun.store import Store
from gun.store.apps import Glance


@dataclass(frozen=True)
class Status:
    """`status`: the current release, the formation, processes by state, instances, and when
    the app was last deployed."""

    app: str
    release: int | None
    formation: dict[str, int]
    processes: dict[ProcessState, int]  # how many are in each state (undesired: stopping)
    instances: int
    last_deploy: str | None


def status_of(g: Glance) -> Status:
    return Status(
        app=g.app,
        release=g.release,
        formation=g.formation,
        processes={s: g.states.get(s, 0) for s in PROCESS_STATES},
        instances=g.instances,
        last_deploy=None if g.last_deploy is None else g.last_deploy.isoformat(),
    )


class Apps:
    def __init__(
        self,
        store: Store,
        shipping: Shipping,
        instances: Instances,
        providers: Mapping[str, InstanceProvider],
        auto_instances: int = 0,
    ) -> None:
        self.store = store
        self.shipping = shipping
        self.instances = instances
        self.providers = providers
        self.auto_instances = auto_instances  # local instances every new app gets (gun up)

    def all(self, who: Principal) -> list[App]:
        """The apps `who` may see (a token scoped to an app: that one)."""
        authorize(who, "viewer", who.app)
        with self.store.read() as tx:
            return tx.apps.all(only=who.app)

    def get(self, who: Principal, name: str) -> App:
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            found = tx.apps.all(only=name)
        if not found:
            raise NotFound(f"app {name!r} does not exist")
        return found[0]

    def create(self, who: Principal, name: str, repo: str | None = None) -> App:
        """A new app: its layer `default`, its ingest token, release v1 (no build, no config),
        and, under `gun up`, its local instances."""
        authorize(who, "developer")
        if name == ROUTER_APP:  # the platform's routers (gun.router.onhost): made by its admins
            authorize(who, "admin")
        else:
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
        if self.auto_instances and name != ROUTER_APP:  # gun up runs its own router
            self.instances.create(who, name, DEFAULT_LAYER.name, self.auto_instances)
        return App(app.id, app.name, app.repo, app.created_at, release=1)

    def destroy(self, who: Principal, name: str) -> None:
        """Delete the app and everything of it; its instances' providers delete them."""
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
            glances = tx.apps.glances(only=name)
        if not glances:
            raise NotFound(f"app {name!r} does not exist")
        return status_of(glances[0])

    def statuses(self, who: Principal) -> list[Status]:
        """`status` of every app `who` may see, by name (the dashboard's apps page)."""
        authorize(who, "viewer", who.app)
        with self.store.read() as tx:
            return [status_of(g) for g in tx.apps.glances(only=who.app)]

    def events(self, who: Principal, name: str, limit: int = 100) -> list[Event]:
        """The app's audit log, newest first."""
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            tx.apps.existing(name)
            return tx.events.of(name, limit)
