"""The ids Heroku's clients use for gun's things (pure): UUIDs derived from what gun stores, so
an app, a release or a dyno has one stable UUID with nothing more to store.

An app's UUID comes from its row id and the moment it was made (an app destroyed and made again
under its name gets a new one, as on Heroku); a release's and a dyno's from their app's UUID and
their version or name. Clients send names or UUIDs where Heroku takes either (`{app}`,
`{release}`): `is_uuid` tells which was sent.
"""

from __future__ import annotations

import uuid
from datetime import datetime

_NS = uuid.UUID("6a1d4f1e-4f0b-5b7c-9a55-67756e2d6170")  # gun's own namespace


def app_uuid(app_id: int, created_at: datetime) -> str:
    return str(uuid.uuid5(_NS, f"app/{app_id}/{created_at.isoformat()}"))


def release_uuid(app: str, version: int) -> str:
    """`app`: the app's UUID."""
    return str(uuid.uuid5(uuid.UUID(app), f"release/{version}"))


def build_uuid(app: str, build_id: int) -> str:
    return str(uuid.uuid5(uuid.UUID(app), f"build/{build_id}"))


def dyno_uuid(app: str, name: str) -> str:
    return str(uuid.uuid5(uuid.UUID(app), f"dyno/{name}"))


def formation_uuid(app: str, ptype: str) -> str:
    return str(uuid.uuid5(uuid.UUID(app), f"formation/{ptype}"))


def user_uuid(token_name: str) -> str:
    return str(uuid.uuid5(_NS, f"user/{token_name}"))


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36
