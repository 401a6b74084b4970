"""The outbox, saved and loaded: delivery rows (one per alert and target, plus follow-ups), the
messages that carry them, and what the alert policy reads (waiting rows, recent messages,
stories told and their sources). Decisions live in `monitor.alert_policy`; the sending in
`monitor.deliver`."""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from monitor.store.common import insert_for, is_postgres, table
from monitor.store.models import (
    OPEN_STATUSES,
    Alert,
    Delivery,
    Feed,
    Item,
    ItemFeed,
    Match,
    Message,
)

UNROUTED = ""  # the target of an alert's row when no target takes it
_TARGET_LOCK = 7_246_100  # PostgreSQL advisory locks: one planner per target at a time


def _row(alert_id: int, target: str, now: datetime, **kw: Any) -> dict[str, Any]:
    row = dict(
        alert_id=alert_id,
        target=target,
        kind="alert",
        status="pending",
        attempts=0,
        next_attempt_at=now,
        claimed_until=None,
        last_error=None,
        sent_at=None,
        created_at=now,
        hold=None,
        reason=None,
        message_id=None,
        told_feeds=None,
        told_at=None,
    )
    row.update(kw)
    return row


def add_deliveries(session: Session, alert_id: int, targets: Sequence[str], now: datetime) -> None:
    """One pending outbox row per target key (a row that exists already is left alone)."""
    if not targets:
        return
    session.execute(
        insert_for(session)(table(Delivery)).on_conflict_do_nothing(),
        [_row(alert_id, t, now) for t in targets],
    )


def add_routes(
    session: Session, rows: Sequence[tuple[int, str, str | None]], now: datetime
) -> None:
    """Rows for new alerts in one statement: (alert id, target key, None) pending, or (alert
    id, UNROUTED, reason) unrouted. A row that exists already is left alone."""
    if not rows:
        return
    session.execute(
        insert_for(session)(table(Delivery)).on_conflict_do_nothing(),
        [
            _row(a, t, now) if t != UNROUTED else _row(a, t, now, status="unrouted", reason=reason)
            for a, t, reason in rows
        ],
    )


def set_unrouted(session: Session, alert_id: int, reason: str, now: datetime) -> None:
    """The trace of an alert no target takes: its row to target "" in status unrouted."""
    session.execute(
        insert_for(session)(table(Delivery)).on_conflict_do_nothing(),
        [_row(alert_id, UNROUTED, now, status="unrouted", reason=reason)],
    )
    session.execute(
        update(Delivery)
        .where(Delivery.alert_id == alert_id, Delivery.target == UNROUTED)
        .values(status="unrouted", reason=reason)
    )


# --- what the planner reads ---------------------------------------------------------------


def targets_due(session: Session, now: datetime) -> list[str]:
    """Targets with rows waiting to be decided (pending, or held until a time now passed)."""
    return list(
        session.scalars(
            select(Delivery.target)
            .where(Delivery.status.in_(("pending", "held")), Delivery.next_attempt_at <= now)
            .distinct()
        )
    )


