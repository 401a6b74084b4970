"""Consistency of the second blind event set's files (no clustering is run here)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest

from bench.event_blind2 import (
    WRITTEN3,
    WRITTEN3_LOOKALIKES,
    CapturesMissing,
    load_real,
    load_written,
)


def test_real_labels_name_captured_items_and_events_have_several_items() -> None:
    try:
        items, labels, lookalikes = load_real()
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


@pytest.mark.parametrize("part", ["written", "written3"])
def test_written_events_are_multi_outlet_and_within_36_hours(part: str) -> None:
    items, events, lookalikes = (
        load_written() if part == "written" else load_written(WRITTEN3, WRITTEN3_LOOKALIKES)
    )
    by_event: dict[str, list[int]] = defaultdict(list)
    for n, item in enumerate(items):
        by_event[events[item.id]].append(n)
    for members in by_event.values():
        assert len(members) >= 2
        times = [items[n].time for n in members]
        assert max(times) - min(times) <= timedelta(hours=36)
        titles = {items[n].title for n in members}
        assert len(titles) == len(members)  # no repeated headline
    assert sum(1 for m in by_event.values() if len(m) >= 3) >= 40
    events_of_group: dict[str, set[str]] = defaultdict(set)
    for item, group in lookalikes.items():
        events_of_group[group].add(events[item])
    assert all(len(e) >= 2 for e in events_of_group.values())
