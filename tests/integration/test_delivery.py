"""The alert policy end to end on a simulated clock: real storage (SQLite and PostgreSQL), real
apprise deliveries to the loopback webhook and SMTP server. The clock is handed to
`deliver_due`; the stories are stored the way a poll stores them."""

from __future__ import annotations

import email
import email.header
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor import deliver
from monitor.store import Database, upgrade
from monitor.store import feeds as feed_store
from monitor.store import items as item_store
from monitor.store import matches as match_store
from monitor.store.models import Delivery, Feed, Message
from monitor.targets import load_targets, make_target
from monitor.types import Classification, Evidence, FeedConfig, Target
from monitor.types import Item as ParsedItem
from monitor.views import list_deliveries
from tests.conftest import ROOT, Webhook

T0 = datetime(2024, 2, 13, 12, 0, tzinfo=UTC)
CFG = deliver.DeliverySettings(claim_seconds=300, retry_base_seconds=30,
                               public_url="https://monitor.example.org/")  # fmt: skip
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def word(n: int) -> str:
    """A token of its own for each n, so that distinct stories share no title word."""
    out = ""
    for _ in range(3):
        out += LETTERS[n % 26]
        n //= 26
    return "q" + out


def notify_yaml(tmp: Path, targets: list[dict[str, Any]]) -> tuple[Target, ...]:
    """Targets read from a real notify.yaml (the policy keys as a user writes them)."""
    lines = ["targets:"]
    for t in targets:
        lines.append(f"  - url: {json.dumps(t['url'])}")
        for k, v in t.items():
            if k != "url":
                lines.append(f"    {k}: {json.dumps(v)}")
    path = tmp / "notify.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_targets(path)


class Desk:
    """A database with feeds, where stories are stored as polls store them, and delivered."""

    def __init__(self, url: str, targets: tuple[Target, ...], feeds: int = 4):
        self.db = Database(url)
        upgrade(self.db.engine)
        self.targets = targets
        with self.db.session() as s:
            feed_store.sync_feeds(
                s,
                [
                    FeedConfig(f"https://f{i}.example.org/rss", name=f"Fil {i}")
                    for i in range(feeds)
                ],
                T0,
            )
            self.feeds = [f.id for f in s.scalars(select(Feed).order_by(Feed.id))]
        self.n = 0

    def story(self, now: datetime, title: str | None = None, feed: int = 0,
              topic: str = "otsc", score: float = 10.0,
              confidence: float = 0.99) -> str:  # fmt: skip
        """One matched item (a new story, or a source of the story with the same title)."""
        self.n += 1
        n = self.n
        title = title or f"Dépêche {word(n)} {word(n + 5000)} {word(n + 9000)} {word(n + 13000)}"
        link = f"https://news{feed}.example.org/{n}"
        it = ParsedItem(key=link, guid=None, link=link, title=title, summary="")
        c = Classification(
            (topic,), {topic: score}, (Evidence(topic, "otsc", "title", score),),
            {topic: confidence},
        )  # fmt: skip
        with self.db.session() as s:
            (st,) = item_store.store_items(s, self.feeds[feed], [it], now)
            ((_, alert),) = match_store.record_matches(s, [(st.row_id, it, c)], now)
            if alert is not None:
                deliver.route_new_alerts(s, [(alert.id, alert.topics)], self.targets, now)
        return title

    def deliver(self, now: datetime) -> tuple[int, int]:
        return deliver.deliver_due(self.db, self.targets, lambda: now, CFG)

    def run(self, start: datetime, end: datetime, step: timedelta) -> None:
        """The delivery loop on the simulated clock."""
        t = start
        while t <= end:
            self.deliver(t)
            t += step

    def rows(self) -> list[dict[str, Any]]:
        return list_deliveries(self.db)


def listed(received: list[dict[str, Any]], titles: list[str]) -> Counter[str]:
    """How many times each story title appears across the received messages."""
    return Counter(t for r in received for t in titles if t in r["title"] + r["message"])


