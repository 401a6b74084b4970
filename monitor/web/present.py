"""Pure decisions of the web window: alert state, safe links, filters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from monitor import durations
from monitor.apprise_setup import privacy_url
from monitor.errors import InputError
from monitor.store import browse
from monitor.store.browse import delivery_state
from monitor.types import strip_secrets


def safe_href(url: str | None) -> str | None:
    """A link from a feed, only when it is http or https (never `javascript:`, `data:`…)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """`since`: an ISO 8601 time, or a duration back from now (`30m`, `24h`, `7d`)."""
    if value is None or not value.strip():
        return None
    try:
        return durations.parse_since(value, now)
    except ValueError as e:
        raise InputError(
            f"since={value!r}: not an ISO 8601 time nor a duration such as 30m, 24h, 7d"
        ) from e


def alert_state(alerted: bool, statuses: Sequence[tuple[str, int]]) -> str:
    """One word for a story's alert, from its deliveries' (status, attempts):
    `not alerted`, `no target`, `sent`, `dead`, `failed` (retried later), `pending`, `held`
    (by the target's policy), `skipped` (below every target's min_score)."""
    if not alerted:
        return "not alerted"
    if not statuses:
        return "no target"
    states = [delivery_state(s, n) for s, n in statuses if s != "rerouted"]
    for state in ("dead", "failed", "pending", "held"):
        if state in states:
            return state
    if "sent" in states:
        return "sent"
    if states and all(s == "skipped" for s in states):
        return "skipped"
    return "no target"


def ago(when: datetime | None, now: datetime) -> str:
    """`3 min ago`, `in 2 h`… for tables a person reads."""
    if when is None:
        return "—"
    seconds = (now - when).total_seconds()
    future = seconds < 0
    s = abs(seconds)
    if s < 60:
        text = f"{int(s)} s"
    elif s < 3600:
        text = f"{int(s // 60)} min"
    elif s < 86400 * 2:
        text = f"{s / 3600:.1f} h"
    else:
        text = f"{int(s // 86400)} d"
    return f"in {text}" if future else f"{text} ago"


def duration(d: timedelta | None) -> str:
    if d is None:
        return "—"
    s = d.total_seconds()
    if s < 3600:
        return f"{int(s // 60)} min"
    if s < 86400 * 2:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def local_path(value: str | None, default: str = "/") -> str:
    """A redirect target that stays on this site (`/…`, never `//host` or `https://…`)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


@lru_cache(maxsize=512)
def display_target(key: str) -> str:
    """A target as people may see it. Outbox keys are already the name or apprise's privacy
    form (migration 0002 rewrote older rows); a key that still looks like a raw URL is shown
    in privacy form all the same, never whole."""
    if "://" not in key:
        return key
    try:
        return privacy_url(key) or strip_secrets(key)
    except Exception:  # an unreadable URL is shown stripped
        return strip_secrets(key)


def delivery_error(d: browse.DeliveryView) -> str:
    """A delivery's last error, with the target's URL (and its secrets) in privacy form."""
    if not d.last_error:
        return ""
    return d.last_error.replace(d.target, display_target(d.target))


def story_state(s: browse.StoryView) -> str:
    return alert_state(s.alerted_at is not None, [(d.status, d.attempts) for d in s.deliveries])
