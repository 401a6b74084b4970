"""What the web window reads (stories with their sources, matches, alert and feedback; feeds;
the outbox) and the two things it writes (feedback, a delivery retried).

Stories are read from what every version of the schema has: `stories` (id, title,
first_seen), `items.story_id`, `item_feeds`, `matches`, `alerts`, `deliveries`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from monitor.store import outbox
from monitor.store.models import (
    Alert,
    Delivery,
    Feed,
    Feedback,
    Item,
    ItemFeed,
    Match,
    MatchTopic,
    Story,
    StorySplit,
)
from monitor.types import Item as ParsedItem

DELIVERY_STATES = ("pending", "failed", "dead", "sent", "held", "skipped", "unrouted")
_WAITING = ("pending", "sending")  # not sent yet (see OPEN_STATUSES in models)


def delivery_state(status: str, attempts: int) -> str:
    """One word for an outbox row: pending (not tried yet), failed (tried, retried later),
    held (by the target's policy), dead, sent, skipped (below min_score), unrouted,
    rerouted (its target left: routed again)."""
    if status in _WAITING:
        return "failed" if attempts > 0 else "pending"
    return status


VERDICTS = ("relevant", "noise", "wrong-topic")
# The id columns are INTEGER: no row has a larger id, and PostgreSQL refuses one (an error).
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Source:
    feed: str  # the feed's name, else its title, else its URL
    feed_url: str


@dataclass(frozen=True)
class ItemView:
    id: int
    title: str
    link: str | None
    summary: str
    published: datetime | None
    first_seen: datetime
    sources: tuple[Source, ...]
    topics: tuple[str, ...] = ()  # empty when this item did not match
    scores: dict[str, float] = field(default_factory=dict)
    evidence: tuple[dict[str, Any], ...] = ()
    why: str = ""


@dataclass(frozen=True)
class DeliveryView:
    id: int
    alert_id: int
    story_id: int
    story_title: str
    target: str  # the target's key: its name, else its URL (shown through a privacy filter)
    status: str  # see models.Delivery: pending | held | sending | sent | dead | skipped …
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    sent_at: datetime | None
    created_at: datetime

    @property
    def state(self) -> str:
        return delivery_state(self.status, self.attempts)


@dataclass(frozen=True)
class FeedbackView:
    id: int
    story_id: int
    verdict: str
    topic: str | None
    correct_topic: str | None
    who: str
    created_at: datetime


@dataclass(frozen=True)
class SplitView:
    """An item split off a story in the window: from story `from_story_id` into `story_id`."""

    item_id: int
    from_story_id: int
    story_id: int
    who: str
    created_at: datetime


@dataclass(frozen=True)
class StoryView:
    id: int
    title: str
    first_seen: datetime
    topics: tuple[str, ...]
    scores: dict[str, float]
    score: float
    why: str
    link: str | None
    sources: tuple[Source, ...]
    alerted_at: datetime | None
    deliveries: tuple[DeliveryView, ...]
    feedback: tuple[FeedbackView, ...]
    items: tuple[ItemView, ...]
    splits: tuple[SplitView, ...] = ()  # items split off it, or the split that made it


def _matched_story_ids(topic: str | None, since: datetime | None) -> Any:
    q = select(Match.story_id)
    if topic:
        q = q.join(MatchTopic, MatchTopic.match_id == Match.id).where(MatchTopic.topic == topic)
    q = select(Story.id).where(Story.id.in_(q))
    if since:
        q = q.where(Story.first_seen >= since)
    return q


def story_page(
    session: Session, topic: str | None, since: datetime | None, limit: int, offset: int
) -> tuple[list[StoryView], int]:
    """Matched stories, newest first, and how many there are in all."""
    base = _matched_story_ids(topic, since)
    total = int(session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    ids = list(
        session.scalars(
            base.order_by(Story.first_seen.desc(), Story.id.desc()).limit(limit).offset(offset)
        )
    )
    return load_stories(session, ids), total


def load_stories(session: Session, ids: Sequence[int]) -> list[StoryView]:
    """Stories by id, in the order given, with items, sources, matches, alert, feedback."""
    if not ids:
        return []
    ids = list(ids)
    stories = {
        sid: (title, first_seen)
        for sid, title, first_seen in session.execute(
            select(Story.id, Story.title, Story.first_seen).where(Story.id.in_(ids))
        )
    }
    items = list(
        session.execute(
            select(
                Item.id,
                Item.story_id,
                Item.title,
                Item.link,
                Item.summary,
                Item.published,
                Item.first_seen,
            )
            .where(Item.story_id.in_(ids))
            .order_by(Item.first_seen, Item.id)
        )
    )
    sources: dict[int, list[Source]] = defaultdict(list)
    item_ids = [r.id for r in items]
    for iid, name, title, url in session.execute(
        select(ItemFeed.item_id, Feed.name, Feed.title, Feed.url)
        .join(Feed, Feed.id == ItemFeed.feed_id)
        .where(ItemFeed.item_id.in_(item_ids))
        .order_by(ItemFeed.first_seen)
    ):
        sources[iid].append(Source(feed=name or title or url, feed_url=url))
    matches: dict[int, Any] = {
        m.item_id: m
        for m in session.execute(
            select(
                Match.item_id,
                Match.story_id,
                Match.topics,
                Match.scores,
                Match.evidence,
                Match.explanation,
                Match.score,
            ).where(Match.story_id.in_(ids))
        )
    }
    alerts = {
        sid: (aid, at)
        for sid, aid, at in session.execute(
            select(Alert.story_id, Alert.id, Alert.created_at).where(Alert.story_id.in_(ids))
        )
    }
    deliveries: dict[int, list[DeliveryView]] = defaultdict(list)
    for d in deliveries_of(session, [aid for aid, _ in alerts.values()]):
        deliveries[d.story_id].append(d)
    feedback: dict[int, list[FeedbackView]] = defaultdict(list)
    for f in feedback_of(session, ids):
        feedback[f.story_id].append(f)
    splits: dict[int, list[SplitView]] = defaultdict(list)
    for sp in session.execute(
        select(
            StorySplit.item_id,
            StorySplit.from_story_id,
            StorySplit.story_id,
            StorySplit.who,
            StorySplit.created_at,
        )
        .where(StorySplit.story_id.in_(ids) | StorySplit.from_story_id.in_(ids))
        .order_by(StorySplit.created_at, StorySplit.id)
    ):
        view = SplitView(*sp)
        for sid in {view.from_story_id, view.story_id}:
            splits[sid].append(view)

    views: dict[int, list[ItemView]] = defaultdict(list)
    for r in items:
        m = matches.get(r.id)
        views[r.story_id].append(
            ItemView(
                id=r.id,
                title=r.title,
                link=r.link,
                summary=r.summary or "",
                published=r.published,
                first_seen=r.first_seen,
                sources=tuple(sources.get(r.id, ())),
                topics=tuple(m.topics) if m else (),
                scores=dict(m.scores) if m else {},
                evidence=tuple(m.evidence) if m else (),
                why=m.explanation if m else "",
            )
        )
    out = []
    for sid in ids:
        if sid not in stories:
            continue
        title, first_seen = stories[sid]
        its = views.get(sid, [])
        matched = [i for i in its if i.topics]
        lead = _lead(title, its)
        topics: list[str] = []
        scores: dict[str, float] = {}
        for i in matched:
            for t in i.topics:
                if t not in topics:
                    topics.append(t)
                scores[t] = max(scores.get(t, 0.0), float(i.scores.get(t, 0.0)))
        seen: set[str] = set()
        story_sources = []
        for i in its:
            for s in i.sources:
                if s.feed_url not in seen:
                    seen.add(s.feed_url)
                    story_sources.append(s)
        alert = alerts.get(sid)
        out.append(
            StoryView(
                id=sid,
                title=title,
                first_seen=first_seen,
                topics=tuple(topics),
                scores=scores,
                score=max(scores.values(), default=0.0),
                # the headline's own article and why it matched: the title, the link and
                # the why of one item, as in the story's alert
                why=lead.why if lead else "",
                link=lead.link if lead else None,
                sources=tuple(story_sources),
                alerted_at=alert[1] if alert else None,
                deliveries=tuple(deliveries.get(sid, ())),
                feedback=tuple(feedback.get(sid, ())),
                items=tuple(its),
                splits=tuple(splits.get(sid, ())),
            )
        )
    return out


def _lead(title: str, items: Sequence[ItemView]) -> ItemView | None:
    """The item a story is named after (a poll names it after the item that opens it, a split
    after its next item): the earliest whose title is the story's, else the earliest."""
    return next((i for i in items if i.title[:500] == title), items[0] if items else None)


def _delivery_query() -> Any:
    return (
        select(
            Delivery.id,
            Delivery.alert_id,
            Alert.story_id,
            Story.title,
            Delivery.target,
            Delivery.status,
            Delivery.attempts,
            Delivery.last_error,
            Delivery.next_attempt_at,
            Delivery.sent_at,
            Delivery.created_at,
        )
        .join(Alert, Alert.id == Delivery.alert_id)
        .join(Story, Story.id == Alert.story_id)
    )


def deliveries_of(session: Session, alert_ids: Sequence[int]) -> list[DeliveryView]:
    if not alert_ids:
        return []
    q = _delivery_query().where(Delivery.alert_id.in_(list(alert_ids))).order_by(Delivery.id)
    return [DeliveryView(*row) for row in session.execute(q)]


def list_deliveries(
    session: Session, states: Sequence[str], limit: int, offset: int = 0
) -> tuple[list[DeliveryView], int]:
    """Outbox rows in these states (pending, failed, dead, sent), newest first, and the total."""
    conds = []
    for state in states:
        if state == "pending":
            conds.append(and_(Delivery.status.in_(_WAITING), Delivery.attempts == 0))
        elif state == "failed":
            conds.append(and_(Delivery.status.in_(_WAITING), Delivery.attempts > 0))
        else:
            conds.append(Delivery.status == state)
    q = _delivery_query().where(or_(*conds))
    total = int(session.scalar(select(func.count()).select_from(q.subquery())) or 0)
    rows = session.execute(
        q.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit).offset(offset)
    )
    return [DeliveryView(*row) for row in rows], total


