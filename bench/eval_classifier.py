"""Classifier quality: precision, recall and F1 on the labelled evaluation set.

    python bench/eval_classifier.py [--split tune|test|all] [--profile config/topics.yaml] [--errors]

The set (tests/data/eval_items.jsonl) was written for this project; its `split` field keeps
two thirds for tuning the profile and one third held out for reporting.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.classify import Scorer, load_profile  # noqa: E402
from monitor.text import clean_text  # noqa: E402
from monitor.types import Item  # noqa: E402

TOPICS = ("karabakh_ceasefire", "russian_mediation", "otsc")


def load_set(path: Path, split: str) -> list[dict]:
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return [r for r in rows if split == "all" or r["split"] == split]


def evaluate(rows: list[dict], profile_path: Path) -> tuple[dict[str, dict[str, float]], list[str]]:
    scorer = Scorer(load_profile(profile_path))
    counts = {t: {"tp": 0, "fp": 0, "fn": 0} for t in (*TOPICS, "relevance")}
    errors = []
    for r in rows:
        item = Item(
            key=r["id"],
            guid=None,
            link=None,
            title=clean_text(r["title"]),
            summary=clean_text(r.get("summary", "")),
        )
        got = set(scorer.classify(item).topics)
        want = set(r["topics"])
        for t in TOPICS:
            if t in got and t in want:
                counts[t]["tp"] += 1
            elif t in got:
                counts[t]["fp"] += 1
                errors.append(f"FP {t:20} {r['id']} {r['title']}")
            elif t in want:
                counts[t]["fn"] += 1
                errors.append(f"FN {t:20} {r['id']} {r['title']}")
        rel = counts["relevance"]
        if got and want:
            rel["tp"] += 1
        elif got:
            rel["fp"] += 1
        elif want:
            rel["fn"] += 1
    metrics = {}
    for t, c in counts.items():
        p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        rc = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
        metrics[t] = {"precision": p, "recall": rc, "f1": f1, "support": c["tp"] + c["fn"]}
    return metrics, errors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="test", choices=["tune", "test", "all"])
    ap.add_argument("--profile", default=str(ROOT / "config" / "topics.yaml"))
    ap.add_argument("--data", default=str(ROOT / "tests" / "data" / "eval_items.jsonl"))
    ap.add_argument("--errors", action="store_true")
    args = ap.parse_args()
    rows = load_set(Path(args.data), args.split)
    metrics, errors = evaluate(rows, Path(args.profile))
    hard = sum(r["kind"] == "hard_negative" for r in rows)
    print(
        f"split={args.split}: {len(rows)} items, {sum(bool(r['topics']) for r in rows)} positive, "
        f"{hard} hard negatives"
    )
    print(f"| {'topic':20} | precision | recall |   F1  | support |")
    print(f"|{'-' * 22}|-----------|--------|-------|---------|")
    for t, m in metrics.items():
        print(
            f"| {t:20} |   {m['precision']:.3f}   | {m['recall']:.3f}  | {m['f1']:.3f} | {m['support']:7d} |"
        )
    if args.errors:
        print("\n".join(errors))


if __name__ == "__main__":
    main()
