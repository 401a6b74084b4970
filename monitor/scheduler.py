"""The embedded loop behind `monitor run`: every feed on its own schedule, one process,
no broker. The loop fetches; a small process pool parses, classifies and stores, so both
cores work."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StorageError, first_line
from monitor.maintenance import prune
from monitor.pipeline import FeedsWatcher, Runtime, init_worker, run_cycle, sync_feeds, utcnow
from monitor.retention import plan, prune_due
from monitor.store import outbox
from monitor.store.models import Feed
from monitor.types import CycleSummary, PollOutcome

log = logging.getLogger("monitor.run")
MAX_SLEEP = 1.0  # the loop looks for due feeds and due deliveries at least this often
MAX_OUTAGE_WAIT = 30.0  # while the database is down, it is tried again at least this often
WORKER_PROCESSES = 2


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


def make_worker_pool(rt: Runtime) -> ProcessPoolExecutor:
    """The processes that parse, classify and store fetched feeds (the loop only fetches)."""
    import multiprocessing

    return ProcessPoolExecutor(
        WORKER_PROCESSES,
        mp_context=multiprocessing.get_context("fork"),
        initializer=init_worker,
        initargs=(rt,),
    )


def run_once(rt: Runtime) -> CycleSummary:
    sync_feeds(rt)
    with make_worker_pool(rt) as pool:
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
    pool = make_worker_pool(rt)
    pruner = DailyPrune(rt)
    outage = 0
    try:
        while not stop.is_set():
            try:
                watcher.check()
                pruner.maybe_start()
                if getattr(pool, "_broken", False):  # a pool process died (OOM kill, signal)
                    log.error("a worker process died; starting a new pool")
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = make_worker_pool(rt)
                summary = run_cycle(rt, pool, log_outcome)
                if summary.feeds or summary.delivered or summary.delivery_failures:
                    log_summary(summary)
                if on_cycle:
                    on_cycle(summary)
                wait = _sleep_for(rt)
                outage = 0
            except (SQLAlchemyError, StorageError) as e:
                # The database restarted or is unreachable: keep running and try again.
                # Polls that could not be stored are polled again when their lease expires.
                outage += 1
                wait = min(MAX_OUTAGE_WAIT, 2.0**outage)
                log.error("database unavailable (%s); next try in %.0f s", first_line(e), wait)
            stop.wait(wait)
    finally:
        pool.shutdown()
    log.info("stopped")


class DailyPrune:
    """Retention once a day (and at start), in a thread: its small transactions interleave
    with the polls' writes instead of holding the loop."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.last_run: datetime | None = None
        self.thread: threading.Thread | None = None

    def maybe_start(self) -> None:
        now = utcnow()
        if (self.thread and self.thread.is_alive()) or not prune_due(self.last_run, now):
            return
        self.last_run = now
        self.thread = threading.Thread(target=self._run, args=(now,), name="prune", daemon=True)
        self.thread.start()

    def _run(self, now: datetime) -> None:
        try:
            prune(self.rt.db, plan(self.rt.settings.retention, now), now)
        except Exception as e:  # the disk is full, the database restarted: try tomorrow
            log.error("retention run failed (%s); next try in a day", first_line(e))


def _sleep_for(rt: Runtime) -> float:
    now = utcnow()
    with rt.db.session() as s:
        next_feed = s.scalar(select(func.min(Feed.next_check_at)).where(Feed.enabled.is_(True)))
        next_delivery = outbox.next_delivery_due(s)
    soonest = min((t for t in (next_feed, next_delivery) if t), default=now + timedelta(seconds=1))
    return max(0.05, min(MAX_SLEEP, (soonest - now).total_seconds()))
