"""The alert policy of one target (notify.yaml: min_score, max_per_hour, quiet_hours, timezone,
digest_at, updates) as pure decisions over data: given what waits for a target, what it was
sent in the last hour and the time, say what to send now (single alerts, follow-ups, one
summary, one digest), what to hold and until when, and what to skip. No I/O here:
`monitor.deliver` loads, asks, saves and sends.

How messages are grouped (the README explains it for users):
* min_score: a story whose best score among the target's topics is below it is skipped for
  that target (its row stays, status `skipped`, with the reason).
* min_confidence: the same with the calibrated confidence (0–1, one meaning for every topic)
  stored with the match; a match stored before confidences were recorded is not skipped by it.
* quiet_hours: everything due in them is held until they end, then sent as one digest.
* digest_at: every story is held until the next digest time, then sent as one digest.
* max_per_hour: at most that many single messages (alerts, follow-ups) in a rolling hour. The
  rest is gathered for SUMMARY_GATHER and listed in one summary; one summary per rolling hour:
  what overflows after it waits until the window has room again (a slot for singles, or the
  next summary). Nothing is dropped; each story is listed in exactly one message.
* updates: a story already told that gained sources gets one follow-up ("+3 sources")
  at most every FOLLOWUP_EVERY (`message`), or is listed in the next digest (`digest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.types import AlertPolicy

HOUR = timedelta(hours=1)
SUMMARY_GATHER = timedelta(minutes=5)  # overflow of a burst is gathered this long, then summarised
FOLLOWUP_EVERY = timedelta(hours=3)  # at most one follow-up per story and target this often
FOLLOWUP_WINDOW = timedelta(days=3)  # a story alerted longer ago than this gets no follow-ups
UPDATES_DIGEST_AT = time(8, 0)  # `updates: digest` without digest_at nor quiet_hours

SINGLE_KINDS = ("alert", "update")  # what max_per_hour counts


@dataclass(frozen=True)
class Waiting:
    """A delivery row waiting for the target: a story to tell (kind alert) or a follow-up of a
    story already told (kind update). `hold` says why it was held (quiet, digest, storm)."""

    id: int
    kind: str
    story_id: int
    status: str  # pending (not decided yet) | held
    due_at: datetime
    created_at: datetime
    topics: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    hold: str | None = None
    confidence: dict[str, float] | None = None  # None: stored before confidences were recorded


@dataclass(frozen=True)
class Recent:
    """A message made for the target (sent or on its way): its kind and when it was made."""

    kind: str
    at: datetime


@dataclass(frozen=True)
class Hold:
    id: int
    until: datetime
    hold: str  # quiet | digest | storm
    reason: str


@dataclass(frozen=True)
class Send:
    """One message to make now: a single alert or follow-up (one id), a summary or a digest."""

    kind: str  # alert | update | summary | digest
    ids: tuple[int, ...]
    reason: str = ""


@dataclass
class Decision:
    send: list[Send] = field(default_factory=list)
    hold: list[Hold] = field(default_factory=list)
    skip: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Told:
    """A story told to the target (its alert row), and the story's source feeds now."""

    alert_id: int
    told_feeds: frozenset[int]
    told_at: datetime
    current_feeds: frozenset[int]
    open_update: int | None = None  # a follow-up row still waiting (pending or held)
    open_feeds: frozenset[int] = frozenset()


@dataclass(frozen=True)
class FollowUp:
    """Create (update_id None) or refresh a follow-up row announcing `feeds`."""

    alert_id: int
    update_id: int | None
    feeds: tuple[int, ...]
    due_at: datetime


# --- time ---------------------------------------------------------------------------------


def _zone(policy: AlertPolicy) -> ZoneInfo:
    return ZoneInfo(policy.timezone)


