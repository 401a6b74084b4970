"""Engines, sessions and schema upgrades (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor.errors import StorageError, first_line

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
_UPGRADE_LOCK = 7_246_001  # PostgreSQL advisory lock id: one migrator at a time
T = TypeVar("T")


def normalise_url(url: str) -> str:
    """postgresql:// → the psycopg 3 driver, which is the one we install."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, open transactions (needed for BEGIN IMMEDIATE).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # Before any table exists: freed pages can then be given back in small steps
            # (retention's incremental vacuum). A no-op on an existing database.
            if cur.execute("PRAGMA page_count").fetchone()[0] == 0:  # a new, empty file
                cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Writers take the lock up front: no read-then-upgrade deadlocks between processes.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    # No server-side prepared statements (every process: `monitor run`, its pool, the Celery
    # workers, serve). psycopg prepares a statement after 5 runs, and PostgreSQL keeps the
    # generic plan it made then until the table is analysed: planned on an empty `items`
    # table, the item lookup stayed a sequential scan while the table grew (measured: 10,000
    # feeds polled at a third of the embedded speed, one scan of every item per poll).
    connect_args = dict(kwargs.pop("connect_args", None) or {})
    connect_args.setdefault("prepare_threshold", None)
    return create_engine(url, connect_args=connect_args, **kwargs)


def shown_url(url: str) -> str:
    """The database URL as logs and messages show it: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@", 1)[-1]


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (also `sqlite:///file:PATH?mode=ro&uri=true`); None for an
    in-memory database or another backend."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    name = u.database
    if name.startswith("file:"):
        name = name[5:].split("?", 1)[0]
    return Path(name)


class NoDatabaseError(StorageError):
    """A command that only reads was pointed at a database that does not exist (yet)."""


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> str:
    """Create or migrate the schema to the newest revision; return that revision."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _UPGRADE_LOCK})
                conn.commit()
            try:
                cfg = alembic_config(engine)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
                rev = MigrationContext.configure(conn).get_current_revision()
            finally:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _UPGRADE_LOCK})
                    conn.commit()
    except SQLAlchemyError as e:
        raise StorageError(
            f"cannot migrate the database {shown_url(str(engine.url))}: {first_line(e)}"
        ) from e
    return str(rev)


def ensure_schema(engine: Engine) -> None:
    """Migrate when the schema is missing or old (run and the worker call this on start)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            has_tables = inspect(conn).has_table("feeds")
    except SQLAlchemyError as e:
        raise StorageError(
            f"cannot reach the database {shown_url(str(engine.url))}: {first_line(e)}"
        ) from e
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    if current != head or not has_tables:
        upgrade(engine)


def check_writable(engine: Engine) -> None:
    """Fail with one line, before any work, when the database can be read but not written (a
    read-only SQLite file or directory, a read-only PostgreSQL role or replica)."""
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
    except SQLAlchemyError as e:
        raise StorageError(
            f"the database {shown_url(str(engine.url))} cannot be written ({first_line(e)}); "
            "monitor run and monitor db upgrade need to write it"
        ) from e


def open_existing(url: str) -> Database:
    """The database of a command that only reads: never created here. A database that does not
    exist, or has no monitor tables, is a NoDatabaseError naming it; an older schema is
    migrated."""
    hint = "run `monitor run` or `monitor db upgrade` first"
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise NoDatabaseError(f"no database at {path.resolve()}: {hint}")
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            has_tables = inspect(conn).has_table("feeds")
    except SQLAlchemyError as e:
        db.dispose()
        raise StorageError(f"cannot open the database {shown_url(url)}: {first_line(e)}") from e
    if not has_tables:
        db.dispose()
        raise NoDatabaseError(f"the database {shown_url(url)} has no monitor tables: {hint}")
    ensure_schema(db.engine)
    return db


# PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back
# only because another one held what it needed; running it again can succeed.
CONFLICTS = frozenset({"40P01", "40001"})


def conflicted(error: DBAPIError) -> bool:
    """Whether the database aborted a transaction for a conflict with another (see CONFLICTS)."""
    return getattr(error.orig, "sqlstate", None) in CONFLICTS


class Busy(StorageError):
    """A transaction aborted twice for a conflict with another (see `once_more_on_conflict`)."""


def once_more_on_conflict(work: Callable[[], T]) -> T:
    """`work()` (one whole transaction), run once more if the database aborted it for a
    conflict (a PostgreSQL deadlock or serialization failure: nothing of it was written);
    Busy if it is aborted again."""
    try:
        return work()
    except DBAPIError as e:
        if not conflicted(e):
            raise
        log.info("transaction aborted (%s), once more", first_line(e))
    try:
        return work()
    except DBAPIError as e:
        if not conflicted(e):
            raise
        raise Busy(f"aborted twice by the database: {first_line(e)}") from e


class Database:
    """An engine and its session factory; what pipeline functions receive."""

    def __init__(self, url: str, **kwargs: Any):
        self.url = url
        self.engine = make_engine(url, **kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
