"""story splits: an item split off its story in the web window ("another event"), by whom, when

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "story_splits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("from_story_id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("who", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["from_story_id"], ["stories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("story_splits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_story_splits_item_id"), ["item_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_story_splits_from_story_id"), ["from_story_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_story_splits_story_id"), ["story_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_story_splits_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("story_splits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_story_splits_created_at"))
        batch_op.drop_index(batch_op.f("ix_story_splits_story_id"))
        batch_op.drop_index(batch_op.f("ix_story_splits_from_story_id"))
        batch_op.drop_index(batch_op.f("ix_story_splits_item_id"))
    op.drop_table("story_splits")
