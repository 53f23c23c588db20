"""The credentials file (`$XDG_CONFIG_HOME/gun/credentials`, mode 0600): meta's URL and a token."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gun import atomic
from gun.errors import UsageError
from gun.settings import config_dir


@dataclass(frozen=True)
class Credentials:
    api: str
    token: str


def path() -> Path:
    return config_dir() / "credentials"


def load() -> Credentials | None:
    p = path()
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text())
        return Credentials(api=str(data["api"]), token=str(data["token"]))
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{p} is not a gun credentials file: run `gun login` again") from None


def save(creds: Credentials) -> Path:
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic.write(p, json.dumps({"api": creds.api, "token": creds.token}) + "\n", mode=0o600)
    return p
