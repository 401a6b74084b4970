"""The outbox: one row per (alert, target), claimed before sending, marked sent or failed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from monitor.store.common import insert_for, is_postgres, table
from monitor.store.models import Delivery


def add_deliveries(session: Session, alert_id: int, targets: Sequence[str], now: datetime) -> None:
    """One pending outbox row per target key (a row that exists already is left alone)."""
    if not targets:
        return
    session.execute(
        insert_for(session)(table(Delivery)).on_conflict_do_nothing(),
        [
            dict(
                alert_id=alert_id,
                target=t,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                claimed_until=None,
                last_error=None,
                sent_at=None,
                created_at=now,
            )
            for t in targets
        ],
    )


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
