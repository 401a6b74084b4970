"""The schema. Unique constraints carry the promises: an item is stored once, a story gets
one alert, an alert is delivered to a target once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        from datetime import UTC

        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        from datetime import UTC

        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    name: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(String(500))
    interval: Mapped[int] = mapped_column(Integer, default=300)
    language: Mapped[str] = mapped_column(String(20), default="fr")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(40))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(40))
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # A lease: the worker that polls this feed now, until when (two workers never poll one feed).
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    items_seen: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Story(Base):
    """Items that tell the same story (same article, or near-identical text elsewhere)."""

    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    title_signature: Mapped[str] = mapped_column(Text, default="")
    body_signature: Mapped[str] = mapped_column(Text, default="")
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The event (issue 11): when it happened (first and latest item, published date else first
    # seen), when an item last joined (wall clock), its size, topics and best score, and the
    # features the clustering index needs (`monitor.events.StoryState.as_features`).
    event_time: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_event_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    item_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    source_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    topics: Mapped[list[str] | None] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    features: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Bumped (max + 1, under the assignment lock) whenever the story changes: each process's
    # index reads only the stories changed since it last looked.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0", index=True)


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(1000), unique=True)
    link: Mapped[str | None] = mapped_column(String(2000), unique=True)
    guid: Mapped[str | None] = mapped_column(String(1000))
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(String(200))
    published: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Retention: when the text was removed (the key and link stay, so an item still in its
    # feed is never stored again), and when a feed last carried it (refreshed once a day).
    pruned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="SET NULL"))
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"), index=True)

    feeds: Mapped[list[ItemFeed]] = relationship(back_populates="item", lazy="selectin")

    __table_args__ = (
        # Retention's two questions: still-whole items first seen before a date, and pruned
        # ones no feed carried since a date. Both are range scans on these.
        Index("ix_items_pruned_first_seen", "pruned_at", "first_seen"),
        Index("ix_items_pruned_last_seen", "pruned_at", "last_seen_at"),
    )


class ItemFeed(Base):
    """Where an item was seen: one row per (item, feed)."""

    __tablename__ = "item_feeds"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    feed_id: Mapped[int] = mapped_column(
        ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True
    )
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)

    item: Mapped[Item] = relationship(back_populates="feeds")
    feed: Mapped[Feed] = relationship(lazy="joined")


class Match(Base):
    __tablename__ = "matches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)
    topics: Mapped[list[str]] = mapped_column(JSON)
    scores: Mapped[dict[str, float]] = mapped_column(JSON)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # Calibrated confidence per topic (Classification.confidence); NULL on older rows.
    confidence: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    explanation: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    item: Mapped[Item] = relationship(lazy="joined")


class MatchTopic(Base):
    """One row per (match, topic): `monitor matches --topic` and its index."""

    __tablename__ = "match_topics"

    match_id: Mapped[int] = mapped_column(
        ForeignKey("matches.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_match_topics_topic_created", "topic", "created_at"),)


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), unique=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    match: Mapped[Match] = relationship(lazy="joined")
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="alert", lazy="selectin")


class Message(Base):
    """One notification as sent to one target: a single alert, a follow-up ("+3 sources"), a
    storm summary or a digest. Rendered and bound to its deliveries in one transaction, so a
    sender killed mid-send leaves the same message to send again: no story lost, none listed
    twice."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(2000))
    kind: Mapped[str] = mapped_column(String(20))  # alert|update|summary|digest
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|sent|dead
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    body_format: Mapped[str] = mapped_column(String(10), default="text")  # text|html
    stories: Mapped[list[int]] = mapped_column(JSON)  # the stories it lists
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_messages_due", "status", "next_attempt_at"),
        Index("ix_messages_target_created", "target", "created_at"),
    )


# Delivery statuses: pending (not decided yet), held (by the target's policy until
# next_attempt_at: `hold` says why), sending (bound to a message not confirmed yet), sent,
# skipped (below min_score), unrouted (no target takes the alert; target ""), rerouted (its
# target left notify.yaml: routed again to the current targets), dead (given up).
OPEN_STATUSES = ("pending", "held", "sending")


class Delivery(Base):
    """The outbox: one row per (alert, target), plus one per follow-up of a grown story
    (kind "update"); each is carried by one message, sent once, retried until then."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(10), default="alert", server_default="alert")
    hold: Mapped[str | None] = mapped_column(String(20))  # quiet|digest|storm
    reason: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    # kind alert: the story's source feeds told to the target so far (follow-ups tell the rest);
    # kind update: the new source feeds it announces.
    told_feeds: Mapped[list[int] | None] = mapped_column(JSON)
    told_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    alert: Mapped[Alert] = relationship(back_populates="deliveries", lazy="joined")

    __table_args__ = (
        # One alert per (alert, target); at most one follow-up waiting per (alert, target).
        Index(
            "uq_deliveries_alert_target",
            "alert_id",
            "target",
            unique=True,
            sqlite_where=text("kind = 'alert'"),
            postgresql_where=text("kind = 'alert'"),
        ),
        Index(
            "uq_deliveries_open_update",
            "alert_id",
            "target",
            unique=True,
            sqlite_where=text("kind = 'update' AND status IN ('pending', 'held')"),
            postgresql_where=text("kind = 'update' AND status IN ('pending', 'held')"),
        ),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_target_status", "target", "status"),
    )


class Feedback(Base):
    """What an analyst said about a story in the web window: relevant, noise, or a wrong
    topic (`topic`, with the one it should have had in `correct_topic`, if any)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    verdict: Mapped[str] = mapped_column(String(20))  # relevant | noise | wrong-topic
    topic: Mapped[str | None] = mapped_column(String(100))
    correct_topic: Mapped[str | None] = mapped_column(String(100))
    who: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class StorySplit(Base):
    """An item an analyst split off its story in the web window ("another event"): it left
    `from_story_id` and became story `story_id`, which got its own alert."""

    __tablename__ = "story_splits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    from_story_id: Mapped[int] = mapped_column(
        ForeignKey("stories.id", ondelete="CASCADE"), index=True
    )
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    who: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Heartbeat(Base):
    """The last polling cycle of each kind of scheduler (`run`, `celery`): what /healthz reads."""

    __tablename__ = "heartbeats"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    detail: Mapped[str] = mapped_column(Text, default="")
