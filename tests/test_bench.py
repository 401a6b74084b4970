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
