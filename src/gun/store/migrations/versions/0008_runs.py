"""runs: one-off processes (`gun run`, `console`): the command, who started it, how it is
attached (a pty or pipes, gun's frames or Heroku's raw bytes), the instance it was put on, and
the hash of the secret its client dials the rendezvous with (cleared once used); kept after
they end, so `run.N` numbers are not reused

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(length=20), nullable=True),
        sa.Column("release", sa.Integer(), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("attached", sa.Boolean(), nullable=False),
        sa.Column("tty", sa.Boolean(), nullable=False),
        sa.Column("framing", sa.String(length=8), nullable=False),
        sa.Column("term", sa.String(length=64), nullable=True),
        sa.Column("cols", sa.Integer(), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=True),
        sa.Column("ttl", sa.Float(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("app_id", "number"),
    )
    op.create_index("runs_secret", "runs", ["secret_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("runs_secret", table_name="runs")
    op.drop_table("runs")
