"""Classification speed: items/s through the library call and through `monitor classify`,
against the floor of a bare case-fold + regex pass over the same text, and the rules without
the second-stage model (same run).

    python bench/bench_classify.py [--items 20000] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.classify import Scorer, load_profile  # noqa: E402
from monitor.types import Item  # noqa: E402


def corpus(n: int) -> list[dict[str, str]]:
    base = [
        json.loads(x)
        for x in (ROOT / "tests" / "data" / "eval_items.jsonl").read_text().splitlines()
    ]
    sys.path.insert(0, str(ROOT / "bench"))
    from real_captures import CAPTURES

    real = CAPTURES / "lemonde_2020-09-to-12_une_titles-descriptions_bao1.xml"
    if real.exists():  # read in place: 2,177 real Le Monde titles and descriptions
        text = real.read_text(encoding="utf-8")
        for t, d in re.findall(
            r"<titre>(.*?)</titre>\s*<description>(.*?)</description>", text, re.S
        ):
            base.append({"id": str(len(base)), "title": t, "summary": d})
    return [
        {
            "id": str(i),
            "title": base[i % len(base)]["title"],
            "summary": base[i % len(base)]["summary"],
        }
        for i in range(n)
    ]


def floor_pass(rows: list[dict[str, str]], profile) -> float:
    terms = sorted({p.source.lower().rstrip("*") for p in profile.patterns}, key=len, reverse=True)
    rx = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in terms) + r")", re.I)
    start = time.perf_counter()
    hits = 0
    for r in rows:
        hits += len(rx.findall((r["title"] + "\n" + r["summary"]).casefold()))
    return len(rows) / (time.perf_counter() - start)


def library_pass(rows: list[dict[str, str]], profile, use_model: bool = True) -> float:
    scorer = Scorer(profile, use_model=use_model)
    items = [
        Item(key=r["id"], guid=None, link=None, title=r["title"], summary=r["summary"])
        for r in rows
    ]
    start = time.perf_counter()
    cpu = time.process_time()
    for it in items:
        scorer.classify(it)
    wall = time.perf_counter() - start
    # CPU time too: on a shared, loaded machine the wall clock measures the neighbours.
    stage = "rules + model" if scorer.model is not None else "rules only"
    print(
        f"library call ({stage}), CPU time only: {len(items) / (time.process_time() - cpu):,.0f} items/s"
    )
    return len(items) / wall


def cli_pass(rows: list[dict[str, str]]) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "classify",
            f.name,
            "--profile",
            str(ROOT / "config" / "topics.yaml"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return len(rows) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    n = 300 if args.smoke else args.items
    rows = corpus(n)
    profile = load_profile(ROOT / "config" / "topics.yaml")
    floor = floor_pass(rows, profile)
    rules = library_pass(rows, profile, use_model=False)
    lib = library_pass(rows, profile)
    cli = cli_pass(rows)
    print(f"items: {n} (one core)")
    print(
        f"floor: case-fold + regex alternation of {len(profile.patterns)} terms: {floor:10,.0f} items/s"
    )
    print(
        f"library call Scorer.classify:                                  {lib:10,.0f} items/s  ({floor / lib:.2f}x the floor)"
    )
    print(
        f"library call, rules only (no second stage):                     {rules:10,.0f} items/s  (rules + model take {rules / lib:.2f}x its time)"
    )
    print(
        f"CLI monitor classify (process start included):                 {cli:10,.0f} items/s  ({lib / cli:.2f}x slower than the library)"
    )


if __name__ == "__main__":
    main()
