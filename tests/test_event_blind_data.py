"""Consistency of the blind event sets' files and of the dense tune stream (no clustering is
run here)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

import pytest

from bench import event_blind2 as b2
from bench import event_blind3 as b3
from bench import event_blind4 as b4
from bench import event_dense7 as d7
from bench.eval_item import Loaded
from bench.shared import CapturesMissing

REAL: dict[str, Callable[[], Loaded]] = {
    "blind2": b2.load_real,
    "blind3": b3.load_real,
    "blind3 community": b3.load_community,
    "blind4 war": b4.load_war,
    "blind4 community": b4.load_community,
}
WRITTEN: dict[str, tuple[Callable[[], Loaded], int]] = {
    # loader, events with three or more items the writer was asked for
    "blind2 written 2": (b2.load_written, 40),
    "blind2 written 3": (lambda: b2.load_written(b2.WRITTEN3, b2.WRITTEN3_LOOKALIKES), 40),
    "blind3 written 4": (b3.load_written, 36),
    "dense7 written (tune)": (d7.load_written, 40),
}


@pytest.mark.parametrize("part", sorted(REAL))
def test_real_labels_name_captured_items_and_events_have_several_items(part: str) -> None:
    try:
        items, labels, lookalikes = REAL[part]()
    except CapturesMissing as e:
        pytest.skip(str(e))
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids))
    assert set(labels) <= set(ids) and set(lookalikes) <= set(ids)
    sizes: dict[str, int] = defaultdict(int)
    for event in labels.values():
        sizes[event] += 1
    assert all(n >= 2 for n in sizes.values())
    events_of_group: dict[str, set[str]] = defaultdict(set)
    for item, group in lookalikes.items():
        events_of_group[group].add(labels.get(item, item))
    assert all(len(e) >= 2 for e in events_of_group.values())


def test_the_sets_share_no_capture() -> None:
    assert not set(b2.XML_FILES + b2.JSON_FILES) & set(b3.XML_FILES + b3.JSON_FILES)


@pytest.mark.parametrize("part", sorted(WRITTEN))
def test_written_events_are_multi_outlet_and_within_36_hours(part: str) -> None:
    load, several = WRITTEN[part]
    items, events, lookalikes = load()
    by_event: dict[str, list[int]] = defaultdict(list)
    for n, item in enumerate(items):
        by_event[events[item.id]].append(n)
    for members in by_event.values():
        assert len(members) >= 2
        times = [items[n].time for n in members]
        assert max(times) - min(times) <= timedelta(hours=36)
        titles = {items[n].title for n in members}
        assert len(titles) == len(members)  # no repeated headline
    assert sum(1 for m in by_event.values() if len(m) >= 3) >= several
    events_of_group: dict[str, set[str]] = defaultdict(set)
    for item, group in lookalikes.items():
        events_of_group[group].add(events[item])
    assert all(len(e) >= 2 for e in events_of_group.values())


def test_the_dense_tune_stream_shares_no_event_with_another_set() -> None:
    """dense7's writer was given the other sets' event ids to avoid: none is in it."""
    import json
    from pathlib import Path

    data = Path(d7.__file__).resolve().parent.parent / "tests" / "data"
    mine = {json.loads(line)["event"] for line in d7.WRITTEN.read_text().splitlines() if line}
    others: set[str] = set()
    for path in data.glob("event_*written*.jsonl"):
        if path != d7.WRITTEN:
            others |= {json.loads(line)["event"] for line in path.read_text().splitlines() if line}
    assert len(mine) == 52 and len(mine & others) == 0  # (a count: no other set's id printed)
