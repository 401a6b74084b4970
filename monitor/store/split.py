"""Splitting an item off its story ("another event", from the web window): the item leaves the
story it was wrongly merged into and opens a story of its own, with its own alert.

Only saving: the new story's and the old story's states are `monitor.events.story_of` of their
items; who receives the new alert is the caller's (`monitor.deliver.route_new_alerts`, in the
same transaction, as a poll does). Both stories get a new `revision`, so every process's event
index reads them again (`monitor.store.stories.StoryCache.refresh`): the old story no longer
holds the split item's words, the new one is an ordinary story later items can join.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from monitor.errors import InputError
from monitor.events import DEFAULT, Params, features, story_of
from monitor.store.matches import NewAlert
from monitor.store.models import Alert, Item, ItemFeed, Match, Story, StorySplit
from monitor.store.stories import _StoryIds, lock_assignments
from monitor.text import signature


@dataclass(frozen=True)
class Split:
    item_id: int
    from_story_id: int
    story_id: int  # the new story
    alert: NewAlert  # the new story's alert, to route


@dataclass(frozen=True)
class _Row:
    id: int
    title: str
    summary: str
    published: datetime | None
    first_seen: datetime
    match_id: int | None
    topics: list[str]
    scores: dict[str, float]
    score: float | None


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
    an item of another story, or the story's last item."""
    lock_assignments(session)  # no poll assigns items to these stories meanwhile
    title = session.scalar(select(Story.title).where(Story.id == story_id))
    if title is None:
        raise InputError(f"no story {story_id}")
    owner = session.execute(select(Item.story_id).where(Item.id == item_id)).first()
    if owner is None:
        raise InputError(f"no item {item_id}")
    if owner[0] != story_id:
        raise InputError(f"item {item_id} is not a source of story {story_id}")
    rows = [
        _Row(
            r.id,
            r.title,
            r.summary or "",
            r.published,
            r.first_seen,
            r.match_id,
            list(r.topics or []),
            dict(r.scores or {}),
            r.score,
        )
        for r in session.execute(
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
        )
    ]
    if len(rows) < 2:
        raise InputError(f"item {item_id} is the only source of story {story_id}: nothing to split")
    (moved,) = [r for r in rows if r.id == item_id]
    if moved.match_id is None:
        raise InputError(f"item {item_id} did not match the profile: it cannot open a story")
    kept = [r for r in rows if r.id != item_id]

    def feats(r: _Row) -> Any:
        when = r.published or r.first_seen
        return features(
            r.title,
            r.summary,
            when,
            aliases,
            params,
            dated=r.published is not None,
            topics=r.topics,
        )

    new_id = _StoryIds(session).next(1)
    new_state = story_of(new_id, [feats(moved)], params)
    old_state = story_of(story_id, [feats(r) for r in kept], params)
    rev = int(session.scalar(select(func.coalesce(func.max(Story.revision), 0))) or 0) + 1
    feeds: dict[int, set[int]] = {}
    for iid, feed in session.execute(
        select(ItemFeed.item_id, ItemFeed.feed_id).where(ItemFeed.item_id.in_([r.id for r in rows]))
    ):
        feeds.setdefault(iid, set()).add(feed)
    session.add(
        Story(
            id=new_id,
            title=moved.title[:500],
            title_signature=" ".join(sorted(signature(moved.title))),
            body_signature=" ".join(sorted(signature(moved.summary[:600]))),
            first_seen=moved.first_seen,
            event_time=new_state.first,
            last_event_time=new_state.last,
            last_seen=now,
            item_count=1,
            source_count=len(feeds.get(item_id, ())),
            topics=sorted(moved.topics),
            score=moved.score,
            features=new_state.as_features(),
            revision=rev,
        )
    )
    session.flush()
    old: dict[str, Any] = dict(
        item_count=len(kept),
        source_count=len(set().union(*(feeds.get(r.id, set()) for r in kept))),
        topics=sorted({t for r in kept for t in r.topics}),
        score=max((r.score for r in kept if r.score is not None), default=None),
        event_time=old_state.first,
        last_event_time=old_state.last,
        features=old_state.as_features(),
        revision=rev,
    )
    if title == moved.title[:500]:  # the story was named after the item: name it after the next
        first = kept[0]
        old.update(
            title=first.title[:500],
            title_signature=" ".join(sorted(signature(first.title))),
            body_signature=" ".join(sorted(signature(first.summary[:600]))),
        )
    session.execute(update(Story).where(Story.id == story_id).values(**old))
    session.execute(update(Item).where(Item.id == item_id).values(story_id=new_id))
    session.execute(update(Match).where(Match.id == moved.match_id).values(story_id=new_id))
    # The old story keeps its alert (and what it told); an alert made from the split item's
    # match now stands on the old story's first remaining match.
    remaining = next((r.match_id for r in kept if r.match_id is not None), None)
    if remaining is not None:
        session.execute(
            update(Alert)
            .where(Alert.story_id == story_id, Alert.match_id == moved.match_id)
            .values(match_id=remaining)
        )
    alert = Alert(story_id=new_id, match_id=moved.match_id, created_at=now)
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
        NewAlert(alert.id, new_id, tuple(moved.topics), dict(moved.scores)),
    )
