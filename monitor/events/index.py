"""The recent stories in memory (`EventIndex`: centroids, an inverted index by term) and the
decision, join story X or start a new one (`Decision`); `story_of` makes a story again from
its items."""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

import numpy as np

from monitor.events.features import EventFeatures
from monitor.events.guards import _gap, _look_alike, _near_duplicate
from monitor.events.kinds import (
    _DAILY,
    _REACTION,
    SETTLE_KINDS,
    linked_kinds,
    truce_and_violation,
)
from monitor.events.pairs import PairModel, pair_vector, shipped
from monitor.events.params import DEFAULT, Params
from monitor.events.story import StoryState
from monitor.events.words import _PACKAGING, _YEAR
from monitor.wordvec import Vector


@dataclass(frozen=True)
class Decision:
    story_id: int | None  # None: start a new story
    score: float
    reason: str  # "near-duplicate" | "similar" | "kind" | "name" | "figure" | "pair" | "new"


@dataclass
class _Query:
    """An item's vectors, weighted once per decision (not once per candidate)."""

    f: EventFeatures
    weights: dict[str, float]  # term → weight × idf
    weights2: dict[str, float]  # term → weight × idf² (dot products with a raw centroid)
    norm: float
    title: dict[str, float]  # title term → idf²
    title_norm: float
    novel: frozenset[str]  # title terms rare enough to count when a story lacks them
    vector: Vector | None = None
    # its terms that are a word of what happened (no entity key, no actor's name)
    happened: frozenset[str] = frozenset()
    # its title terms that are a word of what happened (no entity key, figure or actor)
    title_happened: frozenset[str] = frozenset()


