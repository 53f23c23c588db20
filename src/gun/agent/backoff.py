"""Crash-restart backoff: how long the supervisor waits before restarting a crashed process (pure).

The first restart is immediate; after that the wait starts at `initial` seconds and grows by
`factor` up to `cap`. A process that ran for `reset_after` seconds or more before crashing
starts the ladder again, as does an explicit restart (the supervisor forgets the count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gun.errors import InvalidParams


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        for name in ("initial", "factor", "cap", "reset_after"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InvalidParams(
                    f"backoff {name} {value!r} is invalid: use a number of seconds of 0 or more"
                )
        if self.factor < 1:
            raise InvalidParams(f"backoff factor {self.factor!r} is invalid: use 1 or more")
        if self.cap < self.initial:
            raise InvalidParams(
                f"backoff cap {self.cap!r} is below its initial wait {self.initial!r}: "
                "raise the cap or lower the initial wait"
            )

    def delay(self, crashes: int) -> float:
        """Seconds to wait before restarting after the `crashes`-th crash in a row (from 1)."""
        if crashes <= 1:
            return 0.0
        wait = self.initial
        for _ in range(crashes - 2):
            if wait >= self.cap or wait == 0 or self.factor == 1:
                break
            wait *= self.factor
        return float(min(wait, self.cap))

    def after_crash(self, crashes: int, uptime: float) -> tuple[int, float]:
        """The crashes in a row including this one, and the wait before restarting.

        `crashes` counts the crashes in a row before this one; `uptime` is how long the process
        ran this time.
        """
        streak = 1 if uptime >= self.reset_after else crashes + 1
        return streak, self.delay(streak)
