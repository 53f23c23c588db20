"""Where an app's logs go: the platform's drain, through the app's ingest token, then the
drains the team added.

The ingest token is made with the app, shown in its ingest URL (`drains.ingest`), replaced by
`drains.ingest rotate=true`; it is stored sealed (to make the URL again) and hashed (for the
drain's lookup). Agents are told the URLs in their desired slice.
"""

from __future__ import annotations

import secrets

from gun.crypto import hash_token
from gun.errors import NotFound
from gun.store import Tx

INGEST_PREFIX = "gdi_"  # gun drain ingest; the whole form: logs.access.INGEST_TOKEN


class Shipping:
    def __init__(self, drain_url: str | None) -> None:
        self.drain_url = drain_url

    def drain_base(self) -> str:
        """The drain's URL, without a trailing slash; NotFound when this meta knows none."""
        if not self.drain_url:
            raise NotFound(
                "this meta knows no drain: start `gun server drain` and give meta its URL "
                "in GUN_DRAIN_URL (gun up does both)"
            )
        return self.drain_url.rstrip("/")

    def ingest_token(self, tx: Tx, app_id: int) -> str:
        """The app's ingest token, made if it has none."""
        token = tx.drains.ingest_token(app_id)
        return self.new_ingest_token(tx, app_id) if token is None else token

    @staticmethod
    def new_ingest_token(tx: Tx, app_id: int) -> str:
        """A new ingest token for the app: the old one is refused from the commit on."""
        token = INGEST_PREFIX + secrets.token_urlsafe(24)
        tx.drains.set_ingest_token(app_id, hash_token(token), token)
        return token

    def urls(self, tx: Tx, app_id: int) -> list[str]:
        """Where the app's agents send its logs: the platform's drain, then the app's own."""
        urls = [d.url for d in tx.drains.of(app_id)]
        token = tx.drains.ingest_token(app_id)  # made with the app
        if self.drain_url and token:
            urls.insert(0, f"{self.drain_url.rstrip('/')}/logs/{token}")
        return urls
