"""builds: source uploads and git refs turned into slugs and releases, with their output;
instances.problem: why an agent cannot run the current release; processes.replacing_until:
rollout leases; apps.ingest_token_*: the token
of the app's ingest URL on the platform's drain

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("strategy", sa.String(length=10), nullable=False),
        sa.Column("ref", sa.Text(), nullable=True),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("commit_description", sa.Text(), nullable=True),
        sa.Column("slug_id", sa.Integer(), nullable=True),
        sa.Column("release", sa.Integer(), nullable=True),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["slug_id"], ["slugs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("builds_app_status", "builds", ["app_id", "status"], unique=False)
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("problem", sa.Text(), nullable=True))
    with op.batch_alter_table("processes") as batch:
        batch.add_column(sa.Column("replacing_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("apps") as batch:
        batch.add_column(sa.Column("ingest_token_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("ingest_token_sealed", sa.Text(), nullable=True))
        batch.create_unique_constraint("apps_ingest_token_hash", ["ingest_token_hash"])


def downgrade() -> None:
    with op.batch_alter_table("processes") as batch:
        batch.drop_column("replacing_until")
    with op.batch_alter_table("apps") as batch:
        batch.drop_constraint("apps_ingest_token_hash", type_="unique")
        batch.drop_column("ingest_token_sealed")
        batch.drop_column("ingest_token_hash")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("problem")
    op.drop_index("builds_app_status", table_name="builds")
    op.drop_table("builds")
