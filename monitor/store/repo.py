"""Queries: feeds and their schedule, items (stored once), stories, matches, the outbox."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from monitor.store.models import (
    Alert,
    Delivery,
    Feed,
    Item,
    ItemFeed,
    Match,
    MatchTopic,
    Story,
)
from monitor.text import jaccard, signature
from monitor.types import Classification, FeedConfig, FetchResult, Target
from monitor.types import Item as ParsedItem

STORY_WINDOW = timedelta(days=3)  # near-identical stories are looked for this far back
TITLE_SIMILAR = 0.7
BODY_SIMILAR = 0.6
MAX_BACKOFF = 6 * 3600.0
_STORY_LOCK = 7_246_002  # PostgreSQL advisory lock: one story assignment at a time


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _table(model: type[Any]) -> Table:
    """A mapped class's Core table (for executemany statements, cached once compiled)."""
    return cast(Table, model.__table__)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- feeds ----------------------------------------------------------------------------------


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
    session.flush()
    return {"added": added, "updated": updated, "disabled": disabled}


def _select_due_feeds(
    session: Session, now: datetime, limit: int | None, everything: bool = False
) -> list[Feed]:
    """Enabled feeds nobody holds, due now (or all of them), oldest check first; rows another
    transaction has locked are skipped on PostgreSQL."""
    q = (
        select(Feed)
        .where(
            Feed.enabled.is_(True),
            or_(Feed.leased_until.is_(None), Feed.leased_until < now),
        )
        .order_by(Feed.next_check_at)
    )
    if not everything:
        q = q.where(or_(Feed.next_check_at.is_(None), Feed.next_check_at <= now))
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


def take_due_feed_ids(session: Session, now: datetime, hold: float, limit: int) -> list[int]:
    """Due feed ids, their next check pushed `hold` seconds ahead (not enqueued twice)."""
    feeds = _select_due_feeds(session, now, limit)
    for f in feeds:
        f.next_check_at = now + timedelta(seconds=hold)
    session.flush()
    return [f.id for f in feeds]


def lease_feed(session: Session, feed_id: int, now: datetime, owner: str, lease: float) -> bool:
    """Take one feed's lease if nobody holds it (a per-feed lock across workers)."""
    result = session.execute(
        update(Feed)
        .where(Feed.id == feed_id, or_(Feed.leased_until.is_(None), Feed.leased_until < now))
        .values(leased_until=now + timedelta(seconds=lease), lease_owner=owner)
        .execution_options(synchronize_session=False)
    )
    return bool(cast(CursorResult[Any], result).rowcount)


def backoff_seconds(interval: int, errors: int, retry_after: float | None) -> float:
    base = min(interval * 2 ** max(errors - 1, 0), MAX_BACKOFF)
    base = max(base, float(interval))
    wait = float(base) * random.uniform(0.9, 1.1)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return wait


