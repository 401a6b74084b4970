"""The embedded loop behind `monitor run`: every feed on its own schedule, one process,
no broker. Parsing uses a small process pool so both cores work."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select

from monitor.pipeline import FeedsWatcher, Runtime, run_cycle, sync_feeds, utcnow
from monitor.store import repo
from monitor.store.models import Feed
from monitor.types import CycleSummary, PollOutcome

log = logging.getLogger("monitor.run")
MAX_SLEEP = 1.0  # the loop looks for due feeds and due deliveries at least this often
PARSER_PROCESSES = 2


def log_outcome(o: PollOutcome) -> None:
    if o.status == "error":
        log.warning("feed %s error %s (%.2fs)", o.feed_url, o.error, o.elapsed)
    else:
        log.info(
            "feed %s %s http=%s items=%d new=%d matches=%d alerts=%d (%.2fs)",
            o.feed_url,
            o.status,
            o.http_status,
            o.items_seen,
            o.new_items,
            o.matches,
            o.alerts,
            o.elapsed,
        )


def log_summary(s: CycleSummary) -> None:
    log.info(
        "cycle: %d feeds (%d ok, %d not modified, %d errors), %d new items, %d matches, "
        "%d alerts, %d delivered, %d delivery failures queued for retry, %.2fs",
        s.feeds,
        s.ok,
        s.not_modified,
        s.errors,
        s.new_items,
        s.matches,
        s.alerts,
        s.delivered,
        s.delivery_failures,
        s.elapsed,
    )


def make_parser_pool() -> ProcessPoolExecutor:
    import multiprocessing

    return ProcessPoolExecutor(PARSER_PROCESSES, mp_context=multiprocessing.get_context("fork"))


def run_once(rt: Runtime) -> CycleSummary:
    sync_feeds(rt)
    with make_parser_pool() as pool:
        summary = run_cycle(rt, pool, log_outcome, everything=True)
    log_summary(summary)
    return summary


def run_forever(
    rt: Runtime,
    stop: threading.Event | None = None,
    on_cycle: Callable[[CycleSummary], None] | None = None,
) -> None:
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    log.info("sync feeds: %s", sync_feeds(rt))
    watcher = FeedsWatcher(rt, synced=True)
    with make_parser_pool() as pool:
        while not stop.is_set():
            watcher.check()
            summary = run_cycle(rt, pool, log_outcome)
            if summary.feeds or summary.delivered or summary.delivery_failures:
                log_summary(summary)
            if on_cycle:
                on_cycle(summary)
            stop.wait(_sleep_for(rt))
    log.info("stopped")


def _sleep_for(rt: Runtime) -> float:
    now = utcnow()
    with rt.db.session() as s:
        next_feed = s.scalar(select(func.min(Feed.next_check_at)).where(Feed.enabled.is_(True)))
        next_delivery = repo.next_delivery_due(s)
    soonest = min((t for t in (next_feed, next_delivery) if t), default=now + timedelta(seconds=1))
    return max(0.05, min(MAX_SLEEP, (soonest - now).total_seconds()))
