"""instances.ip: the address an instance's agent reports its packets toward meta leave from,
where routers reach its web processes; an ec2 instance's is how meta knows where it is (its
`address` is the agent's directory, and EC2's view of it is not asked)

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("ip", sa.String(length=45), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("ip")
