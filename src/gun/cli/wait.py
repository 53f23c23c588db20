"""Waiting for convergence: every desired process up on the current release, nothing stopping."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from gun.cli.client import Client, Refused
from gun.errors import Unavailable

STEADY = 1.0  # seconds a process that comes up during a wait must stay up to count as up


class Steady:
    """Which `up` processes have stayed up: a process that is not web is `up` as soon as it is
    spawned, so one whose command fails at once (exit 127) flaps between `up` and `crashed`.

    A web process counts as up as soon as it is (it then accepts connections on $PORT). Any
    other counts once it has been up, unchanged (same instance, release, restarts, since), for
    `seconds`, counted from when its agent said it came up.
    """

    def __init__(self, seconds: float = STEADY) -> None:
        self.seconds = seconds
        self.seen: dict[str, tuple[tuple[Any, ...], float]] = {}

    def look(self, data: dict[str, Any]) -> None:
        """Record one poll's processes."""
        now = time.monotonic()
        for p in data["processes"]:
            if p["state"] != "up" or p["release"] != data["release"]:
                self.seen.pop(p["name"], None)
                continue
            key = (p["instance"], p["release"], p["restarts"], p["since"])
            had = self.seen.get(p["name"])
            if had is None or had[0] != key:
                # a web process is up only once it accepts connections on $PORT: no wait;
                # another has been up since its agent said so (`since`), which may be long ago
                age = self.seconds if p["type"] == "web" else _age(p["since"])
                self.seen[p["name"]] = (key, now - min(age, self.seconds))

    def young(self, p: dict[str, Any]) -> bool:
        had = self.seen.get(p["name"])
        return had is None or time.monotonic() - had[1] < self.seconds


def _age(since: str | None) -> float:
    """Seconds since an ISO timestamp from meta (0 when unknown or in the future)."""
    if not since:
        return 0.0
    try:
        return max(0.0, (datetime.now(UTC) - datetime.fromisoformat(since)).total_seconds())
    except ValueError:
        return 0.0


def pending(
    data: dict[str, Any], since: dict[str, str] | None = None, steady: Steady | None = None
) -> list[str]:
    """What is not converged yet, one phrase each (empty when converged)."""
    out = []
    for p in data["processes"]:
        where = f" on {p['instance']}" if p["instance"] else ""
        extra = f", exit code {p['exit_code']}" if p.get("exit_code") is not None else ""
        if p["state"] == "stopping":
            out.append(f"{p['name']} (stopping{where})")
        elif p["state"] != "up":
            out.append(f"{p['name']} ({p['state']}{where}{extra}, restarts {p['restarts']})")
        elif p["release"] != data["release"]:
            out.append(f"{p['name']} (still on v{p['release']}{where})")
        elif since is not None and since.get(p["name"]) == p["since"]:
            out.append(f"{p['name']} (not restarted yet{where})")
        elif steady is not None and steady.young(p):
            out.append(
                f"{p['name']} (up for under {steady.seconds:g}s{where}{extra}, "
                f"restarts {p['restarts']})"
            )
    return out


def converge(
    client: Client,
    app: str,
    timeout: float,
    *,
    progress: bool = True,
    done: Callable[[dict[str, Any]], list[str]] | None = None,
    unplaceable: Collection[str] = (),
) -> dict[str, Any]:
    """Poll until converged; raise Refused(Unavailable) naming what is stuck after `timeout`.
    Process types that cannot be placed fail the wait at once, except those in `unplaceable`
    (the caller has said so already)."""
    steady = Steady()

    def settled(data: dict[str, Any]) -> list[str]:
        steady.look(data)
        return pending(data, steady=steady)

    check = done or settled
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        data: dict[str, Any] = client.get(f"/v1/apps/{app}/processes")
        stuck = {t: why for t, why in data["unplaceable"].items() if t not in unplaceable}
        if stuck:
            reasons = "; ".join(stuck.values())
            raise Refused(Unavailable(f"cannot place processes of app {app!r}: {reasons}"))
        waiting = check(data)
        if not waiting:
            return data
        if data.get("problems"):
            reasons = "; ".join(f"{i}: {why}" for i, why in sorted(data["problems"].items()))
            raise Refused(Unavailable(f"instances cannot run v{data['release']} ({reasons})"))
        if time.monotonic() >= deadline:
            raise Refused(
                Unavailable(f"timed out after {timeout:g}s waiting for {', '.join(waiting)}")
            )
        summary = f"waiting for {len(waiting)}: {', '.join(waiting[:4])}"
        if progress and summary != last and sys.stderr.isatty():
            sys.stderr.write(f"\r\033[K{summary}")
            sys.stderr.flush()
            last = summary
        time.sleep(0.25)
