"""Training the second stage (`monitor profile train`): a logistic regression per topic over the
features of `monitor.classify.model`, fitted with scikit-learn (an extra: `pip install
'monitor[train]'`; running a trained model needs nothing but the standard library).

Per topic:
1. the word features kept are those of at least `min_df` training items; rule features are
   scaled up by `rule_scale` before fitting so the L2 penalty holds them back less than words;
2. out-of-fold logits (stratified k-fold) give the Platt calibration (slope, offset) and choose
   the band around the rule threshold where the model decides (`BANDS`: among the bands within
   `BAND_TOLERANCE` of the fewest out-of-fold errors, the widest, so that a one-error difference
   cannot swing it to a narrow band), the rules deciding alone outside it;
3. the final fit on every example gives the weights; words under `min_weight` are dropped to
   keep the file small.
`cross_validate` runs the whole procedure inside each outer fold and reports rules alone and
rules + model on the items it held out.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.classify.model import Model, TopicModel, decide, features, sigmoid
from monitor.classify.profile import Profile
from monitor.classify.scoring import Scorer
from monitor.errors import InputError
from monitor.text import clean_text
from monitor.types import Item

# (rules_above, rules_below) in rule-score points around the threshold; inf: the model decides
# on that side whatever the rules say.
INF = math.inf
BANDS: tuple[tuple[float, float], ...] = tuple(
    sorted(
        ((a, b) for a in (0.5, 1.5, 3.0, 6.0, INF) for b in (0.5, 1.5, 3.0, 6.0, INF)),
        key=lambda ab: (ab[0] + ab[1], ab),
    )
)


@dataclass(frozen=True)
class Example:
    title: str
    summary: str
    topics: frozenset[str]
    source: str = ""  # where it came from (file:line, feedback story …), for reports
    content: str = ""


@dataclass(frozen=True)
class Settings:
    c: float = 1.0  # inverse L2 strength of scikit-learn's LogisticRegression
    rule_scale: float = 3.0
    min_df: int = 2
    min_weight: float = 0.02
    folds: int = 5
    seed: int = 0


@dataclass
class Vectors:
    """Each example's features, from the rules alone (no model) of the profile."""

    feats: list[dict[str, float]]
    margins: list[dict[str, float]]  # rule score − threshold per topic
    labels: list[frozenset[str]]
    sources: list[str] = field(default_factory=list)


def read_examples(path: Path) -> list[Example]:
    """Labelled JSON Lines: title, summary, topics (a list of topic ids; empty: none)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from e
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise InputError(f"{path}:{n}: not JSON ({e})") from e
        topics = obj.get("topics") if isinstance(obj, dict) else None
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise InputError(f"{path}:{n}: needs 'topics', a list of topic ids")
        title, summary = obj.get("title") or "", obj.get("summary") or ""
        if not isinstance(title, str) or not isinstance(summary, str) or not (title or summary):
            raise InputError(f"{path}:{n}: needs a 'title' or a 'summary' (text)")
        out.append(Example(title, summary, frozenset(topics), f"{path.name}:{n}"))
    return out


def vectorise(profile: Profile, examples: Sequence[Example]) -> Vectors:
    scorer = Scorer(profile, use_model=False)
    thresholds = {tid: t.threshold for tid, t in profile.topics.items()}
    v = Vectors([], [], [], [])
    for ex in examples:
        item = Item(
            key="",
            guid=None,
            link=None,
            title=clean_text(ex.title, 500),
            summary=clean_text(ex.summary, 4000),
            content=clean_text(ex.content),
        )
        r = scorer.rules(item, with_words=True)
        v.feats.append(features(r.words, r.scores, thresholds, r.groups))
        v.margins.append({t: r.scores[t] - thresholds[t] for t in thresholds})
        v.labels.append(ex.topics)
        v.sources.append(ex.source)
    return v


def _subset(v: Vectors, idx: Sequence[int]) -> Vectors:
    return Vectors(
        [v.feats[i] for i in idx],
        [v.margins[i] for i in idx],
        [v.labels[i] for i in idx],
        [v.sources[i] for i in idx],
    )


def _is_rule(name: str) -> bool:
    return name.startswith(("score:", "match:", "group:"))


class _Fit:
    """One topic's logistic regression on a set of vectors (scikit-learn inside)."""

    def __init__(self, v: Vectors, topic: str, s: Settings):
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression

        df: Counter[str] = Counter(f for feats in v.feats for f in feats if not _is_rule(f))
        self.keep = {f for f, n in df.items() if n >= s.min_df}
        self.scale = s.rule_scale
        self.vec = DictVectorizer()
        x = _int32(self.vec.fit_transform([self._row(f) for f in v.feats]))
        y = [int(topic in labels) for labels in v.labels]
        self.constant: float | None = None
        if len(set(y)) < 2:  # nothing to learn: every example says the same
            self.constant = 6.0 if y and y[0] else -6.0
            return
        self.lr = LogisticRegression(C=s.c, solver="liblinear", max_iter=1000)
        self.lr.fit(x, y)

    def _row(self, feats: dict[str, float]) -> dict[str, float]:
        return {
            f: (value * self.scale if _is_rule(f) else value)
            for f, value in feats.items()
            if f in self.keep or _is_rule(f)
        }

    def logits(self, feats: Sequence[dict[str, float]]) -> list[float]:
        if self.constant is not None:
            return [self.constant] * len(feats)
        x = _int32(self.vec.transform([self._row(f) for f in feats]))
        return [float(z) for z in self.lr.decision_function(x)]

    def weights(self, min_weight: float) -> tuple[float, dict[str, float]]:
        if self.constant is not None:
            return self.constant, {}
        out = {}
        for name, w in zip(self.vec.get_feature_names_out(), self.lr.coef_[0], strict=True):
            w = float(w) * (self.scale if _is_rule(name) else 1.0)
            if abs(w) >= min_weight or _is_rule(name):
                out[str(name)] = round(w, 4)
        return round(float(self.lr.intercept_[0]), 4), out


