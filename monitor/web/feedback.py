"""The feedback given in the window, turned into a verdict on a profile (`monitor profile
evaluate`) and into what a changed profile does to the judged stories (`replay --feedback`)."""

from __future__ import annotations

from typing import Any

from monitor.classify import Profile, scorer_for
from monitor.classify.train import Example
from monitor.evaluate import change, score, true_topics
from monitor.store import Database, browse


def _predicted(profile: Profile, story: browse.JudgedStory) -> frozenset[str]:
    """A story's topics under a profile: those of any of its items."""
    scorer = scorer_for(profile)
    return frozenset(t for item in story.items for t in scorer.classify(item).topics)


def evaluate_profile(db: Database, profile: Profile) -> dict[str, Any]:
    with db.session() as s:
        judged = browse.judged_stories(s)
    pairs = [(true_topics(j.stored_topics, j.feedback), _predicted(profile, j)) for j in judged]
    return {
        "profile": profile.path,
        "stories": len(pairs),
        "relevant": sum(bool(truth) for truth, _ in pairs),
        "noise": sum(not truth for truth, _ in pairs),
        "scores": [
            {
                "name": r.name,
                "precision": r.precision,
                "recall": r.recall,
                "tp": r.tp,
                "fp": r.fp,
                "fn": r.fn,
            }
            for r in score(pairs, list(profile.topics))
        ],
    }


def replay_feedback(db: Database, current: Profile, candidate: Profile) -> list[dict[str, Any]]:
    with db.session() as s:
        judged = browse.judged_stories(s)
    rows = []
    for j in judged:
        truth = true_topics(j.stored_topics, j.feedback)
        was, now = _predicted(current, j), _predicted(candidate, j)
        rows.append(
            {
                "story": j.id,
                "title": j.title,
                "feedback": sorted(truth) or ["noise"],
                "was": sorted(was),
                "topics": sorted(now),
                "change": change(truth, was, now),
            }
        )
    return rows


def feedback_examples(db: Database) -> list[Example]:
    """Labelled examples from the feedback: every item of a judged story, with the topics the
    feedback says the story has (none for noise)."""
    with db.session() as s:
        judged = browse.judged_stories(s)
    return [
        Example(item.title, item.summary, truth, f"story {j.id}", item.content)
        for j in judged
        for truth in (true_topics(j.stored_topics, j.feedback),)
        for item in j.items
    ]
