"""The alert policy's pure decisions, and the rendering of what they send."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.alert_policy import (
    FOLLOWUP_EVERY,
    HOUR,
    SUMMARY_GATHER,
    Recent,
    Told,
    Waiting,
    decide,
    follow_ups,
    next_daily,
    quiet_until,
    target_confidence,
    target_score,
)
from monitor.notify import StoryLine, render_group, scrub
from monitor.targets import make_target, parse_policy
from monitor.types import AlertPolicy

T0 = datetime(2024, 2, 13, 12, 0, tzinfo=UTC)


def rows(n: int, at: datetime = T0, start: int = 1, **kw: object) -> list[Waiting]:
    return [
        Waiting(
            id=i,
            kind="alert",
            story_id=100 + i,
            status="pending",
            due_at=at,
            created_at=at,
            topics=("otsc",),
            scores={"otsc": 10.0},
            **kw,  # type: ignore[arg-type]
        )
        for i in range(start, start + n)
    ]


def apply(waiting: list[Waiting], d: object) -> list[Waiting]:
    """The rows as the store would keep them after a decision: held rows get their time."""
    holds = {h.id: h for h in d.hold}  # type: ignore[attr-defined]
    sent = {i for m in d.send for i in m.ids}  # type: ignore[attr-defined]
    skipped = {i for i, _ in d.skip}  # type: ignore[attr-defined]
    out = []
    for w in waiting:
        if w.id in sent or w.id in skipped:
            continue
        if w.id in holds:
            h = holds[w.id]
            w = Waiting(
                w.id, w.kind, w.story_id, "held", h.until, w.created_at, w.topics, w.scores, h.hold
            )
        out.append(w)
    return out


def test_min_score_skips_with_a_reason_on_the_targets_topics() -> None:
    p = AlertPolicy(min_score=8)
    scores = {"otsc": 5.0, "russian_mediation": 12.0}
    low = Waiting(1, "alert", 1, "pending", T0, T0, ("otsc", "russian_mediation"), scores)
    d = decide(p, ("otsc",), T0, [low], [])
    assert d.send == [] and d.skip == [(1, "score 5 below min_score 8")]
    # An untagged target follows every topic: the story's best score counts.
    d = decide(p, (), T0, [low], [])
    assert [m.ids for m in d.send] == [(1,)] and not d.skip
    assert target_score(low.topics, low.scores, ("russian_mediation",)) == 12.0


def test_min_confidence_skips_with_a_reason_on_the_targets_topics() -> None:
    p = AlertPolicy(min_confidence=0.8)
    conf = {"otsc": 0.62, "russian_mediation": 0.97}
    low = Waiting(
        1, "alert", 1, "pending", T0, T0, ("otsc", "russian_mediation"), {}, confidence=conf
    )
    d = decide(p, ("otsc",), T0, [low], [])
    assert d.send == [] and d.skip == [(1, "confidence 0.62 below min_confidence 0.8")]
    # An untagged target follows every topic: the story's best confidence counts.
    d = decide(p, (), T0, [low], [])
    assert [m.ids for m in d.send] == [(1,)] and not d.skip
    assert target_confidence(low.topics, conf, ("russian_mediation",)) == 0.97
    # A match stored before confidences were recorded is not skipped by min_confidence.
    old = Waiting(2, "alert", 2, "pending", T0, T0, ("otsc",), {"otsc": 9.0})
    d = decide(p, ("otsc",), T0, [old], [])
    assert [m.ids for m in d.send] == [(2,)] and not d.skip
    # Both limits: min_score speaks first, min_confidence after it.
    both = AlertPolicy(min_score=8, min_confidence=0.8)
    row = Waiting(3, "alert", 3, "pending", T0, T0, ("otsc",), {"otsc": 9.0}, confidence=conf)
    assert decide(both, (), T0, [row], []).skip == [(3, "confidence 0.62 below min_confidence 0.8")]


def test_burst_of_13_gives_5_singles_then_one_summary_of_8_and_nothing_lost() -> None:
    p = AlertPolicy(max_per_hour=5)
    waiting = rows(13)
    d = decide(p, (), T0, waiting, [])
    assert [m.kind for m in d.send] == ["alert"] * 5
    assert {h.hold for h in d.hold} == {"storm"} and len(d.hold) == 8
    assert {h.until for h in d.hold} == {T0 + SUMMARY_GATHER}
    recent = [Recent("alert", T0)] * 5
    waiting = apply(waiting, d)
    # Two more stories while the overflow gathers: they join the same summary.
    later = T0 + timedelta(minutes=2)
    waiting += rows(2, later, start=20)
    d = decide(p, (), later, waiting, recent)
    assert not d.send and {h.until for h in d.hold} == {T0 + SUMMARY_GATHER}
    waiting = apply(waiting, d)
    d = decide(p, (), T0 + SUMMARY_GATHER, waiting, recent)
    assert [m.kind for m in d.send] == ["summary"]
    assert sorted(d.send[0].ids) == [*range(6, 14), 20, 21]
    waiting = apply(waiting, d)
    assert waiting == []
    recent.append(Recent("summary", T0 + SUMMARY_GATHER))
    # Later in the same hour: held until a slot frees (the first singles leave the window).
    t = T0 + timedelta(minutes=20)
    waiting = rows(1, t, start=30)
    d = decide(p, (), t, waiting, recent)
    assert not d.send and d.hold[0].until == T0 + HOUR and d.hold[0].hold == "storm"
    waiting = apply(waiting, d)
    d = decide(p, (), T0 + HOUR, waiting, [r for r in recent if r.at > T0])
    assert [(m.kind, m.ids) for m in d.send] == [("alert", (30,))]


def test_quiet_hours_wrap_midnight_in_the_targets_timezone() -> None:
    p = parse_policy({"quiet_hours": "22:00-07:00", "timezone": "Europe/Paris"})
    night = datetime(2024, 2, 13, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    end = datetime(2024, 2, 14, 6, 0, tzinfo=UTC)  # 07:00 in Paris
    assert quiet_until(p, night) == end
    assert quiet_until(p, datetime(2024, 2, 14, 5, 59, tzinfo=UTC)) == end
    assert quiet_until(p, end) is None
    assert quiet_until(p, datetime(2024, 2, 13, 20, 59, tzinfo=UTC)) is None  # 21:59 Paris
    waiting = rows(3, night)
    d = decide(p, (), night, waiting, [])
    assert not d.send and {(h.until, h.hold) for h in d.hold} == {(end, "quiet")}
    waiting = apply(waiting, d)
    assert not decide(p, (), end - timedelta(minutes=1), waiting, []).send
    d = decide(p, (), end, waiting, [])
    assert [(m.kind, sorted(m.ids)) for m in d.send] == [("digest", [1, 2, 3])]
    # Summer time: the same local hours are other UTC hours.
    summer = datetime(2024, 7, 1, 21, 0, tzinfo=UTC)  # 23:00 in Paris (UTC+2)
    assert quiet_until(p, summer) == datetime(2024, 7, 2, 5, 0, tzinfo=UTC)


def test_digest_at_holds_everything_for_one_digest_a_day() -> None:
    p = parse_policy({"digest_at": "08:00", "timezone": "UTC"})
    morning = datetime(2024, 2, 14, 8, 0, tzinfo=UTC)
    waiting = rows(2, datetime(2024, 2, 13, 9, 0, tzinfo=UTC))
    d = decide(p, (), datetime(2024, 2, 13, 9, 0, tzinfo=UTC), waiting, [])
    assert {(h.until, h.hold) for h in d.hold} == {(morning, "digest")}
    waiting = apply(waiting, d) + rows(1, datetime(2024, 2, 14, 7, 0, tzinfo=UTC), start=5)
    d = decide(p, (), datetime(2024, 2, 14, 7, 0, tzinfo=UTC), waiting, [])
    waiting = apply(waiting, d)
    d = decide(p, (), morning, waiting, [])
    assert [(m.kind, sorted(m.ids)) for m in d.send] == [("digest", [1, 2, 5])]
    # A story a minute after the digest waits for tomorrow's.
    late = rows(1, morning + timedelta(minutes=1), start=9)
    d = decide(p, (), morning + timedelta(minutes=1), late, [])
    assert d.hold[0].until == morning + timedelta(days=1)
    assert next_daily(time(8, 0), ZoneInfo("UTC"), morning) == morning


def test_follow_ups_obey_updates() -> None:
    told = Told(1, frozenset({10}), T0, frozenset({10, 11, 12}))
    assert follow_ups(AlertPolicy(updates="none"), T0, [told]) == []
    (f,) = follow_ups(AlertPolicy(updates="message"), T0 + timedelta(minutes=5), [told])
    assert f.feeds == (11, 12) and f.due_at == T0 + FOLLOWUP_EVERY and f.update_id is None
    # A follow-up already waiting with the same news is left alone; with more, refreshed.
    same = Told(1, frozenset({10}), T0, frozenset({10, 11, 12}), 7, frozenset({11, 12}))
    assert follow_ups(AlertPolicy(updates="message"), T0, [same]) == []
    more = Told(1, frozenset({10}), T0, frozenset({10, 11, 12, 13}), 7, frozenset({11, 12}))
    (g,) = follow_ups(AlertPolicy(updates="message"), T0, [more])
    assert g.update_id == 7 and g.feeds == (11, 12, 13)
    # A story that did not grow: nothing.
    flat = Told(1, frozenset({10}), T0, frozenset({10}))
    assert follow_ups(AlertPolicy(updates="message"), T0, [flat]) == []
    # updates: digest: due now, and decide holds it for the next digest.
    (h,) = follow_ups(AlertPolicy(updates="digest"), T0, [told])
    assert h.due_at == T0
    update = Waiting(5, "update", 101, "pending", T0, T0, ("otsc",), {"otsc": 10.0})
    d = decide(AlertPolicy(updates="digest"), (), T0, [update], [])
    assert not d.send and d.hold[0].hold == "digest"
    assert d.hold[0].until == datetime(2024, 2, 14, 8, 0, tzinfo=UTC)
    d = decide(AlertPolicy(updates="message"), (), T0, [update], [])
    assert [(m.kind, m.ids) for m in d.send] == [("update", (5,))]


def test_group_messages_list_every_story_once_escaped_for_email() -> None:
    k = "karabakh_ceasefire"
    lines = [
        StoryLine(1, "alert", "<script>alert(1)</script> Erevan", "javascript:alert(1)",
                  ("otsc",), {"otsc": 9.5}, ("Fil <A>",)),
        StoryLine(2, "alert", "Latchine", "https://e.org/2?a=1&b=2", (k,), {k: 12.0},
                  ("Fil A", "Fil B"), page="https://m.example/stories/2"),
        StoryLine(3, "update", "Bakou", "https://e.org/3", ("otsc",), {"otsc": 8.0},
                  ("Fil A", "Fil B", "Fil C"), new_sources=("Fil B", "Fil C")),
    ]  # fmt: skip
    mail = render_group("digest", lines, "quiet hours ended", html_body=True)
    assert mail.body_format == "html"
    assert "<script>" not in mail.body and "&lt;script&gt;" in mail.body
    assert 'href="javascript' not in mail.body and "Fil &lt;A&gt;" in mail.body
    assert 'href="https://e.org/2?a=1&amp;b=2"' in mail.body
    assert "2 alertes et 1 mise à jour" in mail.title
    chat = render_group("summary", lines, "max_per_hour 5", html_body=False)
    assert chat.body_format == "text"
    for x in lines:
        assert chat.body.count(x.title) == 1 and chat.body.count(x.link or "") >= 1
    assert "+2 : Fil B, Fil C" in chat.body and "karabakh_ceasefire 12" in chat.body
    assert "https://m.example/stories/2" in chat.body


def test_scrub_removes_what_the_privacy_url_hides() -> None:
    t = make_target("json://user:s3cretpw@127.0.0.1:9/hook?+X-Token=tok12345", "x")
    text = f"error posting to {t.url}: 401 for s3cretpw / tok12345"
    clean = scrub(text, t)
    assert "s3cretpw" not in clean and "tok12345" not in clean and t.key in clean
    bot = make_target("tgram://123456789:AAbbCCddEEff/424242", "x")
    assert "AAbbCCddEEff" not in scrub("bad token 123456789:AAbbCCddEEff", bot)


def test_retry_backoff_never_waits_more_than_an_hour_jitter_included() -> None:
    """The backoff is capped at an hour with its jitter: a cap applied before a ±10 % jitter
    let a retry wait 66 minutes (seen as a flaky run of the hour-long outage test)."""
    from monitor.notify import BACKOFF_MAX, next_attempt

    now = datetime(2026, 1, 1, tzinfo=UTC)
    waits = [(next_attempt(n, now) - now).total_seconds() for n in range(1, 40) for _ in range(200)]
    assert max(waits) <= BACKOFF_MAX
    assert min(waits) >= 27  # the first retry after about 30 s
    late = waits[-200:]
    assert max(late) - min(late) > 60  # still spread at the cap: no herd on the hour
