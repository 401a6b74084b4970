"""The knobs of the event decision (`Params`), their defaults and the MONITOR_GROUPING
settings (`grouping_params`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta


@dataclass(frozen=True)
class Params:
    """The knobs of the decision (tuned on the `tune` split of the evaluation set)."""

    join: float = 0.32  # score needed to join a story of the same hours
    join_far: float = 0.70  # score needed from `far_after` to `max_gap` from the story's items
    max_gap: timedelta = timedelta(hours=48)
    far_after: timedelta = timedelta(hours=24)  # the bar reaches join_far at this gap
    join_max: float = 0.80  # past far_after the bar goes on rising, to this at max_gap
    # A title naming a new happening (« nouvelles attaques », « nouvelle reine ») joins only
    # a story whose titles name it too; an item more than far_after after a story's first
    # item must share a title word outside its rubric (« Mort d'Elizabeth II : … »).
    fresh_guard: bool = True
    continuing_guard: bool = True
    # A title's attribution (« - Serge Tateossian 19/09/2022 - Source : Paris Match », a
    # community site's repost) is no word of what happened: dropped from the title's words.
    drop_byline: bool = True
    # A title that is a quotation and nothing else (after its rubric: « Attentat près de
    # Moscou : « La population russe semble condamnée… » ») heads an opinion piece, a
    # tribune's own event: it joins a story only as a near-identical copy.
    opinion_apart: bool = True
    # An undated item's time is when it was first seen: it was published then or earlier
    # (a feed's first poll brings its backlog), up to this much earlier for the decision.
    undated_slack: timedelta = timedelta(hours=48)
    actor_bonus: float = 0.05  # per shared actor, at most 3
    novel_penalty: float = 0.08  # per key title word the story never mentions, at most 2
    near_duplicate: float = 0.7  # title-signature Jaccard of near-identical copies
    lookup_terms: int = 6  # rarest terms of the item used to find candidates
    postings_scanned: int = 120  # most recent stories read per term
    candidates: int = 12  # stories scored, best by shared rare terms
    title_weight: float = 3.0
    title_mix: float = 0.3  # share of the titles' cosine in the similarity
    stem_chars: int = 40  # words cut to this many letters (6 was tried: suspension/suspendue)
    lede_chars: int = 600
    centroid_terms: int = 80  # terms kept per story (persisted with it)
    synonyms: bool = True  # the SYNONYMS classes count as terms
    numbers_as_terms: bool = True  # « 83 millions », « 28 colons »: a shared figure is a clue
    prefix_chars: int = 5  # a longer word's first letters are one more, lighter term
    prefix_weight: float = 0.5  # (libérés / libération, mystère / mystérieuse)
    coverage_mix: float = 0.3  # weight of the share of the item's words found in the story
    # Word vectors (monitor.wordvec): an item's direction against the story's centroid.
    semantic: bool = True  # False: lexical only (as when the vectors package is absent)
    sem_title_weight: float = 2.0  # the title's mean counts this many times the lede's
    sem_min_words: int = 3  # known words (rows) its title needs for an item to have a vector
    sem_mix: float = 1.0  # score += sem_mix × max(0, cosine − sem_floor), fading with the gap
    sem_floor: float = 0.55
    sem_fade: float = 1.0  # share of the semantic term gone at `far_after` from the story
    sem_gate: float = 0.8  # cosine that stands in for a shared word of what happened
    # Candidates in other words (the lexical lookup finds stories by shared rare terms):
    actor_terms: int = 3  # the item's rarest actors whose latest stories are looked at
    actor_candidates: int = 20  # latest stories per actor
    recent_candidates: int = 30  # latest stories of all
    sem_candidates: int = 2  # kept among those, best cosine first (≥ sem_gate)
    # The profile's stream (items given their matched topics): one topic, one kind of
    # happening (`event_kinds`, or kinds told together) and an actor join a story within these
    # times of its latest and first items.
    kind_window: timedelta = timedelta(hours=18)  # from the story's latest item
    kind_window_slow: timedelta = timedelta(hours=24)  # for an item of no fight or truce
    kind_span: timedelta = timedelta(hours=36)  # from its first: the next day, no later
    kind_candidates: int = 128  # latest stories of a kind looked at for it
    # A specific name (`specific_names`: a town, a summit city, a minister) and a topic in
    # common join within kind_window_slow of the story's latest item and kind_span of its first.
    name_join: bool = True
    # Then a figure of the title (two digits or more, no year: « 32 prisonniers ») a story of
    # a shared topic holds joins it within max_gap.
    number_join: bool = True
    # Off (MONITOR_GROUPING=strict): the profile's stream joins by words and copies only, no
    # kind, name or figure join (`grouping_params`).
    kind_join: bool = True
    # The learned join (monitor.events.pairs, trained by bench/train_pairs.py): when no rule
    # joins an item, the candidate the pair model finds likeliest one event with it joins if
    # its probability reaches pair_threshold (the guards still veto). On only with
    # MONITOR_GROUPING=learned: on the dense blind set it merged 3 more look-alike pairs than
    # the rules (22 → 25 of 98), past the rule written before it was judged.
    pair_join: bool = False
    pair_threshold: float = 0.8
    pair_kinded: int = 32  # latest stories of a kind the pair stage also weighs
    # a candidate it weighs shares a title word of what happened or a title's specific name
    # with the item, or their word vectors' cosine is at least this
    pair_semantic: float = 0.65


DEFAULT = Params()


def grouping_params(grouping: str) -> Params:
    """The decision's knobs for MONITOR_GROUPING: `wide` (the default: the profile's stream
    also joins by kind of happening, specific name and figure), `learned` (wide, and the
    learned join where no rule joins: more of an event's reports in one story, a few more
    look-alikes merged in a dense war stream) or `strict` (words and near-identical copies
    only: fewer joins of different happenings in a dense war stream, more alerts per event)."""
    if grouping == "strict":
        return replace(
            DEFAULT, kind_join=False, name_join=False, number_join=False, pair_join=False
        )
    if grouping == "learned":
        return replace(DEFAULT, pair_join=True)
    if grouping == "wide":
        return DEFAULT
    raise ValueError(f"unknown grouping {grouping!r} (wide, learned, strict)")
