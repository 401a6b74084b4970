"""Feeds and their schedule: follow feeds.yaml, take due feeds (leases), record each poll.
When a feed is next checked is decided in `monitor.schedule`; this module only saves it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from monitor.store.common import is_postgres
from monitor.store.models import Feed
from monitor.types import FeedConfig, FetchResult


def sync_feeds(session: Session, configs: Sequence[FeedConfig], now: datetime) -> dict[str, int]:
    """Make the feeds table follow feeds.yaml: add, update, disable what was removed."""
    existing = {f.url: f for f in session.scalars(select(Feed))}
    added = updated = disabled = 0
    wanted = set()
    for cfg in configs:
        wanted.add(cfg.url)
        feed = existing.get(cfg.url)
        if feed is None:
            session.add(
                Feed(
                    url=cfg.url,
                    name=cfg.name,
                    interval=cfg.interval,
                    language=cfg.language,
                    enabled=True,
                    error_count=0,
                    items_seen=0,
                    created_at=now,
                    next_check_at=now,
                )
            )
            added += 1
            continue
        changed = (feed.name, feed.interval, feed.language, feed.enabled) != (
            cfg.name,
            cfg.interval,
            cfg.language,
            True,
        )
        if changed:
            if feed.interval != cfg.interval and feed.error_count == 0:
                feed.next_check_at = now  # a new interval starts now
            feed.name, feed.interval, feed.language, feed.enabled = (
                cfg.name,
                cfg.interval,
                cfg.language,
                True,
            )
            updated += 1
    for url, feed in existing.items():
        if url not in wanted and feed.enabled:
            feed.enabled = False
            disabled += 1
        elif feed.next_check_at is None:  # due-feed selection reads next_check_at only
            feed.next_check_at = now
    session.flush()
    return {"added": added, "updated": updated, "disabled": disabled}


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(Feed.leased_until.is_(None), Feed.leased_until < now)


def _select_due_feeds(
    session: Session, now: datetime, limit: int | None, everything: bool = False
) -> list[Feed]:
    """Enabled feeds nobody holds, due now (or all of them), oldest check first; rows another
    transaction has locked are skipped on PostgreSQL. `next_check_at <= now` alone bounds the
    scan of its index, so the work is O(due feeds), not O(feeds)."""
    q = select(Feed).where(Feed.enabled.is_(True), _free(now)).order_by(Feed.next_check_at)
    if not everything:
        q = q.where(Feed.next_check_at <= now)
    if limit:
        q = q.limit(limit)
    if is_postgres(session):
        q = q.with_for_update(skip_locked=True)
    return list(session.scalars(q))


def lease_due_feeds(
    session: Session,
    now: datetime,
    owner: str,
    lease: float,
    limit: int | None = None,
    everything: bool = False,
) -> list[Feed]:
    """Take the due feeds (or every enabled feed) for this worker; feeds another worker
    holds are skipped."""
    feeds = _select_due_feeds(session, now, limit, everything)
    for f in feeds:
        f.leased_until = now + timedelta(seconds=lease)
        f.lease_owner = owner
    session.flush()
    return feeds


def lease_due_feed_rows(
    session: Session, now: datetime, owner: str, lease: float, limit: int
) -> list[tuple[int, str, str | None, str | None]]:
    """Take the lease of up to `limit` due feeds, oldest check first, in one statement; rows
    another transaction is taking are skipped on PostgreSQL (two workers take disjoint feeds).
    `next_check_at <= now` bounds the scan of its index: O(due feeds), not O(feeds).
    Returns (id, url, etag, last_modified) of the feeds taken."""
    due = (
        select(Feed.id)
        .where(Feed.next_check_at <= now, Feed.enabled.is_(True), _free(now))
        .order_by(Feed.next_check_at)
        .limit(limit)
    )
    if is_postgres(session):
        due = due.with_for_update(skip_locked=True)
    taken = session.execute(
        update(Feed)
        .where(Feed.id.in_(due.scalar_subquery()))
        .values(leased_until=now + timedelta(seconds=lease), lease_owner=owner)
        .returning(Feed.id, Feed.url, Feed.etag, Feed.last_modified)
        .execution_options(synchronize_session=False)
    )
    return [(r[0], r[1], r[2], r[3]) for r in taken]


def lease_feeds(
    session: Session, feed_ids: Sequence[int], now: datetime, owner: str, lease: float
) -> list[tuple[int, str, str | None, str | None]]:
    """Take the lease of these feeds, in one statement, for those nobody holds. Returns
    (id, url, etag, last_modified) of the feeds taken."""
    taken = session.execute(
        update(Feed)
        .where(Feed.id.in_(list(feed_ids)), Feed.enabled.is_(True), _free(now))
        .values(leased_until=now + timedelta(seconds=lease), lease_owner=owner)
        .returning(Feed.id, Feed.url, Feed.etag, Feed.last_modified)
        .execution_options(synchronize_session=False)
    )
    return [(r[0], r[1], r[2], r[3]) for r in taken]


def load_for_poll(session: Session, feed_id: int) -> Feed | None:
    """The feed a poll is about to record, in the transaction that records it. On PostgreSQL
    the same statement makes that transaction's COMMIT not wait for the WAL flush
    (`synchronous_commit` off for this transaction only, as SQLite's WAL with
    synchronous=NORMAL commits): a server crash can lose the last few hundred milliseconds of
    polls, never half of one, and a lost poll is polled again when its lease expires. The next
    ordinary commit (a delivery's claim, before anything is sent) flushes them first."""
    if not is_postgres(session):
        return session.get(Feed, feed_id)
    relaxed = func.set_config("synchronous_commit", "off", True)
    row = session.execute(select(Feed, relaxed).where(Feed.id == feed_id)).first()
    return None if row is None else row[0]


def record_fetch_ok(
    feed: Feed,
    result: FetchResult,
    now: datetime,
    next_check: datetime,
    title: str | None,
    new_items: int,
    bozo: str | None = None,
) -> None:
    feed.last_polled_at = now
    feed.http_status = result.status
    feed.last_status = "not-modified" if result.status == 304 else "ok"
    if result.status != 304:
        feed.etag = result.etag
        feed.last_modified = result.last_modified
        if title:
            feed.title = title[:500]
    elif result.etag:
        feed.etag = result.etag
    feed.error = None if not bozo else f"warning: {bozo}; entries still read"
    feed.error_kind = None
    feed.error_count = 0
    feed.items_seen = (feed.items_seen or 0) + new_items
    feed.next_check_at = next_check
    feed.leased_until = None
    feed.lease_owner = None


def record_fetch_error(
    feed: Feed,
    now: datetime,
    next_check: datetime,
    kind: str,
    message: str,
    http_status: int | None,
) -> None:
    feed.last_polled_at = now
    feed.http_status = http_status
    feed.last_status = "error"
    feed.error = message[:2000]
    feed.error_kind = kind[:40]
    feed.error_count = (feed.error_count or 0) + 1
    feed.next_check_at = next_check
    feed.leased_until = None
    feed.lease_owner = None


def release_leases(session: Session, owner: str) -> int:
    """Give back the leases this process holds (polls taken but not stored: an interrupted
    `monitor run`), so that the next run polls those feeds at once. Returns how many."""
    result = session.execute(
        update(Feed)
        .where(Feed.lease_owner == owner, Feed.leased_until.is_not(None))
        .values(leased_until=None, lease_owner=None)
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)


def leased_elsewhere(
    session: Session, now: datetime, owner: str
) -> list[tuple[str, str, datetime]]:
    """Enabled feeds whose lease another process holds now: (url, owner, until), soonest first.
    A poll skips them; `monitor run` says so when it starts."""
    rows = session.execute(
        select(Feed.url, Feed.lease_owner, Feed.leased_until)
        .where(
            Feed.enabled.is_(True),
            Feed.leased_until.is_not(None),
            Feed.leased_until >= now,
            or_(Feed.lease_owner.is_(None), Feed.lease_owner != owner),
        )
        .order_by(Feed.leased_until)
    )
    return [(url, who or "?", until) for url, who, until in rows if until is not None]
