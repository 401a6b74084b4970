"""The bench scripts as a desk runs them: they import each other without a cycle (each is also
run as a script, where a cycle loads a second copy of a module and a second `EvalItem` class),
find ../shared where the tests do, and refuse what they would silently misreport."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_event_blind2_loads_without_eval_events() -> None:
    code = (
        "import sys\n"
        "import bench.event_blind2 as b2\n"
        "import bench.eval_events as ev\n"
        "assert b2.EvalItem is ev.EvalItem\n"
        "sys.modules.pop('bench.eval_events')\n"
        "del sys.modules['bench.event_blind2']\n"
        "import bench.event_blind2\n"
        "print('bench.eval_events' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stderr


def test_the_tests_find_the_real_captures_where_the_benches_do() -> None:
    """From a git worktree (/work/wt/x) ../shared is two levels up; the tests used to look one
    level up only and skipped every real capture there."""
    from bench.shared import CAPTURES
    from tests.conftest import REAL_FEEDS

    assert REAL_FEEDS == CAPTURES


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--unseen2", "--train5"], "--unseen2 --train5"),
        # the held-out set's flag was once missing from the list of set flags checked here
        (["--unseen7", "--unseen5"], "--unseen5 --unseen7"),
    ],
)
def test_eval_classifier_measures_one_set_at_a_time(flags: list[str], named: str) -> None:
    """Two set flags used to run the first and ignore the second silently (`--unseen2
    --train5` printed unseen 2 only); now argparse refuses before anything is read."""
    out = subprocess.run(
        [sys.executable, "bench/eval_classifier.py", "--rules-only", *flags],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and f"one set at a time: {named}" in out.stderr, (
        out.stdout[-500:],
        out.stderr[-500:],
    )