def lock_target(session: Session, target: str) -> None:
    """Plan one target at a time across workers (SQLite: BEGIN IMMEDIATE already does)."""
    if is_postgres(session):
        key = _TARGET_LOCK * 2**32 + zlib.crc32(target.encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


@dataclass(frozen=True)
class WaitingRow:
    id: int
    kind: str
    story_id: int
    alert_id: int
    status: str
    hold: str | None
    due_at: datetime
    created_at: datetime
    topics: tuple[str, ...]
    scores: dict[str, float]
    confidence: dict[str, float] | None


def waiting_rows(session: Session, target: str) -> list[WaitingRow]:
    """Every row of the target not yet bound to a message: pending and held, due or not."""
    q = (
        select(
            Delivery.id,
            Delivery.kind,
            Alert.story_id,
            Delivery.alert_id,
            Delivery.status,
            Delivery.hold,
            Delivery.next_attempt_at,
            Delivery.created_at,
            Match.topics,
            Match.scores,
            Match.confidence,
        )
        .join(Alert, Alert.id == Delivery.alert_id)
        .join(Match, Match.id == Alert.match_id)
        .where(Delivery.target == target, Delivery.status.in_(("pending", "held")))
        .order_by(Delivery.created_at, Delivery.id)
    )
    return [
        WaitingRow(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            tuple(r[8]),
            dict(r[9]),
            dict(r[10]) if r[10] is not None else None,
        )
        for r in session.execute(q)
    ]


def recent_messages(session: Session, target: str, since: datetime) -> list[tuple[str, datetime]]:
    """(kind, made at) of the messages made for the target since `since`."""
    q = select(Message.kind, Message.created_at).where(
        Message.target == target, Message.created_at > since
    )
    return [(k, at) for k, at in session.execute(q)]


@dataclass(frozen=True)
class ToldRow:
    alert_id: int
    story_id: int
    told_feeds: frozenset[int]
    told_at: datetime
    open_update: int | None
    open_feeds: frozenset[int]


def told_stories(session: Session, target: str, since: datetime) -> list[ToldRow]:
    """Stories alerted to the target since `since` and already told (bound to a message),
    with the follow-up row still waiting, if any."""
    rows = session.execute(
        select(Delivery.alert_id, Alert.story_id, Delivery.told_feeds, Delivery.told_at)
        .join(Alert, Alert.id == Delivery.alert_id)
        .where(
            Delivery.target == target,
            Delivery.kind == "alert",
            Delivery.status.in_(("sending", "sent")),
            Delivery.created_at > since,
            Delivery.told_at.is_not(None),
        )
    ).all()
    if not rows:
        return []
    open_updates = {
        aid: (uid, feeds)
        for uid, aid, feeds in session.execute(
            select(Delivery.id, Delivery.alert_id, Delivery.told_feeds).where(
                Delivery.target == target,
                Delivery.kind == "update",
                Delivery.status.in_(("pending", "held")),
                Delivery.alert_id.in_([r[0] for r in rows]),
            )
        )
    }
    out = []
    for alert_id, story_id, told, told_at in rows:
        uid, feeds = open_updates.get(alert_id, (None, []))
        assert told_at is not None
        out.append(
            ToldRow(alert_id, story_id, frozenset(told or ()), told_at, uid, frozenset(feeds or ()))
        )
    return out


def story_sources(session: Session, story_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
    """(feed id, feed name) of every feed that carried an item of each story, first seen
    first: a story's sources."""
    ids = sorted(set(story_ids))
    out: dict[int, list[tuple[int, str]]] = defaultdict(list)
    if not ids:
        return out
    q = (
        select(
            Item.story_id,
            Feed.id,
            func.coalesce(Feed.name, Feed.title, Feed.url),
            func.min(ItemFeed.first_seen),
        )
        .join(ItemFeed, ItemFeed.item_id == Item.id)
        .join(Feed, Feed.id == ItemFeed.feed_id)
        .where(Item.story_id.in_(ids))
        .group_by(Item.story_id, Feed.id, Feed.name, Feed.title, Feed.url)
        .order_by(Item.story_id, func.min(ItemFeed.first_seen), Feed.id)
    )
    for story_id, feed_id, name, _ in session.execute(q):
        if story_id is not None:
            out[int(story_id)].append((int(feed_id), str(name)))
    return out


@dataclass(frozen=True)
class RowStory:
    """What a message needs to say about one delivery row's story."""

    id: int
    kind: str
    alert_id: int
    story_id: int
    title: str
    link: str | None
    summary: str
    published: datetime | None
    topics: tuple[str, ...]
    scores: dict[str, float]
    explanation: str
    told_feeds: frozenset[int]  # kind update: the feeds it announces


def row_stories(session: Session, ids: Sequence[int]) -> dict[int, RowStory]:
    q = (
        select(
            Delivery.id,
            Delivery.kind,
            Delivery.alert_id,
            Alert.story_id,
            Item.title,
            Item.link,
            Item.summary,
            Item.published,
            Match.topics,
            Match.scores,
            Match.explanation,
            Delivery.told_feeds,
        )
        .join(Alert, Alert.id == Delivery.alert_id)
        .join(Match, Match.id == Alert.match_id)
        .join(Item, Item.id == Match.item_id)
        .where(Delivery.id.in_(list(ids)))
    )
    return {
        r[0]: RowStory(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            tuple(r[8]),
            dict(r[9]),
            r[10],
            frozenset(r[11] or ()),
        )
        for r in session.execute(q)
    }


# --- what the planner saves ---------------------------------------------------------------


def mark_skipped(session: Session, skips: Sequence[tuple[int, str]]) -> None:
    for row_id, reason in skips:
        session.execute(
            update(Delivery)
            .where(Delivery.id == row_id)
            .values(status="skipped", reason=reason, hold=None)
        )


def mark_held(session: Session, holds: Sequence[tuple[int, datetime, str, str]]) -> None:
    for row_id, until, hold, reason in holds:
        session.execute(
            update(Delivery)
            .where(Delivery.id == row_id)
            .values(status="held", next_attempt_at=until, hold=hold, reason=reason)
        )


def add_follow_up(
    session: Session, alert_id: int, target: str, feeds: Sequence[int], due: datetime, now: datetime
) -> None:
    """A follow-up row (kind update) announcing new source feeds of a story already told."""
    session.execute(
        insert_for(session)(table(Delivery)).on_conflict_do_nothing(),
        [_row(alert_id, target, now, kind="update", next_attempt_at=due, told_feeds=list(feeds))],
    )


def refresh_follow_up(session: Session, row_id: int, feeds: Sequence[int]) -> None:
    session.execute(update(Delivery).where(Delivery.id == row_id).values(told_feeds=list(feeds)))


def add_message(
    session: Session,
    target: str,
    kind: str,
    title: str,
    body: str,
    body_format: str,
    stories: Sequence[int],
    now: datetime,
) -> int:
    t = table(Message)
    return int(
        session.execute(
            t.insert().returning(t.c.id),
            dict(
                target=target,
                kind=kind,
                status="pending",
                title=title,
                body=body,
                body_format=body_format,
                stories=list(stories),
                attempts=0,
                next_attempt_at=now,
                claimed_until=None,
                last_error=None,
                sent_at=None,
                created_at=now,
            ),
        ).scalar_one()
    )


def bind(
    session: Session,
    target: str,
    message_id: int,
    told: Sequence[tuple[int, str, int, frozenset[int]]],
    now: datetime,
) -> None:
    """Bind rows to the message that carries them (status sending) and record what the target
    is told: (row id, kind, alert id, feeds). An alert row records the story's sources now;
    an update row adds the feeds it announces to its alert row's."""
    for row_id, kind, alert_id, feeds in told:
        values: dict[str, Any] = dict(status="sending", message_id=message_id, hold=None)
        if kind == "alert":
            values.update(told_feeds=sorted(feeds), told_at=now)
        session.execute(update(Delivery).where(Delivery.id == row_id).values(**values))
        if kind == "update":
            alert_row = session.scalars(
                select(Delivery).where(
                    Delivery.alert_id == alert_id,
                    Delivery.target == target,
                    Delivery.kind == "alert",
                )
            ).first()
            if alert_row is not None:
                alert_row.told_feeds = sorted(set(alert_row.told_feeds or ()) | feeds)
                alert_row.told_at = now


# --- sending ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueMessage:
    id: int
    target: str
    kind: str
    title: str
    body: str
    body_format: str
    attempts: int
    created_at: datetime
    rows: int


def claim_messages(
    session: Session, now: datetime, limit: int, claim_seconds: float
) -> list[DueMessage]:
    """Take due messages for this process (SKIP LOCKED on PostgreSQL) and mark them claimed,
    so that no other worker sends them while we do. A claim that expires (its sender died)
    makes the message due again: the same message, the same stories."""
    q = (
        select(Message.id)
        .where(
            Message.status == "pending",
            Message.next_attempt_at <= now,
            or_(Message.claimed_until.is_(None), Message.claimed_until < now),
        )
        .order_by(Message.next_attempt_at, Message.id)
        .limit(limit)
    )
    if is_postgres(session):
        q = q.with_for_update(skip_locked=True)
    ids = list(session.scalars(q))
    if not ids:
        return []
    session.execute(
        update(Message)
        .where(Message.id.in_(ids))
        .values(claimed_until=now + timedelta(seconds=claim_seconds))
        .execution_options(synchronize_session=False)
    )
    counts = dict(
        session.execute(
            select(Delivery.message_id, func.count())
            .where(Delivery.message_id.in_(ids))
            .group_by(Delivery.message_id)
        ).all()
    )
    return [
        DueMessage(
            m.id,
            m.target,
            m.kind,
            m.title,
            m.body,
            m.body_format,
            m.attempts,
            m.created_at,
            int(counts.get(m.id, 0)),
        )
        for m in session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))
    ]


