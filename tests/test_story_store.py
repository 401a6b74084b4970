"""Stories in the database (SQLite and PostgreSQL): concurrent workers, incremental refresh,
rollbacks, and the migration of stories made before event clustering."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from monitor.classify import load_profile
from monitor.errors import InputError
from monitor.events import profile_aliases
from monitor.store import Database, upgrade
from monitor.store import feeds as feed_store
from monitor.store import items as item_store
from monitor.store import matches as match_store
from monitor.store.db import Busy, alembic_config, once_more_on_conflict
from monitor.store.models import Alert, Feed, Item, Match, Story, StorySplit
from monitor.store.split import split_item
from monitor.store.stories import StoryCache
from monitor.text import signature
from monitor.types import Classification, Evidence, FeedConfig
from monitor.types import Item as ParsedItem
from tests.conftest import ROOT

NOW = datetime(2020, 10, 10, 9, tzinfo=UTC)
C = Classification(
    ("karabakh_ceasefire",),
    {"karabakh_ceasefire": 12.0},
    (Evidence("karabakh_ceasefire", "cessez-le-feu", "title", 12.0),),
)
ALIASES = profile_aliases(load_profile(ROOT / "config" / "topics.yaml"))

A = ParsedItem(
    key="https://a.example.org/treve",
    guid=None,
    link="https://a.example.org/treve",
    title="Arménie et Azerbaïdjan concluent un cessez-le-feu à minuit",
    summary="Erevan et Bakou ont accepté une trêve humanitaire à partir de minuit, sous l'égide "
    "de Moscou, après deux semaines de combats au Haut-Karabakh.",
    published=NOW - timedelta(hours=6),
)
B = ParsedItem(
    key="https://b.example.org/karabakh-treve",
    guid=None,
    link="https://b.example.org/karabakh-treve",
    title="Haut-Karabakh : une trêve entre Bakou et Erevan négociée à Moscou",
    summary="Après dix heures de discussions dans la capitale russe, les ministres des affaires "
    "étrangères arménien et azerbaïdjanais ont annoncé un cessez-le-feu humanitaire.",
    published=NOW - timedelta(hours=3),
)
OTHER = ParsedItem(
    key="https://b.example.org/seisme",
    guid=None,
    link="https://b.example.org/seisme",
    title="Séisme de magnitude 6,8 au Maroc : plus de 800 morts",
    summary="Un tremblement de terre a frappé la région d'Al-Haouz dans la nuit.",
    published=NOW - timedelta(hours=1),
)


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


def store_and_match(db: Database, feed: int, it: ParsedItem, cache: StoryCache) -> int | None:
    """What a worker does for one matched item: store it, give it its story, alert the story."""
    with db.session() as s:
        (stored,) = item_store.store_items(s, feed, [it], NOW)
        ((_, alert),) = match_store.record_matches(s, [(stored.row_id, it, C)], NOW, cache)
        return alert.id if alert else None


def story_of(db: Database, link: str) -> int | None:
    with db.session() as s:
        return s.scalar(select(Item.story_id).where(Item.link == link))


def test_two_workers_at_once_make_one_story_for_one_event(db_url: str) -> None:
    db, (fa, fb) = setup(db_url)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(feed: int, it: ParsedItem) -> None:
        cache = StoryCache(aliases=ALIASES)  # each worker process has its own index
        try:
            start.wait()
            store_and_match(db, feed, it, cache)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [
        threading.Thread(target=worker, args=(fa, A)),
        threading.Thread(target=worker, args=(fb, B)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert story_of(db, A.link or "") == story_of(db, B.link or "") is not None
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Story)) == 1
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
        story = s.scalars(select(Story)).one()
        assert story.item_count == 2 and story.source_count == 2
        assert story.topics == ["karabakh_ceasefire"] and story.score == 12.0
        assert story.event_time == A.published and story.last_event_time == B.published
    db.dispose()


def _other_event(n: int) -> ParsedItem:
    """Unrelated events (no shared actor, place or event word): one story each."""
    places = ["Lisbonne", "Oslo", "Lima", "Hanoï", "Dakar"]
    what = ["grève des dockers", "incendie de forêt", "élection municipale", "crue du fleuve",
            "panne d'électricité"]  # fmt: skip
    return ParsedItem(
        key=f"https://c.example.org/{n}",
        guid=None,
        link=f"https://c.example.org/{n}",
        title=f"{places[n].capitalize()} : {what[n]}",
        summary=f"À {places[n]}, {what[n]} depuis mardi, selon les autorités locales.",
        published=NOW - timedelta(hours=n + 1),
    )


def test_one_batch_opens_several_stories_and_grows_one(db_url: str) -> None:
    """Stories a batch opens are written in one statement with ids taken beforehand (several
    takes: 1, 1, 2…); a later batch joining one of them updates it."""
    db, (fa, fb) = setup(db_url)
    cache = StoryCache(aliases=ALIASES)
    news = [A, *(_other_event(n) for n in range(5))]
    with db.session() as s:
        stored = item_store.store_items(s, fa, news, NOW)
        recorded = match_store.record_matches(
            s, [(st.row_id, st.item, C) for st in stored], NOW, cache
        )
    assert all(alert is not None for _, alert in recorded)  # six stories, six alerts
    with db.session() as s:
        stories = s.scalars(select(Story).order_by(Story.id)).all()
        assert len(stories) == 6 and len({st.id for st in stories}) == 6
        assert all(st.item_count == 1 and st.source_count == 1 for st in stories)
        assert all(st.features and st.features.get("terms") for st in stories)
        assert {st.title for st in stories} == {it.title for it in news}
        items = {link: sid for link, sid in s.execute(select(Item.link, Item.story_id))}
        assert sorted(items[it.link or ""] for it in news) == [st.id for st in stories]
    # Another worker (its own index) stores the same event from another feed: it joins.
    assert store_and_match(db, fb, B, StoryCache(aliases=ALIASES)) is None
    assert story_of(db, A.link or "") == story_of(db, B.link or "")
    with db.session() as s:
        grown = s.get(Story, story_of(db, A.link or ""))
        assert grown is not None and grown.item_count == 2 and grown.source_count == 2
        assert s.scalar(select(func.count()).select_from(Story)) == 6
    # New stories after these get new ids (the sequence / the largest id moved on).
    assert store_and_match(db, fb, OTHER, cache) is not None
    with db.session() as s:
        assert s.scalar(select(func.count(func.distinct(Story.id)))) == 7
    db.dispose()


def test_an_index_refreshed_incrementally_sees_other_workers_stories(db_url: str) -> None:
    db, (fa, fb) = setup(db_url)
    first, second = StoryCache(aliases=ALIASES), StoryCache(aliases=ALIASES)
    assert store_and_match(db, fa, OTHER, first) is not None  # `first` has loaded its window
    assert first.revision >= 0 and len(first.index) == 1
    assert store_and_match(db, fb, A, second) is not None  # a story `first` has not seen
    assert store_and_match(db, fa, B, first) is None  # joins it: no second alert
    assert story_of(db, A.link or "") == story_of(db, B.link or "")
    assert story_of(db, OTHER.link or "") != story_of(db, A.link or "")
    assert len(first.index) == 2
    db.dispose()


def test_a_rolled_back_assignment_leaves_no_phantom_story(db_url: str) -> None:
    db, (fa, fb) = setup(db_url)
    cache = StoryCache(aliases=ALIASES)
    try:
        with db.session() as s:
            (stored,) = item_store.store_items(s, fa, [A], NOW)
            match_store.record_matches(s, [(stored.row_id, A, C)], NOW, cache)
            raise RuntimeError("the poll fails after the assignment")
    except RuntimeError:
        pass
    assert len(cache.index) == 1  # in memory until the next batch looks at the database
    assert store_and_match(db, fb, B, cache) is not None  # a new story, alerted
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Story)) == 1
    assert set(cache.index.stories) == {story_of(db, B.link or "")}
    db.dispose()


def test_stories_made_before_event_clustering_stay_valid(db_url: str) -> None:
    """Migration 0003 on a database with stories: times, counts, topics are filled from their
    items, and a paraphrase joins an old story (features computed from its items)."""
    db = Database(db_url)  # rows below get ids far from the sequences' first values
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    published = A.published
    assert published is not None
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO feeds (id, url, interval, language, enabled, error_count, "
                "items_seen, created_at) VALUES (1001, 'https://a.example.org/rss', 300, 'fr', "
                ":t, 0, 0, :now)"
            ),
            {"now": NOW - timedelta(hours=5), "t": True},
        )
        conn.execute(
            text(
                "INSERT INTO stories (id, title, title_signature, body_signature, first_seen) "
                "VALUES (1001, :title, '', '', :seen)"
            ),
            {"title": A.title, "seen": NOW - timedelta(hours=5)},
        )
        conn.execute(
            text(
                "INSERT INTO items (id, key, link, title, summary, content, published, "
                "first_seen, feed_id, story_id) VALUES (1001, :key, :link, :title, :summary, '', "
                ":pub, :seen, 1001, 1001)"
            ),
            dict(
                key=A.key,
                link=A.link,
                title=A.title,
                summary=A.summary,
                pub=published,
                seen=NOW - timedelta(hours=5),
            ),
        )
        conn.execute(
            text(
                "INSERT INTO item_feeds (item_id, feed_id, first_seen) VALUES (1001, 1001, :seen)"
            ),
            {"seen": NOW - timedelta(hours=5)},
        )
        conn.execute(
            text(
                "INSERT INTO matches (id, item_id, story_id, topics, scores, evidence, "
                "explanation, score, created_at) VALUES (1001, 1001, 1001, :topics, :scores, '[]', '', "
                "9.5, :seen)"
            ),
            {
                "topics": json.dumps(["karabakh_ceasefire"]),
                "scores": json.dumps({"karabakh_ceasefire": 9.5}),
                "seen": NOW - timedelta(hours=5),
            },
        )
        conn.execute(
            text(
                "INSERT INTO alerts (id, story_id, match_id, created_at) VALUES (1001, 1001, 1001, :t)"
            ),
            {"t": NOW - timedelta(hours=5)},
        )
    upgrade(db.engine)
    with db.session() as s:
        story = s.get(Story, 1001)
        assert story is not None
        assert story.event_time == published and story.last_seen == NOW - timedelta(hours=5)
        assert story.item_count == 1 and story.source_count == 1
        assert story.topics == ["karabakh_ceasefire"] and story.score == 9.5
        assert story.features is None
        feed_store.sync_feeds(s, [FeedConfig("https://b.example.org/rss")], NOW)
        fb = s.scalar(select(Feed.id).where(Feed.url == "https://b.example.org/rss"))
    assert fb is not None
    assert store_and_match(db, fb, B, StoryCache(aliases=ALIASES)) is None  # already alerted
    assert story_of(db, B.link or "") == 1001
    with db.session() as s:
        story = s.get(Story, 1001)
        assert story is not None and story.item_count == 2 and story.source_count == 2
        assert story.features and story.features["terms"]
    db.dispose()


STRIKE = ParsedItem(
    key="https://a.example.org/gandja",
    guid=None,
    link="https://a.example.org/gandja",
    title="Des tirs d'artillerie visent Gandja dans la nuit",
    summary="",
    published=NOW - timedelta(hours=5),
)
REACTION = ParsedItem(
    key="https://b.example.org/aliev",
    guid=None,
    link="https://b.example.org/aliev",
    title="Aliev dénonce une attaque contre un quartier résidentiel",
    summary="",
    published=NOW - timedelta(hours=2),
)


def test_the_profiles_stream_joins_another_workers_story_of_the_same_kind(db_url: str) -> None:
    """The classification's topics reach the decision: a reaction in other words joins the
    attack's story, opened by another worker, through its persisted topics and kinds."""
    db, (fa, fb) = setup(db_url)
    first = StoryCache(aliases=ALIASES)
    assert store_and_match(db, fa, OTHER, first) is not None  # `first` has loaded its window
    assert store_and_match(db, fb, STRIKE, StoryCache(aliases=ALIASES)) is not None
    with db.session() as s:
        story = s.get(Story, story_of(db, STRIKE.link or ""))
        assert story is not None and story.features is not None
        assert story.features["topics"] == ["karabakh_ceasefire"]
        assert story.features["kinds"] == ["fight"]
    assert store_and_match(db, fa, REACTION, first) is None  # joins: no second alert
    assert story_of(db, REACTION.link or "") == story_of(db, STRIKE.link or "")
    db.dispose()