def next_daily(at: time, tz: ZoneInfo, now: datetime) -> datetime:
    """The first moment ≥ now whose local time is `at` (UTC)."""
    local = now.astimezone(tz)
    for days in range(3):
        day = local.date() + timedelta(days=days)
        candidate = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
        if candidate >= now:
            return candidate
    raise AssertionError("unreachable: a daily time occurs within two days")


def quiet_until(policy: AlertPolicy, now: datetime) -> datetime | None:
    """When the quiet hours that contain `now` end (UTC), or None outside quiet hours."""
    if policy.quiet_hours is None:
        return None
    start, end = policy.quiet_hours
    tz = _zone(policy)
    t = now.astimezone(tz).time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    return next_daily(end, tz, now) if inside else None


def _hhmm(t: time) -> str:
    return t.strftime("%H:%M")


def _local(dt: datetime, policy: AlertPolicy) -> str:
    return f"{dt.astimezone(_zone(policy)).strftime('%Y-%m-%d %H:%M')} {policy.timezone}"


def updates_digest_at(policy: AlertPolicy, now: datetime) -> datetime:
    """When follow-ups of `updates: digest` go out: the next digest_at, else the next end of
    the quiet hours, else UPDATES_DIGEST_AT local time."""
    tz = _zone(policy)
    if policy.digest_at is not None:
        return next_daily(policy.digest_at, tz, now)
    if policy.quiet_hours is not None:
        return next_daily(policy.quiet_hours[1], tz, now)
    return next_daily(UPDATES_DIGEST_AT, tz, now)


# --- decisions ----------------------------------------------------------------------------


def target_score(topics: Sequence[str], scores: dict[str, float], tags: Sequence[str]) -> float:
    """A story's score for a target: its best score among the topics the target follows (all
    of them for an untagged target)."""
    followed = [t for t in topics if not tags or t in tags]
    return max((scores.get(t, 0.0) for t in followed), default=0.0)


def target_confidence(
    topics: Sequence[str], confidence: dict[str, float] | None, tags: Sequence[str]
) -> float | None:
    """A story's confidence for a target: its best calibrated confidence among the topics the
    target follows, or None when the match has no recorded confidence for them."""
    if confidence is None:
        return None
    known = [confidence[t] for t in topics if (not tags or t in tags) and t in confidence]
    return max(known, default=None)


def decide(
    policy: AlertPolicy,
    tags: Sequence[str],
    now: datetime,
    waiting: Sequence[Waiting],
    recent: Sequence[Recent],
) -> Decision:
    """What to do now with the rows waiting for one target (all of them, due or not)."""
    d = Decision()
    live: list[Waiting] = []
    for w in waiting:
        if w.kind == "alert" and w.status == "pending" and policy.min_score is not None:
            score = target_score(w.topics, w.scores, tags)
            if score < policy.min_score:
                d.skip.append((w.id, f"score {score:g} below min_score {policy.min_score:g}"))
                continue
        if w.kind == "alert" and w.status == "pending" and policy.min_confidence is not None:
            conf = target_confidence(w.topics, w.confidence, tags)
            if conf is not None and conf < policy.min_confidence:
                why = f"confidence {conf:g} below min_confidence {policy.min_confidence:g}"
                d.skip.append((w.id, why))
                continue
        if w.kind == "update" and policy.updates == "none":
            d.skip.append((w.id, "updates: none"))
            continue
        live.append(w)
    due = [w for w in live if w.due_at <= now]
    if not due:
        return d

    quiet_end = quiet_until(policy, now)
    if quiet_end is not None:
        assert policy.quiet_hours is not None
        span = "-".join(_hhmm(t) for t in policy.quiet_hours)
        reason = f"quiet hours {span}: held until {_local(quiet_end, policy)}, then one digest"
        hold = "digest" if policy.digest_at is not None else "quiet"
        d.hold += [
            Hold(w.id, quiet_end, w.hold if w.hold == "digest" else hold, reason) for w in due
        ]
        return d

    if policy.digest_at is not None:
        if any(w.hold in ("digest", "quiet") for w in due):  # digest time: all that is due
            d.send.append(Send("digest", _ids(due), f"digest_at {_hhmm(policy.digest_at)}"))
        else:
            at = next_daily(policy.digest_at, _zone(policy), now)
            reason = f"digest_at {_hhmm(policy.digest_at)}: in the digest of {_local(at, policy)}"
            d.hold += [Hold(w.id, at, "digest", reason) for w in due]
        return d

    if any(w.hold in ("digest", "quiet") for w in due):
        quiet = "-".join(_hhmm(t) for t in policy.quiet_hours or ())
        why = f"quiet_hours {quiet}".strip() if any(w.hold == "quiet" for w in due) else "updates"
        d.send.append(Send("digest", _ids(due), why))
        return d

    singles: list[Waiting] = []
    for w in due:
        if w.kind == "update" and policy.updates == "digest":
            at = updates_digest_at(policy, now)
            reason = f"updates: digest: in the digest of {_local(at, policy)}"
            d.hold.append(Hold(w.id, at, "digest", reason))
        else:
            singles.append(w)
    if singles:
        _storm(policy, now, singles, live, recent, d)
    return d


