"""Splitting an item off its story ("another event", from the web window): the item leaves the
story it was wrongly merged into and opens a story of its own, with its own alert.

Only loading and saving: what the two stories become is `monitor.splitting.plan_split` of the
story's items; who receives the new alert is the caller's (`monitor.deliver.route_new_alerts`,
in the same transaction, as a poll does). Both stories get a new `revision`, so every process's
event index reads them again (`monitor.store.stories.StoryCache.refresh`): the old story no
longer holds the split item's words, the new one is an ordinary story later items can join.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor.errors import InputError
from monitor.events import DEFAULT, Params, StoryName
from monitor.splitting import SplitItem, StoryTotals, plan_split
from monitor.store.matches import NewAlert
from monitor.store.models import Alert, Item, ItemFeed, Match, Story, StorySplit
from monitor.store.stories import lock_assignments, next_revision, next_story_id


@dataclass(frozen=True)
class Split:
    item_id: int
    from_story_id: int
    story_id: int  # the new story
    alert: NewAlert  # the new story's alert, to route


def split_item(
    session: Session,
    story_id: int,
    item_id: int,
    who: str,
    now: datetime,
    aliases: Mapping[str, str] | None = None,
    params: Params = DEFAULT,
) -> Split:
    """Move item `item_id` out of story `story_id` into a new story with its own alert, in the
    caller's transaction. Refused (InputError, nothing written) for an unknown story or item,
    an item of another story, or the story's last item (`plan_split`)."""
    # Locks in a poll's order: item rows first (a poll writes its items, then assigns), in
    # ascending id order as a poll takes them (`monitor.store.items.lock_rows`), then the
    # assignment lock. Taken the other way round, a poll refreshing one of these items while
    # it waits for the assignment lock was a deadlock (PostgreSQL; the row lock is a no-op on
    # SQLite, whose writer lock the transaction holds). FOR NO KEY UPDATE, as a poll's: the
    # share locks of rows being linked to these items (item_feeds, matches) do not wait.
    session.execute(
        select(Item.id)
        .where(Item.story_id == story_id)
        .order_by(Item.id)
        .with_for_update(key_share=True)
    ).all()
    lock_assignments(session)  # no poll assigns items to these stories meanwhile
    old = session.get(Story, story_id)
    if old is None:
        raise InputError(f"no story {story_id}")
    if session.scalar(select(Item.id).where(Item.id == item_id)) is None:
        raise InputError(f"no item {item_id}")
    items = _items(session, story_id)
    new_id = next_story_id(session) if any(r.id == item_id for r in items) else 0
    plan = plan_split(items, item_id, story_id, old.title, new_id, aliases, params)
    rev = next_revision(session)
    moved = plan.moved
    new = Story(id=new_id, first_seen=moved.first_seen, last_seen=now, revision=rev)
    _name(new, plan.new_name)
    _total(new, plan.new)
    session.add(new)
    old.revision = rev
    _total(old, plan.old)
    if plan.old_name is not None:
        _name(old, plan.old_name)
    session.flush()
    session.execute(update(Item).where(Item.id == item_id).values(story_id=new_id))
    session.execute(update(Match).where(Match.id == plan.moved_match).values(story_id=new_id))
    # The old story keeps its alert (and what it told); an alert made from the split item's
    # match now stands on the old story's first remaining match.
    session.execute(
        update(Alert)
        .where(Alert.story_id == story_id, Alert.match_id == plan.moved_match)
        .values(match_id=plan.old_alert_match)
    )
    alert = Alert(story_id=new_id, match_id=plan.moved_match, created_at=now)
    session.add(alert)
    session.add(
        StorySplit(
            item_id=item_id, from_story_id=story_id, story_id=new_id, who=who[:100], created_at=now
        )
    )
    session.flush()
    return Split(
        item_id,
        story_id,
        new_id,
        NewAlert(alert.id, new_id, moved.topics, dict(moved.scores)),
    )


def _name(story: Story, name: StoryName) -> None:
    story.title = name.title
    story.title_signature = name.title_signature
    story.body_signature = name.body_signature


def _total(story: Story, t: StoryTotals) -> None:
    story.item_count = t.item_count
    story.source_count = t.source_count
    story.topics = t.topics
    story.score = t.score
    story.event_time = t.event_time
    story.last_event_time = t.last_event_time
    story.features = t.features


def _items(session: Session, story_id: int) -> list[SplitItem]:
    """The story's items, first seen first, with their matches and feeds."""
    rows = session.execute(
        select(
            Item.id,
            Item.title,
            Item.summary,
            Item.published,
            Item.first_seen,
            Match.id.label("match_id"),
            Match.topics,
            Match.scores,
            Match.score,
        )
        .outerjoin(Match, Match.item_id == Item.id)
        .where(Item.story_id == story_id)
        .order_by(Item.first_seen, Item.id)
    ).all()
    feeds: dict[int, set[int]] = {}
    for iid, feed in session.execute(
        select(ItemFeed.item_id, ItemFeed.feed_id).where(ItemFeed.item_id.in_([r.id for r in rows]))
    ):
        feeds.setdefault(iid, set()).add(feed)
    return [
        SplitItem(
            id=r.id,
            title=r.title,
            summary=r.summary or "",
            published=r.published,
            first_seen=r.first_seen,
            match_id=r.match_id,
            topics=tuple(r.topics or ()),
            scores=dict(r.scores or {}),
            score=r.score,
            feeds=frozenset(feeds.get(r.id, ())),
        )
        for r in rows
    ]
