"""Helpers for tests that drive a Supervisor in an event loop of their own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from gun.agent.supervisor import Supervisor


def run(session: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(session, 40))


@asynccontextmanager
async def supervising(root: Path, **options: Any) -> AsyncIterator[Supervisor]:
    sup = Supervisor(root, **options)
    try:
        yield sup
    finally:
        await sup.shutdown(stop_processes=True)


async def until(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
