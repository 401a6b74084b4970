"""The window on real runs: `monitor serve` over the database of a `monitor run --once` on the
real captures, and Prometheus scrapes of a running `monitor run` and of a Celery worker."""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from markupsafe import escape
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    DATA,
    REAL_FEEDS,
    FeedServer,
    Webhook,
    monitor_env,
    port_open,
    write_config,
)
from tests.integration.servers import free_port, wait_port
from tests.integration.test_run_once import run_monitor
from tests.processes import MonitorRun, Processes, Workers, wait_for

pytestmark = pytest.mark.slow
LEMONDE_2022 = sorted(REAL_FEEDS.glob("lemonde_2022-*.xml"))
REDIS_DB = 14  # this module's own Redis database (other helpers' tests use others)
NEW_ITEM = """<item><title>L’OTSC sans l’Arménie : Erevan gèle sa participation à l’alliance</title>
<link>https://fil-a.example.org/monde/otsc-gel</link><guid>https://fil-a.example.org/monde/otsc-gel</guid>
<description>Nikol Pachinian confirme le gel de la participation arménienne à l’Organisation du traité de sécurité collective.</description>
</item>"""


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def serve(env: dict[str, str], tmp: Path) -> tuple[Processes, str]:
    port = free_port()
    procs = Processes(env, tmp)
    procs.spawn([sys.executable, "-m", "monitor", "serve", "--port", str(port)], "serve")
    try:
        wait_port(port, up=True, timeout=60)
    except TimeoutError:
        procs.stop()
        raise AssertionError(procs.log("serve")) from None
    return procs, f"http://127.0.0.1:{port}"


def test_serve_shows_the_alerted_stories_of_the_real_captures(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook, sqlite_url: str
) -> None:
    if not LEMONDE_2022:
        pytest.skip("../shared/fixtures/real-feeds is absent: the real captures are read in place")
    urls = [feed_server.add("/" + p.name, p.read_bytes()) for p in LEMONDE_2022]
    env = monitor_env(write_config(tmp_path / "config", urls, [webhook.url]), sqlite_url)
    run_monitor(env, "run", "--once")
    alerted = [re.sub(r"^\[[^\]]*\] ", "", t) for t in webhook.titles()]
    assert len(alerted) >= 10
    procs, base = serve(env, tmp_path)
    try:
        status, body = get(base + "/api/stories?per_page=200")
        assert status == 200
        api = json.loads(body)
        assert api["total"] == len(alerted)  # one story per alert, nothing else matched
        titles = {s["title"] for s in api["stories"]}
        assert set(alerted) <= titles
        assert all(s["alert"]["state"] == "sent" for s in api["stories"])
        pages = b""
        for page in range(1, 3):
            pages += get(f"{base}/?page={page}")[1]
        html = pages.decode()
        for title in alerted:
            assert str(escape(title)) in html, title
        assert get(base + "/healthz")[0] == 200
        atom = feedparser.parse(get(base + "/topics/karabakh_ceasefire.atom")[1])
        assert atom.bozo == 0 and len(atom.entries) >= 5
    finally:
        procs.stop()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def watch_counters(port: int, server: FeedServer, logs: Processes, what: str) -> None:
    """Polls and alerts count up on /metrics, then again when a new story appears."""

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        try:
            return scrape(port)
        except OSError:
            return {}

    wait_for(lambda: value(samples(), "monitor_alerts_total") >= 1, 90,
             f"the first alert counted by {what}", logs.logs)  # fmt: skip
    first = samples()
    assert value(first, "monitor_polls_total", outcome="ok") >= 1
    assert value(first, "monitor_items_total") >= 3
    assert value(first, "monitor_story_assignment_seconds_count") >= 1  # counted in a child
    body = (DATA / "caucase_a.xml").read_text(encoding="utf-8").replace("</channel>",
                                                                         NEW_ITEM + "</channel>")  # fmt: skip
    server.add("/a.xml", body.encode())
    wait_for(lambda: value(samples(), "monitor_alerts_total") >= 2, 90,
             f"the second alert counted by {what}", logs.logs)  # fmt: skip
    later = samples()
    polls = sum(v for (n, _), v in later.items() if n == "monitor_polls_total")
    assert polls > sum(v for (n, _), v in first.items() if n == "monitor_polls_total")
    wait_for(lambda: value(samples(), "monitor_deliveries_total", outcome="sent") >= 2, 60,
             f"both deliveries counted by {what}", logs.logs)  # fmt: skip


def test_prometheus_scrape_of_a_running_monitor_run(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook, sqlite_url: str
) -> None:
    url = feed_server.add("/a.xml", (DATA / "caucase_a.xml").read_bytes())
    port = free_port()
    env = monitor_env(write_config(tmp_path / "config", [url], [webhook.url]), sqlite_url,
                      MONITOR_POLL_INTERVAL="1", MONITOR_METRICS_PORT=str(port))  # fmt: skip
    run = MonitorRun(env, tmp_path)
    run.start()
    try:
        wait_port(port, up=True, timeout=60)
        watch_counters(port, feed_server, run, "monitor run")
        assert value(scrape(port), "monitor_cycle_duration_seconds_count") >= 1
    finally:
        run.stop()
    assert "Traceback" not in run.log("run")


@pytest.fixture
def broker_url() -> Iterator[str]:
    if not port_open("127.0.0.1", 6379):
        pytest.fail("Redis is not answering on 127.0.0.1:6379 (.ci/run starts it)")
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    yield f"redis://127.0.0.1:6379/{REDIS_DB}"
    client.flushdb()


def test_prometheus_scrape_of_a_celery_worker(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook, pg_url: str, broker_url: str
) -> None:
    url = feed_server.add("/a.xml", (DATA / "caucase_a.xml").read_bytes())
    port = free_port()
    env = monitor_env(write_config(tmp_path / "config", [url], [webhook.url]), pg_url,
                      MONITOR_BROKER_URL=broker_url, MONITOR_POLL_INTERVAL="1",
                      MONITOR_METRICS_PORT=str(port))  # fmt: skip
    run_monitor(env, "db", "upgrade")
    workers = Workers(env, tmp_path)
    workers.start(beat=True, name="w1")
    try:
        wait_port(port, up=True, timeout=60)
        watch_counters(port, feed_server, workers, "a Celery worker")
    finally:
        workers.stop()
    # Beat's enqueue task leaves a heartbeat: /healthz of a window on that database is green.
    from starlette.testclient import TestClient

    from monitor.events import DEFAULT
    from monitor.store import Database
    from monitor.web.app import Window, create_app

    db = Database(pg_url)
    try:
        health = TestClient(create_app(Window(db=db, topics=[], aliases={}, params=DEFAULT))).get(
            "/healthz"
        )
        assert health.status_code == 200 and health.json()["source"] == "celery"
    finally:
        db.dispose()
