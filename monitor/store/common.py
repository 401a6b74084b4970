"""What every query module shares: the dialect's INSERT (for ON CONFLICT) and Core tables."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
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
