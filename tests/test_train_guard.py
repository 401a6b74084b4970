"""bench/train_model.py refuses a held-out set by name. The file read here is a stand-in
written to tmp_path, so no held-out content is ever opened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import train_model


def test_train_model_refuses_the_held_out_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = {"title": "Trêve au Karabakh", "summary": "", "topics": [], "split": "tune"}
    for name in ("unseen_written_10.jsonl", "unseen_written_11.jsonl", "unseen_written_9.jsonl"):
        (tmp_path / name).write_text(json.dumps(row) + "\n", encoding="utf-8")
    monkeypatch.setattr(train_model, "DATA", tmp_path)
    for held_out in ("unseen_written_10.jsonl", "unseen_written_11.jsonl"):
        with pytest.raises(ValueError, match="held out"):
            train_model._written(held_out, "all")
    assert len(train_model._written("unseen_written_9.jsonl", "all")) == 1  # tune material