def test_burst_of_13_gives_5_messages_and_one_summary_of_the_other_8(
    tmp_path: Path, webhook: Webhook, db_url: str
) -> None:
    targets = notify_yaml(tmp_path, [{"url": webhook.url, "name": "desk", "max_per_hour": 5}])
    desk = Desk(db_url, targets)
    titles = [desk.story(T0 + timedelta(seconds=i)) for i in range(13)]
    desk.run(T0 + timedelta(seconds=13), T0 + timedelta(minutes=15), timedelta(seconds=30))
    assert len(webhook.received) == 6, webhook.titles()
    singles, summary = webhook.received[:5], webhook.received[5]
    assert all("Résumé" not in r["title"] for r in singles)
    assert summary["title"] == "[monitor] Résumé : 8 alertes (max_per_hour 5)"
    counts = listed(webhook.received, titles)
    assert sorted(counts.values()) == [1] * 13, counts  # every story, once
    for t in titles[5:]:
        assert t in summary["message"]
    # The summary gives each story's link, topic with score, sources and story page.
    assert summary["message"].count("https://news0.example.org/") == 8
    assert summary["message"].count("otsc 10") == 8 and "Sources : Fil 0" in summary["message"]
    assert "https://monitor.example.org/stories/" in summary["message"]
    # A story later in the same hour waits for room in the window, then goes out alone.
    late = desk.story(T0 + timedelta(minutes=20))
    desk.run(T0 + timedelta(minutes=20), T0 + timedelta(minutes=59), timedelta(minutes=1))
    assert len(webhook.received) == 6
    held = [r for r in desk.rows() if r["state"] == "held"]
    assert len(held) == 1 and "max_per_hour 5" in held[0]["reason"]
    desk.run(T0 + timedelta(minutes=60), T0 + timedelta(minutes=70), timedelta(minutes=1))
    assert len(webhook.received) == 7 and late in webhook.received[6]["title"]
    with desk.db.session() as s:
        kinds = Counter(s.scalars(select(Message.kind)))
        assert kinds == {"alert": 6, "summary": 1}
        assert set(s.scalars(select(Delivery.status))) == {"sent"}
    desk.db.dispose()


def test_an_alert_says_what_its_topics_mean(
    tmp_path: Path, webhook: Webhook, sqlite_url: str
) -> None:
    """Under « Sujets : », each topic's label from the profile (`delivery_settings` passes them),
    so a desk can check the alert against what the topic means."""
    targets = notify_yaml(tmp_path, [{"url": webhook.url, "name": "desk"}])
    desk = Desk(sqlite_url, targets)
    desk.story(T0)
    labels = (("otsc", "OTSC / CSTO : l'alliance"), ("other", "ignored"))
    cfg = deliver.DeliverySettings(topic_labels=labels)
    deliver.deliver_due(desk.db, desk.targets, lambda: T0 + timedelta(seconds=1), cfg)
    (r,) = webhook.received
    assert "Sujets : otsc (10)\n  otsc : OTSC / CSTO : l'alliance\n" in r["message"]
    assert "ignored" not in r["message"]
    desk.db.dispose()


def test_quiet_hours_hold_then_one_html_digest(
    tmp_path: Path, smtp_server: Any, sqlite_url: str
) -> None:
    targets = notify_yaml(
        tmp_path,
        [{"url": smtp_server.url, "name": "desk-mail", "quiet_hours": "22:00-07:00",
          "timezone": "Europe/Paris"}],
    )  # fmt: skip
    desk = Desk(sqlite_url, targets)
    evening = datetime(2024, 2, 13, 20, 50, tzinfo=UTC)  # 21:50 in Paris
    first = desk.story(evening)
    desk.deliver(evening)
    assert len(smtp_server.messages) == 1  # before the quiet hours: at once
    night = datetime(2024, 2, 13, 22, 0, tzinfo=UTC)  # 23:00 in Paris
    hostile = "Erevan <script>alert(1)</script> & @channel OTSC sommet annonce"
    titles = [desk.story(night), desk.story(night + timedelta(hours=2), hostile, feed=1),
              desk.story(night + timedelta(hours=5))]  # fmt: skip
    end = datetime(2024, 2, 14, 6, 0, tzinfo=UTC)  # 07:00 in Paris
    desk.run(night, end - timedelta(minutes=1), timedelta(minutes=10))
    assert len(smtp_server.messages) == 1
    assert {r["state"] for r in desk.rows() if r["title"] != first} == {"held"}
    desk.run(end, end + timedelta(hours=2), timedelta(minutes=10))
    assert len(smtp_server.messages) == 2
    digest = email.message_from_bytes(smtp_server.messages[1])
    subject = str(email.header.make_header(email.header.decode_header(digest["Subject"])))
    assert "Digest : 3 alertes (quiet_hours 22:00-07:00)" in subject
    parts = [p.get_payload(decode=True).decode() for p in digest.walk()
             if p.get_content_type() == "text/html"]  # fmt: skip
    assert parts, [p.get_content_type() for p in digest.walk()]
    body = parts[0]
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<li>" in body and body.count("<li>") == 3
    for t in titles[0::2]:
        assert body.count(t) == 1
    assert "Fil 1" in body and "otsc 10" in body and 'href="https://news' in body
    desk.run(end + timedelta(hours=2), end + timedelta(days=1), timedelta(hours=1))
    assert len(smtp_server.messages) == 2
    desk.db.dispose()