def delivery(session: Session, delivery_id: int) -> DeliveryView | None:
    row = session.execute(_delivery_query().where(Delivery.id == delivery_id)).first()
    return DeliveryView(*row) if row else None


def retry_delivery(session: Session, delivery_id: int, now: datetime) -> bool:
    """A failed or dead delivery is due again now (the loop or the sweeper sends it)."""
    return outbox.retry(session, [delivery_id], now) > 0


# --- feedback -------------------------------------------------------------------------------


def add_feedback(
    session: Session,
    story_id: int,
    verdict: str,
    topic: str | None,
    correct_topic: str | None,
    who: str,
    now: datetime,
) -> None:
    session.add(
        Feedback(
            story_id=story_id,
            verdict=verdict,
            topic=topic,
            correct_topic=correct_topic,
            who=who[:100],
            created_at=now,
        )
    )
    session.flush()


def feedback_of(session: Session, story_ids: Sequence[int] | None = None) -> list[FeedbackView]:
    q = select(
        Feedback.id,
        Feedback.story_id,
        Feedback.verdict,
        Feedback.topic,
        Feedback.correct_topic,
        Feedback.who,
        Feedback.created_at,
    ).order_by(Feedback.created_at, Feedback.id)
    if story_ids is not None:
        q = q.where(Feedback.story_id.in_(list(story_ids)))
    return [FeedbackView(*row) for row in session.execute(q)]


