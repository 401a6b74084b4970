"""What splitting an item off its story makes of the two stories (`monitor.splitting`, pure):
no database, the stored rows written by hand (our own words)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.errors import InputError
from monitor.events import story_name
from monitor.splitting import SplitItem, plan_split

T = datetime(2020, 10, 10, 9, tzinfo=UTC)


def item(
    id: int, title: str, hours: int, match: int | None, feeds: set[int], score: float = 10.0
) -> SplitItem:
    return SplitItem(
        id=id,
        title=title,
        summary=f"{title}.",
        published=T + timedelta(hours=hours),
        first_seen=T + timedelta(hours=hours),
        match_id=match,
        topics=("karabakh_ceasefire",) if match is not None else (),
        scores={"karabakh_ceasefire": score} if match is not None else {},
        score=score if match is not None else None,
        feeds=frozenset(feeds),
    )


TRUCE = item(1, "Arménie et Azerbaïdjan concluent une trêve à minuit", 0, 11, {1})
TALKS = item(2, "Trêve au Karabakh : les ministres se sont vus à Moscou", 2, 12, {2}, 14.0)
SOLDIER = item(3, "Un soldat arménien tué près de Latchine", 4, 13, {1, 3}, 9.0)


def test_the_new_story_is_the_item_and_the_old_one_its_other_items() -> None:
    plan = plan_split([TRUCE, TALKS, SOLDIER], 3, 7, TRUCE.title, 8)
    assert plan.moved_match == 13 and plan.new_name == story_name(SOLDIER.title, SOLDIER.summary)
    assert (plan.new.item_count, plan.new.source_count, plan.new.score) == (1, 2, 9.0)
    assert plan.new.event_time == plan.new.last_event_time == SOLDIER.published
    assert (plan.old.item_count, plan.old.source_count, plan.old.score) == (2, 2, 14.0)
    assert (plan.old.event_time, plan.old.last_event_time) == (TRUCE.published, TALKS.published)
    assert plan.old.features["items"] == 2 and plan.new.features["items"] == 1
    assert plan.old_name is None  # named after its opener, which stays
    assert plan.old_alert_match == 11


def test_the_story_named_after_the_item_takes_the_next_items_name() -> None:
    edited = f"EN DIRECT - {TRUCE.title}"  # the feed edited the opener's title since
    opener = replace(TRUCE, title=edited)
    plan = plan_split([opener, TALKS, SOLDIER], 1, 7, TRUCE.title, 8)
    assert plan.old_name == story_name(TALKS.title, TALKS.summary)
    assert plan.new_name.title == edited and plan.old_alert_match == 12
    # Named after a later item (an earlier split renamed it): renamed when it leaves too.
    assert plan_split([TRUCE, TALKS], 2, 7, TALKS.title, 8).old_name == story_name(
        TRUCE.title, TRUCE.summary
    )


def test_refusals() -> None:
    with pytest.raises(InputError, match="not a source of story 7"):
        plan_split([TRUCE, TALKS], 3, 7, TRUCE.title, 8)
    with pytest.raises(InputError, match="only source"):
        plan_split([TRUCE], 1, 7, TRUCE.title, 8)
    unmatched = item(4, "Un séisme au Maroc", 1, None, {2})
    with pytest.raises(InputError, match="did not match"):
        plan_split([TRUCE, unmatched], 4, 7, TRUCE.title, 8)
    with pytest.raises(InputError, match="no other item of story 7 matched"):
        plan_split([TRUCE, unmatched], 1, 7, TRUCE.title, 8)