def test_digest_at_sends_one_digest_a_day(
    tmp_path: Path, webhook: Webhook, sqlite_url: str
) -> None:
    targets = notify_yaml(tmp_path, [{"url": webhook.url, "name": "daily", "digest_at": "08:00",
                                      "timezone": "Europe/Paris"}])  # fmt: skip
    desk = Desk(sqlite_url, targets)
    start = datetime(2024, 2, 13, 8, 0, tzinfo=UTC)  # 09:00 in Paris
    days: list[list[str]] = [[], []]
    clock = start
    step = timedelta(hours=2)
    for _ in range(24):  # two days: a story every two hours, delivery every 10 minutes
        day = 0 if clock < datetime(2024, 2, 14, 7, 0, tzinfo=UTC) else 1
        days[day].append(desk.story(clock))
        desk.run(clock, clock + step - timedelta(minutes=10), timedelta(minutes=10))
        clock += step
    desk.run(clock, datetime(2024, 2, 15, 7, 30, tzinfo=UTC), timedelta(minutes=30))
    # Digests at 08:00 Paris (07:00 UTC) on the 14th and the 15th, nothing else.
    assert len(webhook.received) == 2, webhook.titles()
    for r, titles in zip(webhook.received, days, strict=True):
        assert f"Digest : {len(titles)} alertes (digest_at 08:00)" in r["title"]
        assert all(r["message"].count(t) == 1 for t in titles)
    assert sum(listed(webhook.received, days[0] + days[1]).values()) == 24
    desk.db.dispose()


def test_follow_ups_obey_updates(tmp_path: Path, sqlite_url: str) -> None:
    hooks = {name: Webhook() for name in ("none", "message", "digest")}
    try:
        targets = notify_yaml(
            tmp_path, [{"url": h.url, "name": n, "updates": n} for n, h in hooks.items()]
        )
        desk = Desk(sqlite_url, targets)
        title = desk.story(T0, feed=0)
        desk.deliver(T0)
        assert [len(h.received) for h in hooks.values()] == [1, 1, 1]
        # Two more outlets carry the story 10 and 20 minutes later.
        desk.story(T0 + timedelta(minutes=10), title, feed=1)
        desk.story(T0 + timedelta(minutes=20), title, feed=2)
        desk.run(
            T0 + timedelta(minutes=20), T0 + timedelta(hours=2, minutes=50), timedelta(minutes=10)
        )
        assert [len(h.received) for h in hooks.values()] == [1, 1, 1]  # not before 3 hours
        desk.run(
            T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=30), timedelta(minutes=10)
        )
        follow = hooks["message"].received[1:]
        assert len(follow) == 1 and f"+2 sources : {title}" in follow[0]["title"]
        assert "Nouvelles sources : Fil 1, Fil 2" in follow[0]["message"]
        # A fourth outlet soon after: at most one follow-up per story every 3 hours.
        desk.story(T0 + timedelta(hours=3, minutes=40), title, feed=3)
        desk.run(T0 + timedelta(hours=3, minutes=40), T0 + timedelta(hours=5, minutes=50),
                 timedelta(minutes=10))  # fmt: skip
        assert len(hooks["message"].received) == 2
        desk.run(
            T0 + timedelta(hours=6), T0 + timedelta(hours=19, minutes=50), timedelta(minutes=10)
        )
        assert len(hooks["message"].received) == 3
        assert "+1 sources" in hooks["message"].received[2]["title"]
        assert "Nouvelles sources : Fil 3" in hooks["message"].received[2]["message"]
        # updates: digest: the next digest (08:00 UTC: this target has no digest_at) lists it.
        assert len(hooks["digest"].received) == 1
        desk.run(T0 + timedelta(hours=20), T0 + timedelta(hours=21), timedelta(minutes=10))
        (digest,) = hooks["digest"].received[1:]
        assert digest["title"] == "[monitor] Digest : 1 mise à jour (updates)"
        assert title in digest["message"]
        assert "+3 : Fil 1, Fil 2, Fil 3" in digest["message"]
        # updates: none: never a second message; nothing more anywhere a day later.
        desk.run(T0 + timedelta(days=1), T0 + timedelta(days=2), timedelta(hours=1))
        assert [len(h.received) for h in hooks.values()] == [1, 3, 2]
        desk.db.dispose()
    finally:
        for h in hooks.values():
            h.close()