def _storm(
    policy: AlertPolicy,
    now: datetime,
    singles: list[Waiting],
    live: Sequence[Waiting],
    recent: Sequence[Recent],
    d: Decision,
) -> None:
    """max_per_hour: singles while the rolling hour has room, then one gathered summary per
    rolling hour; the rest waits for room."""
    singles.sort(key=lambda w: (w.hold != "storm", w.created_at, w.id))
    if policy.max_per_hour is None:
        d.send += [Send(w.kind, (w.id,)) for w in singles]
        return
    start = now - HOUR
    sent = sorted(r.at for r in recent if r.kind in SINGLE_KINDS and r.at > start)
    summaries = sorted(r.at for r in recent if r.kind == "summary" and r.at > start)
    budget = max(0, policy.max_per_hour - len(sent))
    d.send += [Send(w.kind, (w.id,)) for w in singles[:budget]]
    over = singles[budget:]
    if not over:
        return
    limit = f"max_per_hour {policy.max_per_hour}"
    if summaries:  # one summary per rolling hour: wait for a free slot or the next summary
        until = min((sent[0] if sent else now) + HOUR, summaries[0] + HOUR)
        reason = f"{limit} and one summary in the last hour: held until {_local(until, policy)}"
        d.hold += [Hold(w.id, until, "storm", reason) for w in over]
        return
    gathering = [w for w in live if w.hold == "storm" and w.due_at > now]
    if any(w.hold == "storm" for w in over):  # the gathering time is over: one summary
        listed = _ids(over) + _ids(gathering)
        d.send.append(Send("summary", listed, limit))
        return
    until = min((w.due_at for w in gathering), default=now + SUMMARY_GATHER)
    reason = f"{limit} reached: listed in one summary at {_local(until, policy)}"
    d.hold += [Hold(w.id, until, "storm", reason) for w in over]


def _ids(rows: Sequence[Waiting]) -> tuple[int, ...]:
    return tuple(w.id for w in rows)


def follow_ups(policy: AlertPolicy, now: datetime, told: Sequence[Told]) -> list[FollowUp]:
    """Stories told to the target that gained source feeds since: one follow-up row each
    (refreshed while it waits), due FOLLOWUP_EVERY after the story was last told (`message`)
    or now, to be held for the next digest by `decide` (`digest`)."""
    if policy.updates == "none":
        return []
    out = []
    for t in told:
        new = t.current_feeds - t.told_feeds
        if not new or (t.open_update is not None and new == t.open_feeds):
            continue
        due = max(t.told_at + FOLLOWUP_EVERY, now) if policy.updates == "message" else now
        out.append(FollowUp(t.alert_id, t.open_update, tuple(sorted(new)), due))
    return out
