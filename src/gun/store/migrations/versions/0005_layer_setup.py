"""layers.setup and layers.teardown: commands run once on each instance of the layer, when it
is made and when it is deleted; instances.setup (the layer's setup when the instance was made),
setup_state (running, succeeded, failed) and setup_output (what it printed, kept)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("layers") as batch:
        batch.add_column(sa.Column("setup", sa.Text(), nullable=True))
        batch.add_column(sa.Column("teardown", sa.Text(), nullable=True))
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("setup", sa.Text(), nullable=True))
        batch.add_column(sa.Column("setup_state", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("setup_output", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("setup_output")
        batch.drop_column("setup_state")
        batch.drop_column("setup")
    with op.batch_alter_table("layers") as batch:
        batch.drop_column("teardown")
        batch.drop_column("setup")
