"""Ctrl-C and SIGTERM against a real `monitor run` subprocess polling slow loopback feeds: the
first signal stops within about two seconds and gives back the leases of the polls it did not
do; a second one exits at once; leases left by a killed run are released or reported at the
next start, never skipped in silence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import DATA, FeedServer, Webhook, monitor_env, write_config
from tests.processes import wait_for

pytestmark = pytest.mark.slow
FEEDS = 13
A = (DATA / "caucase_a.xml").read_bytes()


def slow_feeds(server: FeedServer, n: int = FEEDS, delay: float = 8.0) -> list[str]:
    return [server.add(f"/slow{i}.xml", A, delay=delay) for i in range(n)]


def start(tmp: Path, urls: list[str], targets: list[str], *args: str) -> subprocess.Popen[bytes]:
    config = write_config(tmp / "config", urls, targets)
    env = monitor_env(config, f"sqlite:///{tmp}/m.db", MONITOR_LEASE_SECONDS="120")
    log = open(tmp / "run.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def leases(tmp: Path) -> list[tuple[str, str | None]]:
    engine = create_engine(f"sqlite:///{tmp}/m.db")
    with engine.connect() as c:
        rows = c.execute(text("SELECT url, lease_owner FROM feeds WHERE leased_until IS NOT NULL"))
        out = [(r[0], r[1]) for r in rows]
    engine.dispose()
    return out


def log_of(tmp: Path) -> str:
    return (tmp / "run.log").read_text(errors="replace")


def exit_within(p: subprocess.Popen[bytes], seconds: float, tmp: Path) -> tuple[int, float]:
    started = time.monotonic()
    try:
        rc = p.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise AssertionError(
            f"still running {seconds} s after the signal\n{log_of(tmp)[-3000:]}"
        ) from None
    return rc, time.monotonic() - started


def test_ctrl_c_stops_run_once_at_once_and_releases_the_leases(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    urls = slow_feeds(feed_server)
    p = start(tmp_path, urls, [], "--once")
    wait_for(
        lambda: len(feed_server.requests) >= 4,
        60,
        "the fetches in flight",
        lambda: log_of(tmp_path),
    )
    os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    rc, took = exit_within(p, 5, tmp_path)
    log = log_of(tmp_path)
    assert rc == 130, log[-3000:]
    assert took < 3.5, (took, log[-3000:])
    assert "interrupted" in log and "Traceback" not in log, log[-3000:]
    assert leases(tmp_path) == [], "an interrupted run left leases behind"
    # The next run polls every feed now, none skipped for MONITOR_LEASE_SECONDS.
    for route in feed_server.routes.values():
        route.delay = 0
    before = len(feed_server.requests)
    p2 = start(tmp_path, urls, [], "--once")
    rc2, _ = exit_within(p2, 60, tmp_path)
    assert rc2 == 0, log_of(tmp_path)[-3000:]
    assert len(feed_server.requests) - before == FEEDS, log_of(tmp_path)[-3000:]


def test_second_signal_exits_at_once(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook
) -> None:
    """The first signal lets a delivery in progress finish; the second does not wait."""
    webhook.stall = 30.0  # the receiver holds the post: the delivery is in progress
    url = feed_server.add("/a.xml", A)
    p = start(tmp_path, [url], [webhook.url + "?rto=60"], "--once")
    wait_for(lambda: webhook.stalled >= 1, 60, "a delivery in progress", lambda: log_of(tmp_path))
    os.killpg(p.pid, signal.SIGINT)
    time.sleep(1.5)
    assert p.poll() is None, "the first signal must let the delivery in progress finish"
    os.killpg(p.pid, signal.SIGINT)
    rc, took = exit_within(p, 3, tmp_path)
    assert rc == 130 and took < 1.5, (rc, took, log_of(tmp_path)[-2000:])
    assert "second signal" in log_of(tmp_path)


def test_sigterm_stops_monitor_run(tmp_path: Path, feed_server: FeedServer) -> None:
    urls = slow_feeds(feed_server, 4)
    p = start(tmp_path, urls, [])
    wait_for(
        lambda: len(feed_server.requests) >= 4,
        60,
        "the fetches in flight",
        lambda: log_of(tmp_path),
    )
    p.send_signal(signal.SIGTERM)  # a service manager stopping the process
    rc, took = exit_within(p, 5, tmp_path)
    log = log_of(tmp_path)
    assert rc == 0 and took < 3.5, (rc, took, log[-3000:])
    assert "stopped; released the leases of 4 feeds" in log, log[-3000:]
    assert leases(tmp_path) == []


def test_leases_left_behind_are_released_or_reported(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    urls = slow_feeds(feed_server, 4, delay=30)
    p = start(tmp_path, urls, [], "--once")
    wait_for(
        lambda: len(feed_server.requests) >= 4,
        60,
        "the fetches in flight",
        lambda: log_of(tmp_path),
    )
    os.killpg(p.pid, signal.SIGKILL)  # nothing can be released: the leases stay
    p.wait()
    assert len(leases(tmp_path)) == 4
    # One lease belongs to a live process of another machine: it is reported, not taken.
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    until = datetime.now(UTC) + timedelta(seconds=100)
    with engine.begin() as c:
        c.execute(
            text(
                "UPDATE feeds SET lease_owner = 'elsewhere:1', leased_until = :u WHERE url = :url"
            ),
            {"u": until.replace(tzinfo=None).isoformat(sep=" "), "url": urls[0]},
        )
    engine.dispose()
    for route in feed_server.routes.values():
        route.delay = 0
    before = len(feed_server.requests)
    p2 = start(tmp_path, urls, [], "--once")
    rc, _ = exit_within(p2, 60, tmp_path)
    log = log_of(tmp_path)
    assert rc == 0, log[-3000:]
    assert "released 3 feed leases of a process that is gone (" in log, log[-3000:]
    assert "1 feeds are leased by another process (elsewhere:1, until" in log, log[-3000:]
    assert len(feed_server.requests) - before == 3  # the three released feeds, polled now