def test_min_score_leaves_a_visible_trace(
    tmp_path: Path, webhook: Webhook, sqlite_url: str
) -> None:
    targets = notify_yaml(tmp_path, [{"url": webhook.url, "name": "strict", "min_score": 8}])
    desk = Desk(sqlite_url, targets)
    weak = desk.story(T0, score=5.5)
    strong = desk.story(T0, score=12)
    desk.deliver(T0)
    assert webhook.titles() and all(weak not in t for t in webhook.titles())
    assert any(strong in t for t in webhook.titles())
    (row,) = [r for r in desk.rows() if r["title"] == weak]
    assert row["state"] == "skipped" and row["reason"] == "score 5.5 below min_score 8"
    desk.db.dispose()


def test_min_confidence_leaves_a_visible_trace(
    tmp_path: Path, webhook: Webhook, sqlite_url: str
) -> None:
    """notify.yaml min_confidence: the calibrated confidence stored with the match decides,
    whatever the raw score; the skipped story keeps its row with the reason."""
    targets = notify_yaml(tmp_path, [{"url": webhook.url, "name": "sure", "min_confidence": 0.8}])
    desk = Desk(sqlite_url, targets)
    doubtful = desk.story(T0, score=14, confidence=0.55)
    sure = desk.story(T0, score=7, confidence=0.93)
    desk.deliver(T0)
    assert any(sure in t for t in webhook.titles())
    assert all(doubtful not in t for t in webhook.titles())
    (row,) = [r for r in desk.rows() if r["title"] == doubtful]
    assert row["state"] == "skipped"
    assert row["reason"] == "confidence 0.55 below min_confidence 0.8"
    desk.db.dispose()


