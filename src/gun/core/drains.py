"""Log drains: where an app's logs go (the platform's drain, plus drains the team adds), and
the ingest URL through which any logplex sender drains into the app.

A drain URL may carry credentials (user:password@, a token in its path or query): viewers see
only its scheme, host and port. Only a drain token may ask which app an ingest token is.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import urlsplit

from gun.core.access import authorize, reads_secrets
from gun.core.shipping import Shipping
from gun.crypto import hash_token
from gun.errors import Forbidden, InvalidParams, NotFound
from gun.logs.access import is_ingest_token
from gun.model import Drain, Principal, show
from gun.store import Store

NO_APP_HAS_IT = "no app has this ingest token"


def check_drain_url(url: str) -> str:
    """An http(s) URL of up to 2000 characters, without spaces or control characters (it goes
    to the agents, and PostgreSQL text cannot hold a NUL)."""
    if len(url) > 2000:
        raise InvalidParams(
            f"drain URL {show(url)} is {len(url)} characters long: use at most 2000"
        )
    if any(c.isspace() or not c.isprintable() for c in url):
        raise InvalidParams(f"drain URL {show(url)} has a space or control character; remove it")
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise InvalidParams(f"drain URL {url!r} is not an http:// or https:// URL")
    return url


def drain_origin(url: str) -> str:
    """scheme://host[:port] of a drain URL: what a viewer may see of it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


def resolution_param(resolution: int | None) -> str:
    if resolution is None:
        return ""
    if not 1 <= resolution <= 3600:
        raise InvalidParams(f"resolution {resolution} is out of range: use 1 to 3600 seconds")
    return f"?resolution={resolution}"


class Drains:
    def __init__(self, store: Store, shipping: Shipping) -> None:
        self.store = store
        self.shipping = shipping

    def all(self, who: Principal, name: str) -> list[Drain]:
        """The app's drains; a viewer sees only each URL's scheme, host and port."""
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            found = tx.drains.of(tx.apps.existing(name).id)
        if reads_secrets(who):
            return found
        return [replace(d, url=drain_origin(d.url)) for d in found]

    def add(self, who: Principal, name: str, url: str) -> Drain:
        """A new drain: the app's agents ship its logs there too."""
        authorize(who, "developer", name)
        check_drain_url(url)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            if any(d.url == url for d in tx.drains.of(app.id)):
                raise InvalidParams(f"app {name!r} already drains to {url!r}")
            drain = tx.drains.insert(app.id, url, f"d.{uuid.uuid4()}")
            tx.apps.bump_generation(app.id)  # agents ship to it
            tx.events.record(app, who.name, "drain.add", {"id": drain.id})
        return drain

    def remove(self, who: Principal, name: str, drain_id: int) -> None:
        authorize(who, "developer", name)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            if not tx.drains.delete(app.id, drain_id):
                raise NotFound(f"drain {drain_id} of app {name!r} does not exist")
            tx.apps.bump_generation(app.id)
            tx.events.record(app, who.name, "drain.remove", {"id": drain_id})

    def ingest_url(self, who: Principal, name: str, resolution: int | None = None) -> str:
        """The URL (token in its path) through which logplex senders drain into the app."""
        authorize(who, "developer", name)
        query = resolution_param(resolution)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            token = self.shipping.ingest_token(tx, app.id)
        return f"{self.shipping.drain_base()}/logs/{token}{query}"

    def rotate_ingest(self, who: Principal, name: str, resolution: int | None = None) -> str:
        """A new ingest token for the app (the old one is refused from now on); its agents are
        told the new shipping URL. Returns the new ingest URL."""
        authorize(who, "developer", name)
        query = resolution_param(resolution)
        base = self.shipping.drain_base()
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            token = self.shipping.new_ingest_token(tx, app.id)
            tx.apps.bump_generation(app.id)  # agents ship to the new URL
            tx.events.record(app, who.name, "drain.ingest.rotate", {})
        return f"{base}/logs/{token}{query}"

    def log_session(self, who: Principal, name: str) -> str:
        """Where to read the app's logs (archive and live tail): the drain's URL."""
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            tx.apps.existing(name)
        return self.shipping.drain_base()

    def readable(self, who: Principal, names: Sequence[str]) -> list[str]:
        """Of `names`, those `who` may read the logs of by log_session's rule (an app that
        exists, role viewer on it), in one read: the drain asks this for many apps at once."""
        self.shipping.drain_base()
        allowed = []
        for name in names:
            try:
                authorize(who, "viewer", name)
            except Forbidden:
                continue
            allowed.append(name)
        if not allowed:
            return []
        with self.store.read() as tx:
            existing = {a.name for a in tx.apps.all(only=who.app)}
        return [n for n in allowed if n in existing]

    def app_of_ingest_token(self, who: Principal, token: str) -> str:
        """For the drain: which app a token it was sent belongs to. Only a drain token may ask
        (an admin's would let whoever holds it map tokens to apps; a drain's can do nothing
        else)."""
        if who.kind != "drain":
            raise Forbidden(
                f"token {who.name!r} is not a drain token: only a drain token "
                "(`gun tokens.create NAME role=drain`) may look up ingest tokens"
            )
        if not is_ingest_token(token):  # the same answer as an unknown one, without a lookup
            raise NotFound(NO_APP_HAS_IT)
        with self.store.read() as tx:
            app = tx.drains.app_of_ingest_token(hash_token(token))
        if app is None:
            raise NotFound(NO_APP_HAS_IT)
        return app.name
