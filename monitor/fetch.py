"""HTTP fetching under explicit limits: conditional GET, deadline, body cap, redirects,
bounded concurrency with a per-host limit. feedparser never touches the network."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import random
import ssl
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Hashable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from monitor import USER_AGENT
from monitor.errors import FetchError
from monitor.types import FetchLimits, FetchResult

log = logging.getLogger(__name__)

REDIRECTS = {301, 302, 303, 307, 308}
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True)
class FetchRequest:
    key: Hashable  # the caller's handle (a feed id)
    url: str
    etag: str | None = None
    last_modified: str | None = None


def _header_int(value: str | None) -> int | None:
    """A header's non-negative integer, ASCII digits only ("²".isdigit() is true too)."""
    if value and value.isascii() and value.isdigit():
        return int(value)
    return None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    seconds = _header_int(value)
    if seconds is not None:
        return float(min(seconds, 7 * 86400))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, min(when.timestamp() - now, 7 * 86400))


class _Inflater:
    """Decompresses gzip/deflate incrementally, never producing more than the cap allows."""

    def __init__(self, encoding: str, cap: int):
        self.cap = cap
        self.size = 0
        enc = encoding.lower().strip()
        if enc in ("gzip", "x-gzip"):
            self._z: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._z = zlib.decompressobj()
            self._raw_fallback = True
        elif enc in ("", "identity"):
            self._z = None
        else:
            raise FetchError(f"unsupported Content-Encoding {encoding!r}", kind="bad-encoding")
        self._deflate_first = enc == "deflate"

    def feed(self, chunk: bytes) -> bytes:
        if self._z is None:
            self._count(len(chunk))
            return chunk
        out = bytearray()
        data = chunk
        while data:
            try:
                piece = self._z.decompress(data, self.cap - self.size + 1)
            except zlib.error as e:
                if self._deflate_first and self.size == 0:
                    # Some servers send raw deflate without the zlib header.
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._deflate_first = False
                    continue
                raise FetchError(f"corrupt compressed body: {e}", kind="bad-encoding") from e
            self._deflate_first = False
            self._count(len(piece))
            out += piece
            data = self._z.unconsumed_tail
            if self._z.eof:
                break
        return bytes(out)

    def _count(self, n: int) -> None:
        self.size += n
        if self.size > self.cap:
            raise FetchError(
                f"body larger than the cap of {self.cap} bytes (after decompression)",
                kind="too-large",
            )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads the CA bundle (a tenth of a second),
    which httpx would otherwise do for every client, i.e. for every Celery poll."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


# A slot of the shared per-host limit: one member of a sorted set per host, scored by its
# expiry (Redis server time, ms). Expired members are dropped before counting, so a worker that
# is killed while holding slots gives them back after the lease, without anyone's help.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
"""
SHARED_KEY_PREFIX = "monitor:host-slots:"
REDIS_CONNECTIONS = 4  # per Fetcher (per poll task)
LEASE_MARGIN = 10.0  # seconds a slot outlives the request deadline (a killed worker's slot)


class SharedHostLimit:
    """The per-host limit across processes and machines (Celery workers): at most `per_host`
    requests to one host at once in total, counted in Redis. Each slot is a lease that expires
    `deadline + LEASE_MARGIN` seconds after it was taken, so a killed worker cannot leak slots.
    If Redis cannot be reached, the in-process limit still holds and one warning says so."""

    def __init__(
        self,
        url: str,
        per_host: int,
        lease_seconds: float,
        prefix: str = SHARED_KEY_PREFIX,
    ):
        import redis.asyncio

        self.per_host = per_host
        self.lease_ms = int(lease_seconds * 1000)
        self.prefix = prefix
        # A few connections, waited for: not one per request waiting for its host.
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=REDIS_CONNECTIONS)
        self._redis: Any = redis.asyncio.Redis(connection_pool=pool)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._warned = False

    async def close(self) -> None:
        await self._redis.aclose(close_connection_pool=True)

    async def try_acquire(self, host: str, token: str) -> bool:
        args: list[int | str] = [self.per_host, self.lease_ms, token]
        return bool(await self._acquire(keys=[self.prefix + host], args=args))

    async def release(self, host: str, token: str) -> None:
        await self._redis.zrem(self.prefix + host, token)

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Wait for a slot of `host` (polling Redis, 5 to 50 ms apart), hold it, give it back."""
        import redis

        token = uuid.uuid4().hex
        wait = 0.005
        try:
            while not await self.try_acquire(host, token):
                await asyncio.sleep(wait * random.uniform(0.5, 1.5))
                wait = min(wait * 1.5, 0.05)
        except redis.RedisError as e:
            if not self._warned:
                self._warned = True
                log.warning(
                    "shared per-host limit unavailable (%s): only this process's limit holds",
                    e,
                )
            yield
            return
        try:
            yield
        finally:
            with suppress(redis.RedisError):  # else the lease expires by itself
                await self.release(host, token)


