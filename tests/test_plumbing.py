"""The suite's own plumbing: private servers when nothing answers, Redis databases of one's
own, the browser the page tests drive."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import FeedServer
from tests.integration.servers import REDIS_URL_VAR, Servers, answers, redis_database


def test_a_private_redis_when_nothing_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REDIS_URL_VAR, "redis://127.0.0.1:1/0")  # port 1: nothing listens
    servers = Servers()
    url = servers.redis_url()
    try:
        assert url != "redis://127.0.0.1:1" and answers(url)
        assert "nothing answered on 127.0.0.1:1" in servers.notes[0]
        with redis_database(url) as db:
            import redis

            redis.Redis.from_url(db).set("k", "v")
            assert redis.Redis.from_url(db).get("k") == b"v"
    finally:
        servers.close()
    assert not answers(url)


def test_each_claim_gets_its_own_database_emptied(redis_server_url: str) -> None:
    import redis

    with redis_database(redis_server_url) as a, redis_database(redis_server_url) as b:
        assert a != b and a.rsplit("/", 1)[0] == b.rsplit("/", 1)[0] == redis_server_url
        redis.Redis.from_url(a).set("left", "over")
    assert redis.Redis.from_url(a).dbsize() == 0  # emptied when released
    with redis_database(redis_server_url) as again:
        assert redis.Redis.from_url(again).dbsize() == 0


def test_chromium_renders_a_loopback_page(chromium_path: str, feed_server: FeedServer) -> None:
    url = feed_server.add("/page.html", b"<p id=x>bonjour</p>",
                          headers={"Content-Type": "text/html"})  # fmt: skip
    flags = ["--headless", "--disable-gpu", "--dump-dom"]
    if os.geteuid() == 0:
        flags.insert(0, "--no-sandbox")  # chromium refuses root with its sandbox on
    r = subprocess.run([chromium_path, *flags, url], capture_output=True, text=True, timeout=120)
    assert '<p id="x">bonjour</p>' in r.stdout, r.stderr[-2000:]
