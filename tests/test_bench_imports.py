"""The bench scripts import each other without a cycle: each is also run as a script
(`python bench/eval_events.py`), where a cycle loads a second copy of the module under its
own name and a second `EvalItem` class that compares unequal to the first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
