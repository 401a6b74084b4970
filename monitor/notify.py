"""Messages: rendering (single alerts, follow-ups, storm summaries, digests), apprise delivery,
retry backoff.

apprise never raises and answers False on failure; that False becomes our NotifyError here, at
the edge, with apprise's own reason scrubbed of the target's URL. Each delivery builds its own
Apprise object (a reused e-mail object waits 5.5 s between sends). Chat targets get plain text:
apprise escapes it for HTML and Markdown targets, so text from feeds cannot inject markup.
E-mail summaries and digests are HTML built here, every piece of feed text escaped.
"""

from __future__ import annotations

import html
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

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
    body_format: str = "text"  # text | html


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
    page: str | None = None,
) -> AlertMessage:
    labels = topic_labels or {}
    head = ", ".join(topics)
    excerpt = summary if len(summary) <= EXCERPT_CHARS else summary[: EXCERPT_CHARS - 1] + "…"
    topic_lines = ", ".join(f"{t} ({scores.get(t, 0):g})" for t in topics)
    lines = [link or "(pas de lien)"]
    if page:
        lines.append(f"Suivi : {page}")
    lines.append(f"Sujets : {topic_lines}")
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


@dataclass(frozen=True)
class StoryLine:
    """One story as a summary, a digest or a follow-up lists it."""

    story_id: int
    kind: str  # alert (a new story) | update (new sources of a story already told)
    title: str
    link: str | None
    topics: tuple[str, ...]
    scores: dict[str, float]
    sources: tuple[str, ...]  # the story's source feeds, first seen first
    new_sources: tuple[str, ...] = ()  # kind update: the sources not told yet
    page: str | None = None  # {MONITOR_PUBLIC_URL}/stories/{id}
    published: datetime | None = None
    explanation: str = ""
    summary: str = ""


def is_email(target: Target) -> bool:
    return target.url.split(":", 1)[0].lower() in ("mailto", "mailtos")


def render_update(line: StoryLine) -> AlertMessage:
    """A follow-up: the story grew ("+3 sources")."""
    head = ", ".join(line.topics)
    new = ", ".join(line.new_sources)
    lines = [line.link or "(pas de lien)"]
    if line.page:
        lines.append(f"Suivi : {line.page}")
    lines += [
        f"Nouvelles sources : {new}",
        f"Sources ({len(line.sources)}) : {', '.join(line.sources)}",
        f"Sujets : {_topics(line)}",
    ]
    return AlertMessage(
        title=defuse(f"[{head}] +{len(line.new_sources)} sources : {line.title}"),
        body=defuse("\n".join(lines)),
        topics=line.topics,
    )


def render_group(kind: str, lines: Sequence[StoryLine], why: str, html_body: bool) -> AlertMessage:
    """A storm summary or a digest: every story once, with its link, topics and scores,
    sources; follow-ups listed apart. HTML (escaped) for e-mail, compact text for chat."""
    stories = [x for x in lines if x.kind == "alert"]
    updates = [x for x in lines if x.kind != "alert"]
    topics = tuple(sorted({t for x in lines for t in x.topics}))
    name = "Résumé" if kind == "summary" else "Digest"
    counts = [f"{len(stories)} alerte{'s' if len(stories) != 1 else ''}"] if stories else []
    if updates:
        counts.append(f"{len(updates)} mise{'s' if len(updates) != 1 else ''} à jour")
    title = f"[monitor] {name} : {' et '.join(counts)} ({why})"
    sections = [("Alertes", stories), ("Mises à jour", updates)]
    if html_body:
        return AlertMessage(title, _group_html(title, sections), topics, "html")
    out: list[str] = []
    for head, rows in sections:
        if not rows:
            continue
        out.append(f"{head} :")
        for n, x in enumerate(rows, 1):
            new = x.new_sources
            extra = f" (+{len(new)} : {', '.join(new)})" if new else ""
            out.append(f"{n}. [{_topics(x)}] {x.title}{extra}")
            out.append(f"   {x.link or '(pas de lien)'}" + (f" · {x.page}" if x.page else ""))
            out.append(f"   Sources : {', '.join(x.sources) or 'inconnue'}")
    return AlertMessage(defuse(title), defuse("\n".join(out)), topics)


def _topics(x: StoryLine) -> str:
    return ", ".join(f"{t} {x.scores.get(t, 0):g}" for t in x.topics)