@dataclass(frozen=True)
class JudgedStory:
    """A story someone gave feedback on: its stored topics, its items, the feedback."""

    id: int
    title: str
    stored_topics: frozenset[str]
    items: tuple[ParsedItem, ...]
    feedback: tuple[FeedbackView, ...]


def judged_stories(session: Session) -> list[JudgedStory]:
    entries: dict[int, list[FeedbackView]] = defaultdict(list)
    for f in feedback_of(session):
        entries[f.story_id].append(f)
    if not entries:
        return []
    ids = sorted(entries)
    topics: dict[int, set[str]] = defaultdict(set)
    for sid, ts in session.execute(
        select(Match.story_id, Match.topics).where(Match.story_id.in_(ids))
    ):
        topics[sid].update(ts)
    items: dict[int, list[ParsedItem]] = defaultdict(list)
    for it in session.scalars(select(Item).where(Item.story_id.in_(ids)).order_by(Item.id)):
        assert it.story_id is not None
        items[it.story_id].append(
            ParsedItem(
                key=it.key,
                guid=it.guid,
                link=it.link,
                title=it.title,
                summary=it.summary,
                content=it.content,
                published=it.published,
            )
        )
    titles = dict(
        (sid, title)
        for sid, title in session.execute(select(Story.id, Story.title).where(Story.id.in_(ids)))
    )
    return [
        JudgedStory(
            id=sid,
            title=titles.get(sid, ""),
            stored_topics=frozenset(topics.get(sid, ())),
            items=tuple(items.get(sid, ())),
            feedback=tuple(entries[sid]),
        )
        for sid in ids
    ]


