"""The meta API application: FastAPI with the native, seed, fleet and agent routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from anyio import to_thread
from fastapi import FastAPI

from gun import __version__
from gun.api import build_routes, drain_routes, errors, fleet_routes, gate, routes, seed
from gun.core import Platform
from gun.store.time import now

log = logging.getLogger("gun.meta")


async def watch(platform: Platform, instance_timeout: float, every: float) -> None:
    """Mark silent instances lost (their processes move) and respawn dead local agents.

    An instance is lost when two passes in a row find it silent. A pass that ends much later
    than scheduled means meta itself was stopped or starved: heartbeats sent meanwhile were not
    heard (they are still queued), so judging starts afresh.
    """
    since = now()
    suspects: set[str] = set()
    loop = asyncio.get_running_loop()
    while True:
        began = loop.time()
        await asyncio.sleep(every)
        try:
            stale = await to_thread.run_sync(platform.stale_instances, instance_timeout, since)
            if loop.time() - began > every + 2.0:
                since, suspects = now(), set()
                continue
            confirmed, suspects = stale & suspects, stale - suspects
            lost = await to_thread.run_sync(platform.mark_lost, confirmed, instance_timeout)
            for instance_id in lost:
                log.warning(
                    "instance %s sent no heartbeat for %ss: marked lost",
                    instance_id,
                    instance_timeout,
                )
            for provider in platform.providers.values():
                for instance_id in await to_thread.run_sync(provider.ensure_running):
                    log.warning("agent of instance %s was not running: restarted", instance_id)
        except Exception:  # the watcher must outlive a bad pass
            log.exception("instance watch failed")


def create_app(
    platform: Platform, *, instance_timeout: float = 30.0, watch_every: float = 1.0
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def changed() -> None:  # from the thread that committed
            loop.call_soon_threadsafe(app.state.wakeup.fire)

        platform.store.listeners.append(changed)
        interrupted = await to_thread.run_sync(platform.fail_interrupted_builds)
        if interrupted:
            log.warning("%d builds were under way when meta last stopped: failed them", interrupted)
        task = asyncio.create_task(watch(platform, instance_timeout, watch_every))
        try:
            yield
        finally:
            platform.store.listeners.remove(changed)
            platform.stop_builds()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="gun meta",
        version=__version__,
        description="The gun control plane: apps, config vars, formation, releases, instances.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.platform = platform
    app.state.wakeup = fleet_routes.Wakeup()
    errors.install(app)
    routers = [routes.router, fleet_routes.router, build_routes.router, drain_routes.router]
    routers.append(seed.router)
    # the token, then the body's size, before any routing
    app.add_middleware(gate.Gate, routers=routers)

    @app.get("/health", tags=["health"])
    @app.get("/v1/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for router in routers:
        app.include_router(router)
    return app
