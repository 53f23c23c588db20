"""Loops that must not die: the long-lived asyncio tasks of an agent or of meta, kept and watched.

A loop is one pass run again and again (a pass does its own waiting: a long-poll, a sleep, a
wait for a change). The rules:
- a pass that raises is logged and tried again after a backoff: at once, then 1 s doubling to
  30 s; a pass that succeeds resets the backoff;
- a loop whose task ends anyway while the process runs (something cancelled it from outside) is
  started again, at most once a second;
- `down()` names every loop whose last pass failed, or whose task ended, with one sentence
  saying why: the agent reports them as its instance's problem, meta's /health answers 503.
A loop made with `until_done` ends after its first pass that succeeds (registering, say).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from gun.agent.backoff import Backoff
from gun.errors import GunError, disk_full

PASS_BACKOFF = Backoff(initial=1.0, factor=2.0, cap=30.0, reset_after=0.0)
RESTART_EVERY = 1.0  # seconds between restarts of a loop whose task ended

Pass = Callable[[], Awaitable[None]]


def why(e: BaseException) -> str:
    """One sentence for what a pass raised: a full disk says which file it was writing."""
    full = disk_full(e)
    if full is not None:
        return full
    if isinstance(e, GunError):
        return e.message
    return f"{type(e).__name__}: {e}".rstrip(": ")


class Loops:
    """The loops of one process; create, start and stop them from its event loop."""

    def __init__(self, log: logging.Logger, backoff: Backoff = PASS_BACKOFF) -> None:
        self._log = log
        self._backoff = backoff
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._down: dict[str, str] = {}
        self._stopping = False

    def start(self, name: str, one_pass: Pass, *, until_done: bool = False) -> None:
        """Run one_pass again and again under `name` (unique among these loops)."""
        if name in self._tasks:
            raise ValueError(f"loop {name!r} is running already")
        task = asyncio.create_task(self._run(name, one_pass, until_done), name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda t: self._ended(name, one_pass, until_done, t))

    def down(self) -> dict[str, str]:
        """Loop name -> why it is down, for each loop whose last pass failed or whose task ended."""
        return dict(self._down)

    def running(self) -> list[str]:
        return sorted(self._tasks)

    async def stop(self) -> None:
        """Cancel every loop and wait for them to end."""
        self._stopping = True
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, name: str, one_pass: Pass, until_done: bool) -> None:
        failures = 0
        while True:
            try:
                await one_pass()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                failures += 1
                reason = why(e)
                if self._down.get(name) != reason:  # said once, not once a pass
                    self._log.exception("the %s loop failed (%s): retrying", name, reason)
                self._down[name] = reason
                await asyncio.sleep(self._backoff.delay(failures))
                continue
            if name in self._down:
                self._log.info("the %s loop works again", name)
                del self._down[name]
            failures = 0
            if until_done:
                return

    def _ended(self, name: str, one_pass: Pass, until_done: bool, task: asyncio.Task[None]) -> None:
        if self._tasks.get(name) is not task:
            return
        del self._tasks[name]
        if self._stopping or (until_done and not task.cancelled() and task.exception() is None):
            return
        error = None if task.cancelled() else task.exception()
        reason = "its task was cancelled" if error is None else why(error)
        self._log.error("the %s loop ended (%s): starting it again", name, reason)
        self._down[name] = f"the {name} loop ended ({reason}) and is being started again"
        loop = asyncio.get_running_loop()

        def again() -> None:
            if not self._stopping and name not in self._tasks:
                self.start(name, one_pass, until_done=until_done)

        loop.call_later(RESTART_EVERY, again)
