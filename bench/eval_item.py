"""One item of an event evaluation and the labels' file reader, shared by bench/eval_events.py,
bench/event_heldout.py and bench/event_blind2.py (a module of its own so that none imports
another at load time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class EvalItem:
    id: str
    title: str
    summary: str
    time: datetime
    dated: bool = True  # False: the capture's time stands in for a missing published date


def read_labels(path: Path, header: tuple[str, str]) -> dict[str, str]:
    """A two-column TSV (item or event → event or group): a line naming its file and line
    for a malformed row or a key listed twice; `header` and comment lines skipped."""
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{path.name}:{n}: expected two tab-separated fields")
        if tuple(parts) == header:
            continue
        if parts[0] in out:
            raise ValueError(f"{path.name}:{n}: {parts[0]} listed twice")
        out[parts[0]] = parts[1]
    return out
