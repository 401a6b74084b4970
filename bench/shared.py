"""Where ../shared is: beside the checkout, one level up (a git worktree), or
MONITOR_SHARED_DIR. Publishers' text in its captures is read in place, never copied into the
repository."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def find_shared() -> Path:
    """The first candidate holding fixtures/real-feeds; the first candidate when none does
    (callers skip and say so)."""
    env = os.environ.get("MONITOR_SHARED_DIR")
    candidates = [Path(env)] if env else []
    candidates += [ROOT.parent / "shared", ROOT.parent.parent / "shared"]
    for shared in candidates:
        if (shared / "fixtures" / "real-feeds").is_dir():
            return shared
    return candidates[0]


SHARED = find_shared()
CAPTURES = SHARED / "fixtures" / "real-feeds"
