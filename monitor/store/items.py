"""Items: stored once (same key or same link, whatever the feed), linked to every feed that
carried them, updated when their title is edited."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from monitor.store.common import insert_for, is_postgres, table
from monitor.store.models import Item, ItemFeed
from monitor.types import Item as ParsedItem

# How often an item's last_seen_at is refreshed while feeds keep carrying it (one write a day,
# not one per poll).
SEEN_REFRESH = timedelta(days=1)


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
    ins = insert_for(session)
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
        items_t = table(Item)
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
                pruned_at=None,
                last_seen_at=now,
            )
            for it in fresh
        ]
        for row_id, key in session.execute(stmt, rows):
            inserted[key] = row_id
        if len(inserted) < len(fresh):  # another worker stored some of them first
            known = _existing(session, keys, list(links))
    out: list[StoredItem] = []
    stale: list[int] = []
    edits: dict[int, ParsedItem] = {}
    for it in batch:
        if it.key in inserted:
            out.append(StoredItem(inserted[it.key], it, new=True, edited=False))
            continue
        row = _lookup(known, it)
        if row is None:
            continue
        if row.last_seen_at is None or row.last_seen_at < now - SEEN_REFRESH:
            stale.append(row.id)
        row_id, title = row.id, row.title
        # A new title is an edit of the same story (feeds fix typos, add « EN DIRECT »…).
        # An item whose text was pruned is only remembered: it is never new, nor edited.
        edited = bool(it.title) and title != it.title and row.pruned_at is None
        if edited:
            edits[row_id] = it  # the feed's last entry for a row wins, as it always did
        out.append(StoredItem(row_id, it, new=False, edited=edited))
    lock_rows(session, set(edits) | set(stale))
    for row_id in sorted(edits):
        it = edits[row_id]
        session.execute(
            update(Item)
            .where(Item.id == row_id)
            .values(title=it.title, summary=it.summary, content=it.content, updated_at=now)
        )
    if stale:  # still in a feed: remembered for as long as a feed carries it
        session.execute(
            update(Item)
            .where(Item.id.in_(stale))
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
    if out:  # in item order too: each link's foreign key check takes its item's row (share)
        session.execute(
            ins(table(ItemFeed)).on_conflict_do_nothing(),
            [
                dict(item_id=row_id, feed_id=feed_id, first_seen=now)
                for row_id in sorted({s.row_id for s in out})
            ],
        )
    return out


def lock_rows(session: Session, ids: Collection[int]) -> None:
    """Lock these existing item rows for writing, in ascending id order: the one order every
    writer of existing items takes them in (a poll refreshing items here, a split taking its
    story's items, `monitor.store.split`), and before the assignment lock, so two writers
    never hold each a row the other waits for. Without it a poll updated them in its feed's
    order: a split holding the earlier of two items and waiting for the later one, which the
    poll held while waiting for the earlier, was a deadlock (PostgreSQL aborted one). FOR NO KEY
    UPDATE, what an UPDATE of non-key columns takes: it does not block the share locks that
    inserting rows which refer to an item take (its item_feeds, its match). One row needs no
    statement of its own (its UPDATE locks it); SQLite's writer lock already serialises."""
    if len(ids) < 2 or not is_postgres(session):
        return
    session.execute(
        select(Item.id)
        .where(Item.id.in_(sorted(ids)))
        .order_by(Item.id)
        .with_for_update(key_share=True)
    ).all()


class KnownItem(NamedTuple):
    id: int
    title: str
    pruned_at: datetime | None
    last_seen_at: datetime | None


def _existing(session: Session, keys: list[str], links: list[str]) -> dict[str, KnownItem]:
    cond: ColumnElement[bool] = Item.key.in_(keys)
    if links:
        cond = or_(cond, Item.link.in_(links))
    found: dict[str, KnownItem] = {}
    for row_id, key, link, title, pruned_at, last_seen_at in session.execute(
        select(Item.id, Item.key, Item.link, Item.title, Item.pruned_at, Item.last_seen_at).where(
            cond
        )
    ):
        known = KnownItem(row_id, title, pruned_at, last_seen_at)
        found[f"k:{key}"] = known
        if link:
            found[f"l:{link}"] = known
    return found


def _lookup(known: dict[str, KnownItem], it: ParsedItem) -> KnownItem | None:
    return known.get(f"k:{it.key}") or (known.get(f"l:{it.link}") if it.link else None)