# --- splitting an item off its story ("another event", from the web window) ---------------

B_AGAIN = ParsedItem(
    key="https://c.example.org/treve-moscou",
    guid=None,
    link="https://c.example.org/treve-moscou",
    title="Haut-Karabakh : une trêve entre Bakou et Erevan négociée à Moscou",
    summary="Les deux ministres ont quitté Moscou dans la nuit.",
    published=NOW - timedelta(hours=2),
)


def test_split_an_item_off_its_story_makes_a_new_story_with_its_own_alert(db_url: str) -> None:
    """A wrong merge undone: the item leaves its story (recorded, with who and when), opens a
    story of its own with a new alert; both stories get a new revision, so another process's
    index reads them again, and a later copy of the split item joins the new story. A split
    of an unknown item, of an item of another story, or of a story's last item writes nothing."""
    db, (fa, fb) = setup(db_url)
    worker = StoryCache(aliases=ALIASES)  # a polling process's index, kept across the split
    old_alert = store_and_match(db, fa, A, worker)
    assert old_alert is not None
    assert store_and_match(db, fb, B, worker) is None  # joined A's story
    assert store_and_match(db, fa, OTHER, worker) is not None
    old = story_of(db, A.link or "")
    other = story_of(db, OTHER.link or "")
    assert old is not None and other is not None and story_of(db, B.link or "") == old
    with db.session() as s:
        b_row = s.scalar(select(Item.id).where(Item.link == B.link))
        a_row = s.scalar(select(Item.id).where(Item.link == A.link))
        other_row = s.scalar(select(Item.id).where(Item.link == OTHER.link))
        before = int(s.scalar(select(func.max(Story.revision))) or 0)
    assert b_row is not None and a_row is not None and other_row is not None
    assert "negociee" in worker.index.stories[old].terms  # B's words, in A's story

    def refused(story: int, item: int) -> str:
        with db.session() as s:
            with pytest.raises(InputError) as e:
                split_item(s, story, item, "Anna", NOW, ALIASES)
            s.rollback()
        return str(e.value)

    assert refused(old, 999_999) == "no item 999999"
    assert refused(old, other_row) == f"item {other_row} is not a source of story {old}"
    assert refused(999_999, b_row) == "no story 999999"
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(StorySplit)) == 0
        assert s.scalar(select(func.max(Story.revision))) == before

    later = NOW + timedelta(minutes=5)
    with db.session() as s:
        done = split_item(s, old, b_row, "Anna", later, ALIASES)
    new = done.story_id
    assert new not in (old, other) and done.from_story_id == old and done.item_id == b_row
    assert done.alert.story_id == new and done.alert.topics == C.topics
    with db.session() as s:
        o, n = s.get(Story, old), s.get(Story, new)
        assert o is not None and n is not None
        assert (o.item_count, o.source_count, n.item_count, n.source_count) == (1, 1, 1, 1)
        assert o.revision == n.revision and o.revision > before  # both read again everywhere
        assert n.title == B.title and o.title == A.title
        assert n.event_time == B.published and n.last_event_time == B.published
        assert o.event_time == A.published and o.last_event_time == A.published
        assert n.topics == ["karabakh_ceasefire"] and n.score == 12.0
        assert n.features and o.features and n.features["items"] == o.features["items"] == 1
        assert s.scalar(select(Item.story_id).where(Item.id == b_row)) == new
        assert s.scalar(select(Match.story_id).where(Match.item_id == b_row)) == new
        alerts = {sid: aid for sid, aid in s.execute(select(Alert.story_id, Alert.id))}
        assert alerts[old] == old_alert and alerts[new] == done.alert.id  # the old one kept
        (row,) = s.scalars(select(StorySplit)).all()
        assert (row.item_id, row.from_story_id, row.story_id, row.who) == (b_row, old, new, "Anna")
        assert row.created_at == later
    # The last item of a story, and the split item's new story, cannot be split again.
    assert (
        refused(old, a_row) == f"item {a_row} is the only source of story {old}: nothing to split"
    )
    assert (
        refused(new, b_row) == f"item {b_row} is the only source of story {new}: nothing to split"
    )
    # The polling process's index reads both stories again: the old story lost B's words.
    with db.session() as s:
        worker.refresh(s, later)
    assert worker.index.stories[old].items == 1 and worker.index.stories[new].items == 1
    assert "negociee" not in worker.index.stories[old].terms
    assert "negociee" in worker.index.stories[new].terms
    # A later copy of the split item joins the new story, not the old one.
    assert store_and_match(db, fb, B_AGAIN, worker) is None  # the new story has its alert
    assert story_of(db, B_AGAIN.link or "") == new
    db.dispose()


