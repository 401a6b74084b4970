"""A story as the index holds it (`StoryState`) and as it is stored (its `features` column,
its centroid's encoding), and what a story is named after (`StoryName`, `story_name`)."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from monitor import wordvec
from monitor.events.features import specific_names
from monitor.text import signature
from monitor.wordvec import Vector


@dataclass
class StoryState:
    """A story as the index holds it: its centroid and what look-alike checks need."""

    id: int
    first: datetime
    last: datetime
    terms: dict[str, float]
    actors: Counter[str]
    years: set[int]
    title_sigs: list[frozenset[str]]  # a few titles' signatures (near-identical copies)
    title_numbers: list[frozenset[str]]
    title_dates: list[frozenset[str]]
    items: int = 1
    norm: float = 0.0  # cached norm of the centroid (0: to compute)
    title_union: frozenset[str] | None = None  # cached union of title_sigs
    title_norm: float = 0.0
    centroid: Vector | None = None  # mean of the items' unit vectors (None: none had one)
    vectors: int = 0  # items in the centroid
    unit: Vector | None = field(default=None, repr=False)  # cached centroid / its norm
    topics: set[str] = field(default_factory=set)  # the profile's topics of its items
    kinds: set[str] = field(default_factory=set)  # their kinds of happening
    names: set[str] = field(default_factory=set)  # their specific names' keys
    title_names: set[str] = field(default_factory=set)  # those of them a title names
    # every item of it is an opinion piece titled by a quotation alone, no rubric before it
    # (« « Quand on s'attaquera au Syunik… » »): it takes near-identical copies only. A
    # rubric names the event the quotation is about (« Cancer de Charles III : « … » »).
    opinion: bool = False

    def as_features(self) -> dict[str, object]:
        """The persisted form (the `features` column of a story)."""
        out: dict[str, object] = {
            "terms": {t: round(w, 3) for t, w in self.terms.items()},
            "actors": dict(self.actors),
            "years": sorted(self.years),
            "titles": [sorted(s) for s in self.title_sigs],
            "numbers": [sorted(n) for n in self.title_numbers],
            "dates": [sorted(d) for d in self.title_dates],
            "items": self.items,
        }
        if self.centroid is not None:
            out["vec"] = encode_vector(self.centroid)
            out["vec_items"] = self.vectors
        if self.topics or self.kinds:
            out["topics"] = sorted(self.topics)
            out["kinds"] = sorted(self.kinds)
            out["names"] = sorted(self.names)  # even none: no names is not a story stored before
            out["title_names"] = sorted(self.title_names)
        if self.opinion:
            out["opinion"] = True
        return out

    @classmethod
    def from_features(
        cls, story_id: int, first: datetime, last: datetime, data: Mapping[str, object]
    ) -> StoryState:
        terms = data.get("terms") or {}
        actors = data.get("actors") or {}
        assert isinstance(terms, dict) and isinstance(actors, dict)
        names = {str(k) for k in _list(data.get("names"))}
        if "names" not in data and data.get("topics") and data.get("opinion") is not True:
            names = set(specific_names(map(str, actors)))  # stored before names were
        title_sigs = [frozenset(map(str, _list(s))) for s in _list(data.get("titles"))]
        if "title_names" in data:
            title_names = {str(k) for k in _list(data.get("title_names"))}
        else:  # stored before them: the names its titles' words begin with
            title_names = {n for n in names if any(t.startswith(n) for s in title_sigs for t in s)}
        return cls(
            id=story_id,
            first=first,
            last=last,
            terms={str(k): float(v) for k, v in terms.items()},
            actors=Counter({str(k): int(v) for k, v in actors.items()}),
            years={int(str(y)) for y in _list(data.get("years"))},
            title_sigs=title_sigs,
            title_numbers=[frozenset(map(str, _list(s))) for s in _list(data.get("numbers"))],
            title_dates=[frozenset(map(str, _list(s))) for s in _list(data.get("dates"))],
            items=int(str(data.get("items") or 1)),
            centroid=decode_vector(data.get("vec")),
            vectors=int(str(data.get("vec_items") or 0)),
            topics={str(t) for t in _list(data.get("topics"))},
            kinds={str(k) for k in _list(data.get("kinds"))},
            names=names,
            title_names=title_names,
            opinion=data.get("opinion") is True,
        )


@dataclass(frozen=True)
class StoryName:
    """What a story is named after: an item's title and the signatures of its title and lede
    (near-identical copies are found by them)."""

    title: str
    title_signature: str
    body_signature: str


def story_name(title: str, summary: str) -> StoryName:
    """A story named after an item: the story a poll opens for it, or the story a split leaves
    behind, named after its next item."""
    return StoryName(
        title=title[:500],
        title_signature=" ".join(sorted(signature(title))),
        body_signature=" ".join(sorted(signature(summary[:600]))),
    )


def encode_vector(v: Vector) -> str:
    """A vector as base64 of its float16 values (600 bytes for 300 dimensions, 800 in text)."""
    return base64.b64encode(np.asarray(v, dtype="<f2").tobytes()).decode("ascii")


def decode_vector(data: object) -> Vector | None:
    """`encode_vector`'s inverse; None for a missing or malformed value (stories stored before
    the vectors, or by a build with another dimension)."""
    if not isinstance(data, str) or not data:
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        return None
    if len(raw) != 2 * wordvec.DIMS:
        return None
    out: Vector = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    return out


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []
