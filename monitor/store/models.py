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
    UniqueConstraint,
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
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="SET NULL"))
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"), index=True)

    feeds: Mapped[list[ItemFeed]] = relationship(back_populates="item", lazy="selectin")


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


class Delivery(Base):
    """The outbox: one row per (alert, target); sent once, retried with backoff until then."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|sent|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    alert: Mapped[Alert] = relationship(back_populates="deliveries", lazy="joined")

    __table_args__ = (
        UniqueConstraint("alert_id", "target", name="uq_delivery_alert_target"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )
