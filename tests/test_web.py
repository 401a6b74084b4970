"""The web window over a real database filled by the real pipeline (loopback feeds, a real
apprise target that refuses), driven through Starlette's test client: pages, security, API,
topic feeds, health, metrics; and the pure decisions beside it."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import jsonschema
import pytest
from markupsafe import escape
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, select, text, update
from starlette.testclient import TestClient

from monitor import pipeline
from monitor.classify import classify
from monitor.evaluate import RELEVANCE, change, score, true_topics
from monitor.events import DEFAULT
from monitor.feed_health import silence
from monitor.links import story_url
from monitor.parse import ParsedFeed
from monitor.settings import load_settings
from monitor.store import Database
from monitor.store import items as item_store
from monitor.store import matches as match_store
from monitor.store.models import Delivery, Feed, Feedback, Item, Story, StorySplit
from monitor.store.stories import lock_assignments
from monitor.types import FetchResult
from monitor.types import Item as ParsedItem
from monitor.views import list_feeds
from monitor.web import present
from monitor.web.app import CSRF_COOKIE, Window, create_app
from tests.conftest import DATA, FeedServer, Webhook, monitor_env, write_config

LATCHINE = "nouvelles violations du cessez-le-feu signalées près de Latchine"
OTSC = "L'OTSC se réunit à Erevan sans l'Arménie"
LAVROV = "Lavrov reçoit les ministres"


@dataclass
class Filled:
    rt: pipeline.Runtime
    env: dict[str, str]
    hook: Webhook
    config: Path

    def app(self, **kw: Any) -> TestClient:
        topics = list(self.rt.profile.topics)
        kw.setdefault("aliases", self.rt.stories.aliases)
        kw.setdefault("params", self.rt.stories.params)
        return TestClient(create_app(Window(db=self.rt.db, topics=topics, **kw)))

    def story_id(self, fragment: str) -> int:
        with self.rt.db.session() as s:
            return int(s.scalars(select(Story.id).where(Story.title.contains(fragment))).one())


def fill(tmp_path: Path, server: FeedServer, webhook: Webhook, db_url: str) -> Filled:
    """Three feeds polled once by the real pipeline; the target refuses, so every delivery
    is `failed` and retried later."""
    urls = [
        {"url": server.add("/a.xml", (DATA / "caucase_a.xml").read_bytes()), "name": "Fil A"},
        {"url": server.add("/b.xml", (DATA / "caucase_b.xml").read_bytes()), "name": "Fil B"},
        {"url": server.add("/c.xml", (DATA / "hostile_web.xml").read_bytes()), "name": "Fil C"},
    ]
    config = write_config(tmp_path / "config", urls, [webhook.url])
    env = monitor_env(config, db_url, MONITOR_RETRY_BASE_SECONDS="0.05")
    webhook.down = True
    rt = pipeline.Runtime.build(load_settings(env))
    pipeline.sync_feeds(rt)
    summary = pipeline.run_cycle(rt, None, everything=True)
    assert summary.alerts == 4 and summary.delivery_failures == 4
    return Filled(rt, env, webhook, config)


@pytest.fixture
def filled(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook, sqlite_url: str
) -> Iterator[Filled]:
    f = fill(tmp_path, feed_server, webhook, sqlite_url)
    yield f
    f.rt.db.dispose()


@pytest.fixture
def filled_both(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook, db_url: str
) -> Iterator[Filled]:
    """The same, on SQLite and on PostgreSQL (for the tests of the window's queries)."""
    f = fill(tmp_path, feed_server, webhook, db_url)
    yield f
    f.rt.db.dispose()


def csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    token = client.cookies.get(CSRF_COOKIE)
    assert token and f'name="csrf" value="{token}"' in page.text
    return token


def feedback_rows(f: Filled) -> list[tuple[int, str, str | None, str]]:
    with f.rt.db.session() as s:
        return [
            (r.story_id, r.verdict, r.topic, r.who)
            for r in s.scalars(select(Feedback).order_by(Feedback.id))
        ]


# --- pages ----------------------------------------------------------------------------------


def test_timeline_lists_matched_stories_with_topic_and_time_filters(filled_both: Filled) -> None:
    client = filled_both.app()
    page = client.get("/")
    assert page.status_code == 200
    for title in (LATCHINE, "L&#39;OTSC se réunit", LAVROV, "le cessez-le-feu rompu"):
        assert title in page.text
    assert "PSG" not in page.text  # unmatched items are not stories of the timeline
    assert "Fil A" in page.text and "Fil B" in page.text  # sources
    assert "failed" in page.text  # alert state
    assert "karabakh_ceasefire=" in page.text  # why it matched

    otsc = client.get("/?topic=otsc")
    assert "L&#39;OTSC se réunit" in otsc.text and LATCHINE not in otsc.text
    assert "1 story" in otsc.text
    partial = client.get("/?topic=otsc", headers={"HX-Request": "true", "HX-Target": "stories"})
    assert partial.text.lstrip().startswith('<section id="stories">')  # htmx gets the list only
    assert "No matched story" in client.get("/?since=2999-01-01").text
    assert "4 stories" in client.get("/?since=1h").text
    assert client.get("/?topic=nope").status_code == 400
    assert client.get("/?since=yesterday").status_code == 400


def test_story_page_shows_every_source_evidence_and_deliveries(filled: Filled) -> None:
    sid = filled.story_id("nouvelles violations")
    page = filled.app().get(f"/stories/{sid}")
    assert page.status_code == 200
    html = page.text
    assert "Fil A" in html and "Fil B" in html  # one item seen through two feeds
    assert "haut-karabakh" in html and "title" in html  # evidence: term and field
    assert f"127.0.0.1:{filled.hook.port}" in html  # the target, in apprise's privacy form
    assert "did not accept the message" in html and "Retry" in html
    assert filled.app().get("/stories/999999").status_code == 404


def test_feed_health_page(filled: Filled, feed_server: FeedServer) -> None:
    feed_server.add("/c.xml", b"", status=500)
    with filled.rt.db.session() as s:
        s.execute(text("UPDATE feeds SET next_check_at = NULL"))
    pipeline.run_cycle(filled.rt, None, everything=True)
    html = filled.app().get("/feeds").text
    assert len(re.findall(r'<tr class="feed[ "]', html)) == 3
    assert "http-500" in html  # the last error of the failing feed
    assert 'class="feed failing' in html


def test_feed_text_is_shown_inert(filled: Filled) -> None:
    """The parser strips tags, but the window must not rely on it: a title and a link stored
    by anything else are escaped and dropped."""
    sid = filled.story_id("cessez-le-feu rompu")
    evil = "<script>window.pwned=1</script><img src=x onerror=alert(1)> Haut-Karabakh"
    with filled.rt.db.session() as s:
        s.execute(update(Story).where(Story.id == sid).values(title=evil))
        s.execute(
            update(Item)
            .where(Item.story_id == sid)
            .values(title=evil, link="javascript:alert(document.cookie)")
        )
    client = filled.app()
    for path in ("/", f"/stories/{sid}", "/deliveries"):
        page = client.get(path)
        assert "<script>window" not in page.text and "<img src=x" not in page.text, path
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page.text, path
        assert not re.search(r"href=\"\s*javascript:", page.text, re.I), path
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    atom = client.get("/topics/karabakh_ceasefire.atom").content
    assert b"javascript:" not in atom
    feed = json.loads(client.get("/topics/karabakh_ceasefire.json").content)
    hostile = next(i for i in feed["items"] if i["id"] == str(sid))
    assert hostile["title"] == evil and "external_url" not in hostile


# --- changes: POST only, CSRF, token --------------------------------------------------------


def test_feedback_needs_post_and_csrf(filled_both: Filled) -> None:
    sid = filled_both.story_id("nouvelles violations")
    client = filled_both.app()
    assert client.get(f"/stories/{sid}/feedback").status_code == 405  # no change on GET
    refused = client.post(f"/stories/{sid}/feedback", data={"verdict": "noise"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    token = csrf(client, f"/stories/{sid}")
    foreign = client.post(
        f"/stories/{sid}/feedback",
        data={"verdict": "noise", "csrf": token},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403 and "another site" in foreign.text
    assert feedback_rows(filled_both) == []
    ok = client.post(
        f"/stories/{sid}/feedback",
        data={"verdict": "relevant", "csrf": token, "who": "Anna"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    wrong = client.post(
        f"/stories/{sid}/feedback",
        data={"verdict": "wrong-topic", "topic": "karabakh_ceasefire", "csrf": token},
        headers={"HX-Request": "true"},
    )
    assert wrong.status_code == 200 and "feedback saved" in wrong.text
    assert feedback_rows(filled_both) == [
        (sid, "relevant", None, "Anna"),
        (sid, "wrong-topic", "karabakh_ceasefire", "Anna"),  # the name is remembered
    ]
    bad = client.post(f"/stories/{sid}/feedback", data={"verdict": "great", "csrf": token})
    assert bad.status_code == 400 and len(feedback_rows(filled_both)) == 2


def test_changes_need_the_web_token_when_set(filled: Filled) -> None:
    sid = filled.story_id("OTSC")
    client = filled.app(token="s3cret-token")
    page = client.get(f"/stories/{sid}")
    assert "MONITOR_WEB_TOKEN" in page.text and 'action="/token"' in page.text  # says how
    token = csrf(client, "/")
    refused = client.post(f"/stories/{sid}/feedback", data={"verdict": "noise", "csrf": token})
    assert refused.status_code == 403 and "MONITOR_WEB_TOKEN" in refused.text
    wrong = client.post("/token", data={"token": "guess", "csrf": token, "next": "/"})
    assert wrong.status_code == 403
    assert feedback_rows(filled) == []
    entered = client.post(
        "/token",
        data={"token": "s3cret-token", "csrf": token, "next": f"/stories/{sid}"},
        follow_redirects=False,
    )
    assert entered.status_code == 303 and entered.headers["location"] == f"/stories/{sid}"
    assert "s3cret-token" not in client.get(f"/stories/{sid}").text  # never echoed back
    ok = client.post(f"/stories/{sid}/feedback", data={"verdict": "noise", "csrf": token})
    assert ok.status_code == 200  # followed the redirect to the story page
    # A script: the token in a header, no cookie, no CSRF field.
    script = TestClient(client.app)
    bearer = script.post(
        f"/stories/{sid}/feedback",
        data={"verdict": "relevant"},
        headers={"Authorization": "Bearer s3cret-token"},
        follow_redirects=False,
    )
    assert bearer.status_code == 303
    no = script.post(
        f"/stories/{sid}/feedback",
        data={"verdict": "relevant"},
        headers={"Authorization": "Bearer nope"},
    )
    assert no.status_code == 403
    assert [v for _, v, _, _ in feedback_rows(filled)] == ["noise", "relevant"]


def test_ids_past_the_id_columns_are_not_found(filled_both: Filled) -> None:
    """A number no id column holds is 404 like any absent row (PostgreSQL used to refuse it in
    the query: a 500)."""
    client = filled_both.app()
    for huge in ["9" * 12, "9" * 25]:
        assert client.get(f"/stories/{huge}").status_code == 404
        assert client.get(f"/api/stories/{huge}").status_code == 404
        token = csrf(client, "/deliveries")
        retried = client.post(f"/deliveries/{huge}/retry", data={"csrf": token})
        assert retried.status_code == 404, huge


def test_retry_a_dead_delivery_then_it_is_delivered(filled_both: Filled) -> None:
    sid = filled_both.story_id("OTSC")
    with filled_both.rt.db.session() as s:
        did = s.scalars(
            select(Delivery.id).join(Delivery.alert).where(Delivery.alert.has(story_id=sid))
        ).one()
        s.execute(update(Delivery).where(Delivery.id == did).values(status="dead"))
    client = filled_both.app()
    page = client.get("/deliveries?state=dead")
    assert f'id="delivery-{did}"' in page.text and "1 delivery" in page.text
    # A state that is none says so (400, the known ones), instead of « 0 deliveries ».
    bogus = client.get("/deliveries?state=dead&state=bogus")
    assert bogus.status_code == 400 and "unknown state &#39;bogus&#39;" in bogus.text
    assert f'id="delivery-{did}"' in bogus.text  # the known state is still shown
    token = csrf(client, "/deliveries")
    assert client.get(f"/deliveries/{did}/retry").status_code == 405
    row = client.post(
        f"/deliveries/{did}/retry", data={"csrf": token}, headers={"HX-Request": "true"}
    )
    assert row.status_code == 200 and "queued" in row.text
    filled_both.hook.down = False
    sent, _ = pipeline.deliver_due(filled_both.rt, alert_ids=None)
    assert sent >= 1
    assert any(OTSC in t for t in filled_both.hook.titles())
    assert f'id="delivery-{did}"' in client.get("/deliveries?state=sent").text
    again = client.post(
        f"/deliveries/{did}/retry", data={"csrf": token}, headers={"HX-Request": "true"}
    )
    assert again.status_code == 409 and "already sent" in again.text


SOLDIER = "nouvelles violations du cessez-le-feu près de Latchine : un soldat arménien tué"
SOLDIER_ITEM = ParsedItem(  # our own written item: another event than the Latchine violations
    key="https://fil-a.example.org/monde/karabakh-soldat-tue",
    guid=None,
    link="https://fil-a.example.org/monde/karabakh-soldat-tue",
    title=f"Haut-Karabakh : {SOLDIER}",
    summary="Un militaire a été tué par un tireur isolé à un poste de la frontière, selon Erevan.",
    published=datetime(2022, 9, 13, 8, 5, tzinfo=UTC),
)


def split_rows(f: Filled) -> list[tuple[int, int, int, str]]:
    with f.rt.db.session() as s:
        return [
            (r.item_id, r.from_story_id, r.story_id, r.who)
            for r in s.scalars(select(StorySplit).order_by(StorySplit.id))
        ]


def split_counters(client: TestClient) -> tuple[float, float]:
    """(monitor_story_splits_total, monitor_alerts_total) as /metrics reads them now."""
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    return tuple(  # type: ignore[return-value]
        sum(x.value for x in families[name].samples if x.name == f"{name}_total")
        for name in ("monitor_story_splits", "monitor_alerts")
    )


def merge_wrongly(f: Filled) -> tuple[int, int]:
    """A wrong merge made on purpose (whatever the clusterer would decide): the soldier's
    report, stored and matched as a poll stores it, put into the Latchine story, which is
    already alerted, so it gets no alert of its own. Returns (story id, item row)."""
    sid = f.story_id("nouvelles violations")
    now = datetime.now(UTC)
    c = classify(SOLDIER_ITEM, f.rt.profile)
    assert c.match
    with f.rt.db.session() as s:
        feed = s.scalars(select(Feed.id).where(Feed.name == "Fil A")).one()
        (stored,) = item_store.store_items(s, feed, [SOLDIER_ITEM], now)
        s.execute(update(Item).where(Item.id == stored.row_id).values(story_id=sid))
        ((match, alert),) = match_store.record_matches(s, [(stored.row_id, SOLDIER_ITEM, c)], now)
        assert match is not None and alert is None  # joined the story: no alert
        s.execute(update(Story).where(Story.id == sid).values(item_count=Story.item_count + 1))
    return sid, stored.row_id


def test_split_an_item_off_its_story_gives_the_desk_its_alert(filled_both: Filled) -> None:
    """A wrong merge undone from the story page: a report of another event (a soldier killed)
    in the Latchine story; "another event" on that source makes it a story of its own whose
    alert reaches the target (a real apprise post to the loopback webhook). Refusals (no
    CSRF, another story's item, an unknown item, the last item, odd ids) write nothing."""
    f = filled_both
    sid, soldier = merge_wrongly(f)
    with f.rt.db.session() as s:
        other = s.scalars(select(Item.id).where(Item.title.contains("OTSC"))).one()
    client = f.app(targets=f.rt.targets)
    counted = split_counters(client)
    page = client.get(f"/stories/{sid}")
    assert page.text.count(f'hx-post="/stories/{sid}/split"') == 2  # one per source
    otsc = f.story_id("OTSC")
    assert "/split" not in client.get(f"/stories/{otsc}").text  # one source: nothing to split
    assert client.get(f"/stories/{sid}/split").status_code == 405
    refused = client.post(f"/stories/{sid}/split", data={"item": str(soldier)})
    assert refused.status_code == 403 and "CSRF" in refused.text
    token = csrf(client, f"/stories/{sid}")
    hx = {"HX-Request": "true"}
    wrong = client.post(
        f"/stories/{sid}/split", data={"item": str(other), "csrf": token}, headers=hx
    )
    assert wrong.status_code == 400
    assert f"item {other} is not a source of story {sid}" in wrong.text
    unknown = client.post(f"/stories/{sid}/split", data={"item": "99999", "csrf": token})
    assert unknown.status_code == 400 and "no item 99999" in unknown.text
    gone = client.post("/stories/424242/split", data={"item": "1", "csrf": token}, headers=hx)
    assert gone.status_code == 404 and gone.text.startswith('<div id="story">')  # no 2nd page
    assert "no story 424242" in gone.text and "<html" not in gone.text
    last = client.post(f"/stories/{otsc}/split", data={"item": str(other), "csrf": token})
    assert last.status_code == 400 and "only source" in last.text
    # Odd ids: a superscript digit `int` refuses, an Arabic-Indic digit it reads as 3 (the
    # Latchine story's other item could be 3), a number no database column holds.
    for raw in ["²", "٣", "9" * 25, "9" * 12, " 3", "-1"]:  # 12 digits: past PG's integer
        odd = client.post(f"/stories/{sid}/split", data={"item": raw, "csrf": token})
        assert odd.status_code == 400 and "is not an item id" in odd.text, raw
    for huge in ["9" * 25, "9" * 12]:
        for action, data in [("split", {"item": "1"}), ("feedback", {"verdict": "noise"})]:
            odd = client.post(f"/stories/{huge}/{action}", data={**data, "csrf": token})
            assert odd.status_code == 400 and "is not an id" in odd.text, action
    assert split_rows(f) == [] and feedback_rows(f) == []

    assert split_counters(client) == counted  # the refusals counted nothing
    done = client.post(
        f"/stories/{sid}/split",
        data={"item": str(soldier), "csrf": token, "who": "Anna"},
        headers=hx,
    )
    assert done.status_code == 200 and "split off" in done.text
    splits, alerts = split_counters(client)
    assert (splits - counted[0], alerts - counted[1]) == (1, 1)  # /metrics counts its alert
    assert done.text.lstrip().startswith('<div id="story"')  # htmx gets the whole story
    ((item, old, new, who),) = split_rows(f)
    assert (item, old, who) == (soldier, sid, "Anna") and new != sid
    assert f'href="/stories/{new}"' in done.text
    assert SOLDIER not in done.text  # the item left the old story
    assert SOLDIER in client.get(f"/stories/{new}").text
    assert "split off" in client.get(f"/stories/{new}").text  # by whom, when
    # The new story's alert goes out as a poll's would: a real post to the webhook.
    f.hook.down = False
    pipeline.deliver_due(f.rt, alert_ids=None)
    assert any(SOLDIER in t for t in f.hook.titles())
    with f.rt.db.session() as s:
        alerted = s.scalars(
            select(Delivery).join(Delivery.alert).where(Delivery.alert.has(story_id=new))
        )
        assert [d.status for d in alerted] == ["sent"]


def test_a_split_shows_the_story_as_it_now_is(filled_both: Filled) -> None:
    """Splitting off the item a story was named after renames the story after the item that
    stays: the htmx answer is the whole story (heading, sources, deliveries), not only its
    sources, so the page never shows the old name above the new list."""
    f = filled_both
    sid, soldier = merge_wrongly(f)
    with f.rt.db.session() as s:
        first = s.scalars(
            select(Item.id).where(Item.story_id == sid, Item.id != soldier).order_by(Item.id)
        ).first()
        before = s.get(Story, sid)
        assert first is not None and before is not None
        old_title = before.title
    client = f.app(targets=f.rt.targets)
    token = csrf(client, f"/stories/{sid}")
    done = client.post(
        f"/stories/{sid}/split",
        data={"item": str(first), "csrf": token},
        headers={"HX-Request": "true"},
    )
    assert done.status_code == 200, done.text
    with f.rt.db.session() as s:
        after = s.get(Story, sid)
        assert after is not None
        new_title = after.title
    assert new_title != old_title and SOLDIER in new_title  # named after the item that stayed
    heading = re.search(r'<h1 id="story-title">(.*?)</h1>', done.text)
    assert heading is not None and str(escape(new_title)) == heading.group(1)
    # The tab's title too: htmx takes a <title> at the top of the answer (not inside #story).
    tab = re.search(r"</div>\s*<title>(.*?)</title>\s*$", done.text)
    assert tab is not None and tab.group(1) == f"monitor — {escape(new_title)}"
    page = client.get(f"/stories/{sid}").text
    assert f"<title>monitor — {escape(new_title)}</title>" in page and page.count("<title>") == 1
    # Back asks the server again (and static/fresh.js reloads a page restored from the
    # browser's back-forward cache): no page from before the split is shown as it was.
    assert client.get("/").headers["cache-control"] == "no-store"
    assert '<script src="/static/fresh.js" defer></script>' in page
    assert "<h2>Deliveries</h2>" in done.text and 'id="sources"' in done.text


def test_a_split_waits_for_a_poll_without_a_deadlock(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook: Webhook,
    pg_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL: a poll refreshes an item's row, then takes the assignment lock. The split
    takes its story's item rows before the assignment lock, in the same order, so it waits for
    the poll's row, the poll goes through, then the split: no deadlock (there was one when the
    split took the assignment lock first: PostgreSQL aborted the split). Both succeed, and
    nothing was tried twice."""
    caplog.set_level(logging.INFO, logger="monitor")
    f = fill(tmp_path, feed_server, webhook, pg_url)
    sid, soldier = merge_wrongly(f)
    client = f.app(targets=f.rt.targets)
    token = csrf(client, f"/stories/{sid}")
    holding = threading.Event()
    poll: list[str] = []

    def split_waits_for_the_row() -> bool:
        with f.rt.db.session() as s:
            waiting = s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE '%items%'"
                )
            )
        return bool(waiting)

    def a_poll() -> None:  # what store_items then assign_stories do, in that order
        try:
            with f.rt.db.session() as s:
                s.execute(
                    update(Item).where(Item.id == soldier).values(last_seen_at=datetime.now(UTC))
                )
                holding.set()
                for _ in range(500):
                    if split_waits_for_the_row():
                        break
                    time.sleep(0.01)
                else:
                    raise AssertionError("the split never waited for the item's row")
                lock_assignments(s)
            poll.append("ok")
        except Exception as e:
            poll.append(repr(e))

    t = threading.Thread(target=a_poll)
    t.start()
    assert holding.wait(10)
    done = client.post(
        f"/stories/{sid}/split",
        data={"item": str(soldier), "csrf": token},
        headers={"HX-Request": "true"},
    )
    t.join(30)
    assert poll == ["ok"]  # the poll went through, and the split after it
    assert "transaction aborted" not in caplog.text  # no deadlock, no second try
    assert done.status_code == 200 and "split off" in done.text
    ((item, old, _, _),) = split_rows(f)
    assert (item, old) == (soldier, sid)
    f.rt.db.dispose()


def test_a_poll_correcting_a_storys_items_in_the_feeds_order_does_not_deadlock_a_split(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook: Webhook,
    pg_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL: a feed re-publishes two items of a story, corrected, the later one first,
    and the real poll (`pipeline.store_poll`, its own thread and connection) stores them while
    a split of that story comes in. The poll takes the items' rows in ascending id order, as
    the split does, whatever the feed's order: the split waits for the poll, then goes. Before,
    the poll updated them in the feed's order: it held the later item, the split took the
    earlier and waited for the later, the poll waited for the earlier: PostgreSQL aborted the
    split (deadlock), which was tried once more. Both succeed, and nothing was tried twice."""
    caplog.set_level(logging.INFO, logger="monitor")
    f = fill(tmp_path, feed_server, webhook, pg_url)
    sid, soldier = merge_wrongly(f)
    with f.rt.db.session() as s:
        rows = s.execute(
            select(Item.key, Item.guid, Item.link, Item.title, Item.summary, Item.published)
            .where(Item.story_id == sid)
            .order_by(Item.id)
        ).all()
        feed = s.scalars(select(Feed.id).where(Feed.name == "Fil A")).one()
    assert len(rows) == 2  # the Latchine report (both feeds carry it), the soldier's
    corrected = tuple(  # the later item first, as the feed lists them
        ParsedItem(r.key, r.guid, r.link, f"{r.title} (corrigé)", r.summary or "", "", r.published)
        for r in (rows[1], rows[0])
    )
    client = f.app(targets=f.rt.targets)
    token = csrf(client, f"/stories/{sid}")
    poller = pipeline.Runtime(
        settings=f.rt.settings, db=Database(pg_url), profile=f.rt.profile, owner="poll"
    )
    locked = threading.Event()

    def split_waits_for_a_row() -> bool:
        with f.rt.db.session() as s:
            waiting = s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE '%items%'"
                )
            )
        return bool(waiting)

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        """After the poll's first statement that takes item rows: let the split come in."""
        sql = " ".join(statement.split()).upper()
        takes = sql.startswith("UPDATE ITEMS") or ("FROM ITEMS" in sql and " FOR " in sql)
        if locked.is_set() or not takes:
            return
        locked.set()
        for _ in range(500):
            if split_waits_for_a_row():
                return
            time.sleep(0.01)
        raise AssertionError("the split never waited for the poll's rows")

    event.listen(poller.db.engine, "after_cursor_execute", after)
    poll: list[str] = []

    def a_poll() -> None:
        try:
            result = FetchResult("u", "u", 200, b"", None, None, 0.0)
            outcome = pipeline.store_poll(
                poller, feed, result, ParsedFeed("Fil A", corrected, None)
            )
            poll.append(outcome.status)
        except Exception as e:
            poll.append(repr(e))

    t = threading.Thread(target=a_poll)
    t.start()
    assert locked.wait(30)
    done = client.post(
        f"/stories/{sid}/split",
        data={"item": str(soldier), "csrf": token},
        headers={"HX-Request": "true"},
    )
    t.join(60)
    poller.db.dispose()
    assert poll == ["ok"]
    assert "transaction aborted" not in caplog.text  # no deadlock, no second try
    assert done.status_code == 200 and "split off" in done.text
    ((item, old, _, _),) = split_rows(f)
    assert (item, old) == (soldier, sid)
    with f.rt.db.session() as s:  # the corrections were saved
        titles = s.scalars(select(Item.title).where(Item.key.in_([c.key for c in corrected])))
        assert sorted(titles) == sorted(c.title for c in corrected)
    f.rt.db.dispose()


def test_a_poll_aborted_by_a_deadlock_runs_once_more_at_once(
    tmp_path: Path,
    feed_server: FeedServer,
    webhook: Webhook,
    pg_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL: a real deadlock between a poll and another transaction (another worker's
    poll inserting the same new items in another order, in production; here a connection that
    holds the assignment lock and then wants the row the poll just corrected, while the poll,
    which also brings a new matched item, wants the assignment lock). PostgreSQL aborts the
    poll, which wrote nothing; it runs once more at once and stores the correction and the new
    item, instead of failing and waiting for its lease to expire."""
    caplog.set_level(logging.INFO, logger="monitor")
    f = fill(tmp_path, feed_server, webhook, pg_url)
    with f.rt.db.session() as s:
        row = s.execute(
            select(Item.id, Item.key, Item.guid, Item.link, Item.title, Item.summary,
                   Item.published).where(Item.title.like("%nouvelles violations%"))
        ).first()  # fmt: skip
        feed = s.scalars(select(Feed.id).where(Feed.name == "Fil A")).one()
    assert row is not None
    corrected = ParsedItem(row.key, row.guid, row.link, f"{row.title} (corrigé)",
                           row.summary or "", "", row.published)  # fmt: skip
    poller = pipeline.Runtime(
        settings=f.rt.settings, db=Database(pg_url), profile=f.rt.profile, owner="poll"
    )

    @event.listens_for(poller.db.engine, "connect")
    def quick_to_detect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("SET deadlock_timeout = '200ms'")  # the poll is the one aborted

    other = f.rt.db.engine.connect()
    other_tx = other.begin()
    other.execute(text("SET LOCAL deadlock_timeout = '60s'"))
    other.execute(text("SELECT pg_advisory_xact_lock(7246002)"))  # the assignment lock
    fired = threading.Event()
    other_done: list[str] = []

    def other_wants_the_row() -> None:
        try:
            other.execute(text("SELECT id FROM items WHERE id = :i FOR UPDATE"), {"i": row.id})
            other_tx.commit()
            other_done.append("committed")
        except Exception as e:
            other_done.append(repr(e))

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        """After the poll's first statement that takes the item's row: the other transaction
        asks for that row (and waits), then the poll goes on to the assignment lock."""
        sql = " ".join(statement.split()).upper()
        takes = sql.startswith("UPDATE ITEMS") or ("FROM ITEMS" in sql and " FOR " in sql)
        if fired.is_set() or not takes:
            return
        fired.set()
        threading.Thread(target=other_wants_the_row).start()
        for _ in range(500):
            with f.rt.db.session() as s:
                if s.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                 "current_database() AND wait_event_type = 'Lock' "
                                 "AND query LIKE '%FOR UPDATE%'")):  # fmt: skip
                    return
            time.sleep(0.01)
        raise AssertionError("the other transaction never waited for the poll's row")

    event.listen(poller.db.engine, "after_cursor_execute", after)
    poll: list[str] = []
    try:
        result = FetchResult("u", "u", 200, b"", None, None, 0.0)
        poll.append(
            pipeline.store_poll(
                poller, feed, result, ParsedFeed("Fil A", (corrected, SOLDIER_ITEM), None)
            ).status
        )
    except Exception as e:
        poll.append(repr(e))
    for _ in range(500):
        if other_done:
            break
        time.sleep(0.01)
    other.close()
    poller.db.dispose()
    assert fired.is_set() and other_done == ["committed"]
    assert poll == ["ok"], poll
    assert caplog.text.count("transaction aborted") == 1  # the deadlock, then once more
    with f.rt.db.session() as s:
        assert s.scalar(select(Item.title).where(Item.id == row.id)) == corrected.title
        assert s.scalar(select(Item.story_id).where(Item.key == SOLDIER_ITEM.key)) is not None
    f.rt.db.dispose()


# --- API and topic feeds --------------------------------------------------------------------


def test_api_stories_paginated_with_filters(filled_both: Filled) -> None:
    client = filled_both.app(public_url="https://monitor.example.org")
    first = client.get("/api/stories?per_page=3").json()
    assert first["total"] == 4 and len(first["stories"]) == 3 and first["page"] == 1
    second = client.get(first["next"]).json()
    assert len(second["stories"]) == 1 and second["next"] is None
    ids = [s["id"] for s in first["stories"] + second["stories"]]
    assert len(set(ids)) == 4
    times = [s["first_seen"] for s in first["stories"] + second["stories"]]
    assert times == sorted(times, reverse=True)  # newest first
    one = first["stories"][0]
    assert one["url"] == f"https://monitor.example.org/stories/{one['id']}"
    assert {"title", "link", "topics", "scores", "why", "sources", "alert", "feedback"} <= set(one)
    assert one["alert"]["state"] == "failed"
    mediation = client.get("/api/stories?topic=russian_mediation").json()["stories"]
    assert [LAVROV in s["title"] for s in mediation] == [True]
    assert client.get("/api/stories?since=2999-01-01T00:00:00Z").json()["total"] == 0
    assert client.get("/api/stories?topic=sport").status_code == 400
    assert client.get("/api/stories?per_page=0").status_code == 400
    detail = client.get(f"/api/stories/{filled_both.story_id('nouvelles violations')}").json()
    assert detail["items"][0]["evidence"] and sorted(detail["items"][0]["feeds"]) == [
        "Fil A",
        "Fil B",
    ]
    assert client.get("/api/stories/424242").status_code == 404
    feeds = client.get("/api/feeds?per_page=2").json()
    assert feeds["total"] == 3 and len(feeds["feeds"]) == 2 and feeds["next"]
    assert {"url", "last_status", "error", "next_poll", "items", "silent"} <= set(feeds["feeds"][0])


def test_cli_feeds_and_api_feeds_give_the_same_rows(filled_both: Filled) -> None:
    """`monitor feeds --format jsonl` and `/api/feeds` share one row shape (they were two
    dicts built from two queries, with `items_seen` in one and `items` in the other)."""
    now = datetime(2030, 1, 1, tzinfo=UTC)
    client = filled_both.app(clock=lambda: now)
    api = client.get("/api/feeds").json()["feeds"]
    cli = list_feeds(filled_both.rt.db, now)
    assert api == json.loads(json.dumps(cli))
    assert all(r["items"] > 0 and r["items_seen"] > 0 for r in cli), cli


JSON_FEED_SCHEMA = {  # JSON Feed 1.1 (https://jsonfeed.org/version/1.1), the parts we emit
    "type": "object",
    "required": ["version", "title", "items"],
    "properties": {
        "version": {"const": "https://jsonfeed.org/version/1.1"},
        "title": {"type": "string"},
        "home_page_url": {"type": "string", "format": "uri"},
        "feed_url": {"type": "string", "format": "uri"},
        "language": {"type": "string"},
        "authors": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "anyOf": [{"required": ["content_text"]}, {"required": ["content_html"]}],
                "properties": {
                    "id": {"type": "string"},
                    "url": {"type": "string", "format": "uri"},
                    "external_url": {"type": "string", "format": "uri"},
                    "title": {"type": "string"},
                    "content_text": {"type": "string"},
                    "date_published": {"type": "string", "format": "date-time"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def test_topic_feeds_parse_and_follow_their_specs(filled: Filled) -> None:
    client = filled.app()
    response = client.get("/topics/karabakh_ceasefire.atom")
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    titles = [e.title for e in parsed.entries]
    assert len(titles) == 3 and any("Latchine" in t for t in titles)
    assert not any("OTSC" in t for t in titles)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(response.content)
    for required in ("a:id", "a:title", "a:updated", "a:author/a:name"):
        assert root.find(required, ns) is not None, required  # RFC 4287 §4.1.1
    for entry in root.findall("a:entry", ns):
        for required in ("a:id", "a:title", "a:updated", "a:link[@rel='alternate']"):
            assert entry.find(required, ns) is not None, required  # §4.1.2
    assert len({e.find("a:id", ns).text for e in root.findall("a:entry", ns)}) == 3  # type: ignore[union-attr]

    doc = client.get("/topics/karabakh_ceasefire.json")
    assert doc.headers["content-type"].startswith("application/feed+json")
    body = doc.json()
    jsonschema.validate(body, JSON_FEED_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert len(body["items"]) == 3
    assert client.get("/topics/sport.atom").status_code == 404


# --- health and metrics ---------------------------------------------------------------------


def test_healthz(filled: Filled, tmp_path: Path) -> None:
    ok = filled.app(health_max_age=300).get("/healthz")
    assert ok.status_code == 200 and ok.json()["source"] == "run"
    later = datetime.now(UTC) + timedelta(minutes=10)
    stale = filled.app(health_max_age=300, clock=lambda: later).get("/healthz")
    assert stale.status_code == 503 and "MONITOR_HEALTH_MAX_AGE" in stale.json()["reason"]
    from monitor.store import Database, ensure_schema

    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    ensure_schema(empty.engine)
    never = TestClient(create_app(Window(db=empty, topics=[], aliases={}, params=DEFAULT))).get(
        "/healthz"
    )
    assert never.status_code == 503 and "no polling cycle" in never.json()["reason"]
    gone = Database(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    down = TestClient(create_app(Window(db=gone, topics=[], aliases={}, params=DEFAULT))).get(
        "/healthz"
    )
    assert down.status_code == 503 and down.json()["reason"].startswith("database:")


def test_metrics_exposition(filled_both: Filled) -> None:
    response = filled_both.app().get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    outbox = {s.labels["state"]: s.value for s in families["monitor_outbox_deliveries"].samples}
    assert outbox["failed"] == 4 and outbox["sent"] == 0
    ages = families["monitor_last_cycle_age_seconds"].samples
    assert [s.labels["source"] for s in ages] == ["run"] and 0 <= ages[0].value < 300
    polls = {
        s.labels["outcome"]: s.value
        for s in families["monitor_polls"].samples
        if s.name == "monitor_polls_total"
    }
    assert polls["ok"] >= 3  # this process ran the cycle (counters are per process tree)
    names = set(families)
    for name in ("monitor_fetch_errors", "monitor_items", "monitor_matches", "monitor_alerts",
                 "monitor_deliveries", "monitor_cycle_duration_seconds",
                 "monitor_story_assignment_seconds"):  # fmt: skip
        assert name in names, name


# --- profile evaluate and replay --feedback (the CLI, on the same database) -----------------


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_feedback_changes_what_profile_evaluate_reports(filled: Filled) -> None:
    before = run_cli(filled.env, "profile", "evaluate")
    assert before.returncode == 0, before.stderr
    assert "no feedback yet" in before.stdout
    client = filled.app()
    token = csrf(client, f"/stories/{filled.story_id('OTSC')}")
    for fragment, data in (
        ("nouvelles violations", {"verdict": "relevant"}),
        ("OTSC", {"verdict": "noise"}),
        (LAVROV, {"verdict": "wrong-topic", "topic": "karabakh_ceasefire"}),
    ):
        r = client.post(
            f"/stories/{filled.story_id(fragment)}/feedback",
            data={**data, "csrf": token, "who": "test"},
            follow_redirects=False,
        )
        assert r.status_code == 303
    after = run_cli(filled.env, "profile", "evaluate", "--format", "json")
    assert after.returncode == 0, after.stderr
    report = json.loads(after.stdout)
    scores = {r["name"]: r for r in report["scores"]}
    assert report["stories"] == 3 and report["noise"] == 1
    assert scores[RELEVANCE]["precision"] == pytest.approx(2 / 3)  # the OTSC story was noise
    assert scores["otsc"]["precision"] == 0.0
    # Lavrov: karabakh_ceasefire judged wrong; Latchine right: 1 of 2.
    assert scores["karabakh_ceasefire"]["precision"] == pytest.approx(0.5)
    assert scores["russian_mediation"]["precision"] == 1.0
    table = run_cli(filled.env, "profile", "evaluate")
    assert "precision" in table.stdout and "otsc" in table.stdout

    # A changed profile without the otsc topic: the noise story is no longer matched.
    topics = (filled.config / "topics.yaml").read_text(encoding="utf-8")
    candidate = filled.config / "no_otsc.yaml"
    candidate.write_text(_without_topic(topics, "otsc"), encoding="utf-8")
    better = json.loads(
        run_cli(
            filled.env, "profile", "evaluate", "--profile", str(candidate), "--format", "json"
        ).stdout
    )
    assert {r["name"]: r for r in better["scores"]}[RELEVANCE]["precision"] == 1.0
    replay = run_cli(filled.env, "replay", "--feedback", "--profile", str(candidate))
    assert replay.returncode == 0, replay.stderr
    assert "better" in replay.stdout and "1 closer to the feedback" in replay.stdout


def test_profile_train_learns_from_the_feedback(filled: Filled, tmp_path: Path) -> None:
    """`monitor profile train --feedback`: every item of a judged story is an example labelled
    with the topics the feedback gives the story."""
    pytest.importorskip("sklearn")
    from monitor.classify.model import load_model
    from monitor.web.feedback import feedback_examples

    client = filled.app()
    token = csrf(client, f"/stories/{filled.story_id('OTSC')}")
    for fragment, verdict in (("nouvelles violations", "relevant"), ("OTSC", "noise")):
        r = client.post(
            f"/stories/{filled.story_id(fragment)}/feedback",
            data={"verdict": verdict, "csrf": token, "who": "test"},
            follow_redirects=False,
        )
        assert r.status_code == 303
    examples = feedback_examples(filled.rt.db)
    noise = [e for e in examples if OTSC in e.title]
    relevant = [e for e in examples if "violations" in e.title]
    assert noise and all(e.topics == frozenset() for e in noise)
    assert relevant and all("karabakh_ceasefire" in e.topics for e in relevant)
    out = tmp_path / "m.json"
    r = run_cli(filled.env, "profile", "train", "--feedback", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert f"{len(examples)} items of stories with feedback" in r.stderr
    model = load_model(out)
    assert model.trained_on == {"data": ["feedback"], "examples": len(examples)}
    assert set(model.topics) == set(filled.rt.profile.topics)


def _without_topic(profile_yaml: str, topic: str) -> str:
    import yaml

    doc = yaml.safe_load(profile_yaml)
    del doc["topics"][topic]
    return yaml.safe_dump(doc, allow_unicode=True)


# --- the pure parts -------------------------------------------------------------------------


def test_safe_href_keeps_only_http_links() -> None:
    assert present.safe_href("https://a.example/x?y=1") == "https://a.example/x?y=1"
    for bad in ("javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "//evil",
                "vbscript:x", "http://", None, ""):  # fmt: skip
        assert present.safe_href(bad) is None, bad


def test_local_path_never_leaves_the_site() -> None:
    assert present.local_path("/stories/3") == "/stories/3"
    for bad in ("//evil.example", "https://evil.example", "/\\evil", "", None):
        assert present.local_path(bad) == "/"


def test_parse_since() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert present.parse_since("30m", now) == now - timedelta(minutes=30)
    assert present.parse_since("7d", now) == now - timedelta(days=7)
    assert present.parse_since("2024-04-30T10:00", now) == datetime(2024, 4, 30, 10, tzinfo=UTC)
    assert present.parse_since("", now) is None
    with pytest.raises(Exception, match="duration"):
        present.parse_since("7 weeks", now)


def test_alert_state() -> None:
    assert present.alert_state(False, []) == "not alerted"
    assert present.alert_state(True, []) == "no target"
    assert present.alert_state(True, [("sent", 1), ("pending", 0)]) == "pending"
    assert present.alert_state(True, [("sent", 1), ("pending", 2)]) == "failed"
    assert present.alert_state(True, [("sent", 1), ("dead", 9)]) == "dead"
    assert present.alert_state(True, [("sent", 1)]) == "sent"


def test_silence_is_three_usual_gaps_without_news() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    hourly = [now - timedelta(hours=h) for h in (10, 9, 8, 7, 6)]
    quiet = silence(hourly, interval=300, now=now)
    assert quiet.usual_gap == timedelta(hours=1) and quiet.silent  # 6 h without news
    assert not silence([*hourly[:-1], now - timedelta(hours=2)], 300, now).silent
    assert not silence(hourly[:2], 300, now).silent  # too few to know a usual gap
    # never less than the polling interval: a feed polled daily is not silent after 3 hours
    bunched = [now - timedelta(hours=h, minutes=m) for h, m in ((5, 2), (5, 1), (5, 0))]
    assert not silence(bunched, 86400, now).silent


def test_feedback_truth_and_scores() -> None:
    @dataclass
    class F:
        verdict: str
        topic: str | None = None
        correct_topic: str | None = None

    stored = {"a", "b"}
    assert true_topics(stored, [F("relevant")]) == {"a", "b"}
    assert true_topics(stored, [F("noise")]) == frozenset()
    assert true_topics(stored, [F("wrong-topic", "b", "c")]) == {"a", "c"}
    assert true_topics(stored, [F("noise"), F("relevant")]) == {"a", "b"}  # the later wins
    pairs = [
        (frozenset({"a"}), frozenset({"a"})),
        (frozenset(), frozenset({"a"})),
        (frozenset({"b"}), frozenset()),
    ]
    by = {s.name: s for s in score(pairs, ["a", "b"])}
    assert (by["a"].precision, by["a"].recall) == (0.5, 1.0)
    assert (by["b"].precision, by["b"].recall) == (None, 0.0)
    assert (by[RELEVANCE].tp, by[RELEVANCE].fp, by[RELEVANCE].fn) == (1, 1, 1)
    assert change(frozenset(), frozenset({"a"}), frozenset()) == "better"
    assert change(frozenset({"a"}), frozenset({"a"}), frozenset()) == "worse"


def test_story_url() -> None:
    assert story_url("https://m.example.org/", 42) == "https://m.example.org/stories/42"
    assert story_url(None, 42) is None


def test_web_settings(tmp_path: Path) -> None:
    from monitor.errors import ConfigError

    config = write_config(tmp_path / "c", [])
    env = monitor_env(config, "sqlite://", MONITOR_METRICS_PORT="9100",
                      MONITOR_PUBLIC_URL="https://m.example.org/", MONITOR_WEB_TOKEN="t")  # fmt: skip
    s = load_settings(env)
    assert s.metrics_address == ("127.0.0.1", 9100)
    assert s.public_url == "https://m.example.org" and s.web_token == "t"
    assert load_settings({**env, "MONITOR_METRICS_PORT": "0.0.0.0:9200"}).metrics_address == (
        "0.0.0.0",
        9200,
    )
    for name, bad in (("MONITOR_METRICS_PORT", "abc"), ("MONITOR_PUBLIC_URL", "ftp://x"),
                      ("MONITOR_HEALTH_MAX_AGE", "-1")):  # fmt: skip
        with pytest.raises(ConfigError, match=name):
            load_settings({**env, name: bad})
