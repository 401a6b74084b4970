"""Plain frozen dataclasses that cross module borders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class FeedConfig:
    url: str
    name: str | None = None
    interval: int = 300
    language: str = "fr"


UPDATES = ("none", "message", "digest")


@dataclass(frozen=True)
class AlertPolicy:
    """When and how a target hears about stories (notify.yaml keys of the same names).
    The defaults change nothing: every story at once, no follow-ups."""

    min_score: float | None = None
    # The calibrated probability (0–1, the same meaning for every topic) a story needs on one
    # of the target's topics: Classification.confidence as stored with the match.
    min_confidence: float | None = None
    max_per_hour: int | None = None
    quiet_hours: tuple[time, time] | None = None  # local times; may wrap midnight
    timezone: str = "UTC"
    digest_at: time | None = None
    updates: str = "none"  # none | message | digest


@dataclass(frozen=True)
class Target:
    """One notification target: an apprise URL, optional tags (topic ids), its policy.
    `safe_url` is apprise's privacy form, the only form of the URL ever shown or stored."""

    url: str
    tags: tuple[str, ...] = ()
    name: str | None = None
    policy: AlertPolicy = field(default_factory=AlertPolicy)
    safe_url: str = ""
    origin: str = ""  # "notify.yaml:12" (or the environment variable) it comes from

    @property
    def key(self) -> str:
        """Stable identity of the target in the outbox: its name, else the privacy form of
        its URL (never the URL itself: it may hold tokens and passwords)."""
        return self.name or self.safe_url or strip_secrets(self.url)


def strip_secrets(url: str) -> str:
    """scheme://host[:port]/path without user, password or query (a fallback when apprise's
    privacy form is not known)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path if parts.username is None else ''}"


@dataclass(frozen=True)
class FetchResult:
    url: str
    final_url: str
    status: int  # HTTP status; 304 means not modified
    body: bytes | None
    etag: str | None
    last_modified: str | None
    elapsed: float
    content_type: str | None = None


@dataclass(frozen=True)
class Item:
    """One feed entry, normalised."""

    key: str  # stable id: guid key, else canonical link, else content hash
    guid: str | None
    link: str | None
    title: str
    summary: str
    content: str = ""
    published: datetime | None = None
    author: str | None = None

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.summary}"


@dataclass(frozen=True)
class Evidence:
    topic: str
    term: str
    field: str  # title | summary | content; `topic` for an implied topic, `model` for the
    weight: float  # second stage, whose weight is then its calibrated probability

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "term": self.term, "field": self.field, "weight": self.weight}


@dataclass(frozen=True)
class Classification:
    topics: tuple[str, ...]
    scores: dict[str, float]
    evidence: tuple[Evidence, ...] = ()
    # Calibrated probability (0–1) that the item is about each topic, beside the raw score:
    # the same cut means the same thing for every topic. With a model beside the profile it is
    # the second stage's (which reads the rule score too: 0.5 is where it decides near the
    # threshold); without one, the Platt scaling of the rule score from the profile.
    confidence: dict[str, float] = field(default_factory=dict)

    @property
    def match(self) -> bool:
        return bool(self.topics)

    def explain(self) -> str:
        """The evidence in one line, for alerts and tables."""
        parts = []
        for topic in self.topics:
            terms = [
                e.term
                if e.field == "topic"
                else f"model: {e.weight:.2f}"
                if e.field == "model"
                else f"{e.term}({e.field[0]}{e.weight:+g})"
                for e in self.evidence
                if e.topic == topic
            ]
            parts.append(f"{topic}={self.scores.get(topic, 0):g}: " + ", ".join(terms))
        return "; ".join(parts)


@dataclass(frozen=True)
class PollOutcome:
    feed_url: str
    status: str  # ok | not-modified | error
    http_status: int | None = None
    new_items: int = 0
    matches: int = 0
    alerts: int = 0
    elapsed: float = 0.0
    error: str | None = None
    items_seen: int = 0
    alert_ids: tuple[int, ...] = ()


@dataclass
class CycleSummary:
    feeds: int = 0
    ok: int = 0
    not_modified: int = 0
    errors: int = 0
    new_items: int = 0
    matches: int = 0
    alerts: int = 0
    delivered: int = 0
    delivery_failures: int = 0
    elapsed: float = 0.0
    outcomes: list[PollOutcome] = field(default_factory=list)


@dataclass(frozen=True)
class FetchLimits:
    """Explicit, named limits of the HTTP client (Miniflux style)."""

    connect_timeout: float = 10.0
    deadline: float = 30.0  # total seconds for one request, redirects included
    max_body_bytes: int = 10 * 1024 * 1024  # after decompression
    max_redirects: int = 5
    concurrency: int = 100
    per_host: int = 4
