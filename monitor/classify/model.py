"""The statistical second stage: a logistic regression per topic over the item's words and the
rules' evidence, loaded from a small JSON file beside the profile (`topics.yaml` →
`topics.model.json`) and applied with dict lookups only (no numpy at run time).

Features, the same at training and at run time (`monitor.classify.train` calls `features`):
- the folded, lightly stemmed words of the title and the lede, and each pair of neighbours
  ("cessez le", "le feu"), as present/absent;
- per topic u of the profile: `score:u`, the rule score's margin over its threshold divided by
  the threshold and clipped to [-2, 2]; `match:u`, 1 when the rules alone match u;
- per group g of the profile present in the title or the lede: `group:g` = 1.

Each topic's probability is a calibrated logistic: p = σ(a·(bias + Σ weights) + b), with (a, b)
fitted on out-of-fold predictions at training time, so `confidence >= 0.5` means the same for
every topic. The decision is then the model's, except far from the rule threshold: an item the
rules score at least `rules_above` over the threshold stays matched, one `rules_below` or more
under it stays unmatched (`band` in the file; both measured by cross-validation at training).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, reduce
from itertools import chain, pairwise
from operator import add
from pathlib import Path
from sys import intern
from typing import Any

from monitor.errors import ProfileError

FORMAT = 1
SCORE_CLIP = 2.0


def model_path_for(profile_path: Path) -> Path:
    """Where a profile's model lives: beside it, `topics.yaml` → `topics.model.json`."""
    return profile_path.with_name(profile_path.stem + ".model.json")


def ngrams(sts: Sequence[str]) -> set[str]:
    """Words and pairs of neighbouring words."""
    out = set(sts)
    out.update([f"{a} {b}" for a, b in pairwise(sts)])
    return out


def score_feature(score: float, threshold: float) -> float:
    """`score:u`: the rule score's margin over its threshold, relative to it, clipped."""
    margin = (score - threshold) / threshold if threshold > 0 else score - threshold
    return _clip(margin, SCORE_CLIP)


def _clip(x: float, limit: float) -> float:
    """`max(-limit, min(limit, x))`, without the builtins' argument parsing (the same value,
    NaN included: `min` keeps its first argument unless the second is smaller)."""
    x = x if x < limit else limit
    return x if x > -limit else -limit


def rule_features(
    scores: Mapping[str, float], thresholds: Mapping[str, float], groups: Iterable[str]
) -> dict[str, float]:
    feats: dict[str, float] = {}
    for u, score in scores.items():
        thr = thresholds[u]
        feats[f"score:{u}"] = score_feature(score, thr)
        if score >= thr:
            feats[f"match:{u}"] = 1.0
    for g in groups:
        feats[f"group:{g}"] = 1.0
    return feats


def features(
    words: set[str],
    scores: Mapping[str, float],
    thresholds: Mapping[str, float],
    groups: Iterable[str],
) -> dict[str, float]:
    """The whole feature vector as a dict (training, and tests of the fast path)."""
    feats = dict.fromkeys(words, 1.0)
    feats.update(rule_features(scores, thresholds, groups))
    return feats


@dataclass(frozen=True)
class TopicModel:
    bias: float
    slope: float  # Platt calibration of the logit: p = σ(slope·z + offset)
    offset: float
    rules_above: float  # rule margin (score − threshold) from which the rules alone decide yes
    rules_below: float  # ... and under −rules_below, no (inf: the model decides on that side)