def test_unrouted_alerts_are_visible_and_routed_when_targets_change(
    tmp_path: Path, webhook: Webhook, sqlite_url: str, caplog: Any
) -> None:
    """No target takes the alert: a row says so; a target that left: its undelivered rows go
    to the new set. Never lost, never twice."""
    old = notify_yaml(tmp_path, [{"url": webhook.url, "name": "otsc-only", "tags": ["otsc"]}])
    desk = Desk(sqlite_url, old)
    with caplog.at_level("WARNING", logger="monitor.deliver"):
        karabakh = desk.story(T0, topic="karabakh_ceasefire")
    otsc = desk.story(T0)
    desk.deliver(T0)
    assert "no target takes the topics karabakh_ceasefire" in caplog.text
    assert [karabakh in t for t in webhook.titles()] == [False]
    (row,) = [r for r in desk.rows() if r["title"] == karabakh]
    assert row["state"] == "unrouted" and row["target"] == "(none)"
    # notify.yaml edited: a karabakh target added. The next pass routes the alert there once.
    new = notify_yaml(tmp_path, [{"url": webhook.url, "name": "otsc-only", "tags": ["otsc"]},
                                 {"url": webhook.url + "2", "name": "karabakh",
                                  "tags": ["karabakh_ceasefire"]}])  # fmt: skip
    desk.targets = new
    for minute in range(3):
        desk.deliver(T0 + timedelta(minutes=minute))
    assert sum(karabakh in t for t in webhook.titles()) == 1
    assert sum(otsc in t for t in webhook.titles()) == 1
    states = {(r["target"], r["state"]) for r in desk.rows() if r["title"] == karabakh}
    assert states == {("(none)", "rerouted"), ("karabakh", "sent")}
    # A target removed while it was down: its undelivered alert goes to its replacement.
    webhook.down = True
    third = desk.story(T0 + timedelta(minutes=5), topic="karabakh_ceasefire")
    desk.deliver(T0 + timedelta(minutes=5))
    webhook.down = False
    (failed,) = [r for r in list_deliveries(desk.db, "failed") if r["title"] == third]
    assert failed["target"] == "karabakh" and failed["attempts"] == 1
    desk.targets = notify_yaml(tmp_path, [{"url": webhook.url, "name": "desk"}])
    desk.run(T0 + timedelta(minutes=6), T0 + timedelta(minutes=10), timedelta(minutes=1))
    assert sum(third in t for t in webhook.titles()) == 1
    states = {(r["target"], r["state"]) for r in desk.rows() if r["title"] == third}
    assert states == {("karabakh", "rerouted"), ("desk", "sent")}
    desk.db.dispose()


def wait_until(cond: Callable[[], bool], timeout: float) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


SEND_ONCE = """
import sys
from datetime import datetime
from pathlib import Path
from monitor import deliver
from monitor.store import Database
from monitor.targets import load_targets, make_target
from tests.integration.test_delivery import CFG
now = datetime.fromisoformat(sys.argv[3])
deliver.deliver_due(Database(sys.argv[1]), load_targets(Path(sys.argv[2])), lambda: now, CFG)
"""


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_digest_neither_loses_nor_repeats(
    tmp_path: Path, webhook: Webhook, db_url: str
) -> None:
    """A real process makes the digest and posts it; the receiver holds the post; the process
    is killed (SIGKILL) before the answer. The next sender, after the claim expired, sends the
    same digest: every story once."""
    night_target = {"url": webhook.url, "name": "night", "quiet_hours": "22:00-07:00"}
    targets = notify_yaml(tmp_path, [night_target])
    desk = Desk(db_url, targets)
    night = datetime(2024, 2, 13, 23, 0, tzinfo=UTC)
    titles = [desk.story(night + timedelta(minutes=i)) for i in range(3)]
    desk.deliver(night + timedelta(minutes=3))
    end = datetime(2024, 2, 14, 7, 0, tzinfo=UTC)
    webhook.stall = 3.0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SEND_ONCE, db_url, str(tmp_path / "notify.yaml"), end.isoformat()],
        env=env, start_new_session=True, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert wait_until(lambda: webhook.stalled >= 1, 60), "the digest was never posted"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    webhook.stall = 0.0
    assert wait_until(lambda: webhook.dropped >= 1, 10)
    assert webhook.received == []
    with desk.db.session() as s:
        (message,) = s.scalars(select(Message))
        assert message.kind == "digest" and message.status == "pending"
        assert message.claimed_until == end + timedelta(seconds=CFG.claim_seconds)
        rows = s.scalars(select(Delivery)).all()
        assert {(d.status, d.message_id) for d in rows} == {("sending", message.id)}
    desk.deliver(end + timedelta(minutes=1))  # the dead sender's claim still holds
    assert webhook.received == []
    desk.run(end + timedelta(minutes=6), end + timedelta(hours=3), timedelta(minutes=10))
    assert len(webhook.received) == 1
    assert sorted(listed(webhook.received, titles).values()) == [1, 1, 1]
    with desk.db.session() as s:
        assert set(s.scalars(select(Delivery.status))) == {"sent"}
        assert s.scalar(select(func.count()).select_from(Message)) == 1
    desk.db.dispose()


