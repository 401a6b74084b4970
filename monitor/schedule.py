"""When a feed is checked next: the one place that decides it (Miniflux's ScheduleNextCheck).
Pure: storage saves the answer."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

MAX_BACKOFF = 6 * 3600.0  # a failing feed is still tried at least this often
JITTER = 0.05  # ± this fraction of the interval, so feeds added together spread out


def next_check_after_ok(interval: int, now: datetime) -> datetime:
    jitter = interval * random.uniform(-JITTER, JITTER)
    return now + timedelta(seconds=interval + jitter)


def backoff_seconds(interval: int, errors: int, retry_after: float | None) -> float:
    """interval × 2^(errors-1), at most MAX_BACKOFF (never less than the interval), ±10 %;
    a server's Retry-After is a floor."""
    base = min(interval * 2 ** max(errors - 1, 0), MAX_BACKOFF)
    base = max(base, float(interval))
    wait = float(base) * random.uniform(0.9, 1.1)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return wait


def next_check_after_error(
    interval: int, errors: int, retry_after: float | None, now: datetime
) -> datetime:
    """`errors` counts this failure too."""
    return now + timedelta(seconds=backoff_seconds(interval, errors, retry_after))
