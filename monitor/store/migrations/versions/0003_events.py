"""events: stories as real-world events across outlets (issue 11)

Revision ID: 0003
Revises: 0002

Adds to `stories` what event clustering keeps: event time (first and latest item), last time
an item joined, item and source counts, topics, best score, the clustering features and a
revision counter. Existing stories stay valid: their times and counts are filled from their
items and matches; their features are left empty and computed from their items the first time
a process loads them (`monitor.store.stories`).
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("source_count", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("topics", sa.JSON(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("features", sa.JSON(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    with op.batch_alter_table("stories", schema=None) as batch_op:
        for col in _columns():
            batch_op.add_column(col)
        batch_op.create_index("ix_stories_event_time", ["event_time"], unique=False)
        batch_op.create_index("ix_stories_last_seen", ["last_seen"], unique=False)
        batch_op.create_index("ix_stories_revision", ["revision"], unique=False)

    bind = op.get_bind()
    # Times and counts from the items (portable SQL: correlated subqueries).
    bind.execute(
        sa.text(
            """
            UPDATE stories SET
              event_time = COALESCE(
                (SELECT MIN(COALESCE(i.published, i.first_seen)) FROM items i
                 WHERE i.story_id = stories.id), stories.first_seen),
              last_event_time = COALESCE(
                (SELECT MAX(COALESCE(i.published, i.first_seen)) FROM items i
                 WHERE i.story_id = stories.id), stories.first_seen),
              last_seen = COALESCE(
                (SELECT MAX(i.first_seen) FROM items i WHERE i.story_id = stories.id),
                stories.first_seen),
              item_count = COALESCE(
                (SELECT COUNT(*) FROM items i WHERE i.story_id = stories.id), 0),
              source_count = COALESCE(
                (SELECT COUNT(DISTINCT f.feed_id) FROM item_feeds f
                 JOIN items i ON i.id = f.item_id WHERE i.story_id = stories.id), 0),
              score = (SELECT MAX(m.score) FROM matches m WHERE m.story_id = stories.id)
            """
        )
    )
    # Topics: the union of the stories' matches (JSON lists; merged here, not in SQL).
    topics: dict[int, set[str]] = {}
    for story_id, raw in bind.execute(sa.text("SELECT story_id, topics FROM matches")):
        value = json.loads(raw) if isinstance(raw, str) else raw
        topics.setdefault(int(story_id), set()).update(value or [])
    if topics:
        bind.execute(
            sa.text("UPDATE stories SET topics = :t WHERE id = :i"),
            [{"t": json.dumps(sorted(v)), "i": k} for k, v in topics.items()],
        )


def downgrade() -> None:
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_index("ix_stories_revision")
        batch_op.drop_index("ix_stories_last_seen")
        batch_op.drop_index("ix_stories_event_time")
        for col in reversed(_columns()):
            batch_op.drop_column(col.name)