def mark_message_sent(session: Session, message_id: int, now: datetime) -> None:
    session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(
            status="sent",
            sent_at=now,
            attempts=Message.attempts + 1,
            claimed_until=None,
            last_error=None,
        )
    )
    session.execute(
        update(Delivery)
        .where(Delivery.message_id == message_id, Delivery.status == "sending")
        .values(
            status="sent", sent_at=now, attempts=Delivery.attempts + 1, last_error=None, reason=None
        )
    )


def mark_message_failed(
    session: Session, message_id: int, error: str, retry_at: datetime, dead: bool
) -> None:
    values = dict(
        attempts=Message.attempts + 1,
        last_error=error[:2000],
        next_attempt_at=retry_at,
        claimed_until=None,
        status="dead" if dead else "pending",
    )
    session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == "pending")
        .values(**values)
    )
    session.execute(
        update(Delivery)
        .where(Delivery.message_id == message_id, Delivery.status == "sending")
        .values(
            attempts=Delivery.attempts + 1,
            last_error=error[:2000],
            next_attempt_at=retry_at,
            **({"status": "dead"} if dead else {}),
        )
    )


def release_message(session: Session, message_id: int) -> None:
    """Give a claimed message back unsent (its target is gone: it is routed again)."""
    session.execute(update(Message).where(Message.id == message_id).values(claimed_until=None))


