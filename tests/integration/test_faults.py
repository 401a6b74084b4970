"""Faults under the embedded loop (`monitor run`): the database restarted in the middle of a
cycle, the process killed with SIGKILL during a poll and during a delivery. In each case
nothing fetched is lost (it is processed on the next attempt), every alert arrives, and none
arrives twice."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import DATA, FeedServer, Webhook, monitor_env, write_config
from tests.integration.servers import PrivatePostgres
from tests.processes import MonitorRun
from tests.processes import wait_for as wait

pytestmark = pytest.mark.slow
A = (DATA / "caucase_a.xml").read_bytes()
B = (DATA / "caucase_b.xml").read_bytes()
EXPECTED = 2  # stories alerted from the two feeds


def wait_for(cond: Callable[[], bool], timeout: float, what: str, run: MonitorRun) -> None:
    wait(cond, timeout, what, run.logs)


def once_each(hook: Webhook) -> Counter[str]:
    counts = Counter(hook.titles())
    assert len(counts) == EXPECTED and max(counts.values()) == 1, counts
    return counts


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    yield pg
    pg.close()


def make_run(tmp: Path, urls: list[str], hook: Webhook, db_url: str, **env: str) -> MonitorRun:
    config = write_config(tmp / "config", urls, [hook.url])
    settings = dict(MONITOR_POLL_INTERVAL="2", MONITOR_LEASE_SECONDS="3",
                    MONITOR_CLAIM_SECONDS="3", MONITOR_RETRY_BASE_SECONDS="0.5")  # fmt: skip
    settings.update(env)
    return MonitorRun(monitor_env(config, db_url, **settings), tmp)


def test_postgres_restarted_in_the_middle_of_a_cycle(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook, private_pg: PrivatePostgres
) -> None:
    urls = [feed_server.add("/a.xml", A, delay=2.0), feed_server.add("/b.xml", B, delay=2.0)]
    run = make_run(tmp_path, urls, webhook, private_pg.url)
    run.start()
    try:
        # Both fetches are in flight (the server holds them 2 s): stop the database now, so
        # that they complete while it is down, and bring it back a few seconds later.
        wait_for(lambda: len(feed_server.requests) >= 2, 60, "both polls in flight", run)
        private_pg.stop("fast")
        time.sleep(4)
        assert run.alive(), run.logs()[-3000:]
        private_pg.start()
        wait_for(lambda: len(webhook.received) >= EXPECTED, 90, "the alerts", run)
        time.sleep(5)  # more cycles: nothing may come twice
        once_each(webhook)
        assert run.alive(), "monitor run must survive a database restart"
        log = run.log("run")
        assert "database unavailable" in log or "polled again when its lease expires" in log, log[
            -3000:
        ]
        assert len(feed_server.hits("/a.xml")) >= 2  # the lost poll was polled again
    finally:
        run.stop()


def test_sigkill_during_a_poll(tmp_path: Path, feed_server: FeedServer, webhook: Webhook) -> None:
    urls = [feed_server.add("/a.xml", A, delay=3.0), feed_server.add("/b.xml", B, delay=3.0)]
    run = make_run(tmp_path, urls, webhook, f"sqlite:///{tmp_path}/m.db")
    run.start()
    try:
        wait_for(lambda: len(feed_server.requests) >= 2, 60, "both polls in flight", run)
        run.kill()  # the fetched bodies never reach the database
        assert webhook.received == []
        feed_server.add("/a.xml", A)
        feed_server.add("/b.xml", B)
        run.start()  # the leases of the dead process expire; the feeds are polled again
        wait_for(lambda: len(webhook.received) >= EXPECTED, 60, "the alerts after restart", run)
        time.sleep(4)
        once_each(webhook)
    finally:
        run.stop()


def test_sigkill_during_a_delivery(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook
) -> None:
    urls = [feed_server.add("/a.xml", A), feed_server.add("/b.xml", B)]
    run = make_run(tmp_path, urls, webhook, f"sqlite:///{tmp_path}/m.db")
    webhook.stall = 3.0  # the first post is held: the process dies before it is answered
    run.start()
    try:
        wait_for(lambda: webhook.stalled >= 1, 60, "a delivery in flight", run)
        run.kill()
        webhook.stall = 0.0
        wait_for(lambda: webhook.dropped >= 1, 10, "the receiver to see the sender gone", run)
        assert webhook.received == []
        run.start()  # the dead sender's claims expire; every alert is sent, once
        wait_for(lambda: len(webhook.received) >= EXPECTED, 60, "the alerts after restart", run)
        time.sleep(4)
        once_each(webhook)
    finally:
        run.stop()
