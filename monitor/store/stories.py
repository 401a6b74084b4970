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

from sqlalchemy import ColumnElement, Select, bindparam, func, select, text
from sqlalchemy.orm import Session

from monitor.events import (
    DEFAULT,
    EventFeatures,
    EventIndex,
    Params,
    StoryName,
    StoryState,
    stored_features,
    story_name,
)
from monitor.store.common import is_postgres, table
from monitor.store.models import Item, ItemFeed, Match, Story
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
        # Oldest latest item first, so that the index's latest stories end with the newest.
        rows = sorted(rows, key=lambda r: _latest(r[2], r[1], r[6]))
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
            q = select(
                Item.story_id,
                Item.title,
                Item.summary,
                Item.published,
                Item.first_seen,
                Match.topics,
            ).outerjoin(Match, Match.item_id == Item.id)
            for story_id, title, summary, published, first_seen, topics in session.execute(
                q.where(Item.story_id.in_(chunk)).order_by(Item.id)
            ):
                if story_id is not None:
                    f = stored_features(
                        title,
                        summary,
                        published,
                        first_seen,
                        topics or (),
                        self.aliases,
                        self.params,
                    )
                    self.index.add(story_id, f)

    # --- deciding and writing --------------------------------------------------------------

    def features_of(
        self, item: ParsedItem, now: datetime, topics: Sequence[str] = ()
    ) -> EventFeatures:
        """`topics`: the profile's topics the item matched (its classification's), which let
        it join a story of the same kind of happening (`monitor.events.event_kinds`)."""
        return stored_features(
            item.title, item.summary, item.published, now, topics, self.aliases, self.params
        )


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


class _StoryIds:
    """Ids for the stories a batch opens, taken before their rows are written (the index needs
    each new story's id at once; the rows are written together at the end of the batch, with
    their final state). PostgreSQL: from the table's sequence, 1, 1, 2, 4… at a time, so a batch
    opening k stories costs about log2(k) round trips and wastes fewer than k ids. SQLite:
    after the largest id, under the writer lock the transaction holds."""

    def __init__(self, session: Session):
        self.session = session
        self.free: list[int] = []
        self.taken = 0
        self.last: int | None = None  # SQLite

    def next(self, remaining: int) -> int:
        if not self.free:
            n = max(1, min(remaining, self.taken or 1))
            if is_postgres(self.session):
                q = text(
                    "SELECT nextval(pg_get_serial_sequence('stories', 'id')) "
                    "FROM generate_series(1, :n)"
                )
                self.free = sorted(int(i) for i in self.session.scalars(q, {"n": n}))
            else:
                if self.last is None:
                    self.last = int(self.session.scalar(select(func.max(Story.id))) or 0)
                self.free = [self.last + 1 + i for i in range(n)]
                self.last += n
        self.taken += 1
        return self.free.pop(0)


def next_revision(session: Session) -> int:
    """The revision the stories a transaction creates or changes take (one above the highest:
    every process's index reloads the stories above the revision it last read). Under the
    assignment lock."""
    return int(session.scalar(select(func.coalesce(func.max(Story.revision), 0))) or 0) + 1


def next_story_id(session: Session) -> int:
    """An id for one new story, taken as a poll's batch takes them (in the caller's
    transaction, under the assignment lock)."""
    return _StoryIds(session).next(1)


def assign_stories(
    session: Session,
    cache: StoryCache,
    items: Sequence[tuple[int, ParsedItem, Classification]],
    now: datetime,
) -> list[Assigned]:
    """Give each (item row, item, classification) its story: join the event it reports
    or open a new one. Saves the stories' new state (new stories in one INSERT, grown ones in
    one UPDATE); the caller links items and matches."""
    if not items:
        return []
    lock_assignments(session)
    cache.refresh(session, now)
    rev = next_revision(session)
    ids = _StoryIds(session)
    opened: dict[int, StoryName] = {}
    out: list[Assigned] = []
    touched: dict[int, tuple[int, Classification]] = {}
    for n, (row, item, c) in enumerate(items):
        f = cache.features_of(item, now, c.topics)
        decision = cache.index.decide(f)
        if decision.story_id is None:
            sid = ids.next(remaining=len(items) - n)
            opened[sid] = story_name(item.title, item.summary)
            new = True
        else:
            sid = decision.story_id
            new = False
        cache.index.add(sid, f)
        cache.last_seen[sid] = now
        cache.dirty.add(sid)
        touched[row] = (sid, c)
        out.append(Assigned(row, sid, new))
    _save(session, cache, touched, opened, rev, now)
    return out


