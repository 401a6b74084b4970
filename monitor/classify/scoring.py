"""Scoring an item against a compiled profile: weighted evidence per topic, with context."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain, compress, count
from sys import intern

from monitor.classify.model import confidence_of, decide, ngrams
from monitor.classify.profile import Profile, Topic
from monitor.text import clean_text, stem, tokens
from monitor.types import Classification, Evidence, Item

_CACHE_MAX = 300_000

# The words of a pattern after its first: (the word is a prefix, its text) for each.
_Rest = tuple[tuple[bool, str], ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    """A topic's entry as scoring reads it."""

    weight: float
    patterns: tuple[int, ...]
    when: tuple[frozenset[str], ...]  # alternatives of groups that must all be present


@dataclass(frozen=True, slots=True)
class _Topic:
    id: str
    require: tuple[tuple[frozenset[str], ...], ...]
    entries: tuple[_Entry, ...]  # Topic.by_weight: by decreasing weight, stable
    listed: dict[int, tuple[int, ...]]  # pattern id → positions in `entries` of those listing it


def _compile_topic(topic: Topic) -> _Topic:
    entries = tuple(
        _Entry(e.weight, tuple(e.patterns), tuple(frozenset(alt) for alt in e.when))
        for e in topic.by_weight
    )
    listed: dict[int, list[int]] = {}
    for k, e in enumerate(entries):
        for pid in dict.fromkeys(e.patterns):
            listed.setdefault(pid, []).append(k)
    return _Topic(
        topic.id,
        tuple(tuple(frozenset(alt) for alt in req) for req in topic.require),
        entries,
        {pid: tuple(ks) for pid, ks in listed.items()},
    )


