"""API tokens: who a token is, and their lifecycle (create, list, expire, revoke).

Rules:
- A token is stored as its SHA-256 only; its value is shown once, when made.
- Names are unique among live (not revoked) tokens; an expired token's name is freed by
  revoking it when the name is taken again.
- Who a token is is cached; which tokens are live (the hashes of every token neither revoked
  nor deleted) is read at most every `cache_seconds` (0.5 s), in one query for all of them,
  and a cached token is taken only while the newest read says it is live. So a token revoked
  here is refused at once by this process, and within `cache_seconds` (plus the read) by every
  other meta on the same database. A token not among the live ones read is looked up (it may
  be newer than the read). (A query per token per 0.5 s was a query per call with 1,000
  agents calling every few seconds: bench/fleet.py.) An expired token is refused from the
  moment it expires.
- Admins manage tokens; an admin token scoped to an app manages only that app's tokens.
- The last live admin token of no one app cannot be revoked: nobody could manage meta after.
- Agent (instance) tokens live and die with their instance (`instances.delete`).
- A drain token (role and kind `drain`) may only look up ingest tokens; meta makes the one
  named `drain` from GUN_DRAIN_TOKEN at start.
"""

from __future__ import annotations

import threading
import time

from gun.core.access import authorize
from gun.crypto import hash_token, new_token
from gun.errors import Conflict, InvalidParams, NotFound, Unauthorized, UsageError
from gun.model import Principal, Token, TokenKind, check_role, check_token_name, parse_expiry, when
from gun.store import Store, Tx
from gun.store.time import now
from gun.store.tokens import StoredToken

DRAIN_TOKEN_NAME = "drain"  # the token meta makes from GUN_DRAIN_TOKEN
CACHE_SECONDS = 0.5  # how long another meta may still take a token revoked here


UNKNOWN = "the API token is unknown or revoked"
MAX_CACHED = 100_000  # principals kept; past it, the cache starts again