def _save(
    session: Session,
    cache: StoryCache,
    touched: Mapping[int, tuple[int, Classification]],
    opened: Mapping[int, StoryName],
    rev: int,
    now: datetime,
) -> None:
    """Counts, topics, score, times and features of the stories this batch changed: the
    stories it opened inserted in one statement, the ones it grew updated in one."""
    sids = {sid for sid, _ in touched.values()}
    grown = sids - opened.keys()
    current: dict[int, tuple[list[str], float | None, int]] = {sid: ([], None, 0) for sid in opened}
    if grown:
        current.update(
            (sid, (topics or [], score, count))
            for sid, topics, score, count in session.execute(
                select(Story.id, Story.topics, Story.score, Story.item_count).where(
                    Story.id.in_(grown)
                )
            )
        )
    # The feeds of each story: of this batch's items, and of the items grown stories had.
    feeds: dict[int, set[int]] = {sid: set() for sid in sids}
    rows_of_batch = list(touched)
    cond: ColumnElement[bool] = Item.id.in_(rows_of_batch)
    if grown:
        cond = cond | Item.story_id.in_(grown)
    for row, story_id, feed in session.execute(
        select(Item.id, Item.story_id, ItemFeed.feed_id)
        .join(ItemFeed, ItemFeed.item_id == Item.id)
        .where(cond)
    ):
        if row in touched:
            feeds[touched[row][0]].add(feed)
        elif story_id is not None:
            feeds[story_id].add(feed)
    added: dict[int, int] = {}
    topics: dict[int, set[str]] = {sid: set(current[sid][0]) for sid in sids}
    scores: dict[int, float | None] = {sid: current[sid][1] for sid in sids}
    for sid, c in touched.values():
        added[sid] = added.get(sid, 0) + 1
        topics[sid].update(c.topics)
        best = max((c.scores.get(t, 0.0) for t in c.topics), default=0.0)
        prev = scores[sid]
        scores[sid] = best if prev is None else max(prev, best)

    def state(sid: int) -> dict[str, Any]:
        story = cache.index.stories[sid]
        return dict(
            item_count=current[sid][2] + added[sid],
            source_count=len(feeds[sid]),
            topics=sorted(topics[sid]),
            score=scores[sid],
            event_time=story.first,
            last_event_time=story.last,
            last_seen=now,
            features=story.as_features(),
            revision=rev,
        )

    stories_t = table(Story)
    if opened:
        session.execute(
            stories_t.insert(),
            [
                dict(
                    id=sid,
                    title=new.title,
                    title_signature=new.title_signature,
                    body_signature=new.body_signature,
                    first_seen=now,
                    **state(sid),
                )
                for sid, new in opened.items()
            ],
        )
    if grown:
        states = {sid: state(sid) for sid in sorted(grown)}
        columns = next(iter(states.values())).keys()  # what state() sets, nothing else
        session.execute(
            stories_t.update()
            .where(stories_t.c.id == bindparam("sid"))
            .values({k: bindparam(f"new_{k}") for k in columns}),
            [dict(sid=sid, **{f"new_{k}": v for k, v in st.items()}) for sid, st in states.items()],
        )


def _latest(*times: object) -> datetime:
    """The first of a story row's times that is set (its latest item's, its first item's, when
    it was first seen), naive or aware alike, for ordering."""
    for t in times:
        if isinstance(t, datetime):
            return t.replace(tzinfo=None)
    return datetime.min