def _int32(x: Any) -> Any:
    """liblinear takes 32-bit sparse indices only; DictVectorizer may build 64-bit ones."""
    x = x.tocsr()
    x.indices = x.indices.astype("int32")
    x.indptr = x.indptr.astype("int32")
    return x


def _folds(v: Vectors, k: int, seed: int) -> list[tuple[list[int], list[int]]]:
    from sklearn.model_selection import StratifiedKFold

    # Stratified by the set of topics, so every fold holds some of each.
    y = ["|".join(sorted(labels)) for labels in v.labels]
    counts = Counter(y)
    y = [label if counts[label] >= k else "rare" for label in y]
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(list(map(int, a)), list(map(int, b))) for a, b in skf.split([[0]] * len(y), y)]


def fit_platt(zs: Sequence[float], ys: Sequence[int]) -> tuple[float, float]:
    """Calibration of logits into probabilities (Platt, with his smoothed targets)."""
    pos = sum(ys)
    neg = len(ys) - pos
    hi, lo = (pos + 1) / (pos + 2), 1 / (neg + 2)
    ts = [hi if y else lo for y in ys]
    a, b = 1.0, 0.0
    for _ in range(100):
        ga = gb = haa = hab = hbb = 0.0
        for z, t in zip(zs, ts, strict=True):
            p = sigmoid(a * z + b)
            w = max(p * (1 - p), 1e-12)
            ga += (p - t) * z
            gb += p - t
            haa += w * z * z
            hab += w * z
            hbb += w
        det = haa * hbb - hab * hab
        if abs(det) < 1e-12:
            break
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        a, b = a - da, b - db
        if abs(da) < 1e-9 and abs(db) < 1e-9:
            break
    return a, b


# Out-of-fold error counts this close to the fewest are fold noise (a few items change sides
# between retrainings on slightly different data), so they count as a tie: the fewest errors,
# plus this share of the examples (at least one error).
BAND_TOLERANCE = 0.002


def band_errors(
    probs: Sequence[float], margins: Sequence[float], ys: Sequence[int]
) -> dict[tuple[float, float], int]:
    """Out-of-fold errors of the combined decision for every band of `BANDS`."""
    out = {}
    for above, below in BANDS:
        tm = TopicModel(0.0, 1.0, 0.0, above, below)
        out[(above, below)] = sum(
            decide(p, m, tm) != bool(y) for p, m, y in zip(probs, margins, ys, strict=True)
        )
    return out


def choose_band(
    errors: Mapping[tuple[float, float], int], examples: int, tolerance: float = BAND_TOLERANCE
) -> tuple[float, float]:
    """The band where the model decides: among the bands within `tolerance` of the fewest
    errors, the widest above the threshold (then below it). Choosing the narrowest band with
    the fewest errors made the choice jump (mediation: rules_above 3.0 → 0.5 between two
    retrainings for one error), and a narrow band above the threshold lets every rule match
    there stand, false alerts included. The band above stays finite: a rule score far above
    the threshold is a match whatever the model says (the alert's reasons are the rules'), as
    "The second stage" in the README says; cross-validation scores the capped and the
    unbounded choice the same (round 6)."""
    finite = [band for band in BANDS if band[0] < INF]
    fewest = min(errors[band] for band in finite)
    slack = max(1, round(tolerance * examples))
    near = [band for band in finite if errors[band] <= fewest + slack]
    return max(near, key=lambda band: (band[0], band[1]))


