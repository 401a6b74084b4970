"""The distributed mode with a real Redis, a real PostgreSQL and real Celery worker processes."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import DATA, FeedServer, Webhook, monitor_env, write_config
from tests.processes import Workers
from tests.processes import wait_for as wait

pytestmark = pytest.mark.slow
# broker_url (tests/conftest.py): a Redis database of each test's own.


def wait_for(cond: Callable[[], bool], timeout: float, what: str, workers: Workers) -> None:
    wait(cond, timeout, what, workers.logs)


NEW_ITEM = """<item><title>L’OTSC sans l’Arménie : Erevan gèle sa participation à l’alliance</title>
<link>https://fil-a.example.org/monde/otsc-gel</link><guid>https://fil-a.example.org/monde/otsc-gel</guid>
<description>Nikol Pachinian confirme le gel de la participation arménienne à l’Organisation du traité de sécurité collective.</description>
</item>"""


@pytest.fixture
def setup(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook, pg_url: str, broker_url: str
) -> Iterator[tuple[Workers, FeedServer, Webhook, Path]]:
    feed = (DATA / "caucase_a.xml").read_bytes()
    urls = [
        feed_server.add("/a.xml", feed),
        feed_server.add("/b.xml", (DATA / "caucase_b.xml").read_bytes()),
    ]
    workers = prepared(tmp_path, urls, webhook, pg_url, broker_url)
    yield workers, feed_server, webhook, tmp_path / "config"
    workers.stop()


def prepared(
    tmp: Path,
    urls: list[str],
    hook: Webhook,
    db_url: str,
    broker: str,
    supervised: bool = False,
    **env: str,
) -> Workers:
    """Config for these feeds and this webhook, the schema migrated: workers ready to start."""
    config = write_config(tmp / "config", urls, [hook.url])
    settings = dict(MONITOR_BROKER_URL=broker, MONITOR_POLL_INTERVAL="2",
                    MONITOR_RETRY_BASE_SECONDS="0.5", **env)  # fmt: skip
    full = monitor_env(config, db_url, **settings)
    subprocess.run([sys.executable, "-m", "monitor", "db", "upgrade"], env=full, check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    return Workers(full, tmp, supervised=supervised)


def test_worker_alerts_new_items_once(setup: tuple[Workers, FeedServer, Webhook, Path]) -> None:
    workers, server, hook, _ = setup
    workers.start(beat=True, name="w1")
    wait_for(lambda: any("Latchine" in t for t in hook.titles()), 60, "the first alert", workers)
    wait_for(
        lambda: any("OTSC se réunit" in t for t in hook.titles()), 30, "the OTSC alert", workers
    )
    body = (
        (DATA / "caucase_a.xml")
        .read_text(encoding="utf-8")
        .replace("</channel>", NEW_ITEM + "</channel>")
    )
    server.add("/a.xml", body.encode())
    wait_for(
        lambda: any("gèle sa participation" in t for t in hook.titles()),
        30,
        "the new item",
        workers,
    )
    time.sleep(5)  # several more polls: nothing may come twice
    counts = Counter(hook.titles())
    assert len(counts) == 3 and max(counts.values()) == 1, counts
    # It keeps polling on the feed's interval, with conditional GETs.
    wait_for(lambda: len(server.hits("/a.xml")) >= 3, 30, "a third poll", workers)
    assert any("If-None-Match" in h for h in server.hits("/a.xml")[1:])


def test_two_workers_and_a_target_down_then_back(
    setup: tuple[Workers, FeedServer, Webhook, Path],
) -> None:
    workers, _server, hook, _ = setup
    hook.down = True
    workers.start(beat=True, name="w1")
    workers.start(beat=False, name="w2")
    wait_for(lambda: hook.refused >= 4, 60, "refused deliveries", workers)
    hook.down = False
    wait_for(lambda: len(hook.received) >= 2, 60, "deliveries after the target came back", workers)
    time.sleep(6)
    counts = Counter(hook.titles())
    assert len(counts) == 2 and max(counts.values()) == 1, counts


FAST_RECOVERY = dict(MONITOR_LEASE_SECONDS="3", MONITOR_CLAIM_SECONDS="3")


def _restart_env(workers: Workers) -> None:
    workers.env.update(FAST_RECOVERY)


def restart_and_expect_each_alert_once(workers: Workers, hook: Webhook) -> None:
    workers.start(beat=True, name="w2")
    wait_for(lambda: len(hook.received) >= 2, 60, "the alerts after the restart", workers)
    time.sleep(6)  # more polls and sweeps: nothing may come twice
    counts = Counter(hook.titles())
    assert len(counts) == 2 and max(counts.values()) == 1, counts


def test_sigkill_of_the_worker_during_a_poll(
    setup: tuple[Workers, FeedServer, Webhook, Path],
) -> None:
    workers, server, hook, _ = setup
    _restart_env(workers)
    server.add("/a.xml", (DATA / "caucase_a.xml").read_bytes(), delay=4.0)
    server.add("/b.xml", (DATA / "caucase_b.xml").read_bytes(), delay=4.0)
    workers.start(beat=True, name="w1")
    wait_for(lambda: len(server.requests) >= 2, 60, "both polls in flight", workers)
    workers.kill()
    assert hook.received == []
    server.add("/a.xml", (DATA / "caucase_a.xml").read_bytes())
    server.add("/b.xml", (DATA / "caucase_b.xml").read_bytes())
    restart_and_expect_each_alert_once(workers, hook)


def test_sigkill_of_the_worker_during_a_delivery(
    setup: tuple[Workers, FeedServer, Webhook, Path],
) -> None:
    workers, _server, hook, _ = setup
    _restart_env(workers)
    hook.stall = 4.0
    workers.start(beat=True, name="w1")
    wait_for(lambda: hook.stalled >= 1, 60, "a delivery in flight", workers)
    workers.kill()
    hook.stall = 0.0
    wait_for(lambda: hook.dropped >= hook.stalled, 10, "the receiver to see senders gone", workers)
    assert hook.received == []
    restart_and_expect_each_alert_once(workers, hook)


def test_redis_restarted_under_a_running_worker(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook, pg_url: str
) -> None:
    from tests.integration.servers import PrivateRedis

    redis_server = PrivateRedis()
    feed_server.add("/a.xml", (DATA / "caucase_a.xml").read_bytes())
    url = feed_server.url("/a.xml")
    # Supervised, as in production: kombu can end a worker with "Unrecoverable error" when
    # the broker vanishes while it restores unacknowledged messages; the restart policy brings
    # it back, and the schedule in the database makes up for the tasks Redis lost.
    workers = prepared(
        tmp_path, [url], webhook, pg_url, redis_server.url, supervised=True, **FAST_RECOVERY
    )
    try:
        workers.start(beat=True, name="w1")
        wait_for(lambda: len(webhook.received) >= 1, 60, "the first alerts", workers)
        first = len(webhook.received)
        redis_server.kill()  # queued tasks are lost with it (it keeps nothing on disk)
        body = (DATA / "caucase_a.xml").read_text(encoding="utf-8")
        feed_server.add("/a.xml", body.replace("</channel>", NEW_ITEM + "</channel>").encode())
        time.sleep(3)
        redis_server.start()
        wait_for(
            lambda: any("gèle sa participation" in t for t in webhook.titles()),
            90,
            "the new item's alert after the broker came back",
            workers,
        )
        time.sleep(6)
        counts = Counter(webhook.titles())
        assert len(counts) == first + 1 and max(counts.values()) == 1, counts
        assert workers.alive(), workers.logs()
    finally:
        workers.stop()
        redis_server.close()


def test_postgres_restarted_under_running_workers(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook, broker_url: str
) -> None:
    from tests.integration.servers import PrivatePostgres

    pg = PrivatePostgres()
    feed_server.add("/a.xml", (DATA / "caucase_a.xml").read_bytes(), delay=2.0)
    feed_server.add("/b.xml", (DATA / "caucase_b.xml").read_bytes(), delay=2.0)
    urls = [feed_server.url("/a.xml"), feed_server.url("/b.xml")]
    workers = prepared(tmp_path, urls, webhook, pg.url, broker_url, **FAST_RECOVERY)
    try:
        workers.start(beat=True, name="w1")
        # Both polls in flight (held 2 s by the server): the database goes away under them.
        wait_for(lambda: len(feed_server.requests) >= 2, 60, "both polls in flight", workers)
        pg.stop("fast")
        time.sleep(4)
        pg.start()
        wait_for(lambda: len(webhook.received) >= 2, 90, "the alerts after the restart", workers)
        time.sleep(6)
        counts = Counter(webhook.titles())
        assert len(counts) == 2 and max(counts.values()) == 1, counts
        assert workers.alive(), workers.logs()
        logs = workers.log("w1")
        # The polls in flight could not be stored: one line each, polled again after the lease.
        assert "polled again when its lease expires" in logs and "OperationalError" in logs
        assert "database unavailable" in logs  # the periodic tasks say so in one line
    finally:
        workers.stop()
        pg.close()


POLLED = re.compile(r"feed (http://\S+) (?:ok|not-modified|error)")


def test_two_workers_poll_disjoint_feeds_within_one_per_host_limit(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook, pg_url: str, broker_url: str
) -> None:
    """Two `celery worker` processes (two machines), two pool processes each: every feed is
    polled once in the cycle, by one of them; both take part; the per-host limit (4) holds
    across all four processes (each alone would allow 4); the two stories alert once each,
    although 80 feeds carry them and the workers race to store them."""
    other = FeedServer(host="127.0.0.2")
    bodies = [(DATA / "caucase_a.xml").read_bytes(), (DATA / "caucase_b.xml").read_bytes()]
    urls = [
        (feed_server if i % 2 else other).add(f"/f{i}.xml", bodies[i % 4 < 2], delay=0.5)
        for i in range(80)
    ]
    workers = prepared(tmp_path, urls, webhook, pg_url, broker_url)
    # One poll per feed in this test (interval 10 min); small batches, so both workers help.
    workers.env.update(MONITOR_POLL_INTERVAL="600", MONITOR_POLL_BATCH="5")
    try:
        workers.start(beat=False, name="w2")
        wait_for(lambda: " ready." in workers.log("w2"), 60, "the second worker", workers)
        workers.start(beat=True, name="w1")  # its beat's first tick syncs feeds.yaml
        hits = lambda: len(feed_server.requests) + len(other.requests)  # noqa: E731
        wait_for(lambda: hits() >= 80, 120, "every feed polled", workers)
        wait_for(lambda: len(webhook.received) >= 2, 60, "the alerts", workers)
        time.sleep(5)  # more ticks, sweeps and follow-ups: nothing may come twice
        paths = Counter(p for s in (feed_server, other) for p, _ in s.requests)
        assert len(paths) == 80 and max(paths.values()) == 1, paths.most_common(3)
        by_worker = [set(POLLED.findall(workers.log(name))) for name in ("w1", "w2")]
        assert by_worker[0] and by_worker[1], "both workers poll"
        assert not by_worker[0] & by_worker[1] and len(by_worker[0] | by_worker[1]) == 80
        assert max(feed_server.peak_active, other.peak_active) <= 4
        assert min(feed_server.peak_active, other.peak_active) >= 2  # and concurrently
        counts = Counter(webhook.titles())
        assert len(counts) == 2 and max(counts.values()) == 1, counts
    finally:
        workers.stop()
        other.close()
