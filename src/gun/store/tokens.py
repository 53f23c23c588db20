"""Queries for API tokens: stored by hash, listed without it, revoked by name."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gun.errors import Conflict
from gun.model import Principal, Token, TokenKind, check_role
from gun.store.queries import Queries
from gun.store.schema import apps, instances, tokens
from gun.store.time import now, utc

KINDS: tuple[TokenKind, ...] = ("user", "instance", "drain")


class StoredToken(NamedTuple):
    """A token row: the listing plus what only the store knows (its id, hash, revocation)."""

    id: int
    digest: str
    revoked: bool
    token: Token


def _kind(value: str) -> TokenKind:
    for k in KINDS:
        if k == value:
            return k
    raise ValueError(f"unknown token kind {value!r}")


def _token(row: Any) -> StoredToken:
    return StoredToken(
        row.id,
        row.hash,
        row.revoked,
        Token(
            name=row.name,
            role=check_role(row.role),
            app=row.app,
            kind=_kind(row.kind),
            created_by=row.created_by,
            created_at=utc(row.created_at),
            expires_at=utc(row.expires_at) if row.expires_at else None,
        ),
    )


_COLUMNS = (
    tokens.c.id,
    tokens.c.hash,
    tokens.c.revoked,
    tokens.c.name,
    tokens.c.role,
    apps.c.name.label("app"),
    tokens.c.kind,
    tokens.c.created_by,
    tokens.c.created_at,
    tokens.c.expires_at,
)


class TokenQueries(Queries):
    def insert(
        self,
        *,
        name: str,
        digest: str,
        role: str,
        app_id: int | None,
        created_by: str,
        kind: TokenKind = "user",
        expires_at: datetime | None = None,
    ) -> int:
        """A new live token; Conflict when a live one has its name already."""
        try:
            with self.conn.begin_nested():
                return int(
                    self.conn.execute(
                        insert(tokens)
                        .values(
                            name=name,
                            hash=digest,
                            role=role,
                            app_id=app_id,
                            kind=kind,
                            revoked=False,
                            created_by=created_by,
                            created_at=now(),
                            expires_at=expires_at,
                        )
                        .returning(tokens.c.id)
                    ).scalar_one()
                )
        except IntegrityError:
            raise Conflict(
                f"a live token is already named {name!r}: revoke it first "
                f"(`gun tokens.revoke:{name}`) or pick another name"
            ) from None

    def principal(self, digest: str) -> Principal | None:
        """Who a live token's hash is (expired or not: the caller says when it expired)."""
        row = self.conn.execute(
            select(
                tokens.c.id,
                tokens.c.name,
                tokens.c.role,
                tokens.c.kind,
                tokens.c.expires_at,
                apps.c.name.label("app"),
                instances.c.id.label("instance"),
            )
            .outerjoin(apps, apps.c.id == tokens.c.app_id)
            .outerjoin(instances, instances.c.token_id == tokens.c.id)
            .where(tokens.c.hash == digest, tokens.c.revoked.is_(False))
        ).first()
        if row is None:
            return None
        return Principal(
            row.id,
            row.name,
            check_role(row.role),
            row.app,
            row.instance,
            _kind(row.kind),
            utc(row.expires_at) if row.expires_at else None,
        )

    def live_hashes(self) -> frozenset[str]:
        """The hash of every token neither revoked nor deleted (expired ones included)."""
        rows = self.conn.execute(select(tokens.c.hash).where(tokens.c.revoked.is_(False)))
        return frozenset(r.hash for r in rows)

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(tokens)).scalar_one())

    def live(self, app_id: int | None = None) -> list[Token]:
        """Tokens not revoked (expired ones too), oldest first; with `app_id`, that app's."""
        q = (
            select(*_COLUMNS)
            .outerjoin(apps, apps.c.id == tokens.c.app_id)
            .where(tokens.c.revoked.is_(False))
            .order_by(tokens.c.id)
        )
        if app_id is not None:
            q = q.where(tokens.c.app_id == app_id)
        return [_token(r).token for r in self.conn.execute(q)]

    def live_named(self, name: str, *, lock: bool = False) -> StoredToken | None:
        q = (
            select(*_COLUMNS)
            .outerjoin(apps, apps.c.id == tokens.c.app_id)
            .where(tokens.c.name == name, tokens.c.revoked.is_(False))
        )
        if lock and self.conn.dialect.name != "sqlite":
            q = q.with_for_update(of=tokens)
        row = self.conn.execute(q).first()
        return None if row is None else _token(row)

    def of_digest(self, digest: str) -> StoredToken | None:
        """The token (live or revoked) with this hash."""
        row = self.conn.execute(
            select(*_COLUMNS)
            .outerjoin(apps, apps.c.id == tokens.c.app_id)
            .where(tokens.c.hash == digest)
        ).first()
        return None if row is None else _token(row)

    def live_admins(self, at: datetime) -> list[int]:
        """Ids of the live, unexpired admin tokens of no one app: those that can manage
        everything. Locked on PostgreSQL (in id order), so two revocations cannot both count
        the other."""
        q = (
            select(tokens.c.id)
            .where(
                tokens.c.revoked.is_(False),
                tokens.c.kind == "user",
                tokens.c.role == "admin",
                tokens.c.app_id.is_(None),
                or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > at),
            )
            .order_by(tokens.c.id)
        )
        if self.conn.dialect.name != "sqlite":
            q = q.with_for_update()
        return [r.id for r in self.conn.execute(q)]

    def revoke(self, token_id: int) -> None:
        self.conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked=True))
