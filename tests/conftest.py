"""Shared fixtures: real servers on 127.0.0.1 (feeds, webhook, SMTP), real databases."""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench.shared import find_shared
from tests.integration.servers import SERVERS, redis_database

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
# ../shared found as the bench scripts find it: beside the checkout, one level up from a git
# worktree, or MONITOR_SHARED_DIR (`ROOT.parent / "shared"` alone skipped every real-capture
# test in a worktree).
SHARED = find_shared()
REAL_FEEDS = SHARED / "fixtures" / "real-feeds"


def real_feed(name: str) -> bytes:
    """A real capture from ../shared, read in place (never copied into the repo)."""
    path = REAL_FEEDS / name
    if not path.exists():
        pytest.skip(
            f"../shared/fixtures/real-feeds/{name} is absent (publishers' text is read "
            "in place from the shared folder, never copied into the repo)"
        )
    return path.read_bytes()


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# --- the feed server ------------------------------------------------------------------------


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: bool = True  # answer conditional requests with 304
    delay: float = 0.0
    handler: Callable[[BaseHTTPRequestHandler], None] | None = None  # full control


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 with ETag/Last-Modified support."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        # Requests between their arrival and the start of their answer, and the most at once:
        # per-host limits are checked against it (counted before answering, so that a client
        # that reuses its slot as soon as it has the answer is never counted twice).
        self.active = 0
        self.peak_active = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server.lock:
                    server.requests.append((self.path, dict(self.headers)))
                    server.active += 1
                    server.peak_active = max(server.peak_active, server.active)
                self.counted = True
                try:
                    self.answer()
                finally:
                    self.answering()

            def answering(self) -> None:
                if self.counted:
                    self.counted = False
                    with server.lock:
                        server.active -= 1

            def answer(self) -> None:
                route = server.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if route.delay:
                    time.sleep(route.delay)
                self.answering()
                if route.handler:
                    route.handler(self)
                    return
                tag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
                modified = formatdate(1_600_000_000 + len(route.body), usegmt=True)
                if (
                    route.etag
                    and route.status == 200
                    and (
                        self.headers.get("If-None-Match") == tag
                        or (
                            self.headers.get("If-Modified-Since") == modified
                            and not self.headers.get("If-None-Match")
                        )
                    )
                ):
                    self.send_response(304)
                    self.send_header("ETag", tag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                hdrs = {"Content-Type": "application/rss+xml; charset=utf-8", **route.headers}
                if route.etag and route.status == 200:
                    hdrs.setdefault("ETag", tag)
                    hdrs.setdefault("Last-Modified", modified)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host = host
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def add(self, path: str, body: bytes = b"", **kw: Any) -> str:
        self.routes[path] = Route(body=body, **kw)
        return self.url(path)

    def hits(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [h for p, h in self.requests if p == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


# --- the webhook receiver -------------------------------------------------------------------


def send(
    h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes = b""
) -> None:
    """Answer from a route handler, tolerating a client that went away."""
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k, v)
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    try:
        if body:
            h.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass


def dribbler(every: float, size: int = 1000) -> Callable[[BaseHTTPRequestHandler], None]:
    """A handler that promises `size` bytes and sends one every `every` seconds."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(size))
        h.end_headers()
        try:
            for _ in range(size):
                h.wfile.write(b"<")
                h.wfile.flush()
                time.sleep(every)
        except (BrokenPipeError, ConnectionResetError):
            pass

    return handler


def _peer_gone(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Webhook:
    """Receives apprise json:// posts; can refuse the first N with HTTP 500."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self.fail_next = 0
        self.down = False
        # stall > 0: hold each post that long before acting on it, and act only if the sender
        # is still there to hear the answer (a receiver that commits with its acknowledgement).
        self.stall = 0.0
        self.stalled = 0  # posts that arrived while stalling
        self.dropped = 0  # posts whose sender went away during the stall
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if hook.stall > 0:
                    hook.stalled += 1
                    time.sleep(hook.stall)
                    if _peer_gone(self.connection):
                        hook.dropped += 1
                        return
                if hook.down or hook.fail_next > 0:
                    hook.fail_next = max(0, hook.fail_next - 1)
                    hook.refused += 1
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                hook.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def titles(self) -> list[str]:
        return [r["title"] for r in self.received]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self) -> None:
            self.messages: list[bytes] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.messages.append(envelope.content)
            return "250 OK"

    sink = Sink()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    sink.url = f"mailto://127.0.0.1:{port}?from=monitor@example.org&to=desk@example.org"  # type: ignore[attr-defined]
    yield sink
    controller.stop()


# --- configuration and databases ------------------------------------------------------------


def write_config(
    directory: Path, feeds: list[dict[str, Any]] | list[str], targets: list[Any] | None = None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["feeds:"]
    for f in feeds:
        f = {"url": f} if isinstance(f, str) else f
        lines.append(f"  - url: {json.dumps(f['url'])}")
        for k, v in f.items():
            if k != "url":
                lines.append(f"    {k}: {json.dumps(v, ensure_ascii=False)}")
    (directory / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(ROOT / "config" / "topics.yaml", directory / "topics.yaml")
    tlines = ["targets:"]
    for t in targets or []:
        t = {"url": t} if isinstance(t, str) else t
        tlines.append(f"  - url: {json.dumps(t['url'])}")
        if t.get("tags"):
            tlines.append(f"    tags: {json.dumps(t['tags'])}")
        if t.get("name"):
            tlines.append(f"    name: {json.dumps(t['name'])}")
    (directory / "notify.yaml").write_text("\n".join(tlines) + "\n", encoding="utf-8")
    return directory


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'monitor.db'}"


@pytest.fixture(scope="session", autouse=True)
def _servers() -> Iterator[None]:
    """Private PostgreSQL / Redis servers started during the session stop at its end."""
    yield
    SERVERS.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for note in SERVERS.notes:
        terminalreporter.write_line(f"servers: {note}")


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """PostgreSQL for this session: MONITOR_TEST_PG_URL (default 127.0.0.1:5432) when it
    answers, else a private cluster (initdb) on a free port."""
    return SERVERS.postgres_url()


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """Redis for this session (`redis://host:port`): MONITOR_TEST_REDIS_URL (default
    127.0.0.1:6379) when it answers, else a private redis-server on a free port."""
    return SERVERS.redis_url()


@pytest.fixture
def broker_url(redis_server_url: str) -> Iterator[str]:
    """A Redis database of this test's own on the session's Redis, empty, emptied after."""
    with redis_database(redis_server_url) as url:
        yield url


@contextmanager
def fresh_pg_database(prefix: str = "monitor_t") -> Iterator[str]:
    """A new PostgreSQL database on the session's server, dropped afterwards."""
    from sqlalchemy import create_engine, text

    admin_url = SERVERS.postgres_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a storage test on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    return str(request.getfixturevalue("pg_url"))


def monitor_env(config_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(MONITOR_CONFIG_DIR=str(config_dir), MONITOR_DATABASE_URL=database_url, **extra)
    return env


# --- the browser ----------------------------------------------------------------------------


def _executable(var: str, names: tuple[str, ...], package: str) -> str:
    path = os.environ.get(var) or next(filter(None, map(shutil.which, names)), None)
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            f"{names[0]} is not installed ({var}={os.environ.get(var, '')!r}): `python -m tests` "
            f"installs it, or apt-get install {package}"
        )
    return path


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The headless browser of the page tests: MONITOR_TEST_CHROMIUM, else Debian's chromium."""
    return _executable(
        "MONITOR_TEST_CHROMIUM", ("chromium", "chromium-browser", "google-chrome"), "chromium"
    )


@pytest.fixture(scope="session")
def chromedriver_path() -> str:
    """Its WebDriver (selenium): MONITOR_TEST_CHROMEDRIVER, else Debian's chromedriver."""
    return _executable("MONITOR_TEST_CHROMEDRIVER", ("chromedriver",), "chromium-driver")