@dataclass(frozen=True)
class Model:
    path: str
    topics: dict[str, TopicModel]
    # feature → ((topic index, weight), ...): one lookup per word serves every topic
    table: dict[str, tuple[tuple[int, float], ...]]
    order: tuple[str, ...]  # topic ids in index order
    profile_digest: str
    trained_on: dict[str, Any]

    def probabilities(
        self,
        words: set[str],
        scores: Mapping[str, float],
        thresholds: Mapping[str, float],
        groups: Iterable[str],
    ) -> dict[str, float]:
        """Calibrated probability per topic of the model."""
        z = list(self.biases)
        table = self.table
        for f in words:
            ws = table.get(f)
            if ws is not None:
                for i, w in ws:
                    z[i] += w
        return self._calibrated(z, scores, thresholds, groups)

    def probabilities_of_stems(
        self,
        runs: Sequence[Sequence[str]],
        scores: Mapping[str, float],
        thresholds: Mapping[str, float],
        groups: Iterable[str],
    ) -> dict[str, float]:
        """`probabilities` of the words of `ngrams` of each run of stems (their union), reading
        only those that have a weight, and each pair as two words (no text spelled out)."""
        found = self._word_features.intersection(chain(*runs, *map(pairwise, runs)))
        # Each topic's sum added one by one (`reduce`, not `sum`: the sum of floats is
        # compensated from Python 3.12, another result). The order of the words follows the
        # set's, as the loop before did: it may move the last bit of a raw probability from one
        # process to another, never a decision (checked under three hash seeds).
        z = [
            reduce(add, filter(None, map(ws.get, found)), bias)
            for ws, bias in zip(self._word_weights, self.biases, strict=True)
        ]
        return self._calibrated(z, scores, thresholds, groups)

    def _calibrated(
        self,
        z: list[float],
        scores: Mapping[str, float],
        thresholds: Mapping[str, float],
        groups: Iterable[str],
    ) -> dict[str, float]:
        """The rule features added to the words' logits, then each topic's calibration."""
        # The rule features, without building their names (`rule_features` spells them out).
        for u, score in scores.items():
            thr = thresholds[u]
            v = score_feature(score, thr)
            for i, w in self.score_weights.get(u, ()):
                z[i] += w * v
            if score >= thr:
                for i, w in self.match_weights.get(u, ()):
                    z[i] += w
        group_weights = self.group_weights
        for g in groups:
            for i, w in group_weights.get(g, ()):
                z[i] += w
        topics = self.topics
        return {
            t: sigmoid(topics[t].slope * z[i] + topics[t].offset) for i, t in enumerate(self.order)
        }

    @cached_property
    def _word_weights(self) -> tuple[dict[str | tuple[str, str], float], ...]:
        """Per topic: word, or pair of words as a tuple ("le feu" → ("le", "feu")) → weight.
        Rule features stay out (`score:u` …: no word has a colon), and so do zero weights
        (adding 0.0 changes nothing)."""
        out: tuple[dict[str | tuple[str, str], float], ...] = tuple({} for _ in self.order)
        for f, ws in self.table.items():
            if ":" in f:
                continue
            parts = f.split(" ")
            key: str | tuple[str, str]
            if len(parts) == 1:
                key = intern(f)
            elif len(parts) == 2:
                key = (intern(parts[0]), intern(parts[1]))
            else:
                continue  # not a word or a pair: `ngrams` never gives it
            for i, w in ws:
                if w:
                    out[i][key] = w
        return out

    @cached_property
    def _word_features(self) -> frozenset[str | tuple[str, str]]:
        return frozenset(k for ws in self._word_weights for k in ws)

    @cached_property
    def biases(self) -> tuple[float, ...]:
        return tuple(self.topics[t].bias for t in self.order)

    def _weights_of(self, prefix: str) -> dict[str, tuple[tuple[int, float], ...]]:
        n = len(prefix)
        return {f[n:]: ws for f, ws in self.table.items() if f.startswith(prefix)}

    @cached_property
    def score_weights(self) -> dict[str, tuple[tuple[int, float], ...]]:
        return self._weights_of("score:")

    @cached_property
    def match_weights(self) -> dict[str, tuple[tuple[int, float], ...]]:
        return self._weights_of("match:")

    @cached_property
    def group_weights(self) -> dict[str, tuple[tuple[int, float], ...]]:
        return self._weights_of("group:")


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-_clip(z, 60.0)))


def decide(p: float, margin: float, tm: TopicModel) -> bool:
    """The combined decision: the rules alone far from their threshold, the model near it."""
    if margin >= tm.rules_above:
        return True
    if margin <= -tm.rules_below:
        return False
    return p >= 0.5


def confidence_of(p: float, matched: bool) -> float:
    """The confidence reported for a decision: the model's probability, held on the side of
    the decision where the rules decided alone against it (a clear rule match the model
    doubts says 0.5, the least a match says; a clear rule miss 0.499), so that a confidence
    of 0.5 or more means "matched" for every topic and every item, as `min_confidence` reads
    it."""
    shown = round(p, 3)  # 0.4996 rounds to 0.5: hold it on the decision's side after rounding
    return max(shown, 0.5) if matched else min(shown, 0.499)


def model_to_json(model: Model) -> dict[str, Any]:
    weights: dict[str, dict[str, float]] = {t: {} for t in model.order}
    for f, ws in model.table.items():
        for i, w in ws:
            weights[model.order[i]][f] = w
    return {
        "format": FORMAT,
        "profile_digest": model.profile_digest,
        "trained_on": model.trained_on,
        "topics": {
            t: {
                "bias": tm.bias,
                "calibration": {"slope": tm.slope, "offset": tm.offset},
                "band": {
                    "rules_above": _finite(tm.rules_above),
                    "rules_below": _finite(tm.rules_below),
                },
                "weights": dict(sorted(weights[t].items())),
            }
            for t, tm in model.topics.items()
        },
    }


def _finite(x: float) -> float | None:
    """JSON has no infinity: null stands for "the rules never decide on that side"."""
    return None if math.isinf(x) else x


def _number(x: Any) -> float:
    return math.inf if x is None else float(x)


def model_from_json(data: Any, path: str) -> Model:
    try:
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        order = tuple(data["topics"])
        topics: dict[str, TopicModel] = {}
        table: dict[str, list[tuple[int, float]]] = {}
        for i, t in enumerate(order):
            td = data["topics"][t]
            topics[t] = TopicModel(
                float(td["bias"]),
                float(td["calibration"]["slope"]),
                float(td["calibration"]["offset"]),
                _number(td["band"]["rules_above"]),
                _number(td["band"]["rules_below"]),
            )
            for f, w in td["weights"].items():
                table.setdefault(str(f), []).append((i, float(w)))
        return Model(
            path,
            topics,
            {f: tuple(ws) for f, ws in table.items()},
            order,
            str(data.get("profile_digest", "")),
            dict(data.get("trained_on") or {}),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise ProfileError(f"{path}: not a topic model ({e})") from e


def load_model(path: Path) -> Model:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ProfileError(f"{path}: {e.strerror}") from e
    except ValueError as e:
        raise ProfileError(f"{path}: not JSON ({e})") from e
    return model_from_json(data, str(path))


def save_model(model: Model, path: Path) -> None:
    text = json.dumps(model_to_json(model), ensure_ascii=False, indent=1, sort_keys=False)
    path.write_text(text + "\n", encoding="utf-8")
