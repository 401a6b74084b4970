"""The one place where the steps meet: fetch → parse → classify → store → notify.

The embedded loop (`monitor run`) and the Celery tasks call these same functions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from monitor import deliver, metrics
from monitor.classify import Profile, classify, load_profile
from monitor.errors import (
    ConfigError,
    FetchError,
    ParseError,
    StorageError,
    first_line,
)
from monitor.events import grouping_params, profile_aliases
from monitor.fetch import Fetcher, FetchRequest, fetch_many
from monitor.parse import ParsedFeed, parse_feed
from monitor.schedule import next_check_after_error, next_check_after_ok
from monitor.settings import FEEDS_FILE, Settings, load_feeds
from monitor.store import Database, ensure_schema, heartbeat
from monitor.store import feeds as feed_store
from monitor.store import items as item_store
from monitor.store import matches as match_store
from monitor.store.db import once_more_on_conflict
from monitor.store.stories import StoryCache
from monitor.targets import check_tags
from monitor.types import CycleSummary, FetchResult, PollOutcome, Target

log = logging.getLogger("monitor.pipeline")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """What every pipeline function needs, built once per process."""

    settings: Settings
    db: Database
    profile: Profile
    owner: str
    # This process's event index (story clustering), refreshed incrementally from the database:
    # the profile's aliases, and the knobs MONITOR_GROUPING chooses.
    stories: StoryCache = field(init=False)

    def __post_init__(self) -> None:
        self.stories = StoryCache(
            params=grouping_params(self.settings.grouping), aliases=profile_aliases(self.profile)
        )

    @classmethod
    def build(cls, settings: Settings, migrate: bool = True, **db_options: Any) -> Runtime:
        """`db_options` go to the engine (the Celery worker bounds its pool with them).
        Everything is validated before a database is created or migrated."""
        profile = load_profile(settings.profile_path)
        check_tags(settings.targets, profile.topics)
        db = Database(settings.database_url, **db_options)
        if migrate:
            ensure_schema(db.engine)
        owner = f"{socket.gethostname()}:{os.getpid()}"
        return cls(settings=settings, db=db, profile=profile, owner=owner)

    @property
    def targets(self) -> tuple[Target, ...]:
        return self.settings.targets


def sync_feeds(rt: Runtime) -> dict[str, int]:
    with rt.db.session() as s:
        return feed_store.sync_feeds(s, rt.settings.feeds, utcnow())


class FeedsWatcher:
    """Follows feeds.yaml into the database without a restart: `check()` reloads when the
    file changed, and a broken edit is reported while the previous list is kept."""

    def __init__(self, rt: Runtime, synced: bool):
        self.rt = rt
        self.path = rt.settings.config_dir / FEEDS_FILE
        self.mtime = self._mtime() if synced else None

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def reload(self) -> dict[str, int]:
        """Read feeds.yaml (ConfigError when invalid) and sync the feeds table."""
        self.mtime = self._mtime()
        feeds = load_feeds(self.path, self.rt.settings.poll_interval)
        self.rt.settings = replace(self.rt.settings, feeds=feeds)
        return sync_feeds(self.rt)

    def check(self) -> None:
        if self._mtime() == self.mtime:
            return
        try:
            log.info("feeds.yaml reloaded: %s", self.reload())
        except ConfigError as e:
            log.error("feeds.yaml changed but is invalid, keeping the previous list: %s", e)


def parse_body(body: bytes, url: str) -> ParsedFeed | ParseError:
    """Parsing as a value (runs in a worker process; exceptions cross as values)."""
    try:
        return parse_feed(body, url)
    except ParseError as e:
        return e
    except Exception as e:  # never let one strange feed stop the cycle
        return ParseError(f"not a feed: {type(e).__name__}: {e}")


def store_poll(
    rt: Runtime,
    feed_id: int,
    result: FetchResult | FetchError,
    parsed: ParsedFeed | ParseError | None,
) -> PollOutcome:
    """Record one poll in one transaction: items, matches, alerts, outbox rows, feed state.
    ETag/Last-Modified are saved with the items, so a crash before commit re-fetches. A
    transaction PostgreSQL aborts for a conflict (a deadlock with another poll inserting the
    same new items in another order, say) wrote nothing: it runs once more at once, instead of
    the feed waiting for its lease to expire."""
    return once_more_on_conflict(lambda: _store_poll_once(rt, feed_id, result, parsed))


def _store_poll_once(
    rt: Runtime,
    feed_id: int,
    result: FetchResult | FetchError,
    parsed: ParsedFeed | ParseError | None,
) -> PollOutcome:
    now = utcnow()
    # Classified before the transaction opens, so the write lock is held only for writing.
    verdicts = (
        {it.key: classify(it, rt.profile) for it in parsed.items}
        if isinstance(parsed, ParsedFeed)
        else {}
    )
    with rt.db.session() as s:
        feed = feed_store.load_for_poll(s, feed_id)  # its COMMIT does not wait for the disk
        if feed is None:
            return PollOutcome(feed_url="?", status="error", error="feed removed")
        url = feed.url
        if isinstance(result, FetchError):
            status = int(result.kind[5:]) if result.kind.startswith("http-") else None
            retry = next_check_after_error(
                feed.interval, (feed.error_count or 0) + 1, result.retry_after, now
            )
            feed_store.record_fetch_error(feed, now, retry, result.kind, str(result), status)
            return PollOutcome(url, "error", status, error=_kind_said(result.kind, str(result)))
        if isinstance(parsed, ParseError):
            retry = next_check_after_error(feed.interval, (feed.error_count or 0) + 1, None, now)
            feed_store.record_fetch_error(
                feed, now, retry, "not-a-feed", str(parsed), result.status
            )
            return PollOutcome(
                url, "error", result.status, error=f"not-a-feed: {parsed}", elapsed=result.elapsed
            )
        if result.status == 304 or parsed is None:
            feed_store.record_fetch_ok(
                feed, result, now, next_check_after_ok(feed.interval, now), None, 0
            )
            return PollOutcome(url, "not-modified", result.status, elapsed=result.elapsed)
        stored = item_store.store_items(s, feed_id, parsed.items, now)
        new = sum(st.new for st in stored)
        matched = []
        for st in stored:
            if st.new or st.edited:
                c = verdicts[st.item.key]
                if c.match:
                    matched.append((st.row_id, st.item, c))
        # The feed's state is written before story assignment, whose lock (across workers)
        # is then held for fewer statements.
        next_check = next_check_after_ok(feed.interval, now)
        feed_store.record_fetch_ok(feed, result, now, next_check, parsed.title, new, parsed.bozo)
        if matched:
            s.flush()
        with metrics.STORY_ASSIGNMENT_SECONDS.time():
            recorded = match_store.record_matches(s, matched, now, rt.stories)
        matches = sum(m is not None for m, _ in recorded)
        new_alerts = [alert for _, alert in recorded if alert is not None]
        alert_ids = [alert.id for alert in new_alerts]
        deliver.route_new_alerts(s, [(a.id, a.topics) for a in new_alerts], rt.targets, now)
        return PollOutcome(
            url,
            "ok",
            result.status,
            new_items=new,
            matches=matches,
            alerts=len(alert_ids),
            elapsed=result.elapsed,
            items_seen=len(parsed.items),
            alert_ids=tuple(alert_ids),
        )


def poll_feed(rt: Runtime, feed_id: int) -> PollOutcome:
    """One feed end to end, synchronously. Skips the feed when another worker holds its
    lease."""
    outcomes = poll_feeds(rt, [feed_id])
    if not outcomes:
        return PollOutcome(feed_url=str(feed_id), status="skipped", error="leased elsewhere")
    return outcomes[0]


def poll_feeds(
    rt: Runtime, feed_ids: Sequence[int], shared_limit_url: str | None = None
) -> list[PollOutcome]:
    """These feeds end to end: take the lease of those nobody holds, fetch them concurrently,
    parse, classify and store each in this process. Feeds not taken are left out."""
    now = utcnow()
    with rt.db.session() as s:
        taken = feed_store.lease_feeds(s, feed_ids, now, rt.owner, rt.settings.lease_seconds)
    requests = [FetchRequest(fid, url, etag, lm) for fid, url, etag, lm in taken]
    if not requests:
        return []
    return asyncio.run(poll_leased(rt, requests, shared_limit_url=shared_limit_url))


_WORKER: Runtime | None = None


def init_worker(parent: Runtime) -> None:
    """Process-pool initializer (fork): leave the parent's database connections alone and
    open this process's own, with the same settings and profile."""
    global _WORKER
    parent.db.engine.dispose(close=False)
    _WORKER = Runtime(
        settings=parent.settings,
        db=Database(parent.settings.database_url),
        profile=parent.profile,
        owner=f"{parent.owner}/{os.getpid()}",
    )


