"""Retention's deletions, in small batches, and giving the space back to the filesystem."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Engine, delete, exists, func, select, update
from sqlalchemy.orm import Session

from monitor.store.models import Item, Match


def _unmatched() -> ColumnElement[bool]:
    return ~exists().where(Match.item_id == Item.id)


def text_prunable(session: Session, before: datetime, limit: int | None) -> list[int]:
    """Unmatched items first seen before `before` whose text is still stored."""
    q = (
        select(Item.id)
        .where(Item.pruned_at.is_(None), Item.first_seen < before, _unmatched())
        .order_by(Item.id)
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
        .values(title="", summary="", content="", author=None, pruned_at=now)
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
        .order_by(Item.id)
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
