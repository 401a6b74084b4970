"""The eighth unseen set (tests/data/unseen_written_8.jsonl) is well formed and new text.

Written in round 6 by two writers who never saw the classifier, its rules or any other set,
each item labelled by the README's definitions and again by a second, independent labeller.
Held out: bench/train_model.py refuses it, and nothing here scores it."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
TOPICS = {"karabakh_ceasefire", "russian_mediation", "otsc"}


def _rows(name: str) -> list[dict[str, object]]:
    text = (DATA / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_items_are_labelled_by_the_definitions_shape() -> None:
    rows = _rows("unseen_written_8.jsonl")
    assert len(rows) == 214 and len({r["id"] for r in rows}) == 214
    for r in rows:
        topics = set(r["topics"])  # type: ignore[call-overload]
        assert topics <= TOPICS and r["split"] == "heldout" and r["title"], r["id"]
        assert "russian_mediation" not in topics or "karabakh_ceasefire" in topics, r["id"]
    positives = sum(bool(r["topics"]) for r in rows)
    assert 100 <= positives <= 130  # about half relevant, the rest mostly hard negatives


def test_no_title_or_summary_of_an_earlier_set_is_repeated() -> None:
    new = _rows("unseen_written_8.jsonl")
    earlier = [
        r
        for path in sorted(DATA.glob("*_written*.jsonl"))
        if path.name != "unseen_written_8.jsonl" and not path.name.startswith("event_")
        for r in _rows(path.name)
    ] + _rows("eval_items.jsonl")
    assert len(earlier) > 1500
    seen = {str(r["title"]).casefold() for r in earlier} | {
        str(r["summary"]).casefold() for r in earlier if r.get("summary")
    }
    assert not [r["id"] for r in new if str(r["title"]).casefold() in seen]
    assert not [r["id"] for r in new if str(r["summary"]).casefold() in seen]
