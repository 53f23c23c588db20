"""How an agent finds meta: ROOT/etc/agent.json (written by the provider) or flags / GUN_*."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from gun.errors import UsageError
from gun.settings import AppLogLimits, SlugLimits, pem_certificates


@dataclass(frozen=True)
class AgentConfig:
    root: Path
    meta: str
    instance: str
    token: str = field(repr=False)
    report_interval: float = 2.0
    keep_releases: int = 10  # release directories and cached slugs kept for instant rollback
    metrics_interval: float = 20.0  # seconds between runtime metric lines
    applog: AppLogLimits = AppLogLimits()  # when log/app.log rotates, how many old ones stay
    slug_limits: SlugLimits = SlugLimits()  # what a release's slug may unpack to
    ca: str | None = field(default=None, repr=False)  # PEM: the CA meta's HTTPS is pinned to

    @classmethod
    def load(
        cls,
        root: Path,
        meta: str | None = None,
        instance: str | None = None,
        token: str | None = None,
    ) -> AgentConfig:
        saved: dict[str, str] = {}
        path = root / "etc" / "agent.json"
        if path.exists():
            try:
                saved = json.loads(path.read_text())
            except ValueError:
                raise UsageError(f"{path} is not JSON: recreate the instance") from None
        meta = meta or os.environ.get("GUN_META_URL") or saved.get("meta")
        instance = instance or os.environ.get("GUN_INSTANCE_ID") or saved.get("instance")
        token = token or os.environ.get("GUN_AGENT_TOKEN") or saved.get("token")
        missing = [
            n for n, v in (("--meta", meta), ("--instance", instance), ("a token", token)) if not v
        ]
        if missing:
            raise UsageError(f"the agent needs {', '.join(missing)}: pass them or write {path}")
        assert meta and instance and token
        ca = saved.get("ca") or pem_certificates("GUN_META_CA")
        keep = os.environ.get("GUN_KEEP_RELEASES", "10")
        if not (keep.isascii() and keep.isdigit() and 1 <= int(keep) <= 1000):
            raise UsageError(f"GUN_KEEP_RELEASES={keep!r} is invalid: use a number from 1 to 1000")
        return cls(
            root=root,
            meta=meta.rstrip("/"),
            instance=instance,
            token=token,
            keep_releases=int(keep),
            metrics_interval=_seconds("GUN_RUNTIME_METRICS_INTERVAL", 20.0),
            applog=AppLogLimits.resolve(),
            slug_limits=SlugLimits.resolve(),
            ca=ca,
        )


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number of seconds") from None
    if not 1 <= value <= 3600:
        raise UsageError(f"{name}={raw} is out of range: use 1 to 3600 seconds")
    return value
