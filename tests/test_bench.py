"""The benchmarks' smoke modes, so that they keep working (numbers come from the full modes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.integration.servers import SERVERS


@pytest.fixture
def servers(pg_admin_url: str, redis_server_url: str) -> dict[str, str]:
    """The session's PostgreSQL and Redis, for the benchmarks that use them."""
    return SERVERS.env()


def run(script: str, servers: dict[str, str] | None = None, *args: str) -> str:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--smoke", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **(servers or {})},
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_bench_classify_smoke() -> None:
    out = run("bench_classify.py")
    assert "items/s" in out and "floor" in out


def test_bench_poll_smoke() -> None:
    out = run("bench_poll.py")
    assert "conditional 12/12" in out


def test_bench_latency_smoke(servers: dict[str, str]) -> None:
    out = run("bench_latency.py", servers)
    assert "embedded  p50" in out and "celery    p50" in out


def test_bench_storage_smoke(servers: dict[str, str]) -> None:
    out = run("bench_storage.py", servers)
    assert out.count("per 100k items") == 2 and out.count("matches --since 24 h") == 2


def test_bench_worker_memory_smoke(servers: dict[str, str]) -> None:
    out = run("bench_worker_memory.py", servers)
    assert "growth from" in out


def test_bench_retention_smoke() -> None:
    out = run("bench_retention.py")
    assert "day  30:" in out and "day  35:" in out


def test_eval_events_smoke() -> None:
    out = run("eval_events.py")
    assert "written pairs: paraphrases joined" in out and "p95" in out


def test_eval_events_profile_stream_smoke() -> None:
    """--profile-stream scores only the items the profile matches: fewer than all of them."""
    out = run("eval_events.py", None, "--profile-stream", "--no-bench", "--split", "all")
    assert "written pairs: paraphrases joined" in out
    if "real captures: skipped" not in out:
        assert "(the profile's stream)" in out
        line = next(x for x in out.splitlines() if x.startswith("all "))
        assert int(line.split()[1]) < 120  # the smoke run's 120 items, most not the conflict's


def test_bench_assign_smoke() -> None:
    out = run("bench_assign.py")
    assert "p95" in out and "linear scan" in out


def test_bench_assign_kinds_smoke() -> None:
    out = run("bench_assign.py", None, "--kinds")
    assert "every item of a kind" in out and "p95" in out


def test_bench_corpus_smoke() -> None:
    out = run("bench_corpus.py")
    assert "Python exceptions in feed errors: 0; in the log: 0" in out
    assert "escaped <script> openers" in out