def test_a_database_of_the_previous_schema_keeps_its_outbox(webhook: Webhook, db_url: str) -> None:
    """Rows written before migration 0004 (pending, sent, dead) stay valid: the pending one is
    delivered once, the others are left alone."""
    from alembic import command
    from sqlalchemy import text

    from monitor.store.db import alembic_config

    db = Database(db_url)
    with db.engine.begin() as conn:
        cfg = alembic_config(db.engine)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    at = T0.isoformat(sep=" ")
    statements = [
        "INSERT INTO feeds (id, url, name, interval, language, enabled, error_count, items_seen,"
        " created_at) VALUES (1, 'https://f.example.org/rss', 'Fil', 300, 'fr', true, 0, 0, :at)",
        "INSERT INTO stories (id, title, title_signature, body_signature, first_seen)"
        " VALUES (1, 'Erevan OTSC sommet', '', '', :at)",
        "INSERT INTO items (id, key, link, title, summary, content, first_seen, feed_id, story_id)"
        " VALUES (1, 'k1', 'https://f.example.org/1', 'Erevan OTSC sommet', '', '', :at, 1, 1)",
        "INSERT INTO item_feeds (item_id, feed_id, first_seen) VALUES (1, 1, :at)",
        "INSERT INTO matches (id, item_id, story_id, topics, scores, evidence, explanation, score,"
        " created_at) VALUES (1, 1, 1, '[\"otsc\"]', '{\"otsc\": 9}', '[]', 'otsc=9', 9, :at)",
        "INSERT INTO alerts (id, story_id, match_id, created_at) VALUES (1, 1, 1, :at)",
    ]
    targets = (make_target(webhook.url, "test"), make_target(webhook.url + "2", "test"),
               make_target(webhook.url + "3", "test"))  # fmt: skip
    with db.engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql), {"at": at})
        for n, (t, status) in enumerate(zip(targets, ("pending", "sent", "dead"), strict=True)):
            conn.execute(
                text("INSERT INTO deliveries (id, alert_id, target, status, attempts,"
                     " next_attempt_at, created_at) VALUES (:id, 1, :t, :s, 0, :at, :at)"),
                {"id": n + 1, "t": t.key, "s": status, "at": at},
            )  # fmt: skip
    upgrade(db.engine)
    deliver.deliver_due(db, targets, lambda: T0 + timedelta(minutes=1), CFG)
    deliver.deliver_due(db, targets, lambda: T0 + timedelta(minutes=2), CFG)
    assert [r["title"] for r in webhook.received] == ["[otsc] Erevan OTSC sommet"]
    with db.session() as s:
        got = {(d.target, d.kind, d.status) for d in s.scalars(select(Delivery))}
    assert got == {(targets[0].key, "alert", "sent"), (targets[1].key, "alert", "sent"),
                   (targets[2].key, "alert", "dead")}  # fmt: skip
    db.dispose()


def test_held_alerts_follow_a_change_of_tags(
    tmp_path: Path, webhook: Webhook, sqlite_url: str
) -> None:
    """Held stories of a target whose tags no longer take them go to the targets that do; the
    ones it still takes stay held for it."""
    both = ["otsc", "karabakh_ceasefire"]
    night = {"url": webhook.url, "name": "desk", "quiet_hours": "22:00-07:00"}
    desk = Desk(sqlite_url, notify_yaml(tmp_path, [{**night, "tags": both}]))
    t = datetime(2024, 2, 13, 23, 0, tzinfo=UTC)
    karabakh = desk.story(t, topic="karabakh_ceasefire")
    otsc = desk.story(t)
    desk.deliver(t)
    assert {r["state"] for r in desk.rows()} == {"held"}
    desk.targets = notify_yaml(
        tmp_path, [{**night, "tags": ["otsc"]}, {"url": webhook.url + "2", "name": "all"}]
    )
    desk.run(t + timedelta(minutes=1), t + timedelta(minutes=3), timedelta(minutes=1))
    assert [karabakh in x for x in webhook.titles()] == [True]
    # A target added does not get the backlog of stories its peers still take.
    states = {(r["target"], r["state"], r["title"]) for r in desk.rows()}
    assert states == {("desk", "rerouted", karabakh), ("all", "sent", karabakh),
                      ("desk", "held", otsc)}  # fmt: skip
    desk.db.dispose()
