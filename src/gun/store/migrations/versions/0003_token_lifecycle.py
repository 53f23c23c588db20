"""tokens.expires_at, and live token names made unique (tokens.revoke names them)

Stores made before this may hold live tokens sharing a name: all but the oldest of each such
name are renamed NAME#ID (ID the row's id), so every token stays usable and revocable.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LIVE = sa.text("revoked = false")


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, name FROM tokens WHERE revoked = :no ORDER BY id"), {"no": False}
    ).all()
    seen: set[str] = set()
    for token_id, name in rows:
        if name in seen:
            renamed = f"{name[: 99 - len(str(token_id))]}#{token_id}"
            conn.execute(
                sa.text("UPDATE tokens SET name = :name WHERE id = :id"),
                {"name": renamed, "id": token_id},
            )
        seen.add(name)
    op.create_index(
        "tokens_live_name",
        "tokens",
        ["name"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )


def downgrade() -> None:
    op.drop_index("tokens_live_name", table_name="tokens")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("expires_at")
