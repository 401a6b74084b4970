"""Storage: SQLAlchemy schema, queries and Alembic migrations."""

from monitor.store.db import Database, ensure_schema, make_engine, upgrade

__all__ = ["Database", "ensure_schema", "make_engine", "upgrade"]