@dataclass
class EventIndex:
    """The recent stories in memory, with an inverted index term → story ids.

    Postings are append-only; what a removed story or a trimmed term leaves behind is skipped
    when read and compacted away once a list is twice its live size, so removing a story never
    walks a long list."""

    params: Params = DEFAULT
    stories: dict[int, StoryState] = field(default_factory=dict)
    postings: dict[str, list[int]] = field(default_factory=dict)
    df: dict[str, int] = field(default_factory=dict)  # live stories holding each term
    _recent: deque[int] = field(default_factory=lambda: deque(maxlen=256))  # latest added to
    # Stories with a kind of happening (the profile's stream), the latest added to or loaded last.
    _kinded: dict[int, None] = field(default_factory=dict)
    # Specific name key → the stories that hold it, the latest added to or loaded last (one
    # entry a story, however often it is reloaded; a removed story's are pruned).
    _named: dict[str, dict[int, None]] = field(default_factory=dict)
    # The learned join's model (None: the one shipped with the package, `pairs.shipped`).
    pair_model: PairModel | None = None

    def __len__(self) -> int:
        return len(self.stories)

    def idf(self, term: str) -> float:
        return math.log((len(self.stories) + 10) / (self.df.get(term, 0) + 1)) + 1.0

    def _idfs(self, terms: Iterable[str]) -> dict[str, float]:
        n = math.log(len(self.stories) + 10) + 1.0
        df = self.df
        log1 = _LOG
        return {t: n - log1[df.get(t, 0)] for t in terms}

    def _norm(self, weights: Mapping[str, float]) -> float:
        """The length of term weights × their idf (as `_idfs` gives it), without building
        the idf dict: a story's norm is summed on its first comparison after each change."""
        n = math.log(len(self.stories) + 10) + 1.0
        df = self.df
        log1 = _LOG
        return math.sqrt(sum([((n - log1[df[t]]) * w) ** 2 for t, w in weights.items()]))

    # --- the decision --------------------------------------------------------------------

    def decide(self, f: EventFeatures) -> Decision:
        """Join the most similar story close in time, or start a new one."""
        p = self.params
        best: tuple[float, int, str] | None = None
        q: _Query | None = None
        # what the pair stage may reuse: a candidate's (score, bar, gap), None when a guard
        # kept it apart
        seen: dict[int, tuple[float, float, timedelta] | None] = {}
        for sid in self._candidates(f):
            st = self.stories[sid]
            seen[sid] = None
            gap = _gap(f, st, p.undated_slack)
            if gap > p.max_gap:
                continue
            if _look_alike(f, st):
                continue
            if p.opinion_apart and (f.opinion or st.opinion):
                if _near_duplicate(f, st, p.near_duplicate):
                    best = (1.0, sid, "near-duplicate")
                continue  # an opinion piece is its own event, joined by no other item
            if f.fresh and self._new_elsewhere(f, st):
                continue  # a new happening the story's titles never name
            if p.continuing_guard and self._continued_elsewhere(f, st):
                continue
            if _near_duplicate(f, st, p.near_duplicate):
                score, reason = 1.0, "near-duplicate"
            else:
                q = q or self._query(f)
                frac = min(gap / p.far_after, 1.0)
                score = self._score(q, st, frac)
                bar = self._bar(gap, frac)
                if score < bar:
                    seen[sid] = (score, bar, gap)
                    continue
                reason = "similar"
            if best is None or score > best[0]:
                best = (score, sid, reason)
        if best is None and p.kind_join and f.kinds and not (p.opinion_apart and f.opinion):
            same = self._same_kind(f)
            if same is not None:
                return Decision(same, p.join, "kind")
        if best is None and f.topics and not (p.opinion_apart and f.opinion):
            if p.name_join and f.names:
                same = self._same_name(f)
                if same is not None:
                    return Decision(same, p.join, "name")
            if p.number_join and f.figures:
                same = self._same_figure(f)
                if same is not None:
                    return Decision(same, p.join, "figure")
        if best is None:
            if p.pair_join and f.topics and not (p.opinion_apart and f.opinion):
                return self._pair_join(f, q or self._query(f), seen)
            return Decision(None, 0.0, "new")
        return Decision(best[1], best[0], best[2])

    # --- the learned join (monitor.events.pairs) -----------------------------------------

    def _pair_join(
        self, f: EventFeatures, q: _Query, seen: dict[int, tuple[float, float, timedelta] | None]
    ) -> Decision:
        """No rule joins the item: the candidate the pair model finds likeliest one event
        with it, if it reaches `pair_threshold` (the guards have vetoed the look-alikes)."""
        model = self.pair_model or shipped()
        best: tuple[float, int] | None = None
        for sid, x in self._pair_rows(f, q, seen):
            prob = model.probability(x)
            if best is None or prob > best[0]:
                best = (prob, sid)
        if best is not None and best[0] >= self.params.pair_threshold:
            return Decision(best[1], best[0], "pair")
        return Decision(None, 0.0, "new")

    def pair_rows(self, f: EventFeatures) -> list[tuple[int, list[float]]]:
        """The candidates the pair stage weighs for an item and their feature vectors
        (`pairs.pair_vector`): what bench/train_pairs.py labels, as `decide` computes them."""
        q = self._query(f)
        seen = {sid: self._pair_guarded(f, q, self.stories[sid]) for sid in self._candidates(f)}
        return self._pair_rows(f, q, seen)

    def _pair_guarded(
        self, f: EventFeatures, q: _Query, st: StoryState
    ) -> tuple[float, float, timedelta] | None:
        """A story's (score, bar, gap) against the item, None when a guard of `decide` keeps
        them apart or the story is a near-identical copy (which `decide` joins itself)."""
        p = self.params
        gap = _gap(f, st, p.undated_slack)
        if gap > p.max_gap or _look_alike(f, st):
            return None
        if p.opinion_apart and (f.opinion or st.opinion):
            return None
        if self._new_elsewhere(f, st):
            return None
        if p.continuing_guard and self._continued_elsewhere(f, st):
            return None
        if _near_duplicate(f, st, p.near_duplicate):
            return None
        frac = min(gap / p.far_after, 1.0)
        return self._score(q, st, frac), self._bar(gap, frac), gap

    def _pair_rows(
        self,
        f: EventFeatures,
        q: _Query,
        seen: dict[int, tuple[float, float, timedelta] | None],
    ) -> list[tuple[int, list[float]]]:
        """The feature vectors of the item against the lexical and semantic candidates
        `decide` scored (`seen`: their score, bar and gap, None when a guard fired) and, on
        the profile's stream, the latest stories of a kind and of the item's specific names
        (bounded: `pair_kinded`, 8 a name) that share a topic with it."""
        p = self.params
        stories = self.stories
        if f.topics:
            lo, hi, _ = self._reach(f, p.max_gap, p.max_gap)
            extra = list(islice(reversed(self._kinded), p.pair_kinded))
            for name in f.names:
                extra += islice(reversed(self._named.get(name, {})), 8)
            for sid in extra:
                if sid in seen:
                    continue
                st = stories.get(sid)
                if st is None or st.last < lo or st.first > hi or st.topics.isdisjoint(f.topics):
                    seen[sid] = None
                    continue
                seen[sid] = self._pair_guarded(f, q, st)
        own = f.kinds - _REACTION
        rows = []
        for sid, known in seen.items():
            if known is None:
                continue
            score, bar, gap = known
            st = stories[sid]
            if score <= 0.0 or st.topics.isdisjoint(f.topics):
                # no word of what happened in common (nor words pointing the same way with an
                # actor in common: `_score`), or no topic: topic, actor and hours alone join
                # unrelated news of a conflict
                continue
            if (
                f.figures
                and not any("#" + n in st.terms for n in f.figures)
                and any(_is_figure(t) for t in st.terms)
            ):
                continue  # « 45 soldats » and a story of « trente-deux soldats »
            theirs = st.kinds - _REACTION
            if truce_and_violation(own, theirs):
                continue  # a truce and its violation
            if ("capture" in own) != ("capture" in theirs) and own and theirs:
                continue  # the battle for a town, then its fall
            semantic = self._semantic(q, st)
            if not (
                semantic >= p.pair_semantic
                or self._titles_share_what_happened(q, st)
                or not f.title_names.isdisjoint(st.names)
                or not st.title_names.isdisjoint(f.names)
            ):
                continue  # titles of nothing in common, words of other ways: a passing mention
            rows.append(
                (
                    sid,
                    pair_vector(
                        f,
                        st,
                        score=score,
                        bar=bar,
                        title_cosine=self._title_cosine(q, st),
                        semantic=semantic,
                        gap_hours=gap.total_seconds() / 3600.0,
                        title_union=self._title_union(st),
                        novel=sum(1 for t in q.novel if t not in st.terms),
                    ),
                )
            )
        return rows

    def _bar(self, gap: timedelta, frac: float) -> float:
        """The score needed at a gap: rising to join_far at far_after, then to join_max at
        max_gap (two days apart, the same words are most often the next happening)."""
        p = self.params
        bar = p.join + (p.join_far - p.join) * frac
        if gap > p.far_after and p.max_gap > p.far_after:
            bar += (p.join_max - p.join_far) * ((gap - p.far_after) / (p.max_gap - p.far_after))
        return bar

    def _new_elsewhere(self, f: EventFeatures, st: StoryState) -> bool:
        """The item's title calls a happening new (« de nouvelles attaques ») that the story's
        titles never name (`fresh_guard`): another happening, whichever join would take it."""
        return (
            self.params.fresh_guard and bool(f.fresh) and f.fresh.isdisjoint(self._title_union(st))
        )

    def _continued_elsewhere(self, f: EventFeatures, st: StoryState) -> bool:
        """An item more than far_after after the story's first item (a continuing story: the
        lying in state, then the funeral plan) whose title shares no word outside its rubric
        with the story's titles."""
        since = f.time - st.first
        if not f.dated:
            since -= self.params.undated_slack
        if since <= self.params.far_after:
            return False
        body = f.title_terms if f.body is None else f.body
        return body.isdisjoint(self._title_union(st))

    def _reach(
        self, f: EventFeatures, window: timedelta, span: timedelta
    ) -> tuple[datetime, datetime, timedelta]:
        """For the joins by a shared clue: the times a story's latest item may fall between
        (`window` either side of the item) and how long before the item its first may be
        (`span`). An undated item was first seen at its time, published then or up to
        `undated_slack` before: it reaches that much further back."""
        lo, hi = f.time - window, f.time + window
        if not f.dated:
            lo -= self.params.undated_slack
            span += self.params.undated_slack
        return lo, hi, span

    def _same_kind(self, f: EventFeatures) -> int | None:
        """The profile's stream: the story of a topic, a kind of happening and an actor of
        the item's whose latest item is within `kind_window` of it and first item no more
        than `kind_span` before it (the nearest in time), unless a look-alike guard keeps
        them apart."""
        p = self.params
        best: tuple[timedelta, int] | None = None
        # Fighting and truces recur day after day (a new attack, a truce and its violation);
        # the other happenings and the reactions are told into the next day.
        window = p.kind_window if f.kinds & _DAILY else p.kind_window_slow
        lo, hi, span = self._reach(f, window, p.kind_span)
        stories = self.stories
        reaction = f.kinds == _REACTION
        linked = linked_kinds(f.kinds)
        found = 0
        for sid in islice(reversed(self._kinded), p.kind_candidates):
            st = stories.get(sid)
            if st is None or st.last < lo or st.first > hi or f.time - st.first > span:
                continue
            if st.topics.isdisjoint(f.topics) or (p.opinion_apart and st.opinion):
                continue
            if reaction:
                if st.kinds <= _REACTION:
                    continue  # a reaction reacts to a happening, not to another reaction
            elif not (st.kinds & linked) - _REACTION:
                continue
            if not any(a in st.actors for a in f.actors) or _look_alike(f, st):
                continue  # some actor or place in common: not a quake of the same hours
            if self._new_elsewhere(f, st):
                continue  # « de nouveaux bombardements »: a new happening, as in `decide`
            gap = abs(f.time - st.first)
            if "broken" in f.kinds and st.kinds & SETTLE_KINDS and "broken" not in st.kinds:
                continue  # a truce and its violation
            found += 1
            if best is None or gap < best[0]:
                best = (gap, sid)
        if best is None or (reaction and found > 1):
            return None  # a reaction to which of two happenings: apart
        return best[1]

    def _same_name(self, f: EventFeatures) -> int | None:
        """The profile's stream: the story of a topic and a specific name of the item's (a
        town, a summit city, a minister: `specific_names`) whose latest item is within
        `kind_window_slow` of it and first no more than `kind_span` before it, of a kind
        told with the item's when both have one, unless a look-alike guard keeps them apart
        (the nearest in time). The shared name is one a title names, the item's or one of the
        story's."""
        p = self.params
        named = (
            (sid, name)
            for name in f.names
            for sid in islice(reversed(self._named.get(name, {})), 8)
            if name in getattr(self.stories.get(sid), "names", ())
            # a name of a title, the item's or the story's: a lede's passing mention of a
            # town or a person (« il tentait de quitter … ») is no subject of its own
            and (name in f.title_names or name in self.stories[sid].title_names)
        )
        return self._nearest(f, named, p.kind_window_slow, p.kind_span)

    def _same_figure(self, f: EventFeatures) -> int | None:
        """The profile's stream: the story of a topic holding a figure of the item's title
        (« 32 prisonniers », `EventFeatures.figures`) within `max_gap`, under the guards of
        `_same_name`."""
        p = self.params
        figures = ["#" + n for n in f.figures if "#" + n in self.postings]
        numbered = (
            (sid, t)
            for t in figures
            for sid in self.postings[t][-8:]
            if t in getattr(self.stories.get(sid), "terms", ())
        )
        return self._nearest(f, numbered, p.max_gap, p.max_gap)

    def _nearest(
        self,
        f: EventFeatures,
        found: Iterable[tuple[int, str]],
        window: timedelta,
        span: timedelta,
    ) -> int | None:
        """Of the stories found by a shared clue, the one nearest in time whose latest item is
        within `window` of the item and first no more than `span` before it, of a shared
        topic and of kinds told together when both have one, unless a look-alike guard keeps
        them apart."""
        p = self.params
        lo, hi, span = self._reach(f, window, span)
        own = f.kinds - _REACTION
        linked = linked_kinds(own)
        best: tuple[timedelta, int] | None = None
        seen: set[int] = set()
        for sid, _clue in found:
            st = self.stories.get(sid)
            if st is None or sid in seen:
                continue
            seen.add(sid)
            if st.last < lo or st.first > hi or f.time - st.first > span:
                continue
            if st.topics.isdisjoint(f.topics) or (p.opinion_apart and st.opinion):
                continue
            theirs = st.kinds - _REACTION
            if own and theirs and not theirs & linked:
                continue  # a truce and the fighting of its town: two happenings
            if truce_and_violation(own, theirs):
                continue  # a truce and its violation
            if ("capture" in own) != ("capture" in theirs):
                continue  # the battle for a town, then its fall
            if _look_alike(f, st):
                continue
            if self._new_elsewhere(f, st):
                continue
            gap = abs(f.time - st.first)
            if best is None or gap < best[0]:
                best = (gap, sid)
        return None if best is None else best[1]

    def similarity(self, f: EventFeatures, story_id: int) -> float:
        """The score of an item against one story, at their distance in time (for tests and
        the evaluation; `decide` compares it with the bar of that distance)."""
        st = self.stories[story_id]
        frac = min(_gap(f, st, self.params.undated_slack) / self.params.far_after, 1.0)
        return self._score(self._query(f), st, frac)

    def _query(self, f: EventFeatures) -> _Query:
        idf = self._idfs(f.terms.keys() | f.title_terms)
        weights = {t: w * idf[t] for t, w in f.terms.items()}
        weights2 = {t: wi * idf[t] for t, wi in weights.items()}
        norm = math.sqrt(sum([wi * wi for wi in weights.values()]))
        title = {t: idf[t] ** 2 for t in f.title_terms}
        novel = frozenset([t for t, w2 in title.items() if w2 > 6.25 and t not in _PACKAGING])
        title_norm = math.sqrt(sum(title.values()))
        actors = f.actors
        happened = frozenset([t for t in weights2 if t[0] != "@" and t not in actors])
        title_happened = frozenset(
            [t for t in f.title_terms if t[0] not in "@#~" and t not in actors]
        )
        return _Query(
            f,
            weights,
            weights2,
            norm,
            title,
            title_norm,
            novel,
            f.vector,
            happened,
            title_happened,
        )

    def _score(self, q: _Query, st: StoryState, frac: float = 0.0) -> float:
        """The similarity of an item and a story; `frac` is how far apart in time they are
        (0: the same hours, 1: `far_after` or more): the bonuses that let other angles of
        one event join fade with it, the words alone must carry a next-day item."""
        p = self.params
        terms = st.terms
        dot = 0.0
        weights2 = q.weights2
        common = weights2.keys() & terms.keys()  # a set operation in C, not a loop
        for t in common:
            dot += weights2[t] * terms[t]
        sem = self._semantic(q, st)
        if not q.norm or (not dot and sem < p.sem_gate):
            return 0.0
        # Shared names alone are not one event: the same two capitals on the same day can be
        # a ceasefire violation and a prisoner exchange. Some word of what happened must be
        # shared too (an entity key or an actor's name does not count), or the item's words
        # must point the same way as the story's (different words for the same happening)
        # and some actor be shared (an event told in other words still names its places).
        shared = len(st.actors.keys() & q.f.actors)
        if q.happened.isdisjoint(common) and (sem < p.sem_gate or not shared):
            return 0.0
        if not st.norm:
            st.norm = self._norm(terms)
        cos = dot / (q.norm * st.norm) if st.norm else 0.0
        if p.title_mix:
            cos = (1.0 - p.title_mix) * cos + p.title_mix * self._title_cosine(q, st)
        coverage = 0.0
        if p.coverage_mix and self._titles_share_what_happened(q, st):
            # The share of the item's words that the story already holds: a story told from
            # several angles covers a new report of any of them (the cosine with the whole
            # story falls as angles accumulate). Only when the titles share a word of what
            # happened: a short item (a name and one line) is covered by anything.
            covered = 0.0  # summed in the order of `common`, as the dot product
            weights = q.weights
            for t in common:
                covered += weights[t] ** 2
            coverage = covered / (q.norm * q.norm)
        novel = len(q.novel) - len(terms.keys() & q.novel)
        return (
            cos
            + (1.0 - frac) * p.coverage_mix * coverage
            + (1.0 - p.sem_fade * frac) * p.sem_mix * max(sem - p.sem_floor, 0.0)
            + p.actor_bonus * min(shared, 3)
            - p.novel_penalty * min(max(novel - 2, 0), 2) * (1.0 - cos)
        )

    def _semantic(self, q: _Query, st: StoryState) -> float:
        """Cosine of the item's word-vector direction and the story's centroid (0: either
        has none)."""
        if q.vector is None:
            return 0.0
        unit = st.unit if st.unit is not None else _unit_centroid(st)
        # ndarray.dot: np.dot's product (PyArray_MatrixProduct2) without its dispatch
        return 0.0 if unit is None else float(q.vector.dot(unit))

    def _titles_share_what_happened(self, q: _Query, st: StoryState) -> bool:
        return not q.title_happened.isdisjoint(self._title_union(st))

    def _title_union(self, st: StoryState) -> frozenset[str]:
        if st.title_union is None:
            union = frozenset().union(*st.title_sigs) if st.title_sigs else frozenset()
            st.title_union = union
            n = math.log(len(self.stories) + 10) + 1.0
            df = self.df
            log1 = _LOG
            # the idfs as `_idfs` gives them, squared and summed in the union's order
            idf = [n - log1[df.get(t, 0)] for t in union]
            st.title_norm = math.sqrt(sum([v * v for v in idf]))
        return st.title_union

    def _title_cosine(self, q: _Query, st: StoryState) -> float:
        """Cosine (IDF² weights) of the item's title words and the story's titles' words."""
        union = self._title_union(st)
        if not q.title or not st.title_norm:
            return 0.0
        dot = sum([w2 for t, w2 in q.title.items() if t in union])
        return dot / (q.title_norm * st.title_norm) if dot else 0.0

    def _candidates(self, f: EventFeatures) -> list[int]:
        p = self.params
        df = self.df
        ranked = sorted([t for t in f.terms if t in df], key=df.__getitem__)[: p.lookup_terms]
        counts: dict[int, float] = {}
        for t in ranked:
            plist = self.postings[t]
            if len(plist) > 2 * df[t] + 16:
                plist = self._compact(t)
            w = f.terms[t]
            get = counts.get
            for sid in plist[-1 : -p.postings_scanned - 1 : -1]:
                counts[sid] = get(sid, 0.0) + w
        stories = self.stories
        live = [(w, sid) for sid, w in counts.items() if sid in stories]
        found = [sid for _, sid in heapq.nlargest(p.candidates, live)]
        if f.vector is not None and p.sem_candidates:
            found += self._semantic_candidates(f, f.vector, set(found))
        return found

    def _semantic_candidates(self, f: EventFeatures, vector: Vector, seen: set[int]) -> list[int]:
        """Stories told in other words: among the latest stories of the item's actors (its
        rarest few) and the latest stories of all, those whose centroid points the item's
        way (cosine ≥ sem_gate), best first. Bounded: at most actor_terms × actor_candidates
        + recent_candidates centroids, compared in one matrix product."""
        p = self.params
        df = self.df
        pool: dict[int, None] = {}
        own = f.actors
        actors = sorted(
            [t for t in f.terms if t in df and (t[0] == "@" or t in own)], key=df.__getitem__
        )
        for t in actors[: p.actor_terms]:
            plist = self.postings[t]
            if len(plist) > 2 * df[t] + 16:
                plist = self._compact(t)
            pool.update(dict.fromkeys(plist[-1 : -p.actor_candidates - 1 : -1]))
        pool.update(dict.fromkeys(islice(reversed(self._recent), p.recent_candidates)))
        stories = self.stories
        ids = []
        rows = []
        for sid in pool:
            st = stories.get(sid)
            if st is not None and sid not in seen:
                unit = st.unit if st.unit is not None else _unit_centroid(st)
                if unit is not None:
                    ids.append(sid)
                    rows.append(unit)
        if not ids:
            return []
        cos = np.array(rows) @ vector  # np.stack's matrix, without its Python loop
        best = (-cos).argsort()[: p.sem_candidates]  # np.argsort's own call
        return [ids[i] for i in best if cos[i] >= p.sem_gate]

    def _compact(self, term: str) -> list[int]:
        seen: set[int] = set()
        kept = []
        for sid in self.postings[term]:
            st = self.stories.get(sid)
            if st is not None and term in st.terms and sid not in seen:
                seen.add(sid)
                kept.append(sid)
        self.postings[term] = kept
        return kept

    # --- keeping the index up to date ----------------------------------------------------

    def add(self, story_id: int, f: EventFeatures) -> StoryState:
        """Record an item in a story: a new story, or one more item of an existing one."""
        st = self.stories.get(story_id)
        sig = frozenset(f.title_terms)
        if st is None:
            st = StoryState(
                id=story_id,
                first=f.time,
                last=f.time,
                terms={},
                actors=Counter(),
                years=set(),
                title_sigs=[],
                title_numbers=[],
                title_dates=[],
                items=0,
                opinion=f.opinion and f.body is None,
            )
            self.stories[story_id] = st
        st.first = min(st.first, f.time)
        st.last = max(st.last, f.time)
        st.opinion = st.opinion and f.opinion and f.body is None
        st.items += 1
        self._touch(story_id)
        terms = st.terms
        postings = self.postings
        df = self.df
        for t, w in f.terms.items():
            if t in terms:
                terms[t] += w
                continue
            # `_post`, inline
            plist = postings.get(t)
            if plist is None:
                postings[t] = [story_id]
            else:
                plist.append(story_id)
            n = df[t] = df.get(t, 0) + 1
            if n >= len(_LOG):
                _grow_log(n)
            terms[t] = 0.0 + w
        st.actors.update(f.actors)
        if f.vector is not None:
            if st.centroid is None or st.vectors <= 0:
                st.centroid, st.vectors = f.vector.astype(np.float32), 1
            else:
                st.vectors += 1
                moved = st.centroid + (f.vector - st.centroid) / st.vectors
                st.centroid = moved.astype(np.float32)
            st.unit = None
        st.years |= set(f.years)
        st.topics |= f.topics
        st.kinds |= f.kinds
        st.names |= f.names
        st.title_names |= f.title_names
        self._name(st.names, story_id)
        if st.kinds:
            self._kinded.pop(story_id, None)
            self._kinded[story_id] = None
        if len(st.title_sigs) < 8:
            st.title_sigs.append(sig)
            st.title_numbers.append(f.numbers)
            st.title_dates.append(f.dates)
            st.title_union = None
        self._trim(st)
        st.norm = 0.0
        return st

    def put(self, st: StoryState) -> None:
        """Insert or replace a story loaded from the database."""
        old = self.stories.get(st.id)
        if old is not None:
            for t in old.terms:
                if t not in st.terms:
                    self._unpost(t)
        for t in st.terms:
            if old is None or t not in old.terms:
                self._post(t, st.id)
        st.norm = 0.0
        st.title_union = None
        st.unit = None
        self.stories[st.id] = st
        # A story another process created or grew is as recent as one added here: without
        # this, the latest stories the meaning looks at were only this process's own.
        self._touch(st.id)
        self._kinded.pop(st.id, None)
        if st.kinds:
            self._kinded[st.id] = None
        if old is not None:
            self._unname(old.names - st.names, st.id)  # a name a split took away
        self._name(st.names, st.id)

    def _name(self, names: Iterable[str], story_id: int) -> None:
        """The story is the latest of each of its names (one entry a name)."""
        for name in names:
            ids = self._named.setdefault(name, {})
            ids.pop(story_id, None)
            ids[story_id] = None

    def _unname(self, names: Iterable[str], story_id: int) -> None:
        for name in names:
            ids = self._named.get(name)
            if ids is not None:
                ids.pop(story_id, None)
                if not ids:
                    del self._named[name]

    def _touch(self, story_id: int) -> None:
        """Mark a story as the latest added to (once in a row)."""
        if not self._recent or self._recent[-1] != story_id:
            self._recent.append(story_id)

    def evict(self, before: datetime) -> int:
        """Forget the stories whose latest item is older than `before`."""
        gone = [sid for sid, st in self.stories.items() if st.last < before]
        for sid in gone:
            self.remove(sid)
        return len(gone)

    def remove(self, story_id: int) -> None:
        st = self.stories.pop(story_id, None)
        self._kinded.pop(story_id, None)
        if st is not None:
            for t in st.terms:
                self._unpost(t)
            self._unname(st.names, story_id)

    def _post(self, term: str, sid: int) -> None:
        self.postings.setdefault(term, []).append(sid)
        n = self.df[term] = self.df.get(term, 0) + 1
        if n >= len(_LOG):
            _grow_log(n)

    def _unpost(self, term: str) -> None:
        n = self.df.get(term, 0) - 1
        if n > 0:
            self.df[term] = n
        else:
            self.df.pop(term, None)
            self.postings.pop(term, None)

    def _trim(self, st: StoryState) -> None:
        keep = self.params.centroid_terms
        if len(st.terms) <= keep:
            return
        terms = st.terms
        n = math.log(len(self.stories) + 10) + 1.0
        df = self.df
        log1 = _LOG
        # each term's weight × its idf, the idf as `_idfs` gives it
        weight = {t: w * (n - log1[df.get(t, 0)]) for t, w in terms.items()}
        ranked = sorted(terms, key=weight.__getitem__, reverse=True)
        postings = self.postings
        for t in ranked[keep:]:
            del terms[t]
            # `_unpost`, inline
            left = df.get(t, 0) - 1
            if left > 0:
                df[t] = left
            else:
                df.pop(t, None)
                postings.pop(t, None)


