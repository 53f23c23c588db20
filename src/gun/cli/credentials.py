"""The credentials file (`$XDG_CONFIG_HOME/gun/credentials`, mode 0600): meta's URL, a token and,
for a meta with a certificate of the team's own CA, that CA (PEM), which the CLI pins."""

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
    ca: str | None = None


def path() -> Path:
    return config_dir() / "credentials"


def load() -> Credentials | None:
    p = path()
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text())
        ca = data.get("ca")
        return Credentials(str(data["api"]), str(data["token"]), None if ca is None else str(ca))
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{p} is not a gun credentials file: run `gun login` again") from None


def save(creds: Credentials) -> Path:
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {"api": creds.api, "token": creds.token}
    if creds.ca is not None:
        data["ca"] = creds.ca
    atomic.write(p, json.dumps(data) + "\n", mode=0o600)
    return p