# --- feeds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedView:
    id: int
    url: str
    name: str | None
    title: str | None
    interval: int
    last_polled_at: datetime | None
    last_status: str | None
    http_status: int | None
    error: str | None
    error_kind: str | None
    error_count: int
    next_check_at: datetime | None
    items: int  # items this feed carries in the store now (pruning forgets old ones)
    items_seen: int  # new items this feed ever brought (a counter, never pruned)
    arrivals: tuple[datetime, ...]  # when new items came in, oldest first (recent window)


def list_feeds(session: Session, arrivals_since: datetime) -> list[FeedView]:
    """Enabled feeds with their item counts and the recent moments new items arrived."""
    counts = dict(
        (fid, int(n))
        for fid, n in session.execute(
            select(ItemFeed.feed_id, func.count()).group_by(ItemFeed.feed_id)
        )
    )
    arrivals: dict[int, list[datetime]] = defaultdict(list)
    for fid, at in session.execute(
        select(ItemFeed.feed_id, ItemFeed.first_seen)
        .where(ItemFeed.first_seen >= arrivals_since)
        .distinct()
        .order_by(ItemFeed.feed_id, ItemFeed.first_seen)
    ):
        arrivals[fid].append(at)
    out = []
    for f in session.scalars(select(Feed).where(Feed.enabled.is_(True)).order_by(Feed.id)):
        out.append(
            FeedView(
                id=f.id,
                url=f.url,
                name=f.name,
                title=f.title,
                interval=f.interval,
                last_polled_at=f.last_polled_at,
                last_status=f.last_status,
                http_status=f.http_status,
                error=f.error,
                error_kind=f.error_kind,
                error_count=f.error_count or 0,
                next_check_at=f.next_check_at,
                items=counts.get(f.id, 0),
                items_seen=f.items_seen or 0,
                arrivals=tuple(arrivals.get(f.id, ())),
            )
        )
    return out


def delivery_counts(session: Session) -> dict[str, int]:
    """Outbox rows per state (pending, failed, dead, sent): what /metrics exposes."""
    out = dict.fromkeys(DELIVERY_STATES, 0)
    for status, attempts, n in session.execute(
        select(Delivery.status, Delivery.attempts, func.count()).group_by(
            Delivery.status, Delivery.attempts
        )
    ):
        state = delivery_state(str(status), int(attempts))
        out[state] = out.get(state, 0) + int(n)
    return out