# log(df + 1) by document frequency: a table, since frequencies are small integers. `_post`
# keeps it longer than any frequency of any index, so a read is a plain list index.
_LOG: list[float] = [math.log(n + 1) for n in range(1024)]


def _grow_log(df: int) -> None:
    _LOG.extend(math.log(n + 1) for n in range(len(_LOG), max(df + 1, 2 * len(_LOG))))


def _is_figure(term: str) -> bool:
    """A term of a figure a figure join reads: two digits or more, no year (« #32 »)."""
    return len(term) >= 3 and term[0] == "#" and term[1:].isdigit() and not _YEAR.match(term[1:])


def _unit_centroid(st: StoryState) -> Vector | None:
    """The story's centroid normalised (cached until an item is added)."""
    if st.unit is None and st.centroid is not None:
        c = st.centroid
        norm = float(np.sqrt(c.dot(c)))  # what np.linalg.norm computes for a 1-D float array
        if norm:
            st.unit = (st.centroid / norm).astype(np.float32)
    return st.unit


def story_of(story_id: int, items: Sequence[EventFeatures], params: Params = DEFAULT) -> StoryState:
    """A story's state made again from its items' features alone, as an index holding only
    them would keep it: what a story becomes when an item is split off it (the story left
    behind, from its other items) and the new story the item opens (from the item)."""
    if not items:
        raise ValueError("a story has at least one item")
    index = EventIndex(params)
    st: StoryState | None = None
    for f in items:
        st = index.add(story_id, f)
    assert st is not None
    return st
