"""Durations and `since` times as people type them (`30m`, `24h`, `7d`, `2w`, or ISO 8601):
one reading for the CLI (`--since`, `db prune --older-than`) and the web window (`since=`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`30m`, `24h`, `7d`, `2w`, `0d`; ValueError otherwise."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration such as 30m, 24h, 7d")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def parse_since(value: str, now: datetime) -> datetime:
    """A duration back from `now`, or an ISO 8601 date or time (UTC when no offset is given);
    ValueError otherwise."""
    if _DURATION.match(value):
        return now - parse_duration(value)
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
