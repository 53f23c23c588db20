"""What the drain's `/health` says, and what keeps its long-lived tasks going.

`Health` holds named problems, one sentence each, until they clear. `/health` answers 200
`{"status": "ok"}` when there are none, else 503 `{"status": "unavailable", "problems": [...]}`.
The drain names a problem while one of its tasks is down (`supervise`) and while it cannot
write to its disk (disk.py); it clears it when the task runs again, or a write succeeds again.
Steps of a loop that fail now and then (`Steps`) are listed under `"failing"` without making
the drain unhealthy: the drain still takes logs.

`supervise(name, run, health)` runs `run()` for ever: when it returns or raises, the log says
so (with the traceback), `health` names it, and it starts again after a backoff that doubles
from FIRST_BACKOFF to MAX_BACKOFF (back to the first once a run lasted RESET_AFTER).

`Steps.run(name, step)` runs one step of a loop's pass: when it raises, the log says so (with
the traceback the first time, then one line every REPEAT_LOG seconds while it keeps failing,
and once when it works again) and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("gun.drain")

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
RESET_AFTER = 60.0
REPEAT_LOG = 60.0


class Health:
    def __init__(self) -> None:
        self._problems: dict[str, str] = {}

    def set(self, name: str, sentence: str) -> None:
        self._problems[name] = sentence

    def clear(self, name: str) -> None:
        self._problems.pop(name, None)

    def __contains__(self, name: str) -> bool:
        return name in self._problems

    def problems(self) -> list[str]:
        return list(self._problems.values())


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    health: Health,
    *,
    first: float = FIRST_BACKOFF,
    most: float = MAX_BACKOFF,
) -> None:
    """Keep `run` going (see the module docstring); only cancelling this stops it."""
    delay = first
    while True:
        started = time.monotonic()
        try:
            await run()
            why = "it returned"
            log.error("%s stopped: %s", name, why)
        except Exception as e:
            why = f"{type(e).__name__}: {e}"
            log.exception("%s stopped", name)
        if time.monotonic() - started >= RESET_AFTER:
            delay = first
        health.set(name, f"{name} stopped ({why}); the drain starts it again in {delay:g} s")
        await asyncio.sleep(delay)
        log.info("starting %s again", name)
        health.clear(name)
        delay = min(delay * 2, most)


class Steps:
    """The steps of a loop's passes that are failing, and what the log said about them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failing: dict[str, _Failing] = {}

    def failing(self) -> dict[str, str]:
        """Each failing step and one sentence: its last error, how often, for how long."""
        now = self.clock()
        return {
            name: f"{f.error} ({'once' if f.times == 1 else f'{f.times} times'} in"
            f" {now - f.since:.0f} s)"
            for name, f in self._failing.items()
        }

    async def run(self, name: str, step: Callable[[], Awaitable[object]]) -> None:
        """Run `step`; a failure is logged as the module docstring says, never raised."""
        try:
            await step()
        except Exception as e:
            self._failed(name, e)
            return
        if self._failing.pop(name, None) is not None:
            log.info("%s works again", name)

    def _failed(self, name: str, e: Exception) -> None:
        now = self.clock()
        error = f"{type(e).__name__}: {e}"
        f = self._failing.get(name)
        if f is None:
            log.exception("%s failed; the drain tries again on its next pass", name)
            self._failing[name] = _Failing(now, 1, error, now)
            return
        f.times += 1
        f.error = error
        if now - f.logged >= REPEAT_LOG:
            f.logged = now
            log.error("%s still fails (%d times): %s", name, f.times, error)


@dataclass(slots=True)
class _Failing:
    since: float
    times: int
    error: str
    logged: float  # when the log last said so