def process_fetched(feed_id: int, result: FetchResult | FetchError) -> PollOutcome:
    """In a pool process: parse, classify and store one fetched feed (its own transaction)."""
    assert _WORKER is not None, "init_worker did not run"
    return _process_here(_WORKER, feed_id, result)


async def poll_due_feeds(
    rt: Runtime,
    workers: Executor | None = None,
    on_outcome: Callable[[PollOutcome], None] | None = None,
    everything: bool = False,
) -> list[PollOutcome]:
    """Poll every due feed concurrently. The event loop only fetches; each fetched feed is
    parsed, classified and stored by a process of `workers` (a pool made with `init_worker`),
    so both cores work and the loop keeps fetching. Without a pool, a thread stores one feed
    at a time."""
    now = utcnow()
    with rt.db.session() as s:
        feeds = feed_store.lease_due_feeds(
            s, now, rt.owner, rt.settings.lease_seconds, everything=everything
        )
        requests = [FetchRequest(f.id, f.url, f.etag, f.last_modified) for f in feeds]
    return await poll_leased(rt, requests, workers, on_outcome)


class _Finisher:
    """Parses, classifies and stores fetched feeds: in a process of `workers` (a pool made
    with `init_worker`), else in a thread, one feed at a time. A feed that cannot be stored
    is logged in one line and polled again when its lease expires."""

    def __init__(
        self,
        rt: Runtime,
        workers: Executor | None = None,
        on_outcome: Callable[[PollOutcome], None] | None = None,
    ):
        self.rt, self.workers, self.on_outcome = rt, workers, on_outcome
        self.lock = asyncio.Lock()
        self.outcomes: list[PollOutcome] = []

    async def __call__(self, req: FetchRequest, res: FetchResult | FetchError) -> None:
        try:
            if self.workers is not None:
                loop = asyncio.get_running_loop()
                outcome = await loop.run_in_executor(
                    self.workers, process_fetched, _feed_id(req), res
                )
            else:
                async with self.lock:
                    outcome = await asyncio.to_thread(_process_here, self.rt, _feed_id(req), res)
        except (SQLAlchemyError, StorageError) as e:  # the database is down: one line a feed
            log.error("storing %s failed (%s); polled again when its lease expires", req.url,
                      first_line(e))  # fmt: skip
            outcome = PollOutcome(req.url, "error", error=f"database: {first_line(e)}")
        except Exception as e:  # a dead pool process, a bug: the same retry, with a traceback
            log.exception("storing %s failed; polled again when its lease expires", req.url)
            outcome = PollOutcome(req.url, "error", error=f"internal: {type(e).__name__}: {e}")
        self.outcomes.append(outcome)
        if self.on_outcome:
            self.on_outcome(outcome)


