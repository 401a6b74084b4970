"""match confidence: the calibrated confidence per topic, for notify.yaml min_confidence

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Older matches keep NULL: min_confidence does not skip them (no confidence was recorded).
    with op.batch_alter_table("matches") as batch:
        batch.add_column(sa.Column("confidence", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("matches") as batch:
        batch.drop_column("confidence")