def record_fetch_ok(
    feed: Feed,
    result: FetchResult,
    now: datetime,
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
    feed.error = None if not bozo else f"warning: malformed XML, entries still read ({bozo})"
    feed.error_kind = None
    feed.error_count = 0
    feed.items_seen = (feed.items_seen or 0) + new_items
    jitter = feed.interval * random.uniform(-0.05, 0.05)
    feed.next_check_at = now + timedelta(seconds=feed.interval + jitter)
    feed.leased_until = None
    feed.lease_owner = None


def record_fetch_error(
    feed: Feed,
    now: datetime,
    kind: str,
    message: str,
    http_status: int | None,
    retry_after: float | None,
) -> None:
    feed.last_polled_at = now
    feed.http_status = http_status
    feed.last_status = "error"
    feed.error = message[:2000]
    feed.error_kind = kind[:40]
    feed.error_count = (feed.error_count or 0) + 1
    wait = backoff_seconds(feed.interval, feed.error_count, retry_after)
    feed.next_check_at = now + timedelta(seconds=wait)
    feed.leased_until = None
    feed.lease_owner = None


# --- items ----------------------------------------------------------------------------------


@dataclass
class StoredItem:
    row_id: int
    item: ParsedItem
    new: bool
    edited: bool


def store_items(
    session: Session, feed_id: int, items: Sequence[ParsedItem], now: datetime
) -> list[StoredItem]:
    """Insert what is new (same key or same link = same item, whatever the feed), link every
    item to this feed, and update items whose text was edited. Safe under concurrency: the
    unique constraints decide, ON CONFLICT DO NOTHING absorbs the race."""
    if not items:
        return []
    ins = _insert(session)
    # Two items of this batch could share a link under different keys: the first wins.
    batch: list[ParsedItem] = []
    links: set[str] = set()
    for it in items:
        if it.link and it.link in links:
            continue
        if it.link:
            links.add(it.link)
        batch.append(it)
    keys = [it.key for it in batch]
    known = _existing(session, keys, list(links))
    fresh = [it for it in batch if _lookup(known, it) is None]
    inserted: dict[str, int] = {}
    if fresh:
        items_t = _table(Item)
        stmt = ins(items_t).on_conflict_do_nothing().returning(items_t.c.id, items_t.c.key)
        rows = [
            dict(
                key=it.key,
                link=it.link,
                guid=it.guid,
                title=it.title,
                summary=it.summary,
                content=it.content,
                author=it.author,
                published=it.published,
                first_seen=now,
                feed_id=feed_id,
                story_id=None,
                updated_at=None,
            )
            for it in fresh
        ]
        for row_id, key in session.execute(stmt, rows):
            inserted[key] = row_id
        if len(inserted) < len(fresh):  # another worker stored some of them first
            known = _existing(session, keys, list(links))
    out: list[StoredItem] = []
    for it in batch:
        if it.key in inserted:
            out.append(StoredItem(inserted[it.key], it, new=True, edited=False))
            continue
        row = _lookup(known, it)
        if row is None:
            continue
        row_id, title, _summary = row
        # A new title is an edit of the same story (feeds fix typos, add « EN DIRECT »…).
        edited = bool(it.title) and title != it.title
        if edited:
            session.execute(
                update(Item)
                .where(Item.id == row_id)
                .values(title=it.title, summary=it.summary, content=it.content, updated_at=now)
            )
        out.append(StoredItem(row_id, it, new=False, edited=edited))
    if out:
        session.execute(
            ins(_table(ItemFeed)).on_conflict_do_nothing(),
            [dict(item_id=s.row_id, feed_id=feed_id, first_seen=now) for s in out],
        )
    return out


def _existing(
    session: Session, keys: list[str], links: list[str]
) -> dict[str, tuple[int, str, str]]:
    cond: ColumnElement[bool] = Item.key.in_(keys)
    if links:
        cond = or_(cond, Item.link.in_(links))
    found: dict[str, tuple[int, str, str]] = {}
    for row_id, key, link, title, summary in session.execute(
        select(Item.id, Item.key, Item.link, Item.title, Item.summary).where(cond)
    ):
        found[f"k:{key}"] = (row_id, title, summary)
        if link:
            found[f"l:{link}"] = (row_id, title, summary)
    return found


def _lookup(known: dict[str, tuple[int, str, str]], it: ParsedItem) -> tuple[int, str, str] | None:
    return known.get(f"k:{it.key}") or (known.get(f"l:{it.link}") if it.link else None)


# --- stories, matches, alerts --------------------------------------------------------------


class StoryIndex:
    """The recent stories, read once per batch: an item joins a recent one with near-identical
    text, or starts a new one. On PostgreSQL an advisory lock held to the end of the
    transaction makes assignments one at a time across workers."""

    def __init__(self, session: Session, now: datetime):
        if is_postgres(session):
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _STORY_LOCK})
        self.session = session
        self.now = now
        self.stories: list[tuple[int, frozenset[str], frozenset[str]]] = [
            (int(sid), frozenset(ts.split()), frozenset(bs.split()))
            for sid, ts, bs in session.execute(
                select(Story.id, Story.title_signature, Story.body_signature).where(
                    Story.first_seen >= now - STORY_WINDOW
                )
            )
        ]

    def story_for(self, item: ParsedItem) -> int:
        tsig = signature(item.title)
        bsig = signature(item.summary[:600])
        for sid, ts, bs in self.stories:
            t_sim = jaccard(tsig, ts)
            if (len(tsig) >= 4 and t_sim >= TITLE_SIMILAR) or (
                t_sim >= 0.4 and jaccard(bsig, bs) >= BODY_SIMILAR
            ):
                return sid
        stories_t = _table(Story)
        sid = self.session.execute(
            stories_t.insert().returning(stories_t.c.id),
            dict(
                title=item.title[:500],
                title_signature=" ".join(sorted(tsig)),
                body_signature=" ".join(sorted(bsig)),
                first_seen=self.now,
            ),
        ).scalar_one()
        self.stories.append((int(sid), tsig, bsig))
        return int(sid)


def record_match(
    session: Session,
    item_row: int,
    item: ParsedItem,
    c: Classification,
    now: datetime,
    targets: Sequence[Target],
) -> tuple[int | None, int | None]:
    """Store a match and, for a story not alerted yet, its alert and outbox rows.
    Returns (match id, alert id or None)."""
    return record_matches(session, [(item_row, item, c)], now, targets)[0]


