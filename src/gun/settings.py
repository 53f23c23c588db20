"""Configuration: flags > environment (GUN_*) > defaults. Resolved once at the edges."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gun.errors import UsageError


def gun_home() -> Path:
    raw = os.environ.get("GUN_HOME")
    if raw:
        return Path(raw).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "gun"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gun"


def default_database_url(home: Path) -> str:
    return f"sqlite:///{home / 'meta.db'}"


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise UsageError(f"listen address {listen!r} is invalid: write it as HOST:PORT")
    return host, int(port)


def number(name: str, default: float, low: float, high: float) -> float:
    """A numeric GUN_* variable, refused with its name when it is not a number in range."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise UsageError(f"{name}={raw} is out of range: use {low:g} to {high:g}")
    return value


@dataclass(frozen=True)
class MetaSettings:
    home: Path
    database_url: str
    listen: str
    secret_key: str | None
    admin_token: str | None
    instance_timeout: float = 30.0
    auto_instances: int = 0
    build_concurrency: int = 2
    build_timeout: float = 900.0
    release_timeout: float = 3600.0
    preboot_drain: float = 2.0
    max_unavailable: int = 1
    keep_slugs: int = 10
    slug_store: str = ""

    @classmethod
    def resolve(
        cls,
        *,
        home: str | None = None,
        database_url: str | None = None,
        listen: str | None = None,
        secret_key: str | None = None,
    ) -> MetaSettings:
        h = Path(home).expanduser() if home else gun_home()
        return cls(
            home=h,
            database_url=database_url
            or os.environ.get("GUN_DATABASE_URL")
            or default_database_url(h),
            listen=listen or os.environ.get("GUN_LISTEN") or "127.0.0.1:5100",
            secret_key=secret_key or os.environ.get("GUN_SECRET_KEY") or None,
            admin_token=os.environ.get("GUN_ADMIN_TOKEN") or None,
            instance_timeout=number("GUN_INSTANCE_TIMEOUT", 30.0, 1.0, 3600.0),
            auto_instances=int(number("GUN_AUTO_INSTANCES", 0, 0, 20)),
            build_concurrency=int(number("GUN_BUILD_CONCURRENCY", 2, 1, 64)),
            build_timeout=number("GUN_BUILD_TIMEOUT", 900.0, 1.0, 86400.0),
            release_timeout=number("GUN_RELEASE_TIMEOUT", 3600.0, 1.0, 86400.0),
            preboot_drain=number("GUN_PREBOOT_DRAIN", 2.0, 0.0, 600.0),
            max_unavailable=int(number("GUN_MAX_UNAVAILABLE", 1, 1, 1000)),
            keep_slugs=int(number("GUN_KEEP_RELEASES", 10, 1, 1000)),
            slug_store=os.environ.get("GUN_SLUG_STORE", ""),
        )
