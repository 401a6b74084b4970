"""Retention: what is pruned when (pure), and the pruning itself on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from monitor.durations import parse_duration
from monitor.maintenance import prune
from monitor.retention import Retention, plan, prune_due
from monitor.store import Database, upgrade
from monitor.store import feeds as feed_store
from monitor.store import items as item_store
from monitor.store import matches as match_store
from monitor.store.models import Feed, Item, ItemFeed, Match
from monitor.types import Classification, Evidence, FeedConfig
from monitor.types import Item as ParsedItem

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
C = Classification(
    ("karabakh_ceasefire",),
    {"karabakh_ceasefire": 9.0},
    (Evidence("karabakh_ceasefire", "karabakh", "title", 9.0),),
)


def test_durations() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("0d") == timedelta(0)
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration(" 90m ") == timedelta(minutes=90)
    for bad in ("30", "d", "-1d", "3 days", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_plan_and_schedule() -> None:
    p = plan(Retention(unmatched_days=30), NOW)
    assert p.text_before == NOW - timedelta(days=30) and p.stories_before is None
    now_plan = plan(Retention(30), NOW, timedelta(0))
    assert now_plan.text_before == NOW and now_plan.forget_before == NOW - timedelta(days=30)
    assert plan(Retention(30, matched_days=400), NOW).stories_before == NOW - timedelta(400)
    assert prune_due(None, NOW)
    assert not prune_due(NOW - timedelta(hours=23), NOW)
    assert prune_due(NOW - timedelta(hours=24), NOW)


def _item(n: int) -> ParsedItem:
    return ParsedItem(
        key=f"https://e.org/{n}",
        guid=None,
        link=f"https://e.org/{n}",
        title=f"Titre numéro {n} " + "mot " * 20,
        summary="Résumé " * 80,
    )


def test_pruned_items_in_their_feed_are_never_stored_again(db_url: str) -> None:
    db = Database(db_url)
    upgrade(db.engine)
    with db.session() as s:
        feed_store.sync_feeds(s, [FeedConfig("https://a.example.org/rss")], NOW)
        feed_id = s.scalar(select(Feed.id))
    assert feed_id is not None
    items = [_item(n) for n in range(1200)]  # more than one batch
    with db.session() as s:
        stored = item_store.store_items(s, feed_id, items, NOW)
        match_store.record_matches(s, [(stored[0].row_id, stored[0].item, C)], NOW)

    later = NOW + timedelta(days=31)
    with db.session() as s:  # polled every day since: still in the feed
        item_store.store_items(s, feed_id, items, later - timedelta(hours=2))
    dry = prune(db, plan(Retention(30), later), later, dry_run=True)
    assert (dry.text_pruned, dry.forgotten) == (1199, 0)
    with db.session() as s:  # a dry run writes nothing
        assert s.scalar(select(func.count()).where(Item.pruned_at.is_not(None))) == 0

    report = prune(db, plan(Retention(30), later), later, batch=500)
    assert report.text_pruned == 1199 and report.forgotten == 0
    with db.session() as s:
        matched = s.scalar(select(Item).join(Match, Match.item_id == Item.id))
        assert matched is not None and matched.title.startswith("Titre numéro 0")
        assert s.scalar(select(func.count()).where(Item.title == "")) == 1199

    # The feed still carries them all: nothing new, nothing edited.
    edited = [ParsedItem(**{**vars(it), "title": "Titre corrigé"}) for it in items]
    with db.session() as s:
        again = item_store.store_items(s, feed_id, edited, later)
    assert not any(st.new for st in again)
    assert [st.edited for st in again].count(True) == 1  # only the matched one, not pruned
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 1200

    # Gone from the feed for longer than the period: the keys are forgotten, the match stays.
    gone = later + timedelta(days=31)
    with db.session() as s:
        item_store.store_items(s, feed_id, edited[:10], later + timedelta(days=2))
    report = prune(db, plan(Retention(30), gone), gone)
    assert report.forgotten == 1199 - 9
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 10
        assert s.scalar(select(func.count()).select_from(ItemFeed)) == 10
    db.dispose()


def test_matched_stories_expire_only_when_asked_and_their_items_stay_known(db_url: str) -> None:
    db = Database(db_url)
    upgrade(db.engine)
    with db.session() as s:
        feed_store.sync_feeds(s, [FeedConfig("https://a.example.org/rss")], NOW)
        feed_id = s.scalar(select(Feed.id))
    assert feed_id is not None
    items = [_item(n) for n in range(3)]
    with db.session() as s:
        stored = item_store.store_items(s, feed_id, items, NOW)
        match_store.record_matches(s, [(st.row_id, st.item, C) for st in stored], NOW)
    later = NOW + timedelta(days=400)
    kept = prune(db, plan(Retention(30), later), later)  # default: matched kept forever
    assert kept.stories_removed == 0
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Match)) == 3
    with db.session() as s:  # the feed still carries them
        item_store.store_items(s, feed_id, items, later - timedelta(hours=2))
    dry = prune(db, plan(Retention(30, matched_days=365), later), later, dry_run=True)
    assert dry.stories_removed >= 1
    gone = prune(db, plan(Retention(30, matched_days=365), later), later)
    assert gone.stories_removed == dry.stories_removed
    assert gone.stories_removed >= 1
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Match)) == 0
        assert s.scalar(select(func.count()).select_from(Item)) == 3  # keys kept
    with db.session() as s:  # still in the feed: not new
        assert not any(st.new for st in item_store.store_items(s, feed_id, items, later))
    db.dispose()
