"""Read-side queries and tables for the CLI (`matches`, `feeds`, `replay`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import click
from sqlalchemy import select

from monitor.classify import Profile, Scorer
from monitor.feed_health import FEED_WINDOW, feed_row
from monitor.store import Database, browse
from monitor.store.models import Alert, Delivery, Feed, Item, Match, MatchTopic, Message
from monitor.types import Item as ParsedItem

_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def list_matches(
    db: Database, since: datetime | None, topic: str | None, limit: int | None
) -> list[dict[str, Any]]:
    q = select(Match).order_by(Match.created_at.desc(), Match.id.desc())
    if topic:
        q = q.join(MatchTopic, MatchTopic.match_id == Match.id).where(MatchTopic.topic == topic)
    if since:
        q = q.where(Match.created_at >= since)
    if limit:
        q = q.limit(limit)
    rows = []
    with db.session() as s:
        for m in s.scalars(q).unique():
            it = m.item
            rows.append(
                {
                    "id": m.id,
                    "title": it.title,
                    "link": it.link,
                    "topics": list(m.topics),
                    "scores": dict(m.scores),
                    "published": _iso(it.published),
                    "matched_at": _iso(m.created_at),
                    "feeds": [f.feed.name or f.feed.url for f in it.feeds],
                    "feed_urls": [f.feed.url for f in it.feeds],
                    "story": m.story_id,
                    "evidence": list(m.evidence),
                    "why": m.explanation,
                    "score": m.score,
                }
            )
    return rows


def list_feeds(db: Database, now: datetime) -> list[dict[str, Any]]:
    with db.session() as s:
        return [feed_row(f, now) for f in browse.list_feeds(s, now - FEED_WINDOW)]


def replay_items(
    db: Database, current: Profile, candidate: Profile, since: datetime | None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Score stored items with both profiles; rows for items whose verdict differs or that
    the candidate would alert."""
    cur, new = Scorer(current), Scorer(candidate)
    q = select(Item).order_by(Item.first_seen.desc())
    if since:
        q = q.where(Item.first_seen >= since)
    totals = {"items": 0, "would_alert": 0, "current": 0, "added": 0, "removed": 0, "changed": 0}
    rows: list[dict[str, Any]] = []
    with db.session() as s:
        for it in s.scalars(q.execution_options(yield_per=1000)):
            item = ParsedItem(
                key=it.key,
                guid=it.guid,
                link=it.link,
                title=it.title,
                summary=it.summary,
                content=it.content,
            )
            a, b = cur.classify(item), new.classify(item)
            totals["items"] += 1
            totals["current"] += a.match
            totals["would_alert"] += b.match
            change = "same"
            if b.match and not a.match:
                change = "added"
            elif a.match and not b.match:
                change = "removed"
            elif set(a.topics) != set(b.topics):
                change = "changed"
            if change != "same":
                totals[change] += 1
            if b.match or change != "same":
                rows.append(
                    {
                        "change": change,
                        "topics": list(b.topics),
                        "was": list(a.topics),
                        "scores": b.scores,
                        "title": it.title,
                        "link": it.link,
                        "why": b.explain(),
                    }
                )
    return rows, totals


# The window's states, and `rerouted` (rows moved to the targets of a changed notify.yaml).
DELIVERY_STATES = (*browse.DELIVERY_STATES, "rerouted")


