"""Heartbeats: when each polling loop (`run`, `celery`) last finished a cycle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.common import insert_for
from monitor.store.models import Heartbeat


def record(session: Session, source: str, at: datetime, detail: str = "") -> None:
    ins = insert_for(session)(Heartbeat).values(source=source, at=at, detail=detail[:500])
    session.execute(
        ins.on_conflict_do_update(index_elements=["source"], set_={"at": at, "detail": detail})
    )


def latest(session: Session) -> list[tuple[str, datetime, str]]:
    """Every source's last heartbeat, newest first."""
    rows = session.execute(
        select(Heartbeat.source, Heartbeat.at, Heartbeat.detail).order_by(Heartbeat.at.desc())
    )
    return [(str(s), at, str(d)) for s, at, d in rows]