async def poll_leased(
    rt: Runtime,
    requests: Sequence[FetchRequest],
    workers: Executor | None = None,
    on_outcome: Callable[[PollOutcome], None] | None = None,
    shared_limit_url: str | None = None,
) -> list[PollOutcome]:
    """Fetch feeds this process holds the lease of; process each as soon as it is fetched."""
    finish = _Finisher(rt, workers, on_outcome)
    pending: list[asyncio.Task[None]] = []
    async for req, res in fetch_many(requests, rt.settings.limits, shared_limit_url):
        metrics.count_fetch(res)
        pending.append(asyncio.create_task(finish(req, res)))
    if pending:
        await asyncio.gather(*pending)
    return finish.outcomes


def lease_due(rt: Runtime, limit: int) -> list[FetchRequest]:
    """Take the lease of up to `limit` due feeds, oldest check first, in one statement over
    the due rows only (the next_check_at index); rows other workers are taking are skipped."""
    with rt.db.session() as s:
        taken = feed_store.lease_due_feed_rows(
            s, utcnow(), rt.owner, rt.settings.lease_seconds, limit
        )
    return [FetchRequest(fid, url, etag, lm) for fid, url, etag, lm in taken]


async def poll_due_stream(
    rt: Runtime,
    budget: float,
    shared_limit_url: str | None = None,
    on_outcome: Callable[[PollOutcome], None] | None = None,
    on_more_due: Callable[[], None] | None = None,
) -> list[PollOutcome]:
    """What a Celery poll task runs: poll due feeds as a stream, like the embedded loop, in
    this process. It takes due feeds MONITOR_POLL_BATCH at a time and takes more whenever
    fewer than that are in flight (fetching, or fetched and waiting for the store), so that
    the network waits of the next feeds overlap the parsing and storing of the previous ones.
    It stops taking feeds when none are left or after `budget` seconds, and returns when the
    ones it took are stored. `on_more_due` is called when more feeds are due than this stream
    takes: after a full first take (another idle worker process can help) and when the budget
    ends it (someone should go on)."""
    chunk = rt.settings.poll_batch
    finish = _Finisher(rt, None, on_outcome)
    stop_taking = time.monotonic() + budget
    inflight: set[asyncio.Task[None]] = set()
    first = True
    async with Fetcher(rt.settings.limits, shared_limit_url=shared_limit_url) as fetcher:

        async def one(req: FetchRequest) -> None:
            await finish(req, await fetcher.fetch_request(req))

        more = True
        while True:
            if more and len(inflight) < chunk and time.monotonic() < stop_taking:
                try:
                    taken = await asyncio.to_thread(lease_due, rt, chunk)
                except (SQLAlchemyError, StorageError) as e:
                    if first:
                        raise
                    log.error("taking due feeds failed (%s); finishing the ones taken",
                              first_line(e))  # fmt: skip
                    taken = []
                more = len(taken) == chunk
                if first and more and on_more_due is not None:
                    on_more_due()
                first = False
                inflight |= {asyncio.create_task(one(r)) for r in taken}
            if not inflight:
                break
            _, inflight = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
    if more and on_more_due is not None:  # stopped by the budget, not for want of due feeds
        on_more_due()
    return finish.outcomes


