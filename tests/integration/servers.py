"""The PostgreSQL and Redis servers of the tests and benchmarks.

`SERVERS` gives the servers of a test session (or of one benchmark run): the ones configured by
`MONITOR_TEST_PG_URL` / `MONITOR_TEST_REDIS_URL` (default 127.0.0.1:5432 and :6379) when they
answer, otherwise private ones started from the installed binaries on free ports, on first use,
and stopped at the end. `PrivateRedis` and `PrivatePostgres` are also what a fault test may
stop, kill and restart without touching the shared services."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

PG_URL_VAR = "MONITOR_TEST_PG_URL"
REDIS_URL_VAR = "MONITOR_TEST_REDIS_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
INSTALL_HINT = "`python -m tests` installs it; or apt-get install"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, up: bool, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not go {'up' if up else 'down'} in {timeout} s")


class PrivateRedis:
    """redis-server on a free port, nothing kept on disk (like the shared one)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(f"redis-server is not installed ({INSTALL_HINT} redis-server)")
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, up=True)

    def kill(self) -> None:
        """SIGKILL: queued messages are gone, as after a crash of a Redis that keeps nothing."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        wait_port(self.port, up=False)

    def close(self) -> None:
        self.kill()


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb) on a free port, trust auth; stop/start/restart
    as an operator would. Run as the `postgres` user when the tests run as root."""

    def __init__(self) -> None:
        initdb = shutil.which("initdb") or _pg_bin("initdb")
        if initdb is None:
            pytest.fail(
                f"PostgreSQL server binaries (initdb) are not installed ({INSTALL_HINT} postgresql)"
            )
        self.bin = Path(initdb).parent
        self.dir = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-A", "trust",
                  "-U", "postgres", "--no-sync")  # fmt: skip
        self.start()

    def _run(self, *cmd: str) -> None:
        full = ["runuser", "-u", "postgres", "--", *cmd] if self.as_root else list(cmd)
        subprocess.run(full, check=True, capture_output=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-w", "-l",
                  str(self.dir / "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")  # fmt: skip
        wait_port(self.port, up=True)

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-w", "-m", mode,
                  "stop")  # fmt: skip
        wait_port(self.port, up=False)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, TimeoutError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_bin(name: str) -> str | None:
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    return None


def answers(url: str) -> bool:
    """Something accepts connections at the URL's host and port."""
    parts = urlsplit(url)
    default = 6379 if parts.scheme.startswith("redis") else 5432
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default), 0.5):
            return True
    except OSError:
        return False


def server_url(url: str) -> str:
    """The URL without its database path (`redis://host:port`)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Servers:
    """The configured PostgreSQL and Redis when they answer, else private ones, started on
    first use (once per process) and stopped by `close()` (at the end of the test session, or
    at exit)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner = os.getpid()
        self.private_pg: PrivatePostgres | None = None
        self.private_redis: PrivateRedis | None = None
        self._pg: str | None = None
        self._redis: str | None = None
        self.notes: list[str] = []

    def postgres_url(self) -> str:
        """An admin URL (SQLAlchemy, psycopg) on which tests create their own databases."""
        with self.lock:
            if self._pg is None:
                configured = os.environ.get(PG_URL_VAR) or DEFAULT_PG_URL
                if answers(configured):
                    self._pg = configured
                    self.notes.append(f"PostgreSQL: {_where(configured)}{_source(PG_URL_VAR)}")
                else:
                    self.private_pg = PrivatePostgres()
                    self._pg = self.private_pg.url
                    self.notes.append(
                        f"PostgreSQL: nothing answered on {_where(configured)}; a private "
                        f"cluster ran on 127.0.0.1:{self.private_pg.port}"
                    )
            return self._pg

    def redis_url(self) -> str:
        """The Redis server (`redis://host:port`, no database: see `redis_database`)."""
        with self.lock:
            if self._redis is None:
                configured = os.environ.get(REDIS_URL_VAR) or DEFAULT_REDIS_URL
                if answers(configured):
                    self._redis = server_url(configured)
                    self.notes.append(f"Redis: {_where(configured)}{_source(REDIS_URL_VAR)}")
                else:
                    self.private_redis = PrivateRedis()
                    self._redis = server_url(self.private_redis.url)
                    self.notes.append(
                        f"Redis: nothing answered on {_where(configured)}; a private server "
                        f"ran on 127.0.0.1:{self.private_redis.port}"
                    )
            return self._redis

    def env(self) -> dict[str, str]:
        """Settings that make a subprocess (a benchmark) use these same servers."""
        return {PG_URL_VAR: self.postgres_url(), REDIS_URL_VAR: self.redis_url()}

    def close(self) -> None:
        if os.getpid() != self.owner:  # a forked child does not own the servers
            return
        with self.lock:
            if self.private_pg is not None:
                self.private_pg.close()
            if self.private_redis is not None:
                self.private_redis.close()
            self.private_pg = self.private_redis = None
            self._pg = self._redis = None


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def _source(var: str) -> str:
    return f" (from {var})" if os.environ.get(var) else f" (the default; {var} changes it)"


SERVERS = Servers()
atexit.register(SERVERS.close)

REDIS_DATABASES = range(1, 16)  # 0 is the default of MONITOR_BROKER_URL; it holds the claims
CLAIM_SECONDS = 3600


@contextlib.contextmanager
def redis_database(server: str | None = None) -> Iterator[str]:
    """A Redis database of one's own (`redis://host:port/N`), emptied before and after: the
    number is claimed with a key in database 0 (`SET NX`, expiring after an hour should the run
    die), so that two test runs or benchmarks on one server never share a broker."""
    import redis

    base = server or SERVERS.redis_url()
    client = redis.Redis.from_url(base + "/0")
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        for n in REDIS_DATABASES:
            key = f"monitor-tests:redis-db:{n}"
            if client.set(key, token, nx=True, ex=CLAIM_SECONDS):
                break
        else:
            pytest.fail(f"no free Redis database on {base}: 1-15 are all claimed by other runs")
        own = redis.Redis.from_url(f"{base}/{n}")
        own.flushdb()
        try:
            yield f"{base}/{n}"
        finally:
            with contextlib.suppress(redis.RedisError):
                own.flushdb()
            own.close()
            with contextlib.suppress(redis.RedisError):
                if client.get(key) == token.encode():
                    client.delete(key)
    finally:
        client.close()