def _href(link: str | None) -> str | None:
    """Only http(s) links become links in HTML (a feed may hold javascript: URLs)."""
    if link and urlsplit(link).scheme.lower() in ("http", "https"):
        return html.escape(link, quote=True)
    return None


def _group_html(title: str, sections: Sequence[tuple[str, Sequence[StoryLine]]]) -> str:
    e = html.escape
    parts = [f"<h2>{e(title)}</h2>"]
    for head, rows in sections:
        if not rows:
            continue
        parts.append(f"<h3>{e(head)}</h3><ol>")
        for x in rows:
            href = _href(x.link)
            name = f'<a href="{href}">{e(x.title)}</a>' if href else e(x.title)
            lines = [f"<b>{name}</b>"]
            if x.new_sources:
                lines.append(f"Nouvelles sources : {e(', '.join(x.new_sources))}")
            lines.append(f"Sujets : {e(_topics(x))}")
            lines.append(f"Sources : {e(', '.join(x.sources) or 'inconnue')}")
            page = _href(x.page)
            if page:
                lines.append(f'<a href="{page}">Suivi</a>')
            if x.link and not href:
                lines.append(e(x.link))
            parts.append("<li>" + "<br>".join(lines) + "</li>")
        parts.append("</ol>")
    return "\n".join(parts)


def scrub(text: str, target: Target) -> str:
    """Text about a target (apprise's reason, an exception) with its URL replaced by the
    target's key and every part of the URL that apprise's privacy form hides (user, password,
    tokens in the host or path, query values) replaced by ***: safe to log and store."""
    parts = urlsplit(target.url)
    candidates = [parts.netloc, *re.split(r"[:@]", parts.netloc), *parts.path.split("/")]
    candidates += [v for pair in parts.query.split("&") for v in pair.split("=")[1:]]
    public = target.safe_url or target.key
    secrets = sorted(
        {f for c in candidates if c for f in (c, unquote(c)) if len(f) >= 3 and f not in public},
        key=len,
        reverse=True,
    )
    pieces = text.replace(target.url, "\0").split(target.key)
    for n, piece in enumerate(pieces):
        for s in secrets:
            piece = piece.replace(s, "***")
        pieces[n] = piece
    return target.key.join(pieces).replace("\0", target.key)


def send(target: Target, message: AlertMessage) -> None:
    """Deliver one message to one target; raise NotifyError unless apprise confirms it. The
    error carries apprise's reason, scrubbed of the target's secrets."""
    apprise = load_apprise()
    a = apprise.Apprise()
    if not a.add(target.url):
        raise NotifyError(f"apprise does not accept the URL of target {target.key!r}")
    fmt = apprise.NotifyFormat.HTML if message.body_format == "html" else apprise.NotifyFormat.TEXT
    _split_when_too_long(a, target, message)
    try:
        with apprise.LogCapture(level=logging.WARNING) as captured:
            ok = a.notify(title=message.title, body=message.body, body_format=fmt)
    except Exception as e:  # documented never to raise; a plugin bug must not lose the alert
        raise NotifyError(scrub(f"{type(e).__name__}: {e}", target)) from e
    if not ok:
        lines = [ln.split(" - ", 2)[-1] for ln in captured.getvalue().splitlines() if ln.strip()]
        reason = f": {lines[-1]}" if lines else ""
        raise NotifyError(
            scrub(f"target {target.key!r} did not accept the message{reason}", target)
        )


def _split_when_too_long(a: Any, target: Target, message: AlertMessage) -> None:
    """A digest longer than the service takes (Telegram 4,096 characters, Mattermost 4,000…)
    goes out as several posts, cut between lines, instead of one the service refuses or cuts:
    apprise's default leaves the size to the service. A URL's own `overflow=` is kept."""
    if "overflow=" in urlsplit(target.url).query.lower():
        return
    size = len(message.title) + len(message.body)
    for service in a:
        if 0 < service.body_maxlen < size:
            service.overflow_mode = load_apprise().common.OverflowMode.SPLIT


def next_attempt(attempts: int, now: datetime, first: float = BACKOFF_FIRST) -> datetime:
    """Exponential backoff with jitter: 30 s, 1 min, 2 min … capped at an hour, jitter
    included (±10 % below the cap, 90–100 % of it at the cap: never more than an hour)."""
    delay = first * 2 ** min(max(attempts - 1, 0), 32) * random.uniform(0.9, 1.1)
    return now + timedelta(seconds=min(delay, BACKOFF_MAX * random.uniform(0.9, 1.0)))


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
