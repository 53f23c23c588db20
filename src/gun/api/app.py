"""The meta API application: FastAPI with the native, seed, fleet and agent routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

from anyio import to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from gun import __version__, dashboard
from gun.api import (
    agent_routes,
    build_routes,
    domain_routes,
    drain_routes,
    errors,
    fleet_routes,
    gate,
    heroku,
    host_routes,
    router_routes,
    routes,
    run_routes,
    seed,
)
from gun.api.health import answer
from gun.api.longpoll import Generations
from gun.api.rendezvous import Rendezvous
from gun.core import Platform
from gun.loops import Loops
from gun.providers.ec2 import Ec2Provider
from gun.store.time import now

log = logging.getLogger("gun.meta")


class Watch:
    """Mark silent instances lost (their processes move) and respawn dead local agents.

    An instance is lost when two passes in a row find it silent. A pass that ends much later
    than scheduled means meta itself was stopped or starved: heartbeats sent meanwhile were not
    heard (they are still queued), so judging starts afresh. It runs as one of meta's loops:
    a pass that fails is retried, and /health says so meanwhile.
    """

    def __init__(self, platform: Platform, instance_timeout: float, every: float) -> None:
        self.platform, self.instance_timeout, self.every = platform, instance_timeout, every
        self.since = now()
        self.suspects: set[str] = set()

    async def once(self) -> None:
        platform, timeout = self.platform, self.instance_timeout
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.sleep(self.every)
        stale = await to_thread.run_sync(platform.instances.stale, timeout, self.since)
        if loop.time() - began > self.every + 2.0:
            self.since, self.suspects = now(), set()
            return
        confirmed, self.suspects = stale & self.suspects, stale - self.suspects
        lost = await to_thread.run_sync(platform.instances.mark_lost, confirmed, timeout)
        for instance_id in lost:
            log.warning("instance %s sent no heartbeat for %ss: marked lost", instance_id, timeout)
        for provider in platform.providers.values():
            for instance_id in await to_thread.run_sync(provider.ensure_running):
                log.warning("agent of instance %s was not running: restarted", instance_id)


class CloudWatch:
    """What EC2 says of the ec2 instances (DescribeInstances), every `every` seconds: their
    EC2 state, requested -> booting, and terminated when EC2 ended one (Instances.track_cloud).
    One of meta's loops: a pass that fails (EC2 unreachable) is retried, and /health says so."""

    def __init__(self, platform: Platform, provider: Ec2Provider, every: float) -> None:
        self.platform, self.provider, self.every = platform, provider, every

    async def once(self) -> None:
        await asyncio.sleep(self.every)
        await to_thread.run_sync(self.platform.instances.track_cloud, "ec2", self.provider.states)


@dataclass(frozen=True)
class Door:
    """Where meta's rendezvous listens (api/rendezvous.py), and its TLS."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None


def create_app(
    platform: Platform,
    *,
    instance_timeout: float = 30.0,
    watch_every: float = 1.0,
    rendezvous: Door | None = None,
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def changed() -> None:  # from the thread that committed
            loop.call_soon_threadsafe(generations.changed)

        platform.store.listeners.append(changed)
        interrupted = await to_thread.run_sync(platform.builds.fail_interrupted)
        if interrupted:
            log.warning("%d builds were under way when meta last stopped: failed them", interrupted)
        loops.start("instance watch", Watch(platform, instance_timeout, watch_every).once)
        ec2 = platform.providers.get("ec2")
        if isinstance(ec2, Ec2Provider):
            loops.start("ec2 watch", CloudWatch(platform, ec2, max(watch_every, 2.0)).once)
        loops.start("long-poll watch", generations.watch)
        meeting = Rendezvous(platform)
        if rendezvous is not None:
            await meeting.start(rendezvous.host, rendezvous.port, rendezvous.tls)
        try:
            yield
        finally:
            await meeting.stop()
            platform.store.listeners.remove(changed)
            platform.builds.stop()
            await loops.stop()

    app = FastAPI(
        title="gun meta",
        version=__version__,
        description="The gun control plane: apps, config vars, formation, releases, instances.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    loops = Loops(log)
    app.state.platform = platform
    app.state.loops = loops
    generations = Generations(lambda: platform.agents.generations())  # (read when it runs)
    app.state.generations = generations
    app.state.routes = router_routes.TableCache()
    errors.install(app)
    routers = [agent_routes.router, routes.router, fleet_routes.router, host_routes.router]
    routers.append(build_routes.router)
    routers.append(drain_routes.router)
    routers.append(router_routes.router)
    routers.append(domain_routes.router)
    routers.append(run_routes.router)
    routers.append(seed.router)
    routers.append(dashboard.router)  # under /dash: its own cookie session, no bearer token
    routers.append(dashboard.logs_router)  # the logs page, under /dash as well
    routers += heroku.routers  # at the root, after the seed's /apps/show/APP
    # the token, then the body's size, before any routing
    app.add_middleware(gate.Gate, routers=routers)
    app.add_middleware(heroku.HerokuHeaders)
    app.add_middleware(dashboard.Rewrite)  # a browser's `/`, `/apps/APP`: to /dash, first

    @app.get("/health", tags=["health"])
    @app.get("/v1/health", tags=["health"])
    def health() -> JSONResponse:
        """200 when all is well; 503 naming each problem (a failing loop, a full disk)."""
        status, body = answer(platform, loops)
        return JSONResponse(body, status_code=status)

    for router in routers:
        app.include_router(router)
    app.mount("/dash/static", dashboard.static_files(), name="dashboard-static")
    return app
