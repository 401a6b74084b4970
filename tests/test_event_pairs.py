"""The learned join (monitor/events/pairs.py): the shipped model, what it joins that the rules
leave apart, what it keeps apart, its switch, and its training script's refusal of the
judging sets."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench import train_pairs
from monitor.classify import load_profile
from monitor.events import EventIndex, Params, features, grouping_params, profile_aliases
from monitor.events.pairs import FEATURES, MODEL_PATH, PairModel, shipped
from tests.conftest import ROOT

ALIASES = profile_aliases(load_profile(ROOT / "config" / "topics.yaml"))
T0 = datetime(2022, 9, 13, 8, tzinfo=UTC)
KARABAKH = ("karabakh_ceasefire",)
RULES = Params()  # the default (wide): the rules alone
LEARNED = grouping_params("learned")  # MONITOR_GROUPING=learned: the pair stage on


def feat(title: str, lede: str, hours: float) -> Any:
    return features(title, lede, T0 + timedelta(hours=hours), ALIASES, topics=KARABAKH)


# An incursion, then ten hours later another outlet's report of Erevan's call for help: one
# event told from another angle, in other words (the rules' score is under the bar).
INCURSION = feat(
    "Des troupes azerbaïdjanaises entrent en territoire arménien",
    "Erevan dénonce une incursion de soldats de Bakou dans la région de Syunik.",
    0,
)
CALL = feat(
    "Syunik : l'Arménie appelle ses alliés à l'aide",
    "Erevan a demandé à l'OTSC de réagir à l'avancée des troupes azerbaïdjanaises.",
    10,
)
# A summit, then the next day another summit of the same two leaders elsewhere: two events
# whose words and vectors point the same way.
SOCHI = feat(
    "Poutine réunit Aliev et Pachinian à Sotchi",
    "Le président russe a accueilli les dirigeants azerbaïdjanais et arménien pour un sommet "
    "sur le Haut-Karabakh.",
    0,
)
BRUSSELS = feat(
    "Aliev et Pachinian réunis à Bruxelles par Charles Michel",
    "Le président du Conseil européen a reçu les dirigeants azerbaïdjanais et arménien pour "
    "relancer les négociations de paix.",
    19,
)


def test_the_shipped_model_loads_with_its_features() -> None:
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    assert data["features"] == list(FEATURES)
    model = shipped()
    assert len(model.coef) == len(FEATURES)
    assert all(math.isfinite(c) for c in (*model.coef, model.intercept))
    assert any(c != 0.0 for c in model.coef)
    assert 0.0 < model.probability(model.mean) < 1.0
    other = dict(data, features=[*FEATURES[:-1], "something else"])
    with pytest.raises(ValueError, match="other features"):
        PairModel.from_json(other)


def test_the_pair_stage_joins_a_paraphrase_the_rules_leave_apart() -> None:
    rules = EventIndex(RULES)
    rules.add(1, INCURSION)
    assert rules.decide(CALL).story_id is None  # the rules alone: a second alert
    index = EventIndex(LEARNED)
    index.add(1, INCURSION)
    d = index.decide(CALL)
    assert d.story_id == 1 and d.reason == "pair"
    assert d.score >= LEARNED.pair_threshold


def test_the_pair_stage_keeps_the_next_summit_apart() -> None:
    index = EventIndex(LEARNED)
    index.add(1, SOCHI)
    rows = index.pair_rows(BRUSSELS)
    assert [sid for sid, _ in rows] == [1]  # the model weighs it…
    assert shipped().probability(rows[0][1]) < LEARNED.pair_threshold
    assert index.decide(BRUSSELS).story_id is None  # …and keeps it apart


def test_a_guard_vetoes_the_model() -> None:
    """« de nouvelles attaques » the story never names: the new-happening guard keeps the
    item off the pair stage's candidates, whatever the model would say."""
    index = EventIndex(LEARNED)
    index.add(1, INCURSION)
    fresh = feat(
        "Syunik : de nouvelles attaques contre les positions arméniennes",
        "Erevan a demandé à l'OTSC de réagir à l'avancée des troupes azerbaïdjanaises.",
        10,
    )
    assert index.pair_rows(fresh) == []
    assert index.decide(fresh).story_id is None


def test_only_learned_grouping_turns_the_pair_stage_on() -> None:
    assert LEARNED.pair_join is True and Params().pair_join is False
    assert grouping_params("wide") == Params()
    strict = grouping_params("strict")
    assert strict.pair_join is False
    for params in (strict, RULES):
        index = EventIndex(params)
        index.add(1, INCURSION)
        assert index.decide(CALL).story_id is None


def test_training_refuses_the_judging_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_args: object) -> object:
        raise AssertionError("a set was loaded")

    monkeypatch.setattr(train_pairs, "load_streams", never)
    for name in ("blind5", "blind6", "test", "all", "BLIND5", "event_blind6_written.jsonl"):
        with pytest.raises(train_pairs.HeldOutError, match="held out"):
            train_pairs.refuse_held_out([name])
        assert train_pairs.main(["--sets", name, "--no-write"]) == 2
    assert not any("5" in n or "6" in n or "test" in n for n in train_pairs.TUNE_SETS)
