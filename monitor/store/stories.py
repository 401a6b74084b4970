"""Stories: loading the recent ones into a process's event index, and saving what it decided.

The decision (same event or not) is `monitor.events`; this module only reads and writes. A
`StoryCache` lives as long as its process: the first batch loads the window (stories an item
joined in the last `STORY_WINDOW`), later batches read only the stories whose `revision`
changed since (created or grown by this process or by any other worker). On PostgreSQL an
advisory transaction lock makes assignments one batch at a time across workers, and SQLite's
writer lock (BEGIN IMMEDIATE) does the same, so a batch sees every story committed before it
and two workers never open two stories for one event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, func, select, text
from sqlalchemy.orm import Session

from monitor.events import DEFAULT, EventFeatures, EventIndex, Params, StoryState, features
from monitor.store.common import is_postgres, table
from monitor.store.models import Item, ItemFeed, Story
from monitor.text import signature
from monitor.types import Classification
from monitor.types import Item as ParsedItem

log = logging.getLogger(__name__)

STORY_WINDOW = timedelta(days=3)  # a story stays open this long after its last item joined
_STORY_LOCK = 7_246_002  # PostgreSQL advisory lock: one story assignment at a time
_EVICT_EVERY = timedelta(minutes=1)


@dataclass
class StoryCache:
    """A process's event index and what it knows of the database behind it."""

    params: Params = DEFAULT
    aliases: Mapping[str, str] = field(default_factory=dict)
    window: timedelta = STORY_WINDOW
    index: EventIndex = field(init=False)
    last_seen: dict[int, datetime] = field(default_factory=dict)
    revision: int = -1  # highest revision read; -1: nothing loaded yet
    database: str | None = None
    dirty: set[int] = field(default_factory=set)  # changed by a transaction not known committed
    evicted_at: datetime | None = None

    def __post_init__(self) -> None:
        self.index = EventIndex(self.params)

    def reset(self) -> None:
        self.index = EventIndex(self.params)
        self.last_seen.clear()
        self.dirty.clear()
        self.revision = -1

    # --- reading ---------------------------------------------------------------------------

    def refresh(self, session: Session, now: datetime) -> None:
        """Bring the index up to date with the database (call under the assignment lock)."""
        url = session.get_bind().engine.url.render_as_string(hide_password=True)
        if url != self.database:
            self.reset()
            self.database = url
        if self.revision < 0:
            rows = session.execute(_story_columns().where(Story.last_seen >= now - self.window))
        else:
            cond = Story.revision > self.revision
            if self.dirty:
                cond = cond | Story.id.in_(self.dirty)
            rows = session.execute(_story_columns().where(cond))
        found = self._load(session, list(rows))
        for sid in self.dirty - found:  # written by a transaction that rolled back
            self.index.remove(sid)
            self.last_seen.pop(sid, None)
        self.dirty.clear()
        self.revision = max(self.revision, 0)
        if self.evicted_at is None or now - self.evicted_at >= _EVICT_EVERY:
            self.evicted_at = now
            horizon = now - self.window
            for sid in [s for s, seen in self.last_seen.items() if seen < horizon]:
                self.index.remove(sid)
                del self.last_seen[sid]

    def _load(self, session: Session, rows: list[Sequence[object]]) -> set[int]:
        found: set[int] = set()
        missing: list[int] = []
        for sid, first, last, seen, feats, rev, first_seen in rows:
            assert isinstance(sid, int) and isinstance(rev, int)
            found.add(sid)
            self.revision = max(self.revision, rev)
            start = first if isinstance(first, datetime) else first_seen
            end = last if isinstance(last, datetime) else start
            assert isinstance(start, datetime) and isinstance(end, datetime)
            self.last_seen[sid] = seen if isinstance(seen, datetime) else start
            if isinstance(feats, dict) and feats.get("terms"):
                self.index.put(StoryState.from_features(sid, start, end, feats))
            else:
                missing.append(sid)
        if missing:  # stories from before migration 0003: features from their items
            self._from_items(session, missing)
        return found

    def _from_items(self, session: Session, story_ids: list[int]) -> None:
        for start in range(0, len(story_ids), 500):
            chunk = story_ids[start : start + 500]
            for sid in chunk:
                self.index.remove(sid)
            q = select(Item.story_id, Item.title, Item.summary, Item.published, Item.first_seen)
            for story_id, title, summary, published, first_seen in session.execute(
                q.where(Item.story_id.in_(chunk)).order_by(Item.id)
            ):
                if story_id is not None:
                    when = published or first_seen
                    dated = published is not None
                    f = features(title, summary, when, self.aliases, self.params, dated=dated)
                    self.index.add(story_id, f)

    # --- deciding and writing --------------------------------------------------------------

    def features_of(self, item: ParsedItem, now: datetime) -> EventFeatures:
        when = item.published or now
        dated = item.published is not None
        return features(item.title, item.summary, when, self.aliases, self.params, dated=dated)


