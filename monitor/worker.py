"""The distributed mode: the Celery app, its beat schedule and thin tasks.

    celery -A monitor.worker worker --beat        # one machine
    celery -A monitor.worker beat                 # exactly one scheduler…
    celery -A monitor.worker worker -Q poll,deliver,celery   # …and N workers

Beat runs three small periodic tasks on their own queue: `enqueue_due_feeds` every second
(selects due feeds in the database and enqueues `poll_feed(id)`), `sweep_deliveries` (retries
due outbox rows) and `sync_feeds` (reloads feeds.yaml). Feed intervals, backoff and Retry-After
live in the database, so nothing in the beat schedule needs rebuilding. A second beat is
harmless: due feeds are taken with SKIP LOCKED and pushed ahead, polls take a per-feed lease,
and the unique constraints make a second alert impossible.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init
from kombu import Queue  # type: ignore[attr-defined]
from sqlalchemy.exc import OperationalError

from monitor import metrics
from monitor.errors import MonitorError, StorageError, first_line
from monitor.maintenance import prune
from monitor.pipeline import (
    FeedsWatcher,
    Runtime,
    deliver_due,
    enqueue_due,
    mark_alive,
    poll_feed,
    utcnow,
)
from monitor.retention import PRUNE_EVERY, plan
from monitor.settings import DEFAULT_BROKER_URL, load_settings

log = logging.getLogger("monitor.worker")

POLL_QUEUE = "poll"
DELIVER_QUEUE = "deliver"
SCHEDULE_QUEUE = "celery"  # beat's own tasks: never behind a flood of polls
ENQUEUE_EVERY = 1.0
SWEEP_EVERY = 5.0
SYNC_EVERY = 30.0

app = Celery("monitor", broker=os.environ.get("MONITOR_BROKER_URL") or DEFAULT_BROKER_URL)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": 3600},
    task_queues=[Queue(POLL_QUEUE), Queue(DELIVER_QUEUE), Queue(SCHEDULE_QUEUE)],
    task_default_queue=SCHEDULE_QUEUE,
    task_routes={
        "monitor.poll_feed": {"queue": POLL_QUEUE},
        "monitor.deliver_alert": {"queue": DELIVER_QUEUE},
        "monitor.sweep_deliveries": {"queue": DELIVER_QUEUE},
        "monitor.prune": {"queue": POLL_QUEUE},
    },
    beat_schedule={
        "enqueue-due-feeds": {
            "task": "monitor.enqueue_due_feeds",
            "schedule": ENQUEUE_EVERY,
            "options": {"expires": ENQUEUE_EVERY * 0.9},
        },
        "sweep-deliveries": {
            "task": "monitor.sweep_deliveries",
            "schedule": SWEEP_EVERY,
            "options": {"expires": SWEEP_EVERY * 0.9},
        },
        "prune": {
            "task": "monitor.prune",
            "schedule": PRUNE_EVERY.total_seconds(),
            "options": {"expires": 3600},
        },
        "sync-feeds": {
            "task": "monitor.sync_feeds",
            "schedule": SYNC_EVERY,
            "options": {"expires": SYNC_EVERY * 0.9},
        },
    },
    worker_hijack_root_logger=False,
)

_runtime: Runtime | None = None
_lock = threading.Lock()


def runtime() -> Runtime:
    """One Runtime per worker process, built after the fork (engines are not fork-safe)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime.build(load_settings(with_feeds=False))
        return _runtime


@worker_process_init.connect
def _reset_after_fork(**_: Any) -> None:
    global _runtime
    _runtime = None


TRANSIENT = (StorageError, OperationalError, ConnectionError)


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """MONITOR_METRICS_PORT: /metrics of this worker and its pool children (main process)."""
    try:
        address = load_settings(with_feeds=False).metrics_address
    except MonitorError as e:  # the tasks will say it too; the worker itself starts
        log.error("no metrics server: %s", e)
        return
    if address is not None:
        metrics.serve_http(address)
        log.info("metrics on http://%s:%d/metrics", *address)


_watcher: FeedsWatcher | None = None


def watcher() -> FeedsWatcher:
    """This process's feeds.yaml watcher; its first check syncs the file into the database."""
    global _watcher
    rt = runtime()
    if _watcher is None or _watcher.rt is not rt:
        _watcher = FeedsWatcher(rt, synced=False)
    return _watcher


@app.task(name="monitor.sync_feeds", autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def sync_feeds_task() -> dict[str, int]:
    return watcher().reload()


def _database_down(task: str, e: Exception) -> None:
    """Periodic tasks do not retry: their next tick is the retry. One line, no traceback."""
    log.warning("%s: database unavailable, the next tick tries again: %s", task, first_line(e))


@app.task(name="monitor.enqueue_due_feeds")
def enqueue_due_feeds() -> int:
    try:
        watcher().check()
        ids = enqueue_due(runtime())
        mark_alive(runtime(), "celery", f"{len(ids)} feeds enqueued")
    except TRANSIENT as e:
        _database_down("enqueue_due_feeds", e)
        return 0
    for feed_id in ids:
        poll_feed_task.apply_async(args=[feed_id])
    return len(ids)


@app.task(
    name="monitor.poll_feed",
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=90,
    time_limit=120,
)
def poll_feed_task(feed_id: int) -> dict[str, Any]:
    outcome = poll_feed(runtime(), feed_id)
    metrics.count_poll(outcome)
    for alert_id in outcome.alert_ids:
        deliver_alert_task.apply_async(args=[alert_id])
    log.info("feed %s %s new=%d matches=%d alerts=%d", outcome.feed_url, outcome.status,
             outcome.new_items, outcome.matches, outcome.alerts)  # fmt: skip
    return {"status": outcome.status, "new": outcome.new_items, "alerts": outcome.alerts}


@app.task(
    name="monitor.deliver_alert",
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def deliver_alert_task(alert_id: int) -> tuple[int, int]:
    """A delivery pass right after a poll made this alert (the alert policy decides per
    target, so everything due is looked at); failures stay in the outbox for the sweeper."""
    return deliver_due(runtime(), alert_ids=[alert_id])


@app.task(name="monitor.sweep_deliveries", soft_time_limit=240, time_limit=300)
def sweep_deliveries() -> tuple[int, int]:
    try:
        return deliver_due(runtime())
    except TRANSIENT as e:
        _database_down("sweep_deliveries", e)
        return (0, 0)


@app.task(name="monitor.prune", soft_time_limit=3000, time_limit=3600)
def prune_task() -> dict[str, int]:
    """Retention, once a day (beat also runs it at start), in small transactions."""
    rt = runtime()
    now = utcnow()
    try:
        report = prune(rt.db, plan(rt.settings.retention, now), now)
    except TRANSIENT as e:
        _database_down("prune", e)
        return {}
    return {"text_pruned": report.text_pruned, "forgotten": report.forgotten}
