"""Retention: what is pruned when. Pure decisions; `store/prune.py` does the deleting.

- An unmatched item loses its text (title, summary, content) `unmatched_days` after it was
  first seen. Its key and canonical link stay, so an item still in its feed is never stored
  or alerted again.
- That remaining key is forgotten once no feed has carried the item for `unmatched_days`.
- Matched items, their stories, matches and alerts are kept forever unless `matched_days` is
  set; then a story is removed with everything of it once its last item is that old.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_UNMATCHED_DAYS = 30.0
PRUNE_EVERY = timedelta(days=1)  # the embedded loop and Celery beat prune this often
BATCH = 500  # rows per transaction: the write lock is never held for long
MIN_MATCHED_AGE = timedelta(days=7)


@dataclass(frozen=True)
class Retention:
    unmatched_days: float = DEFAULT_UNMATCHED_DAYS
    matched_days: float | None = None  # None: matched items and stories are kept forever


@dataclass(frozen=True)
class PrunePlan:
    text_before: datetime  # unmatched items first seen before this lose their text
    forget_before: datetime  # pruned items no feed carried since this are forgotten
    stories_before: datetime | None  # stories whose last item is older are removed


def plan(retention: Retention, now: datetime, older_than: timedelta | None = None) -> PrunePlan:
    """`older_than` (from `monitor db prune --older-than`) replaces the unmatched period for
    the text only: a key is forgotten only after the configured period away from its feed,
    so `--older-than 0d` never lets an item still in its feed be stored again."""
    period = timedelta(days=retention.unmatched_days)
    age = older_than if older_than is not None else period
    matched = retention.matched_days
    return PrunePlan(
        text_before=now - age,
        forget_before=now - period,
        # Never inside the window in which items still join stories (events/params.py: 48 h).
        stories_before=(
            now - max(timedelta(days=matched), MIN_MATCHED_AGE) if matched is not None else None
        ),
    )


def prune_due(last_run: datetime | None, now: datetime) -> bool:
    return last_run is None or now - last_run >= PRUNE_EVERY
