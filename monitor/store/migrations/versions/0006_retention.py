"""retention: pruned items keep a compact key (issue 16)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    # Items of older databases were last seen, at the latest, when a feed last carried them.
    op.execute(
        "UPDATE items SET last_seen_at = (SELECT max(item_feeds.first_seen) FROM item_feeds "
        "WHERE item_feeds.item_id = items.id)"
    )
    op.execute("UPDATE items SET last_seen_at = first_seen WHERE last_seen_at IS NULL")
    op.create_index("ix_items_pruned_last_seen", "items", ["pruned_at", "last_seen_at"])
    op.create_index("ix_items_pruned_first_seen", "items", ["pruned_at", "first_seen"])


def downgrade() -> None:
    op.drop_index("ix_items_pruned_first_seen", table_name="items")
    op.drop_index("ix_items_pruned_last_seen", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("last_seen_at")
        batch.drop_column("pruned_at")
