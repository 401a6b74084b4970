"""Storage on SQLite and PostgreSQL: the unique constraints keep the promises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from monitor.routing import route
from monitor.schedule import next_check_after_error
from monitor.store import Database, outbox, upgrade
from monitor.store import feeds as feed_store
from monitor.store import items as item_store
from monitor.store import matches as match_store
from monitor.store.models import Alert, Delivery, Feed, Item, ItemFeed
from monitor.types import Classification, Evidence, FeedConfig, Target
from monitor.types import Item as ParsedItem

NOW = datetime(2024, 2, 13, 12, tzinfo=UTC)
C = Classification(
    ("karabakh_ceasefire",),
    {"karabakh_ceasefire": 9.0},
    (Evidence("karabakh_ceasefire", "karabakh", "title", 9.0),),
)


def item(key: str, title: str, link: str | None = None, summary: str = "") -> ParsedItem:
    return ParsedItem(key=key, guid=None, link=link, title=title, summary=summary)


def record_match(
    s: Session, row: int, it: ParsedItem, c: Classification, targets: list[Target]
) -> int | None:
    """What the pipeline does for one matched item: match, alert, outbox rows to its targets."""
    ((_, alert),) = match_store.record_matches(s, [(row, it, c)], NOW)
    if alert is None:
        return None
    outbox.add_deliveries(s, alert.id, [t.key for t in route(alert.topics, targets)], NOW)
    return alert.id


def setup(url: str) -> tuple[Database, list[int]]:
    db = Database(url)
    upgrade(db.engine)
    with db.session() as s:
        feed_store.sync_feeds(
            s,
            [FeedConfig("https://a.example.org/rss"), FeedConfig("https://b.example.org/rss")],
            NOW,
        )
        ids = [f.id for f in s.scalars(select(Feed).order_by(Feed.id))]
    return db, ids


def test_item_stored_once_whatever_the_feed(db_url: str) -> None:
    db, (fa, fb) = setup(db_url)
    a = item("https://e.org/1", "Titre", "https://e.org/1")
    b = item("b.example.org#77", "Titre", "https://e.org/1")  # other guid, same link
    with db.session() as s:
        first = item_store.store_items(s, fa, [a], NOW)
    with db.session() as s:
        second = item_store.store_items(s, fb, [b, b], NOW)
    assert first[0].new and not second[0].new and first[0].row_id == second[0].row_id
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 1
        assert s.scalar(select(func.count()).select_from(ItemFeed)) == 2
    db.dispose()


def test_concurrent_sessions_cannot_store_twice(db_url: str) -> None:
    db, (fa, fb) = setup(db_url)
    it = item("https://e.org/race", "Course", "https://e.org/race")
    s1, s2 = db.sessions(), db.sessions()
    try:
        r1 = item_store.store_items(s1, fa, [it], NOW)
        s1.commit()
        r2 = item_store.store_items(s2, fb, [it], NOW)  # started before it saw s1's row
        s2.commit()
    finally:
        s1.close()
        s2.close()
    assert r1[0].new and not r2[0].new
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 1
    db.dispose()


def test_one_alert_per_story_and_near_duplicates(db_url: str) -> None:
    db, (fa, fb) = setup(db_url)
    targets = [Target("json://127.0.0.1:9/a"), Target("json://127.0.0.1:9/o", tags=("otsc",))]
    a = item(
        "https://a.org/x",
        "Arménie-Azerbaïdjan : quatre soldats arméniens tués à la frontière",
        "https://a.org/x",
        "Erevan accuse Bakou d'avoir ouvert le feu mardi.",
    )
    b = item(
        "https://b.org/y",
        "Arménie-Azerbaïdjan : quatre soldats arméniens tués à la frontière",
        "https://b.org/y",
        "Erevan accuse Bakou d'avoir ouvert le feu mardi matin.",
    )
    other = item(
        "https://b.org/z",
        "Haut-Karabakh : Bakou et Erevan échangent des prisonniers",
        "https://b.org/z",
    )
    with db.session() as s:
        (sa,) = item_store.store_items(s, fa, [a], NOW)
        alert_a = record_match(s, sa.row_id, a, C, targets)
    with db.session() as s:
        sb, so = item_store.store_items(s, fb, [b, other], NOW)
        alert_b = record_match(s, sb.row_id, b, C, targets)
        alert_o = record_match(s, so.row_id, other, C, targets)
    assert alert_a and alert_b is None and alert_o and alert_o != alert_a
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 2
        # Routing: the otsc-tagged target gets no karabakh alert.
        assert {d.target for d in s.scalars(select(Delivery))} == {"json://127.0.0.1:9/a"}
    db.dispose()


def test_claimed_messages_are_not_claimed_twice(db_url: str) -> None:
    db, (fa, _) = setup(db_url)
    targets = [Target("json://127.0.0.1:9/a")]
    key = targets[0].key
    with db.session() as s:
        (st,) = item_store.store_items(
            s, fa, [item("https://a.org/c", "Haut-Karabakh", "https://a.org/c")], NOW
        )
        record_match(s, st.row_id, st.item, C, targets)
        (row,) = outbox.waiting_rows(s, key)
        mid = outbox.add_message(s, key, "alert", "t", "b", "text", [row.story_id], NOW)
        outbox.bind(s, key, mid, [(row.id, "alert", row.alert_id, frozenset())], NOW)
    s1, s2 = db.sessions(), db.sessions()
    try:
        got1 = outbox.claim_messages(s1, NOW, 10, 300)
        s1.commit()
        got2 = outbox.claim_messages(s2, NOW, 10, 300)
        s2.commit()
        later = outbox.claim_messages(s2, NOW + timedelta(seconds=301), 10, 300)  # claim expired
        s2.commit()
    finally:
        s1.close()
        s2.close()
    assert len(got1) == 1 and got2 == [] and len(later) == 1 and got1[0].rows == 1
    with db.session() as s:
        outbox.mark_message_sent(s, got1[0].id, NOW)
    with db.session() as s:
        assert outbox.claim_messages(s, NOW + timedelta(days=1), 10, 300) == []
        assert s.scalars(select(Delivery.status)).all() == ["sent"]
    db.dispose()


def test_feed_backoff_and_retry_after(db_url: str) -> None:
    db, (fa, _) = setup(db_url)
    with db.session() as s:
        feed = s.get(Feed, fa)
        assert feed is not None
        for n in range(1, 5):
            retry = next_check_after_error(feed.interval, feed.error_count + 1, None, NOW)
            feed_store.record_fetch_error(feed, NOW, retry, "http-500", "HTTP 500", 500)
            wait = (feed.next_check_at - NOW).total_seconds()  # type: ignore[operator]
            assert 300 * 2 ** (n - 1) * 0.89 <= wait <= 300 * 2 ** (n - 1) * 1.11
        retry = next_check_after_error(feed.interval, feed.error_count + 1, 86_400, NOW)
        feed_store.record_fetch_error(feed, NOW, retry, "http-429", "HTTP 429", 429)
        assert feed.next_check_at == NOW + timedelta(seconds=86_400)
        assert feed.error_count == 5 and feed.error == "HTTP 429"
    db.dispose()


def test_a_poll_transaction_alone_commits_without_waiting_for_the_disk(db_url: str) -> None:
    """PostgreSQL: the poll's transaction has synchronous_commit off, the next one the
    server's setting again; SQLite: the feed, nothing else. A removed feed is None."""
    db, ids = setup(db_url)
    with db.session() as s:
        server = s.scalar(text("SHOW synchronous_commit")) if db.is_postgres else None
    with db.session() as s:
        feed = feed_store.load_for_poll(s, ids[0])
        assert feed is not None and feed.id == ids[0]
        if db.is_postgres:
            assert s.scalar(text("SHOW synchronous_commit")) == "off"
        assert feed_store.load_for_poll(s, max(ids) + 1) is None
    if db.is_postgres:
        with db.session() as s:
            assert s.scalar(text("SHOW synchronous_commit")) == server
    db.dispose()
