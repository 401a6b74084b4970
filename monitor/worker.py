"""The distributed mode: the Celery app, its beat schedule and thin tasks.

    celery -A monitor.worker worker --beat        # one machine
    celery -A monitor.worker beat                 # exactly one scheduler…
    celery -A monitor.worker worker -Q poll,deliver,celery   # …and N workers

Beat sends `poll_due_feeds` every second on the `poll` queue (expiring after 0.9 s): a free
worker process that gets it polls due feeds as a stream, as the embedded loop does: it takes
them MONITOR_POLL_BATCH at a time from the database (SKIP LOCKED, a lease per feed), fetches
them concurrently with the embedded loop's fetcher while it parses, classifies and stores
those already fetched, and takes more as they finish, for up to POLL_BUDGET seconds. When more
feeds are due than it takes, it sends one more `poll_due_feeds` for another free process.
The per-host limit holds across every process and machine (leases in Redis, `fetch.py`).
Beat also sends `sweep_deliveries` (retries due outbox rows) and `sync_feeds` (reloads
feeds.yaml). Feed intervals, backoff and Retry-After live in the database, so nothing in the
beat schedule needs rebuilding. A second beat is harmless: it only sends more ticks.

The Celery configuration comes from the settings object (`celery_config(settings)`), read
when Celery first needs it, not from the environment at import.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init
from kombu import Queue  # type: ignore[attr-defined]
from sqlalchemy.exc import OperationalError

from monitor import metrics, redact
from monitor.errors import ConfigError, MonitorError, StorageError, first_line
from monitor.maintenance import prune
from monitor.pipeline import (
    FeedsWatcher,
    Runtime,
    deliver_due,
    mark_alive,
    poll_due,
    poll_feeds,
    utcnow,
)
from monitor.retention import PRUNE_EVERY, plan
from monitor.settings import Settings, load_settings
from monitor.types import PollOutcome

log = logging.getLogger("monitor.worker")

POLL_QUEUE = "poll"
DELIVER_QUEUE = "deliver"
SCHEDULE_QUEUE = "celery"  # beat's own tasks: never behind a flood of polls
POLL_EVERY = 1.0
SWEEP_EVERY = 5.0
SYNC_EVERY = 30.0
# A poll task stops taking due feeds after this long (then asks for a follow-up), so that
# deliveries and beat's other tasks get a process between two streams.
POLL_BUDGET = 10.0
# New alerts ask for a delivery pass at most this often per process (and when a poll ends).
DELIVER_EVERY = 0.5
# Database connections per worker process: a poll task uses one at a time (leases, then each
# feed's transaction in turn), so 2 is plenty; 4 at most with the overflow.
DB_POOL_SIZE = 2
DB_MAX_OVERFLOW = 2


def engine_options(settings: Settings) -> dict[str, Any]:
    """A worker process's engine: a small pool (server-side prepared statements are off for
    every engine, `monitor.store.db.make_engine`)."""
    return {"pool_size": DB_POOL_SIZE, "max_overflow": DB_MAX_OVERFLOW}


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
            "monitor.poll_due_feeds": {"queue": POLL_QUEUE},
            "monitor.poll_feed": {"queue": POLL_QUEUE},
            "monitor.deliver_alert": {"queue": DELIVER_QUEUE},
            "monitor.sweep_deliveries": {"queue": DELIVER_QUEUE},
            "monitor.prune": {"queue": POLL_QUEUE},
        },
        "beat_schedule": {
            "poll-due-feeds": {
                "task": "monitor.poll_due_feeds",
                "schedule": POLL_EVERY,
                "options": {"expires": POLL_EVERY * 0.9},
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
            settings = _load_settings()
            _runtime = Runtime.build(settings, **engine_options(settings))
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


def _log_outcome(outcome: PollOutcome) -> None:
    if outcome.status == "error":
        log.warning("feed %s error %s", outcome.feed_url, outcome.error)
    else:
        log.info("feed %s %s new=%d matches=%d alerts=%d", outcome.feed_url, outcome.status,
                 outcome.new_items, outcome.matches, outcome.alerts)  # fmt: skip


class _DeliveryRequests:
    """Asks for a delivery pass after new alerts, at most every DELIVER_EVERY seconds per
    process. A pass (`deliver_due`) sends everything due, so one request covers every alert
    committed before it runs: one task per alert made 300 passes of 300 feeds' alerts, each
    reading every target's waiting rows. An alert stored after a request waits for the next
    one: at the next stored feed DELIVER_EVERY later, or when the poll task ends (`flush`)."""

    def __init__(self) -> None:
        self.asked_at = -DELIVER_EVERY
        self.owed: int | None = None  # an alert id not yet covered by a request

    def after(self, outcome: PollOutcome) -> None:
        if outcome.alert_ids:
            self.owed = outcome.alert_ids[-1]
        if self.owed is not None and time.monotonic() - self.asked_at >= DELIVER_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.owed is not None:
            try:
                deliver_alert_task.apply_async(args=[self.owed])
            except Exception as e:  # broker away: the 5-second sweep delivers them anyway
                log.warning("delivery pass not requested (%s); the sweep will send", e)
                return
            self.asked_at, self.owed = time.monotonic(), None


_deliveries = _DeliveryRequests()


def _after_poll(outcome: PollOutcome) -> None:
    """Each feed as soon as it is stored: a delivery pass asked for its alerts, one log
    line."""
    metrics.count_poll(outcome)
    _deliveries.after(outcome)
    _log_outcome(outcome)


def _ask_for_help() -> None:
    """More feeds are due than this task takes: one more poll task, for a free process."""
    poll_due_feeds.apply_async(expires=POLL_EVERY * 0.9)


@app.task(name="monitor.poll_due_feeds", soft_time_limit=90, time_limit=120)
def poll_due_feeds() -> dict[str, int]:
    """Beat's tick (and its own follow-ups): poll due feeds as a stream for up to
    POLL_BUDGET seconds; a tick that finds every process busy expires unexecuted."""
    try:
        watcher().check()
        rt = runtime()
        mark_alive(rt, "celery", "polling due feeds")
        outcomes = poll_due(rt, POLL_BUDGET, shared_limit_url(rt.settings), _after_poll,
                            _ask_for_help)  # fmt: skip
    except TRANSIENT as e:
        _database_down("poll_due_feeds", e)
        return {"polled": 0, "alerts": 0}
    finally:
        _deliveries.flush()
    return {"polled": len(outcomes), "alerts": sum(o.alerts for o in outcomes)}


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
def poll_feed_task(feed_id: int) -> dict[str, int]:
    """One feed now, whether due or not (skipped while another worker holds it)."""
    rt = runtime()
    outcomes = poll_feeds(rt, [feed_id], shared_limit_url(rt.settings))
    for outcome in outcomes:
        _after_poll(outcome)
    _deliveries.flush()
    return {"polled": len(outcomes), "alerts": sum(o.alerts for o in outcomes)}


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


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """MONITOR_METRICS_PORT: /metrics of this worker and its pool children (main process)."""
    try:
        settings = load_settings(with_feeds=False)
    except MonitorError as e:  # the tasks will say it too; the worker itself starts
        log.error("no metrics server: %s", e)
        return
    redact.install(settings.targets)  # no log record of this worker shows a target's secret
    # As `monitor run`: one line per poll from us, not one per HTTP request from httpx.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if settings.metrics_address is not None:
        metrics.serve_http(settings.metrics_address)
        log.info("metrics on http://%s:%d/metrics", *settings.metrics_address)


@worker_init.connect
def _load_word_vectors(**_: Any) -> None:
    """The word vectors of event clustering, loaded in the worker's main process before the
    pool forks (as `monitor run` does): the pool processes share the tables instead of each
    reading its own on its first matched item."""
    from monitor import wordvec

    wordvec.shared()


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
