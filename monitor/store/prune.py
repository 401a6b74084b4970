"""Retention's deletions, in small batches, and giving the space back to the filesystem."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Engine, Select, delete, exists, func, select, update
from sqlalchemy.orm import Session

from monitor.store.models import Alert, Delivery, Item, Match, MatchTopic, Message, Story


def _unmatched() -> ColumnElement[bool]:
    return ~exists().where(Match.item_id == Item.id)


def _emptied(now: datetime) -> dict[str, object]:
    """An item reduced to what deduplication needs: its key and link stay."""
    return dict(title="", summary="", content="", author=None, pruned_at=now)


def text_prunable(session: Session, before: datetime, limit: int | None) -> list[int]:
    """Unmatched items first seen before `before` whose text is still stored."""
    q = (
        select(Item.id)
        .where(Item.pruned_at.is_(None), Item.first_seen < before, _unmatched())
        .order_by(Item.first_seen)
    )
    return list(session.scalars(q.limit(limit) if limit else q))


def count_text_prunable(session: Session, before: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Item)
            .where(Item.pruned_at.is_(None), Item.first_seen < before, _unmatched())
        )
        or 0
    )


def prune_text(session: Session, ids: list[int], now: datetime) -> int:
    """Keep the key and link (deduplication), drop everything else of the text."""
    if not ids:
        return 0
    session.execute(
        update(Item)
        .where(Item.id.in_(ids))
        .values(**_emptied(now))
        .execution_options(synchronize_session=False)
    )
    return len(ids)


def forgettable(session: Session, before: datetime, limit: int | None) -> list[int]:
    """Pruned, unmatched items that no feed has carried since `before`."""
    q = (
        select(Item.id)
        .where(
            Item.pruned_at.is_not(None),
            Item.last_seen_at < before,
            _unmatched(),
        )
        .order_by(Item.last_seen_at)
    )
    return list(session.scalars(q.limit(limit) if limit else q))


def count_forgettable(session: Session, before: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Item)
            .where(
                Item.pruned_at.is_not(None),
                Item.last_seen_at < before,
                _unmatched(),
            )
        )
        or 0
    )


def forget(session: Session, ids: list[int]) -> int:
    """Delete the rows (their item_feeds go with them: ON DELETE CASCADE)."""
    if not ids:
        return 0
    session.execute(
        delete(Item).where(Item.id.in_(ids)).execution_options(synchronize_session=False)
    )
    return len(ids)


def reclaim_space(engine: Engine, full: bool = False) -> str:
    """Give freed pages back: SQLite incremental vacuum (a database created before
    auto_vacuum was set is converted once by a full VACUUM when `full`), PostgreSQL VACUUM.
    Returns what was done, for the report."""
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            mode = cur.execute("PRAGMA auto_vacuum").fetchone()[0]
            if mode == 2:  # incremental
                cur.execute("PRAGMA incremental_vacuum")
                cur.fetchall()
                done = "incremental vacuum"
            elif full:
                cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
                cur.execute("VACUUM")  # converts the file; later prunes are incremental
                done = "full vacuum (once: the database now vacuums incrementally)"
            else:
                done = "no vacuum (run `monitor db prune` once to convert the database)"
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cur.fetchall()
            cur.close()
        finally:
            raw.close()
        return done
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM items, item_feeds")
        return "VACUUM"
    return "no vacuum"


def _expired(before: datetime) -> Select[int | None]:
    """Stories whose newest item was first seen before `before`."""
    return (
        select(Item.story_id)
        .where(Item.story_id.is_not(None))
        .group_by(Item.story_id)
        .having(func.max(Item.first_seen) < before)
    )


def expired_stories(session: Session, before: datetime, limit: int | None) -> list[int]:
    q = _expired(before).order_by(Item.story_id)
    return [int(i) for i in session.scalars(q.limit(limit) if limit else q) if i is not None]


def count_expired_stories(session: Session, before: datetime) -> int:
    """Counted in the database (a dry run does not load every id)."""
    return int(session.scalar(select(func.count()).select_from(_expired(before).subquery())) or 0)


def delete_stories(session: Session, ids: list[int], now: datetime) -> int:
    """A story and everything of it: deliveries, alert, matches. Its items become pruned,
    unmatched keys (so one still in its feed is not stored again) and are forgotten later
    by the usual rule."""
    if not ids:
        return 0
    alerts = select(Alert.id).where(Alert.story_id.in_(ids))
    matches = select(Match.id).where(Match.story_id.in_(ids))
    opts = {"synchronize_session": False}
    session.execute(delete(Delivery).where(Delivery.alert_id.in_(alerts)).execution_options(**opts))
    session.execute(delete(Alert).where(Alert.story_id.in_(ids)).execution_options(**opts))
    session.execute(
        delete(MatchTopic).where(MatchTopic.match_id.in_(matches)).execution_options(**opts)
    )
    session.execute(delete(Match).where(Match.story_id.in_(ids)).execution_options(**opts))
    session.execute(
        update(Item)
        .where(Item.story_id.in_(ids))
        .values(**_emptied(now), story_id=None)
        .execution_options(**opts)
    )
    session.execute(delete(Story).where(Story.id.in_(ids)).execution_options(**opts))
    return len(ids)


def delete_old_messages(session: Session, before: datetime) -> int:
    """Sent (or given-up) messages older than the stories they listed: they go with them."""
    result = session.execute(
        delete(Message)
        .where(Message.status.in_(("sent", "dead")), Message.created_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
