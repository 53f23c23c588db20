"""layers.provider and layers.settings: a layer may name the provider of its instances and that
provider's settings (ec2: ami, subnet, security groups, key name, root); instances.cloud_id and
instances.cloud_state: an ec2 instance's EC2 id and the state EC2 last reported for it

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("layers") as batch:
        batch.add_column(sa.Column("provider", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("settings", sa.JSON(), nullable=True))
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("cloud_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("cloud_state", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("cloud_state")
        batch.drop_column("cloud_id")
    with op.batch_alter_table("layers") as batch:
        batch.drop_column("settings")
        batch.drop_column("provider")
