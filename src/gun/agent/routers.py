"""The router on an instance of the platform's router app (gun.router.onhost): started when the
slice says the instance is one, started again when the app's config vars change, stopped when
it is no longer one or its lease lapses (fencing: another instance may be routing by then)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from gun import protocol
from gun.agent.config import AgentConfig
from gun.agent.netaddr import address_towards
from gun.errors import GunError
from gun.model import ROUTER_APP
from gun.router import onhost
from gun.router.haproxy import Settings
from gun.router.runner import Router

log = logging.getLogger("gun.agent.router")


class RouterKeeper:
    def __init__(self, config: AgentConfig, home: Path) -> None:
        self.config = config
        self.home = home
        self.settings: Settings | None = None
        self._router: Router | None = None
        self._task: asyncio.Task[None] | None = None
        self._problem: str | None = None

    def problems(self) -> list[str]:
        out = [self._problem] if self._problem else []
        router = self._router
        if router is not None:
            for name, why in router.loops.down().items():
                out.append(f"the router's {name} loop failed ({why}): retrying")
        if self._task is not None and self._task.done() and not self._task.cancelled():
            e = self._task.exception()
            if e is not None:
                out.append(f"the router stopped: {e}")
        return out

    async def keep(self, slice_: protocol.Slice | None) -> None:
        """Run the router as `slice_` wants (None: not at all)."""
        wanted: Settings | None = None
        self._problem = None
        if slice_ is not None and slice_.app == ROUTER_APP:
            try:
                bind = await asyncio.to_thread(address_towards, self.config.meta)
                wanted = onhost.settings(slice_.env, self.home, bind)
            except (GunError, OSError) as e:
                self._problem = f"the router cannot run: {e}"
                return
        running = self._task is not None and not self._task.done()
        if wanted == self.settings and (running or wanted is None):
            return
        await self._stop()
        self.settings = wanted
        if wanted is not None:
            try:
                router = Router(wanted, self.config.meta, self.config.token, ca=self.config.ca)
            except GunError as e:  # no HAProxy here
                self._problem = f"the router cannot run: {e.message}"
                self.settings = None
                return
            self._router = router
            self._task = asyncio.create_task(router.serve(), name="router")
            log.info("router started on %s", wanted.listen)

    async def _stop(self) -> None:
        router, task = self._router, self._task
        self._router = self._task = None
        if router is not None and task is not None:
            router.stopping.set()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 30)
            log.info("router stopped")
