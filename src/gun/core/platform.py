"""The Platform: gun's control plane as services, one per vocabulary word, each given what it
needs (`platform.apps.create(who, name)`, `platform.config.change(who, app, changes)`, ...).

Every state change is one method of one service that checks access, validates, writes in one
transaction and records an audit event. API handlers and tests call the services, never the
store.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gun.core.agents import Agents
from gun.core.apps import Apps
from gun.core.builds import BuildOptions, Builds
from gun.core.config import Config
from gun.core.deploys import Deploys
from gun.core.drains import Drains
from gun.core.formation import MAX_PROCESSES, Formation
from gun.core.instances import Instances
from gun.core.layers import Layers
from gun.core.processes import Processes
from gun.core.release_phase import ReleasePhase
from gun.core.releases import Releases
from gun.core.shipping import Shipping
from gun.core.tokens import CACHE_SECONDS, Tokens
from gun.model import Principal
from gun.providers import InstanceProvider
from gun.store import Store


class Platform(Drains):
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
        self.store = store
        self.slugs = slugs
        self.build_options = build_options
        opts = build_options or BuildOptions(Path("."))
        self.release_phase = ReleasePhase(store, opts.release_timeout)
        self.rollout = {"drain": opts.preboot_drain, "max_unavailable": opts.max_unavailable}
        self.providers = providers or {}
        self.meta_url = meta_url
        self.tokens = Tokens(store, token_cache_seconds)
        self.instances = Instances(store, self.providers, meta_url)
        self.processes = Processes(store)
        self.agents = Agents(store, slugs, self.shipping, self.release_phase, self.rollout)
        self.apps = Apps(store, self.shipping, self.instances, self.providers, auto_instances)
        self.config = Config(store, self.release_phase)
        self.formation = Formation(store, max_processes)
        self.layers = Layers(store)
        self.releases = Releases(store, slugs, opts.keep_slugs, self.release_phase)
        self.deploys = Deploys(store, slugs, opts.keep_slugs, self.release_phase)
        self.builds = Builds(store, build_options, self.deploys, self.release_phase)

    # access (the rules are in core/tokens.py) -----------------------------------------------

    def authenticate(self, token: str | None) -> Principal:
        return self.tokens.authenticate(token)

    def bootstrap_admin(self, token: str | None) -> str | None:
        return self.tokens.bootstrap_admin(token)

    def create_token(
        self, who: Principal, name: str, role: str, app: str | None, expires: str | None = None
    ) -> tuple[str, Principal]:
        return self.tokens.create(who, name, role, app, expires)