# --- targets changed ----------------------------------------------------------------------


@dataclass(frozen=True)
class Orphan:
    id: int
    alert_id: int
    kind: str
    target: str
    status: str
    message_id: int | None
    topics: tuple[str, ...]


def open_rows(session: Session) -> list[Orphan]:
    """Every row not delivered yet (pending, held, sending) and every unrouted one, with its
    alert's topics: what routing looks at again when the targets change."""
    q = (
        select(
            Delivery.id,
            Delivery.alert_id,
            Delivery.kind,
            Delivery.target,
            Delivery.status,
            Delivery.message_id,
            Match.topics,
        )
        .join(Alert, Alert.id == Delivery.alert_id)
        .join(Match, Match.id == Alert.match_id)
        .where(Delivery.status.in_((*OPEN_STATUSES, "unrouted")))
        .order_by(Delivery.id)
    )
    return [Orphan(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6])) for r in session.execute(q)]


def mark_rerouted(session: Session, row_ids: Sequence[int], reason: str) -> None:
    """Rows whose target left: closed (status rerouted), their messages withdrawn."""
    if not row_ids:
        return
    messages = [
        m
        for m in session.scalars(
            select(Delivery.message_id).where(
                Delivery.id.in_(list(row_ids)), Delivery.message_id.is_not(None)
            )
        )
        if m is not None
    ]
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(list(row_ids)))
        .values(status="rerouted", reason=reason, hold=None)
    )
    if messages:
        session.execute(
            update(Message)
            .where(Message.id.in_(messages), Message.status == "pending")
            .values(status="rerouted", last_error=reason)
        )


# --- operators ----------------------------------------------------------------------------


def unknown_deliveries(session: Session, row_ids: Sequence[int]) -> list[int]:
    """The given ids no delivery row has."""
    known = set(session.scalars(select(Delivery.id).where(Delivery.id.in_(list(row_ids)))))
    return sorted(set(row_ids) - known)


def retry(session: Session, row_ids: Sequence[int] | None, now: datetime) -> int:
    """Send again: dead rows (all of them when row_ids is None) and failed ones. A dead row is
    decided again (its message may have listed other stories); a failing one's message is
    tried now. Returns how many rows were retried."""
    q = select(Delivery).where(
        or_(
            Delivery.status == "dead",
            Delivery.status.in_(OPEN_STATUSES) & Delivery.last_error.is_not(None),
        )
    )
    if row_ids is not None:
        q = q.where(Delivery.id.in_(list(row_ids)))
    else:
        q = q.where(Delivery.status == "dead")
    n = 0
    for d in session.scalars(q):
        n += 1
        if d.status == "dead":
            d.status, d.message_id, d.hold, d.reason = "pending", None, None, "retried"
            d.attempts, d.last_error, d.next_attempt_at = 0, None, now
        elif d.message_id is not None:
            session.execute(
                update(Message)
                .where(Message.id == d.message_id, Message.status == "pending")
                .values(next_attempt_at=now)
            )
        else:
            d.next_attempt_at = now
    return n


def next_delivery_due(session: Session) -> datetime | None:
    """The soonest time a row must be decided or a message sent."""
    rows = session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(Delivery.status.in_(("pending", "held")))
    )
    messages = session.scalar(
        select(func.min(Message.next_attempt_at)).where(
            Message.status == "pending", Message.claimed_until.is_(None)
        )
    )
    return min((t for t in (rows, messages) if t is not None), default=None)
