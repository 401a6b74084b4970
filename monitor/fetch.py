"""HTTP fetching under explicit limits: conditional GET, deadline, body cap, redirects,
bounded concurrency with a per-host limit. feedparser never touches the network."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC
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


class Fetcher:
    """Async HTTP with a global and a per-host concurrency limit (a connection pool per host)."""

    def __init__(self, limits: FetchLimits, transport: httpx.AsyncBaseTransport | None = None):
        self.limits = limits
        self._global = asyncio.Semaphore(limits.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}

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

    def _host_slot(self, url: str) -> asyncio.Semaphore:
        host = (urlsplit(url).hostname or "").lower()
        sem = self._hosts.get(host)
        if sem is None:
            sem = self._hosts[host] = asyncio.Semaphore(self.limits.per_host)
        return sem

    async def fetch(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """Fetch one feed; raise FetchError with a `kind` on every failure."""
        started = time.monotonic()
        # The host slot first: a request waiting for its host must not hold a global slot
        # that a request to another host could use.
        async with self._host_slot(url), self._global:
            try:
                async with asyncio.timeout(self.limits.deadline):
                    return await self._fetch(url, etag, last_modified, started)
            except TimeoutError as e:
                raise FetchError(
                    f"no complete answer within {self.limits.deadline:g} s", kind="timeout"
                ) from e

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
    requests: Sequence[FetchRequest], limits: FetchLimits
) -> AsyncIterator[tuple[FetchRequest, FetchResult | FetchError]]:
    """Fetch concurrently; yield each (request, result or error) as soon as it is done."""
    async with Fetcher(limits) as fetcher:

        async def one(req: FetchRequest) -> tuple[FetchRequest, FetchResult | FetchError]:
            try:
                return req, await fetcher.fetch(req.url, req.etag, req.last_modified)
            except FetchError as e:
                return req, e
            except Exception as e:  # a bug or an exotic library error: keep the others going
                log.exception("unexpected error fetching %s", req.url)
                return req, FetchError(f"unexpected {type(e).__name__}: {e}", kind="internal")

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
    """Synchronous single fetch (Celery tasks)."""

    async def go() -> FetchResult:
        async with Fetcher(limits) as fetcher:
            return await fetcher.fetch(url, etag, last_modified)

    return asyncio.run(go())
