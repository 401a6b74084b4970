"""The embedded loop behind `monitor run`: every feed on its own schedule, one process,
no broker. The loop fetches; a small process pool parses, classifies and stores, so both
cores work."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from types import FrameType

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StorageError, first_line
from monitor.maintenance import prune
from monitor.pipeline import FeedsWatcher, Runtime, init_worker, run_cycle, sync_feeds, utcnow
from monitor.retention import plan, prune_due
from monitor.store import feeds as feed_store
from monitor.store import outbox
from monitor.store.models import Feed
from monitor.types import CycleSummary, PollOutcome

log = logging.getLogger("monitor.run")
MAX_SLEEP = 1.0  # the loop looks for due feeds and due deliveries at least this often
MAX_OUTAGE_WAIT = 30.0  # while the database is down, it is tried again at least this often
WORKER_PROCESSES = 2
STOP_GRACE = 2.0  # after the first Ctrl-C / SIGTERM, stores in progress get this long


class Stopper:
    """SIGINT and SIGTERM for `monitor run`. The first one stops taking work: the fetches in
    flight are cancelled, polls not yet stored are abandoned (their leases released), a store
    in progress gets STOP_GRACE seconds. The second one exits at once (status 130), killing
    the pool processes (what they had not committed is polled again after its lease)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signals = 0

    @classmethod
    def install(cls) -> Stopper:
        stopper = cls()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, stopper.handle)
        return stopper

    @property
    def interrupted(self) -> bool:
        return self.event.is_set()

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        self.signals += 1
        if self.signals > 1:
            os.write(2, b"monitor: second signal: exiting now\n")
            for child in multiprocessing.active_children():
                child.kill()
            os._exit(130)
        self.event.set()
        os.write(2, b"monitor: stopping (press Ctrl-C again to exit at once)\n")
        try:
            loop = asyncio.get_running_loop()  # the signal came while the loop fetches
        except RuntimeError:
            return
        loop.call_soon_threadsafe(_cancel_tasks, loop)


def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


def _init_pool_process(rt: Runtime) -> None:
    """Pool processes leave signals to the parent (a terminal's Ctrl-C reaches the whole
    process group; the parent decides what is finished and what is abandoned)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    init_worker(rt)


def _shutdown_pool(pool: ProcessPoolExecutor, grace: float | None) -> None:
    """Wait for the pool's work (forever when grace is None, else `grace` seconds, then kill
    its processes: their transactions roll back and the feeds are polled again)."""
    if grace is None:
        pool.shutdown(wait=True)
        return
    waiter = threading.Thread(
        target=pool.shutdown, kwargs={"wait": True, "cancel_futures": True}, daemon=True
    )
    waiter.start()
    waiter.join(grace)
    if waiter.is_alive():
        log.warning("a store did not finish within %.0f s: abandoned", grace)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        waiter.join(5.0)


def release_leases(rt: Runtime) -> int:
    """Give back the feeds this process leased and did not poll (after an interruption)."""
    with rt.db.session() as s:
        return feed_store.release_leases(s, rt.owner)


def _pid_gone(owner: str) -> bool:
    """True when `owner` (host:pid[/pid]) is a process of this machine that no longer runs."""
    host, _, rest = owner.rpartition(":")
    pid = rest.split("/", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def report_leases(rt: Runtime) -> None:
    """At start: leases left by a process of this machine that is gone (a `run --once` killed
    with SIGKILL) are released; feeds leased by a live process elsewhere are skipped, and
    that is said, not left silent."""
    now = utcnow()
    with rt.db.session() as s:
        held = feed_store.leased_elsewhere(s, now, rt.owner)
        gone = sorted({owner for _, owner, _ in held if _pid_gone(owner)})
        released = sum(feed_store.release_leases(s, owner) for owner in gone)
    if released:
        log.info("released %d feed leases of a process that is gone (%s)", released,
                 ", ".join(gone))  # fmt: skip
    live = [(url, owner, until) for url, owner, until in held if owner not in gone]
    if live:
        owners = sorted({owner for _, owner, _ in live})
        log.warning(
            "%d feeds are leased by another process (%s, until %s): skipped until then",
            len(live),
            ", ".join(owners),
            max(until for _, _, until in live).strftime("%H:%M:%S UTC"),
        )


def summarise(outcomes: list[PollOutcome]) -> CycleSummary:
    summary = CycleSummary(feeds=len(outcomes), outcomes=list(outcomes))
    for o in outcomes:
        summary.ok += o.status == "ok"
        summary.not_modified += o.status == "not-modified"
        summary.errors += o.status == "error"
        summary.new_items += o.new_items
        summary.matches += o.matches
        summary.alerts += o.alerts
    return summary


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
    """The processes that parse, classify and store fetched feeds (the loop only fetches).

    The word vectors of event clustering are loaded here, before the fork: the children share
    their tables instead of each reading its own."""
    import multiprocessing

    from monitor import wordvec

    wordvec.shared()
    return ProcessPoolExecutor(
        WORKER_PROCESSES,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_init_pool_process,
        initargs=(rt,),
    )


def run_once(rt: Runtime, stopper: Stopper | None = None) -> CycleSummary:
    stopper = stopper or Stopper()
    report_leases(rt)
    sync_feeds(rt)
    done: list[PollOutcome] = []

    def on_outcome(o: PollOutcome) -> None:
        done.append(o)
        log_outcome(o)

    if stopper.interrupted:
        return summarise(done)
    pool = make_worker_pool(rt)
    try:
        summary = run_cycle(rt, pool, on_outcome, everything=True)
    except asyncio.CancelledError:
        if not stopper.interrupted:
            raise
        summary = summarise(done)
    finally:
        _shutdown_pool(pool, STOP_GRACE if stopper.interrupted else None)
    if stopper.interrupted:
        log.warning(
            "interrupted: %d feeds polled; released the leases of %d not polled (the next run "
            "polls them at once); alerts not yet sent stay queued",
            len(done),
            release_leases(rt),
        )
    log_summary(summary)
    return summary


def run_forever(
    rt: Runtime,
    stop: threading.Event | None = None,
    on_cycle: Callable[[CycleSummary], None] | None = None,
) -> None:
    if stop is None:
        stop = Stopper.install().event
    report_leases(rt)
    synced = sync_feeds(rt)
    log.info("feeds.yaml: %s", ", ".join(f"{n} {what}" for what, n in synced.items()))
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
                try:
                    summary = run_cycle(rt, pool, log_outcome)
                except asyncio.CancelledError:
                    if not stop.is_set():
                        raise
                    break
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
        _shutdown_pool(pool, STOP_GRACE if stop.is_set() else None)
    if stop.is_set():
        try:
            log.info("stopped; released the leases of %d feeds not polled", release_leases(rt))
        except (SQLAlchemyError, StorageError) as e:
            log.error("stopped; leases not released (%s): they expire by themselves", first_line(e))
    else:
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