class Tokens:
    def __init__(self, store: Store, cache_seconds: float = CACHE_SECONDS) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._principals: dict[str, Principal] = {}  # by hash, while live
        self._live: frozenset[str] = frozenset()
        self._live_until = -1.0  # time.monotonic() after which `_live` is read again
        self._reading = threading.Lock()

    def _fresh(self) -> frozenset[str] | None:
        return self._live if time.monotonic() < self._live_until else None

    def _read_live(self) -> frozenset[str]:
        """The live hashes, read again unless another thread just did (one reads, the others
        wait for its answer)."""
        asked = time.monotonic()
        with self._reading:
            if self._live_until > asked:
                return self._live
            began = time.monotonic()
            with self.store.read() as tx:
                live = tx.tokens.live_hashes()
            self._principals = {d: w for d, w in self._principals.items() if d in live}
            self._live, self._live_until = live, began + self.cache_seconds
            return live

    def _forget(self, digest: str) -> None:
        """A token this process revoked or replaced (committed): refused here from now on.
        Under the reading lock: a read under way may have begun before the commit."""
        with self._reading:
            self._live = self._live - {digest}
            self._principals.pop(digest, None)

    def authenticate(self, token: str | None) -> Principal:
        """Who a token is: a query for the live tokens at most every `cache_seconds`, and one
        for who it is when it is not cached or not among them (made since they were read, or
        unknown; only the live ones are cached)."""
        if not token:
            raise Unauthorized("no API token given: run `gun login` or pass --token")
        digest = hash_token(token)
        live = self._fresh()
        if live is None:
            live = self._read_live()
        who = self._principals.get(digest) if digest in live else None
        if who is None:  # not known, or made since the live tokens were read
            with self.store.read() as tx:
                who = tx.tokens.principal(digest)
            if who is None:
                raise Unauthorized(UNKNOWN)
            self._learn(live, digest, who)
        return _unexpired(who)

    def _learn(self, live: frozenset[str], digest: str, who: Principal) -> None:
        """A token found live after `live` was read: live until the next read, unless a read
        since (which may know it revoked) replaced `live`."""
        with self._reading:
            if self._live is not live:
                return
            if len(self._principals) >= MAX_CACHED:
                self._principals = {}
            self._principals[digest] = who
            self._live = live | {digest}

    def cached(self, token: str | None) -> Principal | None:
        """Who a token is, if this process can say without a query (None: `authenticate` must
        look it up). An expired token is Unauthorized here too."""
        live = self._fresh() if token else None
        if live is None or token is None:
            return None
        digest = hash_token(token)
        who = self._principals.get(digest) if digest in live else None
        return None if who is None else _unexpired(who)

    def bootstrap_admin(self, token: str | None) -> str | None:
        """Create the first admin token (given or generated) unless any token exists.

        Returns the token when one was generated here, so the caller can print it once.
        """
        with self.store.write() as tx:
            if tx.tokens.count():
                return None
            value = token or new_token()
            tx.tokens.insert(
                name="admin",
                digest=hash_token(value),
                role="admin",
                app_id=None,
                created_by="gun server meta",
            )
            tx.events.record(
                None, "gun server meta", "token.create", {"name": "admin", "role": "admin"}
            )
        return None if token else value

    def ensure_drain_token(self, value: str) -> str | None:
        """Make sure a live drain token named `drain` has this value (GUN_DRAIN_TOKEN).

        A `drain` token with another value is revoked and replaced (the setting changed).
        Returns what was done, for meta's log, or None when nothing needed doing. Replicas
        starting together: the one that loses the race finds the winner's token on a retry.
        """
        try:
            return self._ensure_drain_token(value)
        except Conflict:
            return self._ensure_drain_token(value)

    def _ensure_drain_token(self, value: str) -> str | None:
        digest = hash_token(value)
        with self.store.write() as tx:
            same = tx.tokens.of_digest(digest)
            if same is not None:
                t = same.token
                if not same.revoked and t.name == DRAIN_TOKEN_NAME and t.kind == "drain":
                    return None
                if same.revoked:
                    raise UsageError(
                        f"GUN_DRAIN_TOKEN is the value of token {t.name!r}, which was revoked: "
                        "give it a new value (under gun up: delete DIR/drain.token)"
                    )
                raise UsageError(
                    f"GUN_DRAIN_TOKEN is the value of token {t.name!r}: give the drain a value "
                    "of its own"
                )
            old = tx.tokens.live_named(DRAIN_TOKEN_NAME, lock=True)
            if old is not None:
                _revoke(tx, "gun server meta", old, "GUN_DRAIN_TOKEN changed")
            tx.tokens.insert(
                name=DRAIN_TOKEN_NAME,
                digest=digest,
                role="drain",
                app_id=None,
                created_by="gun server meta",
                kind="drain",
            )
            tx.events.record(
                None, "gun server meta", "token.create", {"name": DRAIN_TOKEN_NAME, "role": "drain"}
            )
        if old is not None:
            self._forget(old.digest)
            return "replaced the drain token with the one GUN_DRAIN_TOKEN gives"
        return "made the drain token GUN_DRAIN_TOKEN gives"

    def create(
        self,
        who: Principal,
        name: str,
        role: str,
        app: str | None,
        expires: str | None = None,
    ) -> tuple[str, Principal]:
        """A new token (its value, shown once, and who it is)."""
        authorize(who, "admin", app if who.app else None)
        role_ = check_role(role)
        check_token_name(name)
        if name == DRAIN_TOKEN_NAME:
            raise InvalidParams(
                f"token name {name!r} is kept for the token meta makes from GUN_DRAIN_TOKEN: "
                "pick another name"
            )
        if role_ == "drain" and app is not None:
            raise InvalidParams("a drain token serves every app: create it without app")
        made = now()
        expires_at = None if expires is None else parse_expiry(expires, made)
        value = new_token()
        kind: TokenKind = "drain" if role_ == "drain" else "user"
        with self.store.write() as tx:
            target = tx.apps.existing(app) if app else None
            held = tx.tokens.live_named(name, lock=True)
            if held is not None and held.token.expired(made):
                _revoke(tx, who.name, held, "expired")
            token_id = tx.tokens.insert(
                name=name,
                digest=hash_token(value),
                role=role_,
                app_id=target.id if target else None,
                created_by=who.name,
                kind=kind,
                expires_at=expires_at,
            )
            detail: dict[str, object] = {"name": name, "role": role_}
            if expires_at is not None:
                detail["expires_at"] = expires_at.isoformat()
            tx.events.record(target, who.name, "token.create", detail)
        return value, Principal(token_id, name, role_, app, None, kind, expires_at)

    def live(self, who: Principal) -> list[Token]:
        """Live tokens (an app-scoped admin: its app's only)."""
        authorize(who, "admin", who.app)
        with self.store.read() as tx:
            app_id = tx.apps.existing(who.app).id if who.app else None
            return tx.tokens.live(app_id)

    def revoke(self, who: Principal, name: str) -> Token:
        """Revoke a live token by name; refused for agent tokens and the last admin token."""
        authorize(who, "admin", who.app)
        gone = NotFound(f"no live token is named {name!r}: `gun tokens` lists them")
        with self.store.write() as tx:
            held = tx.tokens.live_named(name)
            if held is None:
                raise gone
            t = held.token
            authorize(who, "admin", t.app if who.app else None)
            if t.kind == "instance":
                instance = t.name.removeprefix("agent ")
                raise InvalidParams(
                    f"token {name!r} is the agent token of instance {instance}: "
                    f"`gun app:{t.app} instances.delete:{instance}` revokes it"
                )
            at = now()
            if t.kind == "user" and t.role == "admin" and t.app is None and not t.expired(at):
                # every live admin locked, always in the same order: two revocations wait for
                # each other instead of deadlocking, and the second sees the first's
                admins = tx.tokens.live_admins(at)
                if held.id not in admins:
                    raise gone
                if len(admins) <= 1:
                    raise Conflict(
                        f"token {name!r} is the last live admin token: create another admin "
                        "token first, or nobody could manage this meta"
                    )
            elif tx.tokens.live_named(name, lock=True) is None:
                raise gone
            _revoke(tx, who.name, held, None)
        self._forget(held.digest)  # after the commit: no one re-caches it from here
        return t


def _revoke(tx: Tx, actor: str, held: StoredToken, why: str | None) -> None:
    tx.tokens.revoke(held.id)
    t = held.token
    app = tx.apps.find(t.app) if t.app else None
    detail: dict[str, object] = {"name": t.name, "role": t.role, "kind": t.kind}
    if why:
        detail["why"] = why
    tx.events.record(app, actor, "token.revoke", detail)


def _unexpired(who: Principal) -> Principal:
    if who.expires_at is not None and who.expires_at <= now():
        raise Unauthorized(
            f"the API token {who.name!r} expired at {when(who.expires_at)}: "
            "ask an admin for a new one"
        )
    return who