class Fetcher:
    """Async HTTP with a global and a per-host concurrency limit (a connection pool per host).
    With `shared_limit_url` (a Redis URL), the per-host limit also holds across processes."""

    def __init__(
        self,
        limits: FetchLimits,
        transport: httpx.AsyncBaseTransport | None = None,
        shared_limit_url: str | None = None,
    ):
        self.limits = limits
        self._global = asyncio.Semaphore(limits.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._shared = (
            SharedHostLimit(shared_limit_url, limits.per_host, limits.deadline + LEASE_MARGIN)
            if shared_limit_url
            else None
        )

    def _client_for(self, url: str) -> httpx.AsyncClient:
        """One connection pool per host: httpcore scans every pooled connection on each
        request, so one pool of a hundred connections costs more than thirty pools of four."""
        parts = urlsplit(url)
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        client = self._clients.get(origin)
        if client is None:
            limits = self.limits
            client = self._clients[origin] = httpx.AsyncClient(
                verify=_tls_context(),
                follow_redirects=False,
                timeout=httpx.Timeout(
                    connect=limits.connect_timeout,
                    read=limits.deadline,
                    write=limits.deadline,
                    pool=limits.deadline,
                ),
                limits=httpx.Limits(
                    max_connections=limits.per_host, max_keepalive_connections=limits.per_host
                ),
                headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
                transport=self._transport,
            )
        return client

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self._clients.values():
            await client.aclose()
        if self._shared is not None:
            await self._shared.close()

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        sem = self._hosts.get(host)
        if sem is None:
            sem = self._hosts[host] = asyncio.Semaphore(self.limits.per_host)
        return sem

    def _shared_slot(self, host: str) -> AbstractAsyncContextManager[None]:
        return self._shared.slot(host) if self._shared is not None else nullcontext()

    async def fetch(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """Fetch one feed; raise FetchError with a `kind` on every failure."""
        started = time.monotonic()
        host = (urlsplit(url).hostname or "").lower()
        # The host slot first: a request waiting for its host must not hold a global slot
        # that a request to another host could use. The shared slot (other processes) last,
        # just before the request, so that its lease only has to outlive the deadline.
        async with self._host_slot(host), self._global, self._shared_slot(host):
            try:
                async with asyncio.timeout(self.limits.deadline):
                    return await self._fetch(url, etag, last_modified, started)
            except TimeoutError as e:
                raise FetchError(
                    f"no complete answer within {self.limits.deadline:g} s", kind="timeout"
                ) from e

    async def fetch_request(self, req: FetchRequest) -> FetchResult | FetchError:
        """`fetch` with every failure as a value (FetchError), for callers running many."""
        try:
            return await self.fetch(req.url, req.etag, req.last_modified)
        except FetchError as e:
            return e
        except Exception as e:  # a bug or an exotic library error: keep the others going
            log.exception("unexpected error fetching %s", req.url)
            return FetchError(f"unexpected {type(e).__name__}: {e}", kind="internal")

    async def _fetch(
        self, url: str, etag: str | None, last_modified: str | None, started: float
    ) -> FetchResult:
        current = url
        seen = {url}
        headers = {"Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for _ in range(self.limits.max_redirects + 1):
            scheme = urlsplit(current).scheme.lower()
            if scheme not in ("http", "https"):
                raise FetchError(f"refused URL scheme {scheme!r}: {current}", kind="bad-scheme")
            try:
                client = self._client_for(current)
                request = client.build_request("GET", current, headers=headers)
                response = await client.send(request, stream=True)
            except httpx.TimeoutException as e:
                raise FetchError(f"timeout: {type(e).__name__}", kind="timeout") from e
            except httpx.HTTPError as e:
                raise FetchError(f"network error: {e or type(e).__name__}", kind="network") from e
            try:
                if response.status_code in REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError("redirect without Location", kind="bad-redirect")
                    nxt = urljoin(current, location.strip())
                    if nxt in seen:
                        raise FetchError(f"redirect loop at {nxt}", kind="redirect-loop")
                    seen.add(nxt)
                    current = nxt
                    continue
                return await self._finish(url, current, response, started)
            finally:
                await response.aclose()
        raise FetchError(
            f"more than {self.limits.max_redirects} redirects", kind="too-many-redirects"
        )

    async def _finish(
        self, url: str, final_url: str, response: httpx.Response, started: float
    ) -> FetchResult:
        status = response.status_code
        if status == 304:
            return FetchResult(
                url=url,
                final_url=final_url,
                status=304,
                body=None,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                elapsed=time.monotonic() - started,
            )
        if status in (429, 503):
            retry = parse_retry_after(response.headers.get("retry-after"))
            raise FetchError(f"HTTP {status}", kind=f"http-{status}", retry_after=retry)
        if status >= 400 or status < 200:
            raise FetchError(f"HTTP {status}", kind=f"http-{status}")
        declared = response.headers.get("content-length")
        cap = self.limits.max_body_bytes
        encoding = response.headers.get("content-encoding", "")
        length = _header_int(declared)
        if length is not None and length > cap and not encoding:
            raise FetchError(
                f"Content-Length {declared} is larger than the cap of {cap} bytes",
                kind="too-large",
            )
        inflater = _Inflater(encoding, cap)
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += inflater.feed(chunk)
        return FetchResult(
            url=url,
            final_url=final_url,
            status=status,
            body=bytes(body),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            elapsed=time.monotonic() - started,
            content_type=response.headers.get("content-type"),
        )


async def fetch_many(
    requests: Sequence[FetchRequest], limits: FetchLimits, shared_limit_url: str | None = None
) -> AsyncIterator[tuple[FetchRequest, FetchResult | FetchError]]:
    """Fetch concurrently; yield each (request, result or error) as soon as it is done.
    `shared_limit_url`: a Redis URL holding the per-host limit across processes (Celery)."""
    async with Fetcher(limits, shared_limit_url=shared_limit_url) as fetcher:

        async def one(req: FetchRequest) -> tuple[FetchRequest, FetchResult | FetchError]:
            return req, await fetcher.fetch_request(req)

        tasks = [asyncio.create_task(one(r)) for r in requests]
        try:
            for fut in asyncio.as_completed(tasks):
                yield await fut
        finally:
            for t in tasks:
                t.cancel()


def fetch_one(
    url: str, limits: FetchLimits, etag: str | None = None, last_modified: str | None = None
) -> FetchResult:
    """Synchronous single fetch."""

    async def go() -> FetchResult:
        async with Fetcher(limits) as fetcher:
            return await fetcher.fetch(url, etag, last_modified)

    return asyncio.run(go())
