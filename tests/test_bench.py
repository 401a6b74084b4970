"""The benchmarks' smoke modes, so that they keep working (numbers come from the full modes)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run(script: str) -> str:
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_bench_classify_smoke() -> None:
    out = run("bench_classify.py")
    assert "items/s" in out and "floor" in out


def test_bench_poll_smoke() -> None:
    out = run("bench_poll.py")
    assert "conditional 12/12" in out


def test_bench_latency_smoke() -> None:
    out = run("bench_latency.py")
    assert "embedded  p50" in out and "celery    p50" in out


def test_bench_storage_smoke() -> None:
    out = run("bench_storage.py")
    assert out.count("per 100k items") == 2 and out.count("matches --since 24 h") == 2


def test_bench_worker_memory_smoke() -> None:
    out = run("bench_worker_memory.py")
    assert "growth from" in out


def test_bench_corpus_smoke() -> None:
    out = run("bench_corpus.py")
    assert "Python exceptions in feed errors: 0; in the log: 0" in out
    assert "escaped <script> openers" in out