def _story_columns() -> Select[
    tuple[
        int, datetime | None, datetime | None, datetime | None, dict[str, Any] | None, int, datetime
    ]
]:
    return select(
        Story.id,
        Story.event_time,
        Story.last_event_time,
        Story.last_seen,
        Story.features,
        Story.revision,
        Story.first_seen,
    )


def lock_assignments(session: Session) -> None:
    """One story assignment at a time across workers (PostgreSQL; SQLite's writer lock is
    already held by the transaction)."""
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _STORY_LOCK})


@dataclass(frozen=True)
class Assigned:
    row: int  # item row id
    story_id: int
    new_story: bool


def assign_stories(
    session: Session,
    cache: StoryCache,
    items: Sequence[tuple[int, ParsedItem, Classification]],
    now: datetime,
) -> list[Assigned]:
    """Give each (item row, item, classification) its story: join the event it reports
    or open a new one. Saves the stories' new state; the caller links items and matches."""
    if not items:
        return []
    lock_assignments(session)
    cache.refresh(session, now)
    rev = int(session.scalar(select(func.coalesce(func.max(Story.revision), 0))) or 0) + 1
    stories_t = table(Story)
    out: list[Assigned] = []
    touched: dict[int, tuple[int, Classification]] = {}
    for row, item, c in items:
        f = cache.features_of(item, now)
        decision = cache.index.decide(f)
        if decision.story_id is None:
            sid = int(
                session.execute(
                    stories_t.insert().returning(stories_t.c.id),
                    dict(
                        title=item.title[:500],
                        title_signature=" ".join(sorted(signature(item.title))),
                        body_signature=" ".join(sorted(signature(item.summary[:600]))),
                        first_seen=now,
                        event_time=f.time,
                        last_event_time=f.time,
                        last_seen=now,
                        item_count=0,
                        source_count=0,
                        topics=[],
                        score=None,
                        features=None,
                        revision=rev,
                    ),
                ).scalar_one()
            )
            new = True
        else:
            sid = decision.story_id
            new = False
        cache.index.add(sid, f)
        cache.last_seen[sid] = now
        cache.dirty.add(sid)
        touched[row] = (sid, c)
        out.append(Assigned(row, sid, new))
    _save(session, cache, touched, rev, now)
    return out


def _save(
    session: Session,
    cache: StoryCache,
    touched: Mapping[int, tuple[int, Classification]],
    rev: int,
    now: datetime,
) -> None:
    """Counts, topics, score, times and features of the stories this batch changed."""
    sids = {sid for sid, _ in touched.values()}
    current = {
        sid: (topics or [], score, count)
        for sid, topics, score, count in session.execute(
            select(Story.id, Story.topics, Story.score, Story.item_count).where(Story.id.in_(sids))
        )
    }
    # Feeds already in each story (items assigned before this batch) and this batch's.
    feeds: dict[int, set[int]] = {sid: set() for sid in sids}
    rows_of_batch = list(touched)
    for sid, feed in session.execute(
        select(Item.story_id, ItemFeed.feed_id)
        .join(ItemFeed, ItemFeed.item_id == Item.id)
        .where(Item.story_id.in_(sids), Item.id.not_in(rows_of_batch))
    ):
        if sid is not None:
            feeds[sid].add(feed)
    for sid, feed in session.execute(
        select(Item.id, ItemFeed.feed_id)
        .join(ItemFeed, ItemFeed.item_id == Item.id)
        .where(Item.id.in_(rows_of_batch))
    ):
        feeds[touched[sid][0]].add(feed)
    added: dict[int, int] = {}
    topics: dict[int, set[str]] = {sid: set(current[sid][0]) for sid in sids}
    scores: dict[int, float | None] = {sid: current[sid][1] for sid in sids}
    for sid, c in touched.values():
        added[sid] = added.get(sid, 0) + 1
        topics[sid].update(c.topics)
        best = max((c.scores.get(t, 0.0) for t in c.topics), default=0.0)
        prev = scores[sid]
        scores[sid] = best if prev is None else max(prev, best)
    stories_t = table(Story)
    session.execute(
        stories_t.update()
        .where(stories_t.c.id == bindparam("sid"))
        .values(
            item_count=bindparam("items"),
            source_count=bindparam("sources"),
            topics=bindparam("topics"),
            score=bindparam("score"),
            event_time=bindparam("first"),
            last_event_time=bindparam("last"),
            last_seen=bindparam("seen"),
            features=bindparam("features"),
            revision=bindparam("rev"),
        ),
        [
            dict(
                sid=sid,
                items=current[sid][2] + added[sid],
                sources=len(feeds[sid]),
                topics=sorted(topics[sid]),
                score=scores[sid],
                first=cache.index.stories[sid].first,
                last=cache.index.stories[sid].last,
                seen=now,
                features=cache.index.stories[sid].as_features(),
                rev=rev,
            )
            for sid in sids
        ],
    )
