"""The learned join (`PairModel`): when no rule joins an item, a logistic regression over a
fixed feature vector of (item, candidate story) — the similarity scores the rules compute, the
gap in time, the names, kinds, figures and topics they share — says how likely the two report
one event. Trained by bench/train_pairs.py on tune material only; its coefficients ship as
`pairs.model.json` beside this module and are read once. The look-alike guards are applied
before it (`EventIndex`): a guard that fires vetoes the model.

Pure: `pair_vector` computes the features from numbers the index has already computed and the
two sides' features; `PairModel.probability` is a dot product and a sigmoid."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from monitor.events.features import EventFeatures
from monitor.events.kinds import _REACTION, linked_kinds
from monitor.events.story import StoryState

MODEL_PATH = Path(__file__).with_name("pairs.model.json")

# The features' names, in the order of the vector (the model file names them too: a model
# trained on other features is refused).
FEATURES: tuple[str, ...] = (
    "score",  # the rules' similarity (`EventIndex._score`) at the gap
    "margin",  # score − the bar at the gap (negative: the rules left them apart)
    "title_cosine",  # titles' words, IDF² weights
    "semantic",  # word-vector cosine of the item and the story's centroid (0: none)
    "no_vector",  # either side has no vector
    "gap_days",  # hours apart / 24, at most 2
    "undated",  # the item's time is when it was first seen
    "actors",  # shared actors (names, the profile's entities), log(1 + n)
    "names",  # shared specific names, log(1 + n)
    "title_names",  # shared specific names a title names (the item's or the story's)
    "title_words",  # title words of what happened shared with the story's titles, log(1 + n)
    "figure",  # a figure of the item's title the story holds
    "kinds_linked",  # both have kinds of happening, told together
    "kinds_apart",  # both have kinds, none told together
    "reaction",  # the item is a reaction only
    "topics",  # a topic in common
    "names_clash",  # both titles name specific names, none the other side holds
    "size",  # the story's items, log(1 + n)
    "fresh",  # the item's title calls a happening new (guarded: one the story names too)
    "novel",  # the item's rare title words the story never holds, log(1 + n)
    "numbers_clash",  # title numbers on both sides, none shared
    "age_days",  # hours from the story's first item to the item / 24, at most 2
)


@dataclass(frozen=True)
class PairModel:
    """A logistic regression over standardised `FEATURES`."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def probability(self, x: Sequence[float]) -> float:
        z = self.intercept
        for v, m, s, c in zip(x, self.mean, self.scale, self.coef, strict=True):
            z += c * (v - m) / s
        return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0

    def as_json(self) -> dict[str, object]:
        """The stored form, to 6 decimals (a retraining writes the same bytes)."""
        return {
            "features": list(FEATURES),
            "mean": [round(v, 6) for v in self.mean],
            "scale": [round(v, 6) for v in self.scale],
            "coef": [round(v, 6) for v in self.coef],
            "intercept": round(self.intercept, 6),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> PairModel:
        if data.get("features") != list(FEATURES):
            raise ValueError("the pair model was trained on other features")
        n = len(FEATURES)

        def floats(key: str) -> tuple[float, ...]:
            values = data.get(key)
            if not isinstance(values, list) or len(values) != n:
                raise ValueError(f"the pair model's {key} is not {n} numbers")
            out = tuple(float(v) for v in values)
            if not all(math.isfinite(v) for v in out):
                raise ValueError(f"the pair model's {key} holds a number that is not finite")
            return out

        scale = floats("scale")
        if any(s <= 0 for s in scale):
            raise ValueError("the pair model's scales must be positive")
        intercept = data.get("intercept")
        if not isinstance(intercept, (int, float)) or not math.isfinite(intercept):
            raise ValueError("the pair model's intercept is not a number")
        return cls(floats("mean"), scale, floats("coef"), float(intercept))


@cache
def shipped() -> PairModel:
    """The model shipped with the package (read once)."""
    return PairModel.from_json(json.loads(MODEL_PATH.read_text(encoding="utf-8")))


def pair_vector(
    f: EventFeatures,
    st: StoryState,
    *,
    score: float,
    bar: float,
    title_cosine: float,
    semantic: float,
    gap_hours: float,
    title_union: frozenset[str],
    novel: int,
) -> list[float]:
    """The features of an item against a candidate story, in the order of `FEATURES`."""
    actors = sum(1 for a in f.actors if a in st.actors)
    names = f.names & st.names
    title_names = sum(1 for n in names if n in f.title_names or n in st.title_names)
    words = sum(
        1 for t in f.title_terms if t in title_union and t[0] not in "@#~" and t not in f.actors
    )
    figure = any("#" + n in st.terms for n in f.figures)
    own, theirs = f.kinds - _REACTION, st.kinds - _REACTION
    linked = bool(own and theirs and theirs & linked_kinds(own))
    return [
        max(min(score, 2.0), -1.0),
        max(min(score - bar, 1.5), -1.5),
        title_cosine,
        semantic,
        float(f.vector is None or st.centroid is None),
        min(gap_hours / 24.0, 2.0),
        float(not f.dated),
        math.log1p(actors),
        math.log1p(len(names)),
        math.log1p(title_names),
        math.log1p(words),
        float(figure),
        float(linked),
        float(bool(own and theirs) and not linked),
        float(f.kinds == _REACTION),
        float(bool(f.topics & st.topics)),
        float(
            bool(f.title_names and st.title_names)
            and f.title_names.isdisjoint(st.names)
            and st.title_names.isdisjoint(f.names)
        ),
        math.log1p(st.items),
        float(bool(f.fresh)),
        math.log1p(novel),
        float(bool(f.numbers) and any(n and not (n & f.numbers) for n in st.title_numbers)),
        min(max((f.time - st.first).total_seconds() / 86400.0, 0.0), 2.0),
    ]