def train_model(
    profile: Profile,
    examples: Sequence[Example],
    s: Settings = Settings(),
    *,
    vectors: Vectors | None = None,
    trained_on: dict[str, Any] | None = None,
) -> Model:
    """A model for every topic of the profile, from labelled examples."""
    v = vectors if vectors is not None else vectorise(profile, examples)
    if not v.feats:
        raise InputError("no labelled examples to train on")
    order = tuple(profile.topics)
    folds = _folds(v, s.folds, s.seed) if len(v.feats) >= 2 * s.folds else []
    topics: dict[str, TopicModel] = {}
    table: dict[str, list[tuple[int, float]]] = {}
    for i, t in enumerate(order):
        ys = [int(t in labels) for labels in v.labels]
        oof = [0.0] * len(ys)
        for train_idx, test_idx in folds:
            inner = _Fit(_subset(v, train_idx), t, s)
            for j, z in zip(test_idx, inner.logits([v.feats[j] for j in test_idx]), strict=True):
                oof[j] = z
        if folds and 0 < sum(ys) < len(ys):
            slope, offset = fit_platt(oof, ys)
            probs = [sigmoid(slope * z + offset) for z in oof]
            errors = band_errors(probs, [m[t] for m in v.margins], ys)
            above, below = choose_band(errors, len(ys))
        else:  # too few examples to hold any out: the model's own probabilities, rules outside
            slope, offset, above, below = 1.0, 0.0, 0.5, 0.5
        bias, weights = _Fit(v, t, s).weights(s.min_weight)
        topics[t] = TopicModel(bias, round(slope, 4), round(offset, 4), above, below)
        for f, w in weights.items():
            table.setdefault(f, []).append((i, w))
    return Model(
        path="",
        topics=topics,
        table={f: tuple(ws) for f, ws in sorted(table.items())},
        order=order,
        profile_digest=profile.digest,
        trained_on={**(trained_on or {}), "examples": len(v.feats)},
    )


@dataclass(frozen=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, truth: bool, pred: bool) -> Counts:
        return Counts(
            self.tp + (truth and pred),
            self.fp + (pred and not truth),
            self.fn + (truth and not pred),
        )

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def predict(model: Model, profile: Profile, v: Vectors) -> list[frozenset[str]]:
    """What rules + model decide for vectorised examples (the run-time decision, implied
    topics included)."""
    out = []
    for feats, margins in zip(v.feats, v.margins, strict=True):
        words = {f for f in feats if not _is_rule(f)}
        scores = {t: margins[t] + profile.topics[t].threshold for t in margins}
        groups = [f[6:] for f in feats if f.startswith("group:")]
        thresholds = {t: profile.topics[t].threshold for t in margins}
        probs = model.probabilities(words, scores, thresholds, groups)
        got = {t for t, tm in model.topics.items() if decide(probs[t], margins[t], tm)}
        got |= {t for t in margins if t not in model.topics and margins[t] >= 0}
        out.append(_implied(profile, got))
    return out


def rules_only(profile: Profile, v: Vectors) -> list[frozenset[str]]:
    return [_implied(profile, {t for t, m in margins.items() if m >= 0}) for margins in v.margins]


def _implied(profile: Profile, got: set[str]) -> frozenset[str]:
    for t in list(got):
        got.update(profile.topics[t].implies)
    return frozenset(got)


def score_predictions(
    labels: Iterable[frozenset[str]], preds: Iterable[frozenset[str]], topics: Sequence[str]
) -> dict[str, Counts]:
    counts = {t: Counts() for t in (*topics, "relevance")}
    for truth, pred in zip(labels, preds, strict=True):
        for t in topics:
            counts[t] = counts[t].add(t in truth, t in pred)
        counts["relevance"] = counts["relevance"].add(bool(truth), bool(pred))
    return counts


def cross_validate(
    profile: Profile, examples: Sequence[Example], s: Settings = Settings()
) -> tuple[Vectors, list[frozenset[str]], list[frozenset[str]]]:
    """Out-of-fold decisions of rules alone and of rules + model (the whole training,
    calibration and band choice included, run inside each outer fold)."""
    v = vectorise(profile, examples)
    combined: list[frozenset[str]] = [frozenset()] * len(v.feats)
    for train_idx, test_idx in _folds(v, s.folds, s.seed + 1):
        model = train_model(profile, [], s, vectors=_subset(v, train_idx))
        for j, pred in zip(test_idx, predict(model, profile, _subset(v, test_idx)), strict=True):
            combined[j] = pred
    return v, rules_only(profile, v), combined
