"""The tests of one item against one story that come before any score: their distance in
time, the look-alike guards (other years, dates, numbers, a word of a turn) that keep
different events apart, and near-identical copies, which join."""

from __future__ import annotations

from datetime import timedelta

from monitor.events.features import EventFeatures
from monitor.events.story import StoryState

# Title words of a turn in a story: a truce and its violation, talks and their failure, a
# plan and its cancellation are two events however many words they share. An item whose
# title has one the story never mentions does not join it. A denial (« Erevan dément toute
# frappe sur Gandja ») is not one: it is a reaction to the happening, the same event by the
# labelling guideline, and it was keeping reactions out of their story.
TURNS = frozenset(
    """viole violee violer violation rompu rompue rompt rupture echec echoue echouent
    annule annulee annuler annulation bafoue bafouee bafouer""".split()
)


def _gap(f: EventFeatures, st: StoryState, undated_slack: timedelta) -> timedelta:
    """Time between an item and a story's items (0 when it falls among them)."""
    t = f.time
    if t < st.first:
        return st.first - t
    if t > st.last:
        late = t - st.last
        return late if f.dated else max(late - undated_slack, timedelta(0))
    return timedelta(0)


def _look_alike(f: EventFeatures, st: StoryState) -> bool:
    """Signs of a different event that words cannot outweigh: other years named, other dates
    in the titles, or titles that read alike but carry other numbers (episode 1 / episode 2,
    « ce samedi 10 février » / « ce dimanche 11 février »)."""
    if f.years and st.years and not (f.years & st.years):
        return True
    turns = f.title_terms & TURNS
    if turns and any(t not in st.terms for t in turns):
        return True
    if f.dates and any(d and not (d & f.dates) for d in st.title_dates):
        return True
    if f.numbers:
        for sig, nums in zip(st.title_sigs, st.title_numbers, strict=False):
            if nums and not (nums & f.numbers) and _jaccard(sig, f.title_terms) >= 0.4:
                return True
    return False


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _near_duplicate(f: EventFeatures, st: StoryState, threshold: float) -> bool:
    sig = f.title_terms
    if len(sig) < 4:
        return False
    for other, nums in zip(st.title_sigs, st.title_numbers, strict=False):
        if not other:
            continue
        j = len(sig & other) / len(sig | other)
        if j >= threshold:
            if f.numbers and nums and not (f.numbers & nums):
                continue  # « épisode 1 » / « épisode 2 »
            return True
    return False