def test_split_the_item_a_story_was_named_and_alerted_after(db_url: str) -> None:
    """Splitting the first item off: the old story keeps its alert, which now stands on its
    remaining item's match (retention deletes a story's matches with it), and takes that
    item's title; the split item's story has its own alert on the item's match."""
    db, (fa, fb) = setup(db_url)
    cache = StoryCache(aliases=ALIASES)
    old_alert = store_and_match(db, fa, A, cache)
    assert old_alert is not None and store_and_match(db, fb, B, cache) is None
    old = story_of(db, A.link or "")
    assert old is not None
    with db.session() as s:
        a_row = s.scalar(select(Item.id).where(Item.link == A.link))
        assert a_row is not None
        done = split_item(s, old, a_row, "Boris", NOW, ALIASES)
    with db.session() as s:
        matches = {item: mid for item, mid in s.execute(select(Match.item_id, Match.id))}
        b_row = s.scalar(select(Item.id).where(Item.link == B.link))
        assert b_row is not None
        kept = s.get(Alert, old_alert)
        assert kept is not None and kept.story_id == old and kept.match_id == matches[b_row]
        made = s.get(Alert, done.alert.id)
        assert made is not None and made.story_id == done.story_id
        assert made.match_id == matches[a_row]
        o, n = s.get(Story, old), s.get(Story, done.story_id)
        assert o is not None and n is not None
        assert o.title == B.title and n.title == A.title
    db.dispose()


