"""The HTTP client under its limits, against real loopback servers."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler

import pytest

from monitor import USER_AGENT
from monitor.errors import FetchError
from monitor.fetch import FetchRequest, fetch_many, fetch_one, parse_retry_after
from monitor.types import FetchLimits
from tests.conftest import DATA, FeedServer, dribbler, port_open, send

FEED = (DATA / "caucase_a.xml").read_bytes()
FAST = FetchLimits(connect_timeout=2, deadline=3, max_body_bytes=1024 * 1024)


def test_conditional_get_and_user_agent(feed_server: FeedServer) -> None:
    url = feed_server.add("/f.xml", FEED)
    first = fetch_one(url, FAST)
    assert first.status == 200 and first.body == FEED and first.etag
    second = fetch_one(url, FAST, first.etag, first.last_modified)
    assert second.status == 304 and second.body is None
    hits = feed_server.hits("/f.xml")
    assert hits[0]["User-Agent"] == USER_AGENT
    assert hits[1]["If-None-Match"] == first.etag


def test_gzip_body_is_decoded_and_bomb_is_stopped_at_the_cap(feed_server: FeedServer) -> None:
    ok = feed_server.add("/gz.xml", gzip.compress(FEED), headers={"Content-Encoding": "gzip"})
    assert fetch_one(ok, FAST).body == FEED
    # 64 MiB of zeros compress to ~64 KB; the cap (1 MiB) must stop the inflation early.
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    url = feed_server.add("/bomb.xml", bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError) as e:
        fetch_one(url, FAST)
    assert e.value.kind == "too-large"
    deflated = feed_server.add(
        "/deflate.xml", zlib.compress(FEED), headers={"Content-Encoding": "deflate"}
    )
    assert fetch_one(deflated, FAST).body == FEED


def test_body_without_content_length_is_capped(feed_server: FeedServer) -> None:
    def endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            for _ in range(4096):
                h.wfile.write(b"x" * 1024)
        except (BrokenPipeError, ConnectionResetError):
            pass
        h.close_connection = True

    url = feed_server.add("/endless", handler=endless)
    with pytest.raises(FetchError) as e:
        fetch_one(url, FAST)
    assert e.value.kind == "too-large"


def test_declared_length_over_cap_is_refused_before_reading(feed_server: FeedServer) -> None:
    url = feed_server.add(
        "/huge", handler=lambda h: send(h, 200, {"Content-Length": str(300 * 1024 * 1024)})
    )
    with pytest.raises(FetchError, match="larger than the cap"):
        fetch_one(url, FAST)


def test_dribbling_server_hits_the_total_deadline(feed_server: FeedServer) -> None:
    url = feed_server.add("/slow", handler=dribbler(0.5))
    limits = FetchLimits(connect_timeout=1, deadline=1.5)
    started = time.monotonic()
    with pytest.raises(FetchError) as e:
        fetch_one(url, limits)
    assert e.value.kind == "timeout"
    assert time.monotonic() - started < 10  # bounded by the deadline, not by the server


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("file:///etc/passwd", "bad-scheme"),
        ("ftp://127.0.0.1/feed", "bad-scheme"),
        ("gopher://x/", "bad-scheme"),
    ],
)
def test_redirect_to_other_schemes_refused(
    feed_server: FeedServer, location: str, kind: str
) -> None:
    url = feed_server.add("/r", handler=lambda h: send(h, 302, {"Location": location}))
    with pytest.raises(FetchError) as e:
        fetch_one(url, FAST)
    assert e.value.kind == kind


def test_redirect_loop_and_chain(feed_server: FeedServer) -> None:
    feed_server.add("/loop1", handler=lambda h: send(h, 302, {"Location": "/loop2"}))
    loop = feed_server.add("/loop2", handler=lambda h: send(h, 301, {"Location": "/loop1"}))
    with pytest.raises(FetchError) as e:
        fetch_one(loop, FAST)
    assert e.value.kind == "redirect-loop"
    feed_server.add("/final.xml", FEED)
    for i in range(7):
        target = "/final.xml" if i == 6 else f"/hop{i + 1}"
        feed_server.add(f"/hop{i}", handler=lambda h, t=target: send(h, 302, {"Location": t}))
    with pytest.raises(FetchError) as e:
        fetch_one(feed_server.url("/hop0"), FAST)
    assert e.value.kind == "too-many-redirects"
    ok = fetch_one(feed_server.url("/hop2"), FAST)  # 4 redirects: allowed
    assert ok.body == FEED and ok.final_url.endswith("/final.xml")


def test_retry_after_in_both_forms(feed_server: FeedServer) -> None:
    url = feed_server.add("/busy", handler=lambda h: send(h, 429, {"Retry-After": "120"}))
    with pytest.raises(FetchError) as e:
        fetch_one(url, FAST)
    assert e.value.kind == "http-429" and e.value.retry_after == 120
    when = formatdate(time.time() + 600, usegmt=True)
    url = feed_server.add("/down", handler=lambda h: send(h, 503, {"Retry-After": when}))
    with pytest.raises(FetchError) as e:
        fetch_one(url, FAST)
    assert e.value.kind == "http-503" and 590 <= (e.value.retry_after or 0) <= 600
    assert parse_retry_after("garbage") is None


def test_server_errors_and_refused_connections(feed_server: FeedServer) -> None:
    url = feed_server.add("/err", status=500, body=b"oops", etag=False)
    with pytest.raises(FetchError) as e:
        fetch_one(url, FAST)
    assert e.value.kind == "http-500"
    with pytest.raises(FetchError) as e:
        fetch_one("http://127.0.0.1:9/none", FAST)
    assert e.value.kind == "network"


def test_concurrency_is_bounded_per_host() -> None:
    servers = [FeedServer(host=f"127.0.0.{i}") for i in (1, 2, 3)]
    lock = threading.Lock()
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    total_peak = [0]

    def slow(h: BaseHTTPRequestHandler) -> None:
        port = h.server.server_address[0]
        with lock:
            active[port] = active.get(port, 0) + 1
            peak[port] = max(peak.get(port, 0), active[port])
            total_peak[0] = max(total_peak[0], sum(active.values()))
        time.sleep(0.2)
        with lock:
            active[port] -= 1
        send(h, 200, {"Content-Type": "application/rss+xml"}, FEED)

    requests = []
    for s in servers:
        for i in range(8):
            requests.append(FetchRequest(len(requests), s.add(f"/f{i}", handler=slow)))
    limits = FetchLimits(connect_timeout=2, deadline=10, per_host=3, concurrency=8)

    async def go() -> list[object]:
        return [r async for _, r in fetch_many(requests, limits)]

    try:
        results = asyncio.run(go())
    finally:
        for s in servers:
            s.close()
    assert len(results) == 24 and all(not isinstance(r, Exception) for r in results)
    assert max(peak.values()) <= 3  # the per-host limit holds on each loopback address
    assert total_peak[0] > 3  # while different hosts are fetched at the same time


# --- the per-host limit shared by several processes (Celery workers), in Redis ---------------

REDIS_URL = "redis://127.0.0.1:6379/12"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    if not port_open("127.0.0.1", 6379):
        pytest.fail("Redis is not answering on 127.0.0.1:6379 (.ci/run starts it)")
    import redis

    prefix = f"test:host-slots:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)
    client.close()


def test_the_shared_limit_holds_across_fetchers(feed_server: FeedServer) -> None:
    """Three fetchers (three worker processes, each allowed 3 per host on its own) fetching
    one host at once: with the shared limit, the host never answers more than 3 at a time."""
    urls = [feed_server.add(f"/f{i}.xml", FEED, delay=0.2) for i in range(18)]
    limits = FetchLimits(connect_timeout=2, deadline=10, per_host=3)

    async def one_process(part: list[str]) -> list[object]:
        reqs = [FetchRequest(u, u) for u in part]
        return [r async for _, r in fetch_many(reqs, limits, shared_limit_url=REDIS_URL)]

    async def go() -> list[list[object]]:
        return await asyncio.gather(*(one_process(urls[i::3]) for i in range(3)))

    results = [r for part in asyncio.run(go()) for r in part]
    assert len(results) == 18 and not any(isinstance(r, FetchError) for r in results)
    assert feed_server.peak_active == 3  # at the limit, never above, though 9 were allowed


def test_a_slot_held_by_a_killed_worker_expires(redis_prefix: str) -> None:
    """A worker killed while it holds slots never gives them back: they expire by themselves."""
    from monitor.fetch import SharedHostLimit

    async def go() -> tuple[bool, bool, float]:
        limit = SharedHostLimit(REDIS_URL, per_host=2, lease_seconds=0.5, prefix=redis_prefix)
        try:
            assert await limit.try_acquire("example.org", "dead-1")
            assert await limit.try_acquire("example.org", "dead-2")  # never released
            refused = not await limit.try_acquire("example.org", "alive")
            start = time.monotonic()
            async with limit.slot("example.org"):  # waits for the dead worker's leases
                waited = time.monotonic() - start
            other_host = await limit.try_acquire("example.net", "alive")
            return refused, other_host, waited
        finally:
            await limit.close()

    refused, other_host, waited = asyncio.run(go())
    assert refused and other_host
    assert 0.3 < waited < 3.0


def test_a_fetch_error_says_its_kind_once() -> None:
    """The log line and `monitor feeds` say « network error: … », not « network: network
    error: … »; a kind the message does not say is put in front."""
    from monitor.pipeline import _kind_said

    assert _kind_said("network", "network error: [Errno -2] Name or service not known") == (
        "network error: [Errno -2] Name or service not known"
    )
    assert _kind_said("timeout", "timeout: ConnectTimeout") == "timeout: ConnectTimeout"
    assert _kind_said("too-large", "body over 10 MB") == "too-large: body over 10 MB"
    assert _kind_said("http-404", "HTTP 404") == "http-404: HTTP 404"