class Scorer:
    """A profile plus per-word caches (news vocabulary is bounded): each distinct piece of text
    between white space is folded, tokenised and stemmed once (`monitor.text.tokens`), and each
    distinct token looked up once among the patterns' first words."""

    def __init__(self, profile: Profile, use_model: bool = True):
        self.profile = profile
        self.model = profile.model if use_model else None
        self._thresholds = {tid: t.threshold for tid, t in profile.topics.items()}
        by_pattern: dict[int, list[str]] = {}
        for name, ids in profile.groups.items():
            for pid in dict.fromkeys(ids):
                by_pattern.setdefault(pid, []).append(name)
        self._pattern_groups = {pid: tuple(names) for pid, names in by_pattern.items()}
        self._topics = [_compile_topic(t) for t in profile.topics.values()]
        self._sources = [p.source for p in profile.patterns]
        self._rest: list[_Rest] = [
            tuple((w.prefix, intern(w.text)) for w in p.words[1:]) for p in profile.patterns
        ]
        # Prefix first words by their first three letters (a prefix has at least three).
        self._prefixes: dict[str, list[tuple[str, int]]] = {}
        self._short_prefixes: list[tuple[str, int]] = []
        for prefix, pid in profile.prefix_first:
            if len(prefix) >= 3:
                self._prefixes.setdefault(prefix[:3], []).append((prefix, pid))
            else:
                self._short_prefixes.append((prefix, pid))
        # Caches, cleared together: piece → its tokens, and their stems; the pieces holding a
        # token that starts a pattern; such a token → the one-word patterns it is, and the
        # longer ones it starts, by their second word when that is a stem (prefixes apart).
        self._piece_toks: dict[str, tuple[str, ...]] = {}
        self._piece_stems: dict[str, tuple[str, ...]] = {}
        self._hot_pieces: set[str] = set()
        self._single: dict[str, tuple[int, ...]] = {}
        self._longer: dict[str, tuple[dict[str, list[tuple[int, _Rest]]], list[tuple[int, _Rest]]]]
        self._longer = {}

    def _starts(self, tok: str, st: str) -> list[int]:
        """The patterns whose first word is this token (its stem, or a prefix of it)."""
        found = list(self.profile.exact_first.get(st, ()))
        for prefix, pid in chain(self._prefixes.get(tok[:3], ()), self._short_prefixes):
            if tok.startswith(prefix):
                found.append(pid)
        return found

    def _learn(self, ps: list[str]) -> None:
        """Fold, tokenise and stem the pieces not seen yet."""
        piece_toks = self._piece_toks
        if len(piece_toks) + len(ps) > _CACHE_MAX:
            piece_toks.clear()
            self._piece_stems.clear()
            self._hot_pieces.clear()
            self._single.clear()
            self._longer.clear()
        single, longer = self._single, self._longer
        for piece in ps:
            if piece in piece_toks:
                continue
            toks = tuple(intern(t) for t in tokens(piece))
            sts = tuple(intern(stem(t)) for t in toks)
            if sts == toks:
                sts = toks
            for tok, st in zip(toks, sts, strict=True):
                if tok not in single and tok not in longer:
                    self._index(tok, st)
                if tok in single or tok in longer:
                    self._hot_pieces.add(piece)
            piece_toks[piece] = toks
            self._piece_stems[piece] = sts

    def _index(self, tok: str, st: str) -> None:
        """Note the patterns a token starts, if any."""
        by_next: dict[str, list[tuple[int, _Rest]]] = {}
        loose: list[tuple[int, _Rest]] = []
        ones = []
        for pid in self._starts(tok, st):
            rest = self._rest[pid]
            if not rest:
                ones.append(pid)
            elif rest[0][0]:  # a prefix
                loose.append((pid, rest))
            else:
                by_next.setdefault(rest[0][1], []).append((pid, rest))
        if ones:
            self._single[tok] = tuple(ones)
        if by_next or loose:
            self._longer[tok] = (by_next, loose)

    def _scan(self, text: str) -> tuple[list[str], set[int]]:
        """The stems of a text's folded tokens, and the pattern ids that occur in it."""
        if not text:
            return [], set()
        if "<" in text or "&" in text:  # HTML remnants: tags and entities
            text = clean_text(text)
        ps = text.split()  # `tokens` piece by piece: each distinct piece is folded once
        try:
            sts = list(chain.from_iterable(map(self._piece_stems.__getitem__, ps)))
        except KeyError:
            self._learn(ps)
            sts = list(chain.from_iterable(map(self._piece_stems.__getitem__, ps)))
        if self._hot_pieces.isdisjoint(ps):
            return sts, set()
        toks = list(chain.from_iterable(map(self._piece_toks.__getitem__, ps)))
        return sts, self._find(toks, sts)

    def _find(self, toks: list[str], sts: list[str]) -> set[int]:
        found: set[int] = set()
        single, longer = self._single, self._longer
        for tok in single.keys() & toks:
            found.update(single[tok])
        n = len(toks)
        # Where a token starts a longer pattern (found in C: most tokens start none).
        for i in compress(count(), map(longer.__contains__, toks)):
            if i + 1 >= n:
                continue
            by_next, loose = longer[toks[i]]
            for group in (by_next.get(sts[i + 1], ()), loose):
                for pid, rest in group:
                    if pid in found or i + len(rest) >= n:
                        continue
                    k = i
                    for prefix, word in rest:
                        k += 1
                        if not (toks[k].startswith(word) if prefix else sts[k] == word):
                            break
                    else:
                        found.add(pid)
        return found

    def tokens(self, text: str) -> tuple[list[str], list[str]]:
        """Folded tokens of a text and their stems."""
        if "<" in text or "&" in text:
            text = clean_text(text)
        ps = text.split()
        self._learn(ps)
        return (
            list(chain.from_iterable(map(self._piece_toks.__getitem__, ps))),
            list(chain.from_iterable(map(self._piece_stems.__getitem__, ps))),
        )

    def hits(self, text: str) -> set[int]:
        """Pattern ids that occur in a text."""
        return self._scan(text)[1]

    def rules(self, item: Item, with_words: bool = False) -> RuleResult:
        """The first stage: rule scores, evidence and the groups present, plus the words the
        second stage reads (when there is a model, or `with_words` for training one)."""
        scores, evidence, groups, title_sts, lede_sts = self._first_stage(item)
        words: set[str] = set()
        if with_words or self.model is not None:
            words = ngrams(title_sts) | ngrams(lede_sts)
        return RuleResult(scores, evidence, groups, words)

    def _first_stage(
        self, item: Item
    ) -> tuple[dict[str, float], dict[str, list[Evidence]], set[str], list[str], list[str]]:
        """Rule scores, evidence per topic, the groups present, and the stems of the title and
        the lede (what the second stage reads)."""
        p = self.profile
        # A summary longer than a lede is an article body: past the lede, it counts as content.
        lede, rest = _split_lede(item.summary)
        title_sts, title_found = self._scan(item.title)
        lede_sts, lede_found = self._scan(lede)
        content_found = self._scan(rest)[1] | self._scan(item.content)[1]
        scores: dict[str, float] = {}
        evidence: dict[str, list[Evidence]] = {}
        # Context and requirements look at the title and the lede: a name far down an article
        # body does not make its words about the conflict (it still counts as weak evidence).
        present = title_found | lede_found
        found_any = present | content_found
        if not found_any:  # no term at all: every topic scores nothing
            for topic in self._topics:
                scores[topic.id] = 0.0
                evidence[topic.id] = []
            return scores, evidence, set(), title_sts, lede_sts
        pattern_groups = self._pattern_groups
        groups = {g for pid in present for g in pattern_groups.get(pid, ())}
        fields = (
            ("title", title_found, p.title_weight),
            ("summary", lede_found, 1.0),
            ("content", content_found, p.content_weight),
        )
        sources = self._sources
        for topic in self._topics:
            if topic.require and not all(
                any(alt <= groups for alt in req) for req in topic.require
            ):
                scores[topic.id] = 0.0
                evidence[topic.id] = []
                continue
            total = 0.0
            topic_evidence = []
            # Only the entries that list a term found can count (an entry that lists none
            # adds nothing, and neither does a later one with the same terms).
            listed = topic.listed
            entries = topic.entries
            held: set[tuple[int, ...]] = set()
            used: set[int] = set()  # a term counts once per topic, whichever entries list it
            # A term listed by several entries counts at the largest of their weights.
            for k in sorted({k for pid in found_any if pid in listed for k in listed[pid]}):
                entry = entries[k]
                if entry.when and not any(alt <= groups for alt in entry.when):
                    continue
                # The same terms listed again under another context are an alternative: the
                # first entry whose context holds counts, the later ones do not add to it.
                if entry.patterns in held:
                    continue
                held.add(entry.patterns)
                for field_name, found, factor in fields:
                    for pid in entry.patterns:
                        if pid in found and pid not in used:
                            break
                    else:
                        continue
                    used.add(pid)
                    value = entry.weight * factor
                    total += value
                    topic_evidence.append(
                        Evidence(topic.id, sources[pid], field_name, round(value, 2))
                    )
                    break
            scores[topic.id] = round(total, 2)
            evidence[topic.id] = topic_evidence
        return scores, evidence, groups, title_sts, lede_sts

    def classify(self, item: Item) -> Classification:
        p = self.profile
        scores, rule_evidence, groups, title_sts, lede_sts = self._first_stage(item)
        model = self.model
        probs: dict[str, float] = {}
        if model is not None:
            probs = model.probabilities_of_stems(
                (title_sts, lede_sts), scores, self._thresholds, groups
            )
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
                evidence.extend(rule_evidence[tid])
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
