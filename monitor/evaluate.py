"""A profile judged against the analysts' feedback (`monitor profile evaluate`, `replay
--feedback`). Pure: the stories, their feedback and the profile's verdicts come in as data.

What feedback says a story's true topics are, starting from the topics it was matched with:
`relevant` confirms them, `noise` says it belongs to none, `wrong-topic` removes one topic
(and adds the one it should have had, when given). Entries apply in the order they were given,
so a later `relevant` or `noise` replaces what came before and wrong-topic corrections add up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

RELEVANCE = "relevance (any topic)"


class Verdict(Protocol):
    @property
    def verdict(self) -> str: ...

    @property
    def topic(self) -> str | None: ...

    @property
    def correct_topic(self) -> str | None: ...


def true_topics(stored: Iterable[str], feedback: Sequence[Verdict]) -> frozenset[str]:
    truth = set(stored)
    for f in feedback:
        if f.verdict == "relevant":
            truth = set(stored)
        elif f.verdict == "noise":
            truth = set()
        elif f.verdict == "wrong-topic":
            if f.topic:
                truth.discard(f.topic)
            if f.correct_topic:
                truth.add(f.correct_topic)
    return frozenset(truth)


@dataclass(frozen=True)
class Score:
    name: str  # a topic id, or RELEVANCE
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def score(
    judged: Sequence[tuple[frozenset[str], frozenset[str]]], topics: Sequence[str]
) -> list[Score]:
    """Precision and recall per topic and for relevance, over (truth, predicted) pairs."""
    out = []
    for t in topics:
        tp = sum(t in truth and t in pred for truth, pred in judged)
        fp = sum(t not in truth and t in pred for truth, pred in judged)
        fn = sum(t in truth and t not in pred for truth, pred in judged)
        out.append(Score(t, tp, fp, fn))
    tp = sum(bool(truth) and bool(pred) for truth, pred in judged)
    fp = sum(not truth and bool(pred) for truth, pred in judged)
    fn = sum(bool(truth) and not pred for truth, pred in judged)
    out.append(Score(RELEVANCE, tp, fp, fn))
    return out


def change(truth: frozenset[str], was: frozenset[str], now: frozenset[str]) -> str:
    """What a new profile does to one judged story: `same`, `better` or `worse` (fewer or
    more topics that disagree with the feedback), else `different`."""
    if was == now:
        return "same"
    before, after = len(truth ^ was), len(truth ^ now)
    if after < before:
        return "better"
    if after > before:
        return "worse"
    return "different"