def test_a_story_shows_the_title_and_the_link_of_one_article(db_url: str) -> None:
    """The window, the API and the feeds show a story's headline with that article's own link
    (as its alert does), even when a later source scored higher; after a split renames the
    story, the link follows its new headline."""
    from monitor.store.browse import load_stories

    db, (fa, fb) = setup(db_url)
    cache = StoryCache(aliases=ALIASES)
    assert store_and_match(db, fa, A, cache) is not None
    stronger = Classification(
        ("karabakh_ceasefire",),
        {"karabakh_ceasefire": 30.0},
        (Evidence("karabakh_ceasefire", "trêve", "title", 30.0),),
    )
    with db.session() as s:
        (stored,) = item_store.store_items(s, fb, [B], NOW)
        ((_, alert),) = match_store.record_matches(s, [(stored.row_id, B, stronger)], NOW, cache)
    assert alert is None
    sid = story_of(db, A.link or "")
    assert sid is not None and story_of(db, B.link or "") == sid
    with db.session() as s:
        (view,) = load_stories(s, [sid])
        assert view.title == A.title and view.link == A.link
        assert view.score == 30.0  # the story's best score…
        a_why = s.scalar(select(Match.explanation).join(Item, Item.id == Match.item_id)
                         .where(Item.link == A.link))  # fmt: skip
        b_why = s.scalar(select(Match.explanation).join(Item, Item.id == Match.item_id)
                         .where(Item.link == B.link))  # fmt: skip
        assert a_why and b_why and a_why != b_why
        assert view.why == a_why  # …and the headline article's own why, not B's
        a_row = s.scalar(select(Item.id).where(Item.link == A.link))
        assert a_row is not None
        split_item(s, sid, a_row, "Boris", NOW, ALIASES)
    with db.session() as s:
        (view,) = load_stories(s, [sid])
        assert view.title == B.title and view.link == B.link
    db.dispose()


