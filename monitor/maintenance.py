"""Retention run: the plan from `monitor.retention`, carried out in small transactions by
`store/prune.py`, then the space given back. `monitor db prune`, the embedded loop and Celery
beat all call `prune`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import text

from monitor.retention import BATCH, PrunePlan
from monitor.store import Database
from monitor.store import prune as store_prune

log = logging.getLogger("monitor.retention")


@dataclass
class PruneReport:
    plan: PrunePlan
    text_pruned: int = 0
    forgotten: int = 0
    stories_removed: int = 0
    size_before: int | None = None
    size_after: int | None = None
    vacuum: str = ""
    dry_run: bool = False


def database_size(db: Database) -> int | None:
    """Bytes on disk: the SQLite file and its WAL, or PostgreSQL's database size."""
    url = db.engine.url
    if db.engine.dialect.name == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        base = Path(url.database)
        return sum(p.stat().st_size for p in (base, Path(f"{base}-wal")) if p.exists())
    if db.is_postgres:
        with db.engine.connect() as conn:
            return int(
                conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )
    return None


def prune(
    db: Database,
    plan: PrunePlan,
    now: datetime,
    dry_run: bool = False,
    batch: int = BATCH,
    full_vacuum: bool = False,
) -> PruneReport:
    report = PruneReport(plan=plan, dry_run=dry_run, size_before=database_size(db))
    if dry_run:
        with db.session() as s:
            report.text_pruned = store_prune.count_text_prunable(s, plan.text_before)
            report.forgotten = store_prune.count_forgettable(s, plan.forget_before)
            if plan.stories_before is not None:
                report.stories_removed = store_prune.count_expired_stories(s, plan.stories_before)
        report.size_after = report.size_before
        return report
    while plan.stories_before is not None:  # first, so that their items are pruned below
        with db.session() as s:
            ids = store_prune.expired_stories(s, plan.stories_before, batch)
            n = store_prune.delete_stories(s, ids, now)
        report.stories_removed += n
        if n < batch:
            with db.session() as s:
                store_prune.delete_old_messages(s, plan.stories_before)
            break
    while True:  # one short transaction per batch: polls keep writing in between
        with db.session() as s:
            n = store_prune.prune_text(
                s, store_prune.text_prunable(s, plan.text_before, batch), now
            )
        report.text_pruned += n
        if n < batch:
            break
    while True:
        with db.session() as s:
            n = store_prune.forget(s, store_prune.forgettable(s, plan.forget_before, batch))
        report.forgotten += n
        if n < batch:
            break
    report.vacuum = store_prune.reclaim_space(db.engine, full=full_vacuum)
    report.size_after = database_size(db)
    if report.text_pruned or report.forgotten or report.stories_removed:
        log.info("%s", describe(report))
    return report


def _mib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1048576:.1f} MiB"


def describe(r: PruneReport) -> str:
    would = "would be " if r.dry_run else ""
    parts = [
        f"{r.text_pruned} unmatched items first seen before "
        f"{r.plan.text_before:%Y-%m-%d %H:%M} UTC {would}emptied (key and link kept)",
        f"{r.forgotten} pruned items no feed carried since "
        f"{r.plan.forget_before:%Y-%m-%d %H:%M} UTC {would}forgotten",
    ]
    if r.plan.stories_before is not None:
        parts.append(
            f"{r.stories_removed} stories whose last item is older than "
            f"{r.plan.stories_before:%Y-%m-%d %H:%M} UTC {would}removed with their alerts"
        )
    if r.dry_run:
        parts.append(f"database {_mib(r.size_before)}; nothing written")
    else:
        parts.append(f"database {_mib(r.size_before)} → {_mib(r.size_after)} ({r.vacuum})")
    return "; ".join(parts)