def record_matches(
    session: Session,
    matched: Sequence[tuple[int, ParsedItem, Classification]],
    now: datetime,
    targets: Sequence[Target],
) -> list[tuple[int | None, int | None]]:
    """Store the matches of one poll in a few statements: each item gets its story, each
    story not alerted yet gets one alert (the unique constraint on alerts.story_id decides
    between workers) and its outbox rows. Returns (match id, alert id or None) per input."""
    if not matched:
        return []
    rows = [row for row, _, _ in matched]
    known = set(session.scalars(select(Match.item_id).where(Match.item_id.in_(rows))))
    stories: dict[int, int | None] = {
        iid: sid
        for iid, sid in session.execute(select(Item.id, Item.story_id).where(Item.id.in_(rows)))
    }
    index: StoryIndex | None = None
    todo: list[tuple[int, ParsedItem, Classification, int]] = []
    assigned: list[dict[str, int]] = []
    seen: set[int] = set()
    for row, item, c in matched:
        if row in known or row in seen:
            continue  # an edited item that matched before: its story has what it needs
        seen.add(row)
        story_id = stories.get(row)
        if story_id is None:
            index = index or StoryIndex(session, now)
            story_id = index.story_for(item)
            stories[row] = story_id
            assigned.append({"row": row, "story": story_id})
        todo.append((row, item, c, story_id))
    if assigned:
        items_t = _table(Item)
        session.execute(
            items_t.update()
            .where(items_t.c.id == bindparam("row"))
            .values(story_id=bindparam("story")),
            assigned,
        )
    if not todo:
        return [(None, None)] * len(matched)
    matches_t = _table(Match)
    inserted = session.execute(
        matches_t.insert().returning(matches_t.c.item_id, matches_t.c.id),
        [
            dict(
                item_id=row,
                story_id=story_id,
                topics=list(c.topics),
                scores=dict(c.scores),
                evidence=[e.as_dict() for e in c.evidence],
                explanation=c.explain(),
                score=max((c.scores.get(t, 0.0) for t in c.topics), default=0.0),
                created_at=now,
            )
            for row, _, c, story_id in todo
        ],
    )
    match_ids: dict[int, int] = {item_id: mid for item_id, mid in inserted}
    session.execute(
        _table(MatchTopic).insert(),
        [
            dict(match_id=match_ids[row], topic=t, created_at=now)
            for row, _, c, _ in todo
            for t in c.topics
        ],
    )
    from monitor.notify import route

    ins = _insert(session)
    alerted = set(
        session.scalars(select(Alert.story_id).where(Alert.story_id.in_({sid for *_, sid in todo})))
    )
    alerts: dict[int, int] = {}
    outbox: list[dict[str, Any]] = []
    for row, _, c, story_id in todo:
        if story_id in alerted:
            continue
        alerted.add(story_id)
        alert_id = session.scalar(
            ins(Alert)
            .values(story_id=story_id, match_id=match_ids[row], created_at=now)
            .on_conflict_do_nothing()
            .returning(Alert.id)
        )
        if alert_id is None:
            continue  # another worker alerted this story first
        alerts[row] = alert_id
        outbox.extend(
            dict(
                alert_id=alert_id,
                target=t.key,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                claimed_until=None,
                last_error=None,
                sent_at=None,
                created_at=now,
            )
            for t in route(c.topics, targets)
        )
    if outbox:
        session.execute(ins(_table(Delivery)).on_conflict_do_nothing(), outbox)
    return [(match_ids.get(row), alerts.get(row)) for row, _, _ in matched]


# --- the outbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DueDelivery:
    id: int
    target: str
    alert_id: int
    created_at: datetime
    attempts: int
    title: str
    link: str | None
    summary: str
    published: datetime | None
    topics: list[str]
    scores: dict[str, float]
    explanation: str
    feeds: list[str]


def claim_deliveries(
    session: Session,
    now: datetime,
    limit: int,
    claim_seconds: float,
    alert_ids: Sequence[int] | None = None,
) -> list[DueDelivery]:
    """Take due outbox rows for this process (SKIP LOCKED on PostgreSQL) and mark them claimed,
    so that no other worker sends them while we do."""
    q = (
        select(Delivery.id)
        .where(
            Delivery.status == "pending",
            Delivery.next_attempt_at <= now,
            or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    if alert_ids is not None:
        q = q.where(Delivery.alert_id.in_(list(alert_ids)))
    if is_postgres(session):
        q = q.with_for_update(skip_locked=True)
    ids = list(session.scalars(q))
    if not ids:
        return []
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids))
        .values(claimed_until=now + timedelta(seconds=claim_seconds))
        .execution_options(synchronize_session=False)
    )
    out = []
    for d in session.scalars(select(Delivery).where(Delivery.id.in_(ids))):
        m = d.alert.match
        it = m.item
        feeds = [f.feed.name or f.feed.title or f.feed.url for f in it.feeds]
        out.append(
            DueDelivery(
                id=d.id,
                target=d.target,
                alert_id=d.alert_id,
                created_at=d.created_at,
                attempts=d.attempts,
                title=it.title,
                link=it.link,
                summary=it.summary,
                published=it.published,
                topics=list(m.topics),
                scores=dict(m.scores),
                explanation=m.explanation,
                feeds=feeds,
            )
        )
    return out


def mark_sent(session: Session, delivery_id: int, now: datetime) -> None:
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(
            status="sent",
            sent_at=now,
            attempts=Delivery.attempts + 1,
            claimed_until=None,
            last_error=None,
        )
    )


def mark_failed(
    session: Session, delivery_id: int, error: str, retry_at: datetime, dead: bool
) -> None:
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "pending")
        .values(
            status="dead" if dead else "pending",
            attempts=Delivery.attempts + 1,
            last_error=error[:2000],
            next_attempt_at=retry_at,
            claimed_until=None,
        )
    )


def next_delivery_due(session: Session) -> datetime | None:
    return session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(Delivery.status == "pending")
    )


def outbox_counts(session: Session) -> dict[str, int]:
    return {
        str(s): int(n)
        for s, n in session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
    }