def list_deliveries(
    db: Database, state: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Outbox rows, newest first: each alert's row per target (and follow-ups), with its
    state, why it is held, skipped or unrouted, its last error and the message that carried
    it. `state`: one of DELIVERY_STATES."""
    q = (
        select(Delivery, Item.title, Item.link, Alert.story_id, Message.kind, Message.status)
        .join(Alert, Alert.id == Delivery.alert_id)
        .join(Match, Match.id == Alert.match_id)
        .join(Item, Item.id == Match.item_id)
        .outerjoin(Message, Message.id == Delivery.message_id)
        .order_by(Delivery.created_at.desc(), Delivery.id.desc())
    )
    if state == "pending":
        q = q.where(
            Delivery.status.in_(("pending", "held", "sending")), Delivery.last_error.is_(None)
        )
    elif state == "failed":
        q = q.where(Delivery.status.in_(("pending", "sending")), Delivery.last_error.is_not(None))
    elif state is not None:
        q = q.where(Delivery.status == state)
    if limit:
        q = q.limit(limit)
    rows = []
    with db.session() as s:
        for d, title, link, story_id, message_kind, message_status in s.execute(q):
            rows.append(
                {
                    "id": d.id,
                    "state": browse.delivery_state(d.status, d.attempts),
                    "status": d.status,
                    "kind": d.kind,
                    "target": d.target or "(none)",
                    "alert": d.alert_id,
                    "story": story_id,
                    "title": title,
                    "link": link,
                    "created": _iso(d.created_at),
                    "next_attempt": _iso(d.next_attempt_at)
                    if d.status in ("pending", "held", "sending")
                    else None,
                    "attempts": d.attempts,
                    "sent": _iso(d.sent_at),
                    "reason": d.reason,
                    "last_error": d.last_error,
                    "message": d.message_id,
                    "message_kind": message_kind,
                    "message_status": message_status,
                }
            )
    return rows


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, int]]) -> None:
    def cell(value: Any, width: int) -> str:
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if isinstance(value, float):
            value = f"{value:g}"
        if isinstance(value, str) and _ISO_TIME.match(value):
            value = value[:16].replace("T", " ")  # minutes are what a person reads (UTC)
        text = "" if value is None else str(value)
        if len(text) > width:
            text = text[: width - 1] + "…"
        return text.ljust(width)

    click.echo("  ".join(cell(name, w) for name, w in columns).rstrip())
    for r in rows:
        click.echo("  ".join(cell(r.get(name), w) for name, w in columns).rstrip())
    if not rows:
        click.echo("(none)")


# --- stories (issue 11) -------------------------------------------------------------------


def list_stories(
    db: Database, since: datetime | None, topic: str | None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Stories an item joined since `since` (latest first): first and latest item, sources
    (feeds and links) and the alerts sent per target (deliveries with status 'sent')."""
    from sqlalchemy import func

    from monitor.store.models import Alert, Delivery, ItemFeed, Story

    q = select(Story).order_by(Story.last_seen.desc(), Story.id.desc())
    if since:
        q = q.where(func.coalesce(Story.last_seen, Story.first_seen) >= since)
    if topic:
        q = q.where(
            Story.id.in_(
                select(Match.story_id)
                .join(MatchTopic, MatchTopic.match_id == Match.id)
                .where(MatchTopic.topic == topic)
            )
        )
    if limit:
        q = q.limit(limit)
    rows: list[dict[str, Any]] = []
    with db.session() as s:
        stories = list(s.scalars(q))
        ids = [st.id for st in stories]
        items: dict[int, list[Item]] = {}
        feeds_of: dict[int, list[tuple[str, str]]] = {}
        sent: dict[int, dict[str, int]] = {}
        for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
            for it in s.scalars(
                select(Item).where(Item.story_id.in_(chunk)).order_by(Item.first_seen, Item.id)
            ):
                assert it.story_id is not None
                items.setdefault(it.story_id, []).append(it)
            for item_id, name, url in s.execute(
                select(ItemFeed.item_id, Feed.name, Feed.url)
                .join(Feed, Feed.id == ItemFeed.feed_id)
                .join(Item, Item.id == ItemFeed.item_id)
                .where(Item.story_id.in_(chunk))
            ):
                feeds_of.setdefault(item_id, []).append((name or url, url))
            for story_id, target, count in s.execute(
                select(Alert.story_id, Delivery.target, func.count())
                .join(Delivery, Delivery.alert_id == Alert.id)
                .where(Alert.story_id.in_(chunk), Delivery.status == "sent")
                .group_by(Alert.story_id, Delivery.target)
            ):
                sent.setdefault(story_id, {})[_target_label(target)] = int(count)
        for st in stories:
            its = sorted(items.get(st.id, []), key=lambda i: (i.published or i.first_seen, i.id))
            sources: dict[str, dict[str, Any]] = {}
            for it in its:
                for name, url in feeds_of.get(it.id, []):
                    src = sources.setdefault(url, {"feed": name, "url": url, "links": []})
                    if it.link and it.link not in src["links"]:
                        src["links"].append(it.link)
            rows.append(
                {
                    "id": st.id,
                    "title": st.title,
                    "topics": list(st.topics or []),
                    "score": st.score,
                    "event_time": _iso(st.event_time),
                    "first_seen": _iso(st.first_seen),
                    "last_seen": _iso(st.last_seen or st.first_seen),
                    "items": len(its) or st.item_count,
                    "source_count": len(sources),
                    "first_item": _story_item(its[0], feeds_of) if its else None,
                    "latest_item": _story_item(its[-1], feeds_of) if its else None,
                    "sources": list(sources.values()),
                    "feeds": [src["feed"] for src in sources.values()],
                    "alerts": sent.get(st.id, {}),
                    "alerts_sent": sum(sent.get(st.id, {}).values()),
                }
            )
    return rows


def _story_item(it: Item, feeds_of: dict[int, list[tuple[str, str]]]) -> dict[str, Any]:
    return {
        "title": it.title,
        "link": it.link,
        "published": _iso(it.published),
        "first_seen": _iso(it.first_seen),
        "feeds": [name for name, _ in feeds_of.get(it.id, [])],
    }


_LABELS: dict[str, str] = {}


def _target_label(key: str) -> str:
    """A delivery's target as it may be shown: its name, or apprise's privacy form of the URL
    (never a token or password)."""
    if "://" not in key:
        return key
    label = _LABELS.get(key)
    if label is None:
        label = key.split("://", 1)[0] + "://…"
        try:
            import apprise

            plugin = apprise.Apprise.instantiate(key)
            if plugin:
                label = str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
        except Exception:  # an unreadable URL is shown by its scheme only
            pass
        _LABELS[key] = label
    return label
