"""Delivery: load what waits for each target, ask the alert policy, save its decision (messages
rendered and bound to their rows in one transaction), then send the due messages through
apprise and record the outcome. The embedded loop and the Celery tasks call `deliver_due`.

A message is made, with the rows it carries, in one transaction, and sent afterwards: a sender
killed in the middle leaves the message claimed; when the claim expires the same message is
sent again (the one window: a target that acted on the first post gets it twice). No story is
lost and none is listed in two messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from monitor import alert_policy as policy
from monitor import metrics
from monitor.errors import NotifyError
from monitor.notify import (
    AlertMessage,
    StoryLine,
    is_email,
    next_attempt,
    render_alert,
    render_group,
    render_update,
    send,
)
from monitor.routing import route
from monitor.store import Database, outbox
from monitor.types import Target

log = logging.getLogger("monitor.deliver")


@dataclass(frozen=True)
class DeliverySettings:
    """What delivery needs from the settings."""

    claim_seconds: float = 300.0
    retry_base_seconds: float = 30.0
    give_up_hours: float = 72.0
    public_url: str | None = None
    # topic id → the profile's label, shown under « Sujets : » so a desk reads what it means
    topic_labels: tuple[tuple[str, str], ...] = ()


def route_new_alerts(
    session: Session,
    alerts: Sequence[tuple[int, Sequence[str]]],
    targets: Sequence[Target],
    now: datetime,
) -> None:
    """Outbox rows for the (alert id, topics) a poll just created, in one statement: one per
    target that takes an alert; when none does, a visible `unrouted` row and a log line
    (routed again when the targets change). A new alert has no row yet: nothing to update."""
    rows: list[tuple[int, str, str | None]] = []
    for alert_id, topics in alerts:
        keys = [t.key for t in route(topics, targets)]
        if keys:
            rows += [(alert_id, k, None) for k in keys]
        else:
            reason = _unrouted_reason(topics, targets)
            rows.append((alert_id, outbox.UNROUTED, reason))
            log.warning("alert %d: %s; kept as unrouted (monitor deliveries)", alert_id, reason)
    outbox.add_routes(session, rows, now)


def _unrouted_reason(topics: Sequence[str], targets: Sequence[Target]) -> str:
    if not targets:
        return "no notification target configured"
    return f"no target takes the topics {', '.join(topics)}"


# --- targets changed ----------------------------------------------------------------------

_ROUTED_FOR: frozenset[str] | None = None  # the target set this process last routed for


def reroute(db: Database, targets: Sequence[Target], now: datetime) -> int:
    """Route again what the current targets do not take: undelivered rows of a target no
    longer configured, or whose tags no longer take the alert's topics, and unrouted alerts.
    Rows that exist are kept (never twice to one target). Returns the rows closed as
    `rerouted`."""
    by_key = {t.key: t for t in targets}
    closed = 0
    with db.session() as s:
        stale = [o for o in outbox.open_rows(s) if not _still_routed(o, by_key)]
        by_alert: dict[int, list[outbox.Orphan]] = {}
        for o in stale:
            by_alert.setdefault(o.alert_id, []).append(o)
        for alert_id, rows in by_alert.items():
            topics = rows[0].topics
            # Only a story not told routes again (a follow-up of a gone target just closes:
            # a renamed target would otherwise hear the story twice).
            routable = any(o.kind == "alert" for o in rows)
            taken = [t.key for t in route(topics, targets)] if routable else []
            gone = sorted({o.target for o in rows if o.target})
            left = f"target {', '.join(gone)} no longer takes it"
            if taken:
                outbox.add_deliveries(s, alert_id, taken, now)
                reason = (
                    f"{left}; routed to {', '.join(taken)}"
                    if gone
                    else f"routed to {', '.join(taken)}"
                )
                ids = [o.id for o in rows]
                log.info("alert %d: %s", alert_id, reason)
            elif routable:
                reason = _unrouted_reason(topics, targets)
                ids = [o.id for o in rows if o.target]
                if ids:
                    outbox.set_unrouted(s, alert_id, reason, now)
                    log.warning("alert %d: %s; kept as unrouted", alert_id, reason)
            else:
                ids = [o.id for o in rows]
                reason = left
            outbox.mark_rerouted(s, ids, reason)
            closed += len(ids)
    return closed


def _still_routed(row: outbox.Orphan, by_key: dict[str, Target]) -> bool:
    """A row the current targets still take: its target is configured and, for a story not
    told yet, still takes its topics. A message already made is left to go."""
    target = by_key.get(row.target)
    if target is None:
        return False
    if row.kind == "alert" and row.status in ("pending", "held"):
        return bool(route(row.topics, [target]))
    return True


# --- planning -----------------------------------------------------------------------------


def plan(db: Database, targets: Sequence[Target], now: datetime, cfg: DeliverySettings) -> int:
    """Decide for every target with something due (or with stories that may have grown) and
    save the decisions; returns the number of messages made."""
    by_key = {t.key: t for t in targets}
    with db.session() as s:
        due = set(outbox.targets_due(s, now))
    due |= {t.key for t in targets if t.policy.updates != "none"}
    made = 0
    for key in sorted(due):
        target = by_key.get(key)
        if target is not None:
            made += plan_target(db, target, now, cfg)
    return made


def plan_target(db: Database, target: Target, now: datetime, cfg: DeliverySettings) -> int:
    p = target.policy
    with db.session() as s:
        outbox.lock_target(s, target.key)
        if p.updates != "none":
            told_rows = outbox.told_stories(s, target.key, now - policy.FOLLOWUP_WINDOW)
            sources = outbox.story_sources(s, (t.story_id for t in told_rows))
            grown = policy.follow_ups(
                p,
                now,
                [
                    policy.Told(
                        t.alert_id,
                        t.told_feeds,
                        t.told_at,
                        frozenset(f for f, _ in sources.get(t.story_id, ())),
                        t.open_update,
                        t.open_feeds,
                    )
                    for t in told_rows
                ],
            )
            for g in grown:
                if g.update_id is None:
                    outbox.add_follow_up(s, g.alert_id, target.key, g.feeds, g.due_at, now)
                else:
                    outbox.refresh_follow_up(s, g.update_id, g.feeds)
        rows = outbox.waiting_rows(s, target.key)
        if not any(r.due_at <= now for r in rows):
            return 0
        recent = outbox.recent_messages(s, target.key, now - policy.HOUR)
        decision = policy.decide(
            p,
            target.tags,
            now,
            [
                policy.Waiting(
                    r.id,
                    r.kind,
                    r.story_id,
                    r.status,
                    r.due_at,
                    r.created_at,
                    r.topics,
                    r.scores,
                    r.hold,
                    r.confidence,
                )
                for r in rows
            ],
            [policy.Recent(kind, at) for kind, at in recent],
        )
        outbox.mark_skipped(s, decision.skip)
        outbox.mark_held(s, [(h.id, h.until, h.hold, h.reason) for h in decision.hold])
        if not decision.send:
            return 0
        ids = [i for m in decision.send for i in m.ids]
        stories = outbox.row_stories(s, ids)
        sources = outbox.story_sources(s, (st.story_id for st in stories.values()))
        for m in decision.send:
            lines = [_line(stories[i], sources, cfg) for i in m.ids]
            message = _render(m, lines, target, dict(cfg.topic_labels))
            mid = outbox.add_message(
                s,
                target.key,
                m.kind,
                message.title,
                message.body,
                message.body_format,
                [ln.story_id for ln in lines],
                now,
            )
            told: list[tuple[int, str, int, frozenset[int]]] = []
            for i in m.ids:
                st = stories[i]
                feeds = frozenset(f for f, _ in sources.get(st.story_id, ()))
                told.append(
                    (i, st.kind, st.alert_id, feeds if st.kind == "alert" else st.told_feeds)
                )
            outbox.bind(s, target.key, mid, told, now)
            if m.kind in ("summary", "digest"):
                log.info("%s to %s lists %d stories (%s)", m.kind, target.key, len(m.ids), m.reason)
        return len(decision.send)


def _line(
    st: outbox.RowStory, sources: dict[int, list[tuple[int, str]]], cfg: DeliverySettings
) -> StoryLine:
    feeds = sources.get(st.story_id, [])
    return StoryLine(
        story_id=st.story_id,
        kind=st.kind,
        title=st.title,
        link=st.link,
        topics=st.topics,
        scores=st.scores,
        sources=tuple(name for _, name in feeds),
        new_sources=tuple(name for f, name in feeds if f in st.told_feeds)
        if st.kind == "update"
        else (),
        page=f"{cfg.public_url.rstrip('/')}/stories/{st.story_id}" if cfg.public_url else None,
        published=st.published,
        explanation=st.explanation,
        summary=st.summary,
    )


def _render(
    m: policy.Send, lines: list[StoryLine], target: Target, labels: Mapping[str, str]
) -> AlertMessage:
    if m.kind == "alert":
        (x,) = lines
        return render_alert(
            topic_labels={t: labels[t] for t in x.topics if t in labels},
            title=x.title,
            link=x.link,
            topics=x.topics,
            scores=x.scores,
            feeds=x.sources,
            published=x.published,
            explanation=x.explanation,
            summary=x.summary,
            page=x.page,
        )
    if m.kind == "update":
        return render_update(lines[0])
    return render_group(m.kind, lines, m.reason, is_email(target))


# --- sending ------------------------------------------------------------------------------


def send_due(
    db: Database,
    targets: Sequence[Target],
    clock: Callable[[], datetime],
    cfg: DeliverySettings,
    limit: int = 200,
) -> tuple[int, int]:
    """Send the due messages. Returns (rows delivered, rows failed)."""
    global _ROUTED_FOR
    by_key = {t.key: t for t in targets}
    with db.session() as s:
        due = outbox.claim_messages(s, clock(), limit, cfg.claim_seconds)
    sent = failed = 0
    give_up = timedelta(hours=cfg.give_up_hours)
    for m in due:
        target = by_key.get(m.target)
        if target is None:  # the target left since the message was made: route it again
            with db.session() as s:
                outbox.release_message(s, m.id)
            _ROUTED_FOR = None
            continue
        error: str | None = None
        try:
            send(target, AlertMessage(m.title, m.body, (), m.body_format))
        except NotifyError as e:
            error = str(e)
        now = clock()
        with db.session() as s:
            if error is None:
                outbox.mark_message_sent(s, m.id, now)
                sent += max(m.rows, 1)
                metrics.DELIVERIES.labels(outcome="sent").inc(max(m.rows, 1))
            else:
                dead = now - m.created_at > give_up
                retry_at = next_attempt(m.attempts + 1, now, cfg.retry_base_seconds)
                outbox.mark_message_failed(s, m.id, error, retry_at, dead)
                failed += max(m.rows, 1)
                outcome = "dead" if dead else "failed"
                metrics.DELIVERIES.labels(outcome=outcome).inc(max(m.rows, 1))
                log.warning(
                    "%s message %d to %s failed (attempt %d%s): %s",
                    m.kind,
                    m.id,
                    m.target,
                    m.attempts + 1,
                    ", given up" if dead else "",
                    error,
                )
    return sent, failed


def deliver_due(
    db: Database,
    targets: Sequence[Target],
    clock: Callable[[], datetime],
    cfg: DeliverySettings,
    limit: int = 200,
) -> tuple[int, int]:
    """One delivery pass: route again what lost its target (once per target set and
    process), decide for every target, send what is due. Returns (delivered, failed) rows."""
    global _ROUTED_FOR
    keys = frozenset(t.key for t in targets)
    if keys != _ROUTED_FOR:
        reroute(db, targets, clock())
        _ROUTED_FOR = keys
    plan(db, targets, clock(), cfg)
    return send_due(db, targets, clock, cfg, limit)
