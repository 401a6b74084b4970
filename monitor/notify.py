"""Alerts: rendering, routing by topic tags, apprise delivery, the outbox and its retries.

apprise never raises and answers False on failure; that False becomes our NotifyError here, at
the edge. Each delivery builds its own Apprise object (a reused e-mail object waits 5.5 s
between sends) and sends plain text: apprise escapes it for HTML and Markdown targets, so text
from feeds cannot inject markup.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.apprise_setup import load_apprise
from monitor.errors import NotifyError
from monitor.types import Target

log = logging.getLogger(__name__)

BACKOFF_FIRST = 30.0  # seconds before the first retry
BACKOFF_MAX = 3600.0  # never wait longer than an hour between attempts
EXCERPT_CHARS = 300
_MENTIONS = re.compile(r"(?<![\w@])@(channel|here|everyone|room|all)\b", re.I)


@dataclass(frozen=True)
class AlertMessage:
    title: str
    body: str
    topics: tuple[str, ...]


def defuse(text: str) -> str:
    """Feed text made harmless in chat: no mass mentions (@channel, @everyone…)."""
    return _MENTIONS.sub(lambda m: "@\u200b" + m.group(1), text)


def render_alert(
    *,
    title: str,
    link: str | None,
    topics: Sequence[str],
    scores: dict[str, float],
    feeds: Sequence[str],
    published: datetime | None,
    explanation: str,
    summary: str,
    topic_labels: dict[str, str] | None = None,
) -> AlertMessage:
    labels = topic_labels or {}
    head = ", ".join(topics)
    excerpt = summary if len(summary) <= EXCERPT_CHARS else summary[: EXCERPT_CHARS - 1] + "…"
    topic_lines = ", ".join(f"{t} ({scores.get(t, 0):g})" for t in topics)
    lines = [
        link or "(pas de lien)",
        f"Sujets : {topic_lines}",
    ]
    for t in topics:
        if t in labels:
            lines.append(f"  {t} : {labels[t]}")
    lines += [
        f"Sources : {', '.join(feeds) if feeds else 'inconnue'}",
        f"Publié : {published.strftime('%Y-%m-%d %H:%M UTC') if published else 'date inconnue'}",
        f"Pourquoi : {explanation}",
        f"Extrait : {excerpt}" if excerpt else "Extrait : (aucun)",
    ]
    return AlertMessage(
        title=defuse(f"[{head}] {title}"),
        body=defuse("\n".join(lines)),
        topics=tuple(topics),
    )


def send(target: Target, message: AlertMessage) -> None:
    """Deliver one message to one target; raise NotifyError unless apprise confirms it."""
    apprise = load_apprise()
    a = apprise.Apprise()
    if not a.add(target.url):
        raise NotifyError(f"apprise does not accept the URL of target {target.key!r}")
    try:
        ok = a.notify(title=message.title, body=message.body, body_format=apprise.NotifyFormat.TEXT)
    except Exception as e:  # documented never to raise; a plugin bug must not lose the alert
        raise NotifyError(f"{type(e).__name__}: {e}") from e
    if not ok:
        raise NotifyError(f"target {target.key!r} did not accept the alert")


def next_attempt(attempts: int, now: datetime, first: float = BACKOFF_FIRST) -> datetime:
    """Exponential backoff with jitter: 30 s, 1 min, 2 min … capped at an hour."""
    delay = min(first * 2 ** max(attempts - 1, 0), BACKOFF_MAX)
    return now + timedelta(seconds=delay * random.uniform(0.9, 1.1))


def test_message() -> AlertMessage:
    return render_alert(
        title="Test de monitor : cette cible reçoit les alertes",
        link="https://example.org/monitor-test",
        topics=["test"],
        scores={"test": 0},
        feeds=["monitor"],
        published=datetime.now(UTC),
        explanation="message de test envoyé par `monitor notify test`",
        summary="Si vous lisez ceci, la cible est bien configurée.",
    )


def test_targets(targets: Sequence[Target]) -> list[tuple[Target, str | None]]:
    """Send a test message to every target; return (target, error or None)."""
    out: list[tuple[Target, str | None]] = []
    message = test_message()
    for t in targets:
        try:
            send(t, message)
            out.append((t, None))
        except NotifyError as e:
            out.append((t, str(e)))
    return out