def test_split_an_opener_the_feed_edited_renames_the_story(db_url: str) -> None:
    """The story was named after its first item, whose title a feed edited since (« EN
    DIRECT - »): splitting that item off still renames the story after the item left first."""
    db, (fa, fb) = setup(db_url)
    cache = StoryCache(aliases=ALIASES)
    assert store_and_match(db, fa, A, cache) is not None
    assert store_and_match(db, fb, B, cache) is None
    old = story_of(db, A.link or "")
    assert old is not None
    with db.session() as s:
        a_row = s.scalar(select(Item.id).where(Item.link == A.link))
        assert a_row is not None
        edited = f"EN DIRECT - {A.title}"
        s.execute(update(Item).where(Item.id == a_row).values(title=edited))
    with db.session() as s:
        done = split_item(s, old, a_row, "Boris", NOW, ALIASES)
    with db.session() as s:
        o, n = s.get(Story, old), s.get(Story, done.story_id)
        assert o is not None and n is not None
        assert (o.title, n.title) == (B.title, edited)
        assert o.title_signature == " ".join(sorted(signature(B.title)))
    db.dispose()


def test_a_transaction_aborted_for_a_conflict_runs_once_more(pg_url: str) -> None:
    """PostgreSQL's conflict codes (deadlock, serialization), raised by the server in a real
    transaction: once more, then Busy; any other database error is not retried."""
    db = Database(pg_url)
    runs: list[str] = []

    def aborted(*states: str) -> Callable[[], str]:
        def work() -> str:
            state = states[len(runs)]
            runs.append(state)
            with db.session() as s:
                if state != "ok":
                    s.execute(
                        text(
                            "DO $$ BEGIN RAISE EXCEPTION 'conflict' "
                            f"USING ERRCODE = '{state}'; END $$"
                        )
                    )
            return "done"

        return work

    assert once_more_on_conflict(aborted("40P01", "ok")) == "done" and runs == ["40P01", "ok"]
    runs.clear()
    with pytest.raises(Busy):
        once_more_on_conflict(aborted("40001", "40P01"))
    assert runs == ["40001", "40P01"]
    runs.clear()
    with pytest.raises(DBAPIError):  # unique_violation: not a conflict to wait out
        once_more_on_conflict(aborted("23505", "ok"))
    assert runs == ["23505"]
    db.dispose()
