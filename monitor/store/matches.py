"""Matches and alerts: each matched item gets its story and its match row; each story gets one
alert (unique constraint)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from monitor.store.common import insert_for, table
from monitor.store.models import Alert, Item, Match, MatchTopic
from monitor.store.stories import StoryCache, assign_stories
from monitor.types import Classification
from monitor.types import Item as ParsedItem


@dataclass(frozen=True)
class NewAlert:
    """An alert created by this poll, with what routing needs."""

    id: int
    story_id: int
    topics: tuple[str, ...]
    scores: dict[str, float]


def record_matches(
    session: Session,
    matched: Sequence[tuple[int, ParsedItem, Classification]],
    now: datetime,
    stories_cache: StoryCache | None = None,
) -> list[tuple[int | None, NewAlert | None]]:
    """Store the matches of one poll in a few statements: each item gets its story, each
    story not alerted yet gets one alert (the unique constraint on alerts.story_id decides
    between workers). Returns (match id, new alert or None) per input; who receives the alert
    is decided by the caller (`monitor.routing`) and saved with `outbox.add_deliveries`.
    `stories_cache` is the process's event index (`monitor.events` decides; a fresh one loads the
    window from the database)."""
    if not matched:
        return []
    rows = [row for row, _, _ in matched]
    known: set[int] = set()
    stories: dict[int, int | None] = {}
    for iid, sid, match_id in session.execute(
        select(Item.id, Item.story_id, Match.id)
        .outerjoin(Match, Match.item_id == Item.id)
        .where(Item.id.in_(rows))
    ):
        stories[iid] = sid
        if match_id is not None:
            known.add(iid)
    todo: list[tuple[int, ParsedItem, Classification, int]] = []
    assigned: list[dict[str, int]] = []
    seen: set[int] = set()
    unassigned: list[tuple[int, ParsedItem, Classification]] = []
    for row, item, c in matched:
        if row in known or row in seen:
            continue  # an edited item that matched before: its story has what it needs
        seen.add(row)
        if stories.get(row) is None:
            unassigned.append((row, item, c))
    opened: set[int] = set()  # stories this batch opened: no alert can exist for them yet
    if unassigned:
        cache = stories_cache if stories_cache is not None else StoryCache()
        for a in assign_stories(session, cache, unassigned, now):
            stories[a.row] = a.story_id
            assigned.append({"row": a.row, "story": a.story_id})
            if a.new_story:
                opened.add(a.story_id)
    for row, item, c in matched:
        story_id = stories.get(row)
        if row in seen and story_id is not None:
            seen.discard(row)
            todo.append((row, item, c, story_id))
    if assigned:
        items_t = table(Item)
        session.execute(
            items_t.update()
            .where(items_t.c.id == bindparam("row"))
            .values(story_id=bindparam("story")),
            assigned,
        )
    if not todo:
        return [(None, None)] * len(matched)
    matches_t = table(Match)
    inserted = session.execute(
        matches_t.insert().returning(matches_t.c.item_id, matches_t.c.id),
        [
            dict(
                item_id=row,
                story_id=story_id,
                topics=list(c.topics),
                scores=dict(c.scores),
                evidence=[e.as_dict() for e in c.evidence],
                confidence=dict(c.confidence),
                explanation=c.explain(),
                score=max((c.scores.get(t, 0.0) for t in c.topics), default=0.0),
                created_at=now,
            )
            for row, _, c, story_id in todo
        ],
    )
    match_ids: dict[int, int] = {item_id: mid for item_id, mid in inserted}
    session.execute(
        table(MatchTopic).insert(),
        [
            dict(match_id=match_ids[row], topic=t, created_at=now)
            for row, _, c, _ in todo
            for t in c.topics
        ],
    )
    story_ids = {sid for *_, sid in todo}
    alerted = (
        set(session.scalars(select(Alert.story_id).where(Alert.story_id.in_(story_ids - opened))))
        if story_ids - opened
        else set()
    )
    first: dict[int, tuple[int, Classification]] = {}  # story → its first match of the batch
    for row, _, c, story_id in todo:
        if story_id not in alerted and story_id not in first:
            first[story_id] = (row, c)
    alerts: dict[int, NewAlert] = {}
    if first:
        alerts_t = table(Alert)
        # One statement for the batch; a story another worker alerted first returns no row.
        created = session.execute(
            insert_for(session)(alerts_t)
            .on_conflict_do_nothing()
            .returning(alerts_t.c.story_id, alerts_t.c.id),
            [
                dict(story_id=sid, match_id=match_ids[row], created_at=now)
                # in story order: two workers inserting overlapping stories lock them in
                # the same order and never deadlock
                for sid, (row, _) in sorted(first.items())
            ],
        )
        for story_id, alert_id in created:
            row, c = first[story_id]
            alerts[row] = NewAlert(alert_id, story_id, c.topics, dict(c.scores))
    return [(match_ids.get(row), alerts.get(row)) for row, _, _ in matched]
