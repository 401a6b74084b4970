"""The distributed mode: the Celery app, its beat schedule and thin tasks.

    celery -A monitor.worker worker --beat        # one machine
    celery -A monitor.worker beat                 # exactly one scheduler…
    celery -A monitor.worker worker -Q poll,deliver,celery   # …and N workers

Beat runs three small periodic tasks on their own queue: `enqueue_due_feeds` every second
(takes the due feeds in the database and enqueues them in batches, `poll_feeds(ids)`),
`sweep_deliveries` (retries due outbox rows) and `sync_feeds` (reloads feeds.yaml). A poll
task fetches its batch concurrently with the embedded loop's fetcher and parses, classifies and
stores in its own process; the per-host limit is shared by every worker through Redis. Feed
intervals, backoff and Retry-After live in the database, so nothing in the beat schedule needs
rebuilding. A second beat is harmless: due feeds are taken with SKIP LOCKED and pushed ahead,
polls take a per-feed lease behind a fence, and the unique constraints make a second alert
impossible.

The Celery configuration comes from the settings object (`celery_config(settings)`), read
when Celery first needs it, not from the environment at import.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from kombu import Queue  # type: ignore[attr-defined]
from sqlalchemy.exc import OperationalError

from monitor.errors import ConfigError, StorageError, first_line
from monitor.pipeline import (
    FeedsWatcher,
    Runtime,
    deliver_due,
    enqueue_due,
    poll_feeds,
    split_batches,
)
from monitor.settings import Settings, load_settings
from monitor.types import PollOutcome

log = logging.getLogger("monitor.worker")

POLL_QUEUE = "poll"
DELIVER_QUEUE = "deliver"
SCHEDULE_QUEUE = "celery"  # beat's own tasks: never behind a flood of polls
ENQUEUE_EVERY = 1.0
SWEEP_EVERY = 5.0
SYNC_EVERY = 30.0
ENQUEUE_LIMIT = 500  # feeds taken per tick at most (500/s: 150,000 feeds at a 5-minute interval)
# Database connections per worker process: a poll task uses one at a time (leases, then each
# feed's transaction in turn), so 2 is plenty; 4 at most with the overflow.
DB_POOL_SIZE = 2
DB_MAX_OVERFLOW = 2


def shared_limit_url(settings: Settings) -> str | None:
    """Where the per-host limit is shared: the broker, when it is Redis."""
    url = settings.broker_url
    return url if url.startswith(("redis://", "rediss://", "unix://")) else None


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings, from the monitor settings (paperless-ngx's config_from_object)."""
    return {
        "broker_url": settings.broker_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": 3600},
        "task_queues": [Queue(POLL_QUEUE), Queue(DELIVER_QUEUE), Queue(SCHEDULE_QUEUE)],
        "task_default_queue": SCHEDULE_QUEUE,
        "task_routes": {
            "monitor.poll_feed": {"queue": POLL_QUEUE},
            "monitor.poll_feeds": {"queue": POLL_QUEUE},
            "monitor.deliver_alert": {"queue": DELIVER_QUEUE},
            "monitor.sweep_deliveries": {"queue": DELIVER_QUEUE},
        },
        "beat_schedule": {
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
            "sync-feeds": {
                "task": "monitor.sync_feeds",
                "schedule": SYNC_EVERY,
                "options": {"expires": SYNC_EVERY * 0.9},
            },
        },
        "worker_hijack_root_logger": False,
    }


def _load_settings() -> Settings:
    try:
        return load_settings(with_feeds=False)
    except ConfigError as e:
        print(f"monitor: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


class SettingsConfig(Mapping[str, Any]):
    """`celery_config(load_settings())`, built on first use: Celery reads its configuration
    when it starts, so importing this module reads no environment."""

    def __init__(self) -> None:
        self._conf: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._conf is None:
            self._conf = celery_config(_load_settings())
        return self._conf

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


app = Celery("monitor")
app.config_from_object(SettingsConfig())

_runtime: Runtime | None = None
_lock = threading.Lock()


def runtime() -> Runtime:
    """One Runtime per worker process, built after the fork (engines are not fork-safe)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime.build(
                _load_settings(), pool_size=DB_POOL_SIZE, max_overflow=DB_MAX_OVERFLOW
            )
        return _runtime


@worker_process_init.connect
def _reset_after_fork(**_: Any) -> None:
    global _runtime
    _runtime = None


TRANSIENT = (StorageError, OperationalError, ConnectionError)


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
    """Take the due feeds and enqueue them in batches of MONITOR_POLL_BATCH."""
    try:
        watcher().check()
        rt = runtime()
        due = enqueue_due(rt, ENQUEUE_LIMIT)
    except TRANSIENT as e:
        _database_down("enqueue_due_feeds", e)
        return 0
    held_until = due.held_until.isoformat()
    for batch in split_batches(due.ids, rt.settings.poll_batch):
        poll_feeds_task.apply_async(args=[batch, held_until])
    return len(due.ids)


def _log_outcome(outcome: PollOutcome) -> None:
    if outcome.status == "error":
        log.warning("feed %s error %s", outcome.feed_url, outcome.error)
    else:
        log.info("feed %s %s new=%d matches=%d alerts=%d", outcome.feed_url, outcome.status,
                 outcome.new_items, outcome.matches, outcome.alerts)  # fmt: skip


def _after_polls(outcomes: list[PollOutcome]) -> None:
    for outcome in outcomes:
        for alert_id in outcome.alert_ids:
            deliver_alert_task.apply_async(args=[alert_id])
        _log_outcome(outcome)


POLL_TASK = dict(
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=90,
    time_limit=120,
)


@app.task(name="monitor.poll_feeds", **POLL_TASK)
def poll_feeds_task(feed_ids: list[int], held_until: str | None = None) -> dict[str, int]:
    """Poll a batch of feeds (concurrent fetches, the per-host limit shared in Redis)."""
    rt = runtime()
    fence = datetime.fromisoformat(held_until) if held_until else None
    outcomes = poll_feeds(rt, feed_ids, fence, shared_limit_url(rt.settings))
    _after_polls(outcomes)
    return {
        "polled": len(outcomes),
        "skipped": len(feed_ids) - len(outcomes),
        "alerts": sum(o.alerts for o in outcomes),
    }


@app.task(name="monitor.poll_feed", **POLL_TASK)
def poll_feed_task(feed_id: int) -> dict[str, int]:
    """One feed (what an older beat enqueued): a batch of one."""
    result: dict[str, int] = poll_feeds_task(feed_ids=[feed_id])
    return result


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
    """Deliver one alert to its targets; failures stay in the outbox for the sweeper."""
    return deliver_due(runtime(), alert_ids=[alert_id])


@app.task(name="monitor.sweep_deliveries", soft_time_limit=240, time_limit=300)
def sweep_deliveries() -> tuple[int, int]:
    try:
        return deliver_due(runtime())
    except TRANSIENT as e:
        _database_down("sweep_deliveries", e)
        return (0, 0)
