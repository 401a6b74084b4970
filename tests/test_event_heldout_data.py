"""The held-out event set is well formed (bench/event_heldout.py; labels made blind, issue 11)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.event_heldout import (
    CAPTURE_NAME,
    CAPTURES,
    load_heldout,
    load_labels,
    load_lookalikes,
    load_written,
)
from bench.shared import CapturesMissing

EVENT_ID = re.compile(r"^\d{4}-\d{2}-\d{2}-[a-z0-9-]+$")
ITEM_ID = re.compile(r"^lemonde2020#\d+$")


def test_labels_and_lookalikes_are_well_formed() -> None:
    labels = load_labels()
    lookalikes = load_lookalikes()
    assert all(ITEM_ID.match(i) for i in labels) and all(ITEM_ID.match(i) for i in lookalikes)
    assert all(EVENT_ID.match(e) for e in labels.values())
    # Listed events have several items (single items need no line: they are their own event).
    sizes = Counter(labels.values())
    assert min(sizes.values()) >= 2
    # A look-alike group holds different events: never two items of one labelled event.
    groups: dict[str, list[str]] = defaultdict(list)
    for item, group in lookalikes.items():
        groups[group].append(labels.get(item, item))
    for group, events in groups.items():
        assert len(events) >= 2, group
        assert len(set(events)) == len(events), f"{group} holds two items of one event"


def test_every_labelled_id_is_an_item_of_the_windows() -> None:
    try:
        rows = load_heldout(CAPTURES)
    except CapturesMissing as e:
        pytest.skip(f"../shared is absent, the held-out ids cannot be resolved: {e}")
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) == 305
    assert set(load_labels()) <= set(ids)
    assert set(load_lookalikes()) <= set(ids)
    times = [r[3] for r in rows]
    assert times == sorted(times)
    assert all(r[1] for r in rows), "every item has a title"


def test_written_events_have_three_outlets_and_lookalikes_resolve() -> None:
    items = load_written()
    assert len({i.id for i in items}) == len(items)
    by_event: dict[str, list[str]] = defaultdict(list)
    times = defaultdict(list)
    for i in items:
        by_event[i.event].append(i.outlet)
        times[i.event].append(i.published)
        assert i.title and i.summary
    for event, outlets in by_event.items():
        assert EVENT_ID.match(event), event
        assert len(outlets) >= 3, event
        assert len(set(outlets)) == len(outlets), f"{event}: one outlet twice"
        assert max(times[event]) - min(times[event]) <= timedelta(hours=36), event
    for i in items:
        if i.lookalike_of is not None:
            assert i.lookalike_of in by_event, i.id
            assert i.lookalike_of != i.event, i.id
    # Every item of an event names the same look-alike (or none).
    per_event = {(i.event, i.lookalike_of) for i in items}
    assert len(per_event) == len(by_event)


def test_loader_keeps_the_windows_in_time_order_and_says_when_the_capture_is_absent(
    tmp_path: Path,
) -> None:
    with pytest.raises(CapturesMissing, match="absent"):
        load_heldout(tmp_path)
    (tmp_path / CAPTURE_NAME).write_text(
        '<?xml version="1.0" encoding="utf-8"?><root>'
        '<item numero="9" date="20201013"><titre>b</titre><description>y</description></item>'
        '<item numero="3" date="20200901"><titre>out</titre><description>-</description></item>'
        '<item numero="8" date="20201008"><titre>a</titre><description>x</description></item>'
        '<item numero="10" date="20201013"><titre>c</titre><description>z</description></item>'
        '<item numero="11" date="20201014"><titre>out</titre><description>-</description></item>'
        "</root>",
        encoding="utf-8",
    )
    rows = load_heldout(tmp_path)
    assert [r[0] for r in rows] == ["lemonde2020#8", "lemonde2020#9", "lemonde2020#10"]
    assert rows[0][1:] == ("a", "x", datetime(2020, 10, 8, 12, tzinfo=UTC))
