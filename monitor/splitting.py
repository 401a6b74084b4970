"""Splitting an item off its story ("another event"): what the two stories become.

Pure: from the story's stored items (`SplitItem`, first seen first), the plan says what the new
story is (the item alone), what the old story keeps (its other items' counts, feeds, topics,
best score, times and event features), whether the old story takes a new name (it was named
after the item: its opener, or an item whose title it still carries) and which match the old
story's alert stands on if it was made from the item's match. `monitor.store.split` loads the
rows and writes the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.errors import InputError
from monitor.events import DEFAULT, Params, StoryName, stored_features, story_name, story_of


@dataclass(frozen=True)
class SplitItem:
    """One item of the story, as stored, with its match (None: it matched no topic)."""

    id: int
    title: str
    summary: str
    published: datetime | None
    first_seen: datetime
    match_id: int | None
    topics: tuple[str, ...]
    scores: Mapping[str, float]
    score: float | None
    feeds: frozenset[int]


@dataclass(frozen=True)
class StoryTotals:
    """A story's columns made from its items."""

    item_count: int
    source_count: int
    topics: list[str]
    score: float | None
    event_time: datetime
    last_event_time: datetime
    features: dict[str, object]


@dataclass(frozen=True)
class SplitPlan:
    moved: SplitItem
    moved_match: int  # the moved item's match: the new story's alert stands on it
    new_name: StoryName
    new: StoryTotals
    old: StoryTotals
    old_name: StoryName | None  # None: the old story keeps its name
    old_alert_match: int  # where an old alert made from `moved_match` now stands


def plan_split(
    items: Sequence[SplitItem],
    item_id: int,
    story_id: int,
    story_title: str,
    new_id: int,
    aliases: Mapping[str, str] | None = None,
    params: Params = DEFAULT,
) -> SplitPlan:
    """What splitting item `item_id` off story `story_id` (titled `story_title`, with `items`
    in first-seen order) into a new story `new_id` makes. InputError: the item is not one of
    the story's, it is the story's only item, or it (or every other item) has no match."""
    moved = next((r for r in items if r.id == item_id), None)
    if moved is None:
        raise InputError(f"item {item_id} is not a source of story {story_id}")
    if len(items) < 2:
        raise InputError(f"item {item_id} is the only source of story {story_id}: nothing to split")
    if moved.match_id is None:
        raise InputError(f"item {item_id} did not match the profile: it cannot open a story")
    kept = [r for r in items if r.id != item_id]
    remaining = next((r.match_id for r in kept if r.match_id is not None), None)
    if remaining is None:  # the old story's alert would have nothing of its own to stand on
        raise InputError(f"no other item of story {story_id} matched the profile")

    def totals(sid: int, rows: Sequence[SplitItem]) -> StoryTotals:
        state = story_of(
            sid,
            [
                stored_features(
                    r.title, r.summary, r.published, r.first_seen, r.topics, aliases, params
                )
                for r in rows
            ],
            params,
        )
        return StoryTotals(
            item_count=len(rows),
            source_count=len(frozenset().union(*(r.feeds for r in rows))),
            topics=sorted({t for r in rows for t in r.topics}),
            score=max((r.score for r in rows if r.score is not None), default=None),
            event_time=state.first,
            last_event_time=state.last,
            features=state.as_features(),
        )

    # Named after the item: it opened the story (a feed may have edited its title since), or
    # the story carries its title.
    renamed = moved.id == items[0].id or story_title == moved.title[:500]
    return SplitPlan(
        moved=moved,
        moved_match=moved.match_id,
        new_name=story_name(moved.title, moved.summary),
        new=totals(new_id, [moved]),
        old=totals(story_id, kept),
        old_name=story_name(kept[0].title, kept[0].summary) if renamed else None,
        old_alert_match=remaining,
    )
