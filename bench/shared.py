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


class CapturesMissing(FileNotFoundError):
    """A shared capture is absent: callers skip and say so (publishers' text is not copied)."""


def need_capture(path: Path, what: str) -> None:
    """Raise CapturesMissing, naming `what` reads the capture, when `path` is not a file."""
    if not path.is_file():
        raise CapturesMissing(
            f"{path} is absent: {what} reads it in place from ../shared/fixtures/real-feeds "
            "(set MONITOR_SHARED_DIR to point elsewhere)"
        )
