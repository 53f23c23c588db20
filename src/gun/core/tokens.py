"""API tokens: who a token is, and their lifecycle (create, list, expire, revoke).

Rules:
- A token is stored as its SHA-256 only; its value is shown once, when made.
- Names are unique among live (not revoked) tokens; an expired token's name is freed by
  revoking it when the name is taken again.
- Who a token is is cached for `cache_seconds` (at most 0.5 s): a token revoked here is
  refused at once by this process (its entry is dropped), and within that TTL by every other
  meta on the same database. An expired token is refused from the moment it expires.
- Admins manage tokens; an admin token scoped to an app manages only that app's tokens.
- The last live admin token of no one app cannot be revoked: nobody could manage meta after.
- Agent (instance) tokens live and die with their instance (`instances.delete`).
- A drain token (role and kind `drain`) may only look up ingest tokens; meta makes the one
  named `drain` from GUN_DRAIN_TOKEN at start.
"""

from __future__ import annotations

from gun.core.access import authorize
from gun.core.cache import TTLCache
from gun.crypto import hash_token, new_token
from gun.errors import Conflict, InvalidParams, NotFound, Unauthorized, UsageError
from gun.model import Principal, Token, TokenKind, check_role, check_token_name, parse_expiry, when
from gun.store import Store, Tx
from gun.store.time import now
from gun.store.tokens import StoredToken

DRAIN_TOKEN_NAME = "drain"  # the token meta makes from GUN_DRAIN_TOKEN
CACHE_SECONDS = 0.5  # how long another meta may still take a token revoked here


class Tokens:
    def __init__(self, store: Store, cache_seconds: float = CACHE_SECONDS) -> None:
        self.store = store
        self._principals: TTLCache[str, Principal] = TTLCache(cache_seconds)

    def authenticate(self, token: str | None) -> Principal:
        """Who a token is: one query per token per `cache_seconds`, none in between."""
        if not token:
            raise Unauthorized("no API token given: run `gun login` or pass --token")
        digest = hash_token(token)
        who = self._principals.get(digest)
        if who is None:
            with self.store.read() as tx:
                who = tx.tokens.principal(digest)
            if who is None:
                raise Unauthorized("the API token is unknown or revoked")
            self._principals.put(digest, who)
        return _unexpired(who)

    def cached(self, token: str | None) -> Principal | None:
        """Who a token is, if this process knows it now (no query); None when `authenticate`
        must look it up. An expired token is Unauthorized here too."""
        who = self._principals.get(hash_token(token)) if token else None
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
            self._principals.drop(old.digest)
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
        self._principals.drop(held.digest)  # after the commit: no one re-caches it from here
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
