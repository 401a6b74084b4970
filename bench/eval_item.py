"""One item of an event evaluation and the labels' file reader, shared by bench/eval_events.py,
bench/event_heldout.py and bench/event_blind2.py (a module of its own so that none imports
another at load time)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.shared import CapturesMissing


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


# A labelled part: (items in time order, item -> event for multi-item events, item ->
# look-alike group).
Loaded = tuple[list[EvalItem], dict[str, str], dict[str, str]]


def labelled(items: Sequence[EvalItem], labels: Path, lookalikes: Path) -> Loaded:
    """`items` with their event labels and look-alike groups read from two TSVs; ValueError
    when a label names an item not among them."""
    ids = {i.id for i in items}
    events = read_labels(labels, ("item", "event"))
    look = read_labels(lookalikes, ("item", "group"))
    unknown = (set(events) | set(look)) - ids
    if unknown:
        raise ValueError(f"labels name items not in the set: {sorted(unknown)[:5]}")
    return list(items), events, look


def load_parts(loaders: Iterable[tuple[str, Callable[[], Loaded]]]) -> list[tuple[str, Loaded]]:
    """Each named part its loader gives; a part whose capture is absent is skipped, saying so
    (publishers' text is read in place from ../shared, never copied)."""
    out: list[tuple[str, Loaded]] = []
    for name, load in loaders:
        try:
            out.append((name, load()))
        except CapturesMissing as e:
            print(f"{name}: skipped ({e})")
    return out
