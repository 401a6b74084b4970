"""Prometheus series of the pipeline, every name prefixed `monitor_`.

The embedded loop (`monitor run`) and the Celery workers count the same series. Both run
several processes (the loop's parse/store pool, Celery's prefork children), so the counters
use prometheus_client's multiprocess mode: each process writes its values to files in
`PROMETHEUS_MULTIPROC_DIR`, and whoever serves /metrics adds them up.

prometheus_client chooses that mode when it is first imported, from the environment. So this
module, imported by `pipeline` before any process forks, reads two variables once at import:
`PROMETHEUS_MULTIPROC_DIR` (the operator's shared directory), or, when only
`MONITOR_METRICS_PORT` is set, a private temporary directory for this process tree.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any

_PRIVATE_DIR: str | None = None
if os.environ.get("MONITOR_METRICS_PORT") and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _PRIVATE_DIR = tempfile.mkdtemp(prefix="monitor-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _PRIVATE_DIR
    _OWNER = os.getpid()

    @atexit.register
    def _remove_private_dir() -> None:
        if os.getpid() == _OWNER:  # not in a forked child that happens to run atexit
            shutil.rmtree(_PRIVATE_DIR or "", ignore_errors=True)


from prometheus_client import (  # noqa: E402  (the mode above must be chosen first)
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402

from monitor.errors import FetchError  # noqa: E402
from monitor.types import FetchResult, PollOutcome  # noqa: E402

POLLS = Counter(
    "monitor_polls",
    "Feed polls by outcome (ok, not-modified, error, skipped)",
    ["outcome"],
)
FETCH_ERRORS = Counter(
    "monitor_fetch_errors",
    "Feed requests that failed, by kind (network, timeout, http-500, too-large…)",
    ["kind"],
)
ITEMS = Counter("monitor_items", "New items stored")
MATCHES = Counter("monitor_matches", "Items that matched a topic")
ALERTS = Counter("monitor_alerts", "Alerts created (one per story)")
SPLITS = Counter(
    "monitor_story_splits",
    "Items split off their story from the window, each a new story with its own alert",
)
DELIVERIES = Counter(
    "monitor_deliveries",
    "Delivery attempts by outcome (sent; failed: retried later; dead: given up)",
    ["outcome"],
)
CYCLE_SECONDS = Histogram(
    "monitor_cycle_duration_seconds",
    "Duration of one cycle of the embedded loop (fetch, store, deliver)",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
STORY_ASSIGNMENT_SECONDS = Histogram(
    "monitor_story_assignment_seconds",
    "Time to give one poll's matched items their stories, matches and alerts",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def count_fetch(result: FetchResult | FetchError) -> None:
    if isinstance(result, FetchError):
        FETCH_ERRORS.labels(kind=result.kind).inc()


def count_poll(outcome: PollOutcome) -> None:
    POLLS.labels(outcome=outcome.status).inc()
    if outcome.new_items:
        ITEMS.inc(outcome.new_items)
    if outcome.matches:
        MATCHES.inc(outcome.matches)
    if outcome.alerts:
        ALERTS.inc(outcome.alerts)


def count_split() -> None:
    """An analyst's « another event »: one more story, and its alert."""
    SPLITS.inc()
    ALERTS.inc()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def registry() -> CollectorRegistry:
    """What a scrape reads: every process of the tree in multiprocess mode, else this one."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    reg = CollectorRegistry()
    MultiProcessCollector(reg, path=path)  # type: ignore[no-untyped-call]
    return reg


def exposition(*extra: CollectorRegistry) -> bytes:
    """The Prometheus text of the pipeline's series, then of `extra` registries."""
    return b"".join(generate_latest(r) for r in (registry(), *extra))


def serve_http(address: tuple[str, int]) -> Any:
    """Start prometheus_client's HTTP server (a daemon thread) on (host, port)."""
    host, port = address
    return start_http_server(port, addr=host, registry=registry())
