"""The topic classifier: `classify(item, profile)` → Classification (topics, scores, evidence,
confidence): the profile's weighted rules, then the second-stage model beside it when there is
one."""

from __future__ import annotations

from monitor.classify.profile import Profile, default_profile_path, load_profile
from monitor.classify.scoring import Scorer
from monitor.types import Classification, Item

_scorers: dict[int, Scorer] = {}


def scorer_for(profile: Profile) -> Scorer:
    """The cached Scorer of a profile (its token cache is what makes scoring fast)."""
    s = _scorers.get(id(profile))
    if s is None or s.profile is not profile:
        s = _scorers[id(profile)] = Scorer(profile)
    return s


def classify(item: Item, profile: Profile) -> Classification:
    return scorer_for(profile).classify(item)


__all__ = ["Profile", "Scorer", "classify", "default_profile_path", "load_profile"]
