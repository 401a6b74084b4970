"""What every query module shares: the dialect's INSERT (for ON CONFLICT) and Core tables."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(session: Session) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_nothing`."""
    return postgresql.insert if is_postgres(session) else sqlite.insert


def table(model: type[Any]) -> Table:
    """A mapped class's Core table (for executemany statements, cached once compiled)."""
    return cast(Table, model.__table__)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def commit_without_flush_wait(session: Session) -> None:
    """This transaction's COMMIT does not wait for its WAL to reach the disk (PostgreSQL's
    `synchronous_commit = off`, for this transaction only; SQLite's WAL with synchronous=NORMAL
    already commits so). A crash of the database server can lose the last few hundred
    milliseconds of such commits, never half of one, and a later ordinary commit (a delivery's
    claim) flushes them first. For a poll, losing it means the feed is polled again."""
    if is_postgres(session):
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
