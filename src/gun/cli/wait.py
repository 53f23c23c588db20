"""Waiting for convergence: every desired process up on the current release, nothing stopping."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from gun.cli.client import Client, Refused
from gun.errors import Unavailable


def pending(data: dict[str, Any], since: dict[str, str] | None = None) -> list[str]:
    """What is not converged yet, one phrase each (empty when converged)."""
    out = []
    for p in data["processes"]:
        where = f" on {p['instance']}" if p["instance"] else ""
        if p["state"] == "stopping":
            out.append(f"{p['name']} (stopping{where})")
        elif p["state"] != "up":
            extra = f", exit code {p['exit_code']}" if p.get("exit_code") is not None else ""
            out.append(f"{p['name']} ({p['state']}{where}{extra}, restarts {p['restarts']})")
        elif p["release"] != data["release"]:
            out.append(f"{p['name']} (still on v{p['release']}{where})")
        elif since is not None and since.get(p["name"]) == p["since"]:
            out.append(f"{p['name']} (not restarted yet{where})")
    return out


def converge(
    client: Client,
    app: str,
    timeout: float,
    *,
    progress: bool = True,
    done: Callable[[dict[str, Any]], list[str]] | None = None,
) -> dict[str, Any]:
    """Poll until converged; raise Refused(Unavailable) naming what is stuck after `timeout`."""
    check = done or pending
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        data: dict[str, Any] = client.get(f"/v1/apps/{app}/processes")
        if data["unplaceable"]:
            reasons = "; ".join(data["unplaceable"].values())
            raise Refused(Unavailable(f"cannot place processes of app {app!r}: {reasons}"))
        waiting = check(data)
        if not waiting:
            return data
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
