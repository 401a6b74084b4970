"""A feed's health as a person reads it, in the CLI (`monitor feeds`) and the window
(`/feeds`, `/api/feeds`): one row per feed from what the store loaded, and whether the feed has
gone silent. Pure: no database, no clock of its own."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.store.browse import FeedView

SILENCE_FACTOR = 3  # a feed is silent after 3 × its usual gap between new items
FEED_WINDOW = timedelta(days=30)  # arrivals looked at for a feed's usual gap


@dataclass(frozen=True)
class Silence:
    usual_gap: timedelta | None  # median time between two arrivals of new items
    quiet_for: timedelta | None  # since the last arrival
    silent: bool


def silence(
    arrivals: Sequence[datetime], interval: int, now: datetime, factor: int = SILENCE_FACTOR
) -> Silence:
    """A feed is silent when no new item came for `factor` × its usual gap (the median gap
    between arrivals, never less than its polling interval). Three arrivals are needed to
    know a usual gap."""
    if not arrivals:
        return Silence(None, None, False)
    quiet = now - arrivals[-1]
    if len(arrivals) < 3:
        return Silence(None, quiet, False)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(arrivals)]
    usual = timedelta(seconds=max(statistics.median(gaps), float(interval)))
    return Silence(usual, quiet, quiet > usual * factor)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def feed_row(f: FeedView, now: datetime) -> dict[str, Any]:
    """The one JSON shape of a feed: `monitor feeds --format jsonl` and `/api/feeds`."""
    quiet = silence(f.arrivals, f.interval, now)
    return {
        "url": f.url,
        "name": f.name,
        "title": f.title,
        "interval": f.interval,
        "last_polled": _iso(f.last_polled_at),
        "last_status": f.last_status,
        "http_status": f.http_status,
        "error": f.error,
        "error_kind": f.error_kind,
        "error_count": f.error_count,
        "next_poll": _iso(f.next_check_at),
        "items": f.items,
        "items_seen": f.items_seen,
        "usual_gap_seconds": quiet.usual_gap.total_seconds() if quiet.usual_gap else None,
        "quiet_seconds": quiet.quiet_for.total_seconds() if quiet.quiet_for else None,
        "silent": quiet.silent,
    }