def poll_due(
    rt: Runtime,
    budget: float,
    shared_limit_url: str | None = None,
    on_outcome: Callable[[PollOutcome], None] | None = None,
    on_more_due: Callable[[], None] | None = None,
) -> list[PollOutcome]:
    """`poll_due_stream`, synchronously (a Celery task)."""
    return asyncio.run(poll_due_stream(rt, budget, shared_limit_url, on_outcome, on_more_due))


def _process_here(rt: Runtime, feed_id: int, result: FetchResult | FetchError) -> PollOutcome:
    parsed = None
    if isinstance(result, FetchResult) and result.status != 304 and result.body is not None:
        parsed = parse_body(result.body, result.final_url)
    return store_poll(rt, feed_id, result, parsed)


def _kind_said(kind: str, message: str) -> str:
    """A fetch error as `kind: message`, the kind said once (« network: network error: … »
    was the log's and `monitor feeds`' line)."""
    head = message.split(":", 1)[0].strip().lower()
    return message if head.split()[:1] == [kind] else f"{kind}: {message}"


def _feed_id(req: FetchRequest) -> int:
    assert isinstance(req.key, int)
    return req.key


def deliver_due(
    rt: Runtime, limit: int = 200, alert_ids: Sequence[int] | None = None
) -> tuple[int, int]:
    """Decide and send what is due for every target (`monitor.deliver`); returns (delivered,
    failed) rows. `alert_ids` is accepted for callers that deliver right after a poll: the
    policy decides per target, so everything due is looked at."""
    return deliver.deliver_due(rt.db, rt.targets, lambda: utcnow(), delivery_settings(rt), limit)


def delivery_settings(rt: Runtime) -> deliver.DeliverySettings:
    s = rt.settings
    return deliver.DeliverySettings(
        claim_seconds=s.claim_seconds,
        retry_base_seconds=s.retry_base_seconds,
        give_up_hours=s.delivery_give_up_hours,
        public_url=s.public_url,
        topic_labels=tuple((t.id, t.label) for t in rt.profile.topics.values() if t.label != t.id),
    )


def run_cycle(
    rt: Runtime,
    workers: Executor | None = None,
    on_outcome: Callable[[PollOutcome], None] | None = None,
    everything: bool = False,
) -> CycleSummary:
    """One polling cycle over the due feeds (or all of them), then deliver what is due."""
    started = time.monotonic()
    outcomes = asyncio.run(poll_due_feeds(rt, workers, on_outcome, everything))
    summary = CycleSummary(feeds=len(outcomes), outcomes=outcomes)
    for o in outcomes:
        metrics.count_poll(o)
        summary.ok += o.status == "ok"
        summary.not_modified += o.status == "not-modified"
        summary.errors += o.status == "error"
        summary.new_items += o.new_items
        summary.matches += o.matches
        summary.alerts += o.alerts
    while True:
        sent, failed = deliver_due(rt)
        summary.delivered += sent
        summary.delivery_failures += failed
        if sent + failed == 0 or failed:
            break
    summary.elapsed = time.monotonic() - started
    metrics.CYCLE_SECONDS.observe(summary.elapsed)
    mark_alive(rt, "run", f"{summary.feeds} feeds, {summary.alerts} alerts")
    return summary


_ALIVE_EVERY = 10.0  # seconds between two heartbeat writes of one process
_last_alive: dict[tuple[str, str], float] = {}


def mark_alive(rt: Runtime, source: str, detail: str = "") -> None:
    """Record that a polling loop finished a cycle (what /healthz reads), at most every
    _ALIVE_EVERY seconds per process, so a busy loop does not write for nothing."""
    t, key = time.monotonic(), (rt.db.url, source)
    if t - _last_alive.get(key, -_ALIVE_EVERY) < _ALIVE_EVERY:
        return
    with rt.db.session() as s:
        heartbeat.record(s, source, utcnow(), detail)
    _last_alive[key] = t
