"""alert policy: storm control, quiet hours, digests, follow-ups (issue 11)

Revision ID: 0004
Revises: 0003

Messages (one notification as sent: alert, follow-up, summary, digest) and, on deliveries,
what the policy needs: kind (alert|update), hold and reason, the message that carried the row,
the sources told. The unique constraint (alert_id, target) becomes a partial unique index over
kind 'alert' (follow-ups are further rows of the same alert and target). Existing rows stay
valid: they are alerts, their statuses unchanged.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=2000), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_format", sa.String(length=10), nullable=False),
        sa.Column("stories", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_messages_due", "messages", ["status", "next_attempt_at"])
    op.create_index("ix_messages_target_created", "messages", ["target", "created_at"])
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=10), nullable=False, server_default="alert")
        )
        batch_op.add_column(sa.Column("hold", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("told_feeds", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("told_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_deliveries_message", "messages", ["message_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.drop_constraint("uq_delivery_alert_target", type_="unique")
    op.create_index("ix_deliveries_message_id", "deliveries", ["message_id"])
    op.create_index("ix_deliveries_target_status", "deliveries", ["target", "status"])
    op.create_index(
        "uq_deliveries_alert_target",
        "deliveries",
        ["alert_id", "target"],
        unique=True,
        sqlite_where=sa.text("kind = 'alert'"),
        postgresql_where=sa.text("kind = 'alert'"),
    )
    op.create_index(
        "uq_deliveries_open_update",
        "deliveries",
        ["alert_id", "target"],
        unique=True,
        sqlite_where=sa.text("kind = 'update' AND status IN ('pending', 'held')"),
        postgresql_where=sa.text("kind = 'update' AND status IN ('pending', 'held')"),
    )


def downgrade() -> None:
    op.drop_index("uq_deliveries_open_update", table_name="deliveries")
    op.drop_index("uq_deliveries_alert_target", table_name="deliveries")
    op.drop_index("ix_deliveries_target_status", table_name="deliveries")
    op.drop_index("ix_deliveries_message_id", table_name="deliveries")
    op.execute("DELETE FROM deliveries WHERE kind <> 'alert'")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_delivery_alert_target", ["alert_id", "target"])
        batch_op.drop_constraint("fk_deliveries_message", type_="foreignkey")
        for column in ("told_at", "told_feeds", "message_id", "reason", "hold", "kind"):
            batch_op.drop_column(column)
    op.drop_index("ix_messages_target_created", table_name="messages")
    op.drop_index("ix_messages_due", table_name="messages")
    op.drop_table("messages")
