"""The Platform: gun's control plane as services, one per vocabulary word, each given what it
needs (`platform.apps.create(who, name)`, `platform.config.change(who, app, changes)`, ...).

Every state change is one method of one service that checks access, validates, writes in one
transaction and records an audit event. API handlers and tests call the services, never the
store.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gun.build.slugstore import SlugStore
from gun.core.agents import Agents
from gun.core.apps import Apps
from gun.core.builds import BuildOptions, Builds
from gun.core.certs import Certs
from gun.core.config import Config
from gun.core.deploys import Deploys
from gun.core.domains import Domains
from gun.core.drains import Drains
from gun.core.formation import MAX_PROCESSES, Formation
from gun.core.hosts import Checker, Hosts
from gun.core.instances import Instances
from gun.core.layers import Layers
from gun.core.processes import Processes
from gun.core.release_phase import ReleasePhase
from gun.core.releases import Releases
from gun.core.routing import Routing
from gun.core.runs import Runs
from gun.core.shipping import Shipping
from gun.core.slugs import Slugs
from gun.core.tokens import CACHE_SECONDS, Tokens
from gun.protocol import Rollout
from gun.providers import InstanceProvider
from gun.providers.ssh import check
from gun.rendezvous import Address
from gun.store import Store


class Platform:
    """Builds each service from meta's settings and hands it what it needs; holds them:

    tokens         who a token is; tokens, tokens.create, tokens.revoke
    apps           apps, apps.create, apps.destroy, info, status, events
    config         config, config.set, config.unset
    formation      formation, scale
    layers         layers, layers.set
    releases       releases, releases.info, rollback
    slugs          slugs uploaded, kept for the newest releases, pruned
    deploys        a slug (or, strategy git, a commit) released
    builds         deploy from source: builds and their output
    instances      instances, instances.create, instances.delete
    hosts          hosts, hosts.add, hosts.remove: machines reached over ssh
    processes      ps, ps.restart
    drains         drains, drains.add, drains.remove, drains.ingest, logs
    domains        domains, domains.add, domains.remove: the hostnames the router sends to apps
    certs          certs, certs.add, certs.remove: TLS certificates served for them
    agents         the agent protocol
    release_phase  the release command: its rules, its agent's output and result
    shipping       where an app's logs go: the ingest token, the drains
    routing        the router's table: every app's hostnames and web processes
    runs           run, run:detached, console: one-off processes, and their rendezvous

    Each is in the module of its name under gun/core/.

    `store` and `providers` are meta's own too, for its health check and its instance watch.
    """

    def __init__(
        self,
        store: Store,
        *,
        slugs: SlugStore | None = None,
        providers: Mapping[str, InstanceProvider] | None = None,
        meta_url: str | None = None,
        meta_ca: str | None = None,
        auto_instances: int = 0,
        token_cache_seconds: float = CACHE_SECONDS,
        build_options: BuildOptions | None = None,
        drain_url: str | None = None,
        max_processes: int = MAX_PROCESSES,
        host_checker: Checker = check,
        instance_timeout: float = 30.0,
        router_domain: str = "localhost",
        rendezvous: Address | None = None,
    ) -> None:
        opts = build_options or BuildOptions(Path("."))  # the defaults, for a meta without builds
        rollout = Rollout(drain_seconds=opts.preboot_drain, max_unavailable=opts.max_unavailable)
        self.store = store
        self.slugs = Slugs(store, slugs, opts.keep_slugs)
        self.providers: Mapping[str, InstanceProvider] = providers or {}
        self.tokens = Tokens(store, token_cache_seconds)
        self.shipping = Shipping(drain_url)
        self.release_phase = ReleasePhase(store, opts.release_timeout)
        self.instances = Instances(store, self.providers, meta_url, meta_ca)
        self.hosts = Hosts(store, host_checker)
        self.processes = Processes(store)
        self.apps = Apps(store, self.shipping, self.instances, self.providers, auto_instances)
        self.config = Config(store, self.release_phase)
        self.formation = Formation(store, max_processes)
        self.layers = Layers(store)
        self.releases = Releases(store, self.slugs, self.release_phase)
        self.deploys = Deploys(store, self.slugs, self.release_phase)
        self.builds = Builds(store, build_options, self.slugs, self.deploys, self.release_phase)
        self.drains = Drains(store, self.shipping)
        self.routing = Routing(store, self.shipping, router_domain)
        self.domains = Domains(store, router_domain)
        self.certs = Certs(store, router_domain)
        self.runs = Runs(store, rendezvous)
        self.agents = Agents(
            store,
            self.slugs,
            self.shipping,
            self.release_phase,
            rollout,
            instance_timeout,
            rendezvous,
        )
