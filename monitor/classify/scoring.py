"""Scoring an item against a compiled profile: weighted evidence per topic, with context."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from monitor.classify.model import confidence_of, decide, ngrams
from monitor.classify.profile import Pattern, Profile
from monitor.text import clean_text, fold, stem
from monitor.types import Classification, Evidence, Item

_TOKEN = re.compile(r"[^\W_]+")
_CACHE_MAX = 300_000


class Scorer:
    """A profile plus a per-token cache of candidate patterns (news vocabulary is bounded)."""

    def __init__(self, profile: Profile, use_model: bool = True):
        self.profile = profile
        self.model = profile.model if use_model else None
        self._thresholds = {tid: t.threshold for tid, t in profile.topics.items()}
        by_pattern: dict[int, list[str]] = {}
        for name, ids in profile.groups.items():
            for pid in dict.fromkeys(ids):
                by_pattern.setdefault(pid, []).append(name)
        self._pattern_groups = {pid: tuple(names) for pid, names in by_pattern.items()}
        self._first: dict[str, tuple[int, ...]] = {}

    def _candidates(self, tok: str, st: str) -> tuple[int, ...]:
        cands = self._first.get(tok)
        if cands is None:
            found = list(self.profile.exact_first.get(st, ()))
            for prefix, pid in self.profile.prefix_first:
                if tok.startswith(prefix):
                    found.append(pid)
            cands = tuple(found)
            if len(self._first) > _CACHE_MAX:
                self._first.clear()
            self._first[tok] = cands
        return cands

    def tokens(self, text: str) -> tuple[list[str], list[str]]:
        """Folded tokens of a text and their stems."""
        if not text:
            return [], []
        if "<" in text or "&" in text:  # HTML remnants: tags and entities
            text = clean_text(text)
        toks = _TOKEN.findall(fold(text))
        return toks, [stem(t) for t in toks]

    def hits(self, text: str) -> set[int]:
        """Pattern ids that occur in a text."""
        return self._hits(*self.tokens(text))

    def _hits(self, toks: list[str], sts: list[str]) -> set[int]:
        found: set[int] = set()
        if not toks:
            return found
        patterns = self.profile.patterns
        n = len(toks)
        for i, tok in enumerate(toks):
            cands = self._candidates(tok, sts[i])
            if not cands:
                continue
            for pid in cands:
                if pid in found:
                    continue
                words = patterns[pid].words
                if len(words) == 1 or _rest_matches(patterns[pid], toks, sts, i, n):
                    found.add(pid)
        return found

    def rules(self, item: Item, with_words: bool = False) -> RuleResult:
        """The first stage: rule scores, evidence and the groups present, plus the words the
        second stage reads (when there is a model, or `with_words` for training one)."""
        p = self.profile
        # A summary longer than a lede is an article body: past the lede, it counts as content.
        lede, rest = _split_lede(item.summary)
        title_toks, title_sts = self.tokens(item.title)
        lede_toks, lede_sts = self.tokens(lede)
        fields = (
            ("title", self._hits(title_toks, title_sts), p.title_weight),
            ("summary", self._hits(lede_toks, lede_sts), 1.0),
            ("content", self.hits(rest) | self.hits(item.content), p.content_weight),
        )
        # Context and requirements look at the title and the lede: a name far down an article
        # body does not make its words about the conflict (it still counts as weak evidence).
        present = fields[0][1] | fields[1][1]
        pattern_groups = self._pattern_groups
        groups_present = {g for pid in present for g in pattern_groups.get(pid, ())}
        scores: dict[str, float] = {}
        evidence: dict[str, list[Evidence]] = {}
        for topic in p.topics.values():
            if topic.require and not all(
                any(all(g in groups_present for g in alt) for alt in req) for req in topic.require
            ):
                scores[topic.id] = 0.0
                evidence[topic.id] = []
                continue
            total = 0.0
            topic_evidence = []
            held: set[tuple[int, ...]] = set()
            used: set[int] = set()  # a term counts once per topic, whichever entries list it
            # A term listed by several entries counts at the largest of their weights.
            for entry in topic.by_weight:
                if entry.when and not any(
                    all(g in groups_present for g in alt) for alt in entry.when
                ):
                    continue
                # The same terms listed again under another context are an alternative: the
                # first entry whose context holds counts, the later ones do not add to it.
                key = tuple(entry.patterns)
                if key in held:
                    continue
                held.add(key)
                for field_name, found, factor in fields:
                    pid = next((i for i in entry.patterns if i in found and i not in used), None)
                    if pid is not None:
                        used.add(pid)
                        value = entry.weight * factor
                        total += value
                        term = p.patterns[pid].source
                        topic_evidence.append(Evidence(topic.id, term, field_name, round(value, 2)))
                        break
            scores[topic.id] = round(total, 2)
            evidence[topic.id] = topic_evidence
        words = set()
        if with_words or self.model is not None:
            words = ngrams(title_sts) | ngrams(lede_sts)
        return RuleResult(scores, evidence, groups_present, words)

    def classify(self, item: Item) -> Classification:
        p = self.profile
        r = self.rules(item)
        scores = r.scores
        model = self.model
        probs: dict[str, float] = {}
        if model is not None:
            probs = model.probabilities(r.words, scores, self._thresholds, r.groups)
        topics: list[str] = []
        evidence: list[Evidence] = []
        confidence: dict[str, float] = {}
        for tid, t in p.topics.items():
            tm = model.topics.get(tid) if model is not None else None
            if tm is None:
                confidence[tid] = calibrated(scores[tid], t.threshold, t.slope, t.offset)
                matched = scores[tid] >= t.threshold
            else:
                matched = decide(probs[tid], scores[tid] - t.threshold, tm)
                confidence[tid] = confidence_of(probs[tid], matched)
            if matched:
                topics.append(tid)
                evidence.extend(r.evidence[tid])
                if tm is not None:
                    evidence.append(Evidence(tid, "model", "model", confidence[tid]))
        for tid in list(topics):
            for other in p.topics[tid].implies:
                if other not in topics:
                    topics.append(other)
                    evidence.append(Evidence(other, f"(implied by {tid})", "topic", 0.0))
        for tid in topics:  # an implied topic is as sure as the topic that implies it
            for other in p.topics[tid].implies:
                confidence[other] = max(confidence[other], confidence[tid])
        return Classification(tuple(topics), scores, tuple(evidence), confidence)


@dataclass(frozen=True)
class RuleResult:
    scores: dict[str, float]
    evidence: dict[str, list[Evidence]]  # per topic, whether it reached the threshold or not
    groups: set[str]  # the profile's groups present in the title or the lede
    words: set[str]  # the title's and the lede's words and word pairs (when a model reads them)


LEDE_CHARS = 600


def calibrated(score: float, threshold: float, slope: float, offset: float) -> float:
    """Platt scaling of a raw score into a probability, rounded for output."""
    z = slope * (score - threshold) + offset
    z = max(-60.0, min(60.0, z))
    return round(1.0 / (1.0 + math.exp(-z)), 3)


def _split_lede(summary: str) -> tuple[str, str]:
    if len(summary) <= LEDE_CHARS:
        return summary, ""
    cut = summary.rfind(" ", 0, LEDE_CHARS)
    cut = cut if cut > 0 else LEDE_CHARS
    return summary[:cut], summary[cut:]


def _rest_matches(pattern: Pattern, toks: list[str], sts: list[str], i: int, n: int) -> bool:
    words = pattern.words
    if i + len(words) > n:
        return False
    for k in range(1, len(words)):
        w = words[k]
        if w.prefix:
            if not toks[i + k].startswith(w.text):
                return False
        elif sts[i + k] != w.text:
            return False
    return True
