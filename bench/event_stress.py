"""A dense stream of different happenings of one conflict: how often the profile's joins fire
where nearly every join is wrong.

    python bench/event_stress.py [--hours 3] [--seed 7] [--grouping wide|learned|strict]

The items are the classifier's labelled sets that are tune material (tests/data/
unseen_written*.jsonl up to the ninth, train_written_5/6.jsonl; the held-out sets are never
read): every item the profile matches, each written from its own page about its own
happening, once per page. They are shuffled (fixed seed) and fed one every `--hours` hours
through `monitor.events`, as a desk's stream would arrive in a war where several outlets report
several different happenings a day. Items of one page never repeat, so a join here is almost
always two different happenings in one story (a few pages of the same day's news may truly be
one event: the count is an upper bound of wrong joins). Printed: the items, the joins (items
that joined a story instead of opening one) by the rule that made them, and the stories.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.classify import Scorer, load_profile  # noqa: E402
from monitor.events import EventIndex, features, grouping_params, profile_aliases  # noqa: E402
from monitor.types import Item  # noqa: E402

DATA = ROOT / "tests" / "data"
SETS = [f"unseen_written{s}.jsonl" for s in ("", "_2", "_3", "_4", "_5", "_6", "_7", "_8", "_9")]
SETS += ["train_written_5.jsonl", "train_written_6.jsonl"]
START = datetime(2020, 9, 27, tzinfo=UTC)


def stream(seed: int) -> list[tuple[str, str, frozenset[str]]]:
    """(title, summary, matched topics) of every matched item, one per page, shuffled."""
    scorer = Scorer(load_profile(ROOT / "config" / "topics.yaml"))
    seen: set[str] = set()
    out = []
    for name in SETS:
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            ref = str(r.get("ref") or r["title"]).rstrip("/")
            if ref in seen:
                continue
            seen.add(ref)
            item = Item(key=ref, guid=None, link=None, title=r["title"], summary=r["summary"])
            topics = frozenset(scorer.classify(item).topics)
            if topics:
                out.append((r["title"], r["summary"], topics))
    random.Random(seed).shuffle(out)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--grouping", choices=["wide", "learned", "strict"], default="wide")
    args = ap.parse_args()
    params = grouping_params(args.grouping)
    aliases = profile_aliases(load_profile(ROOT / "config" / "topics.yaml"))
    index = EventIndex(params)
    joins: Counter[str] = Counter()
    items = stream(args.seed)
    stories = 0
    for n, (title, summary, topics) in enumerate(items):
        when = START + timedelta(hours=args.hours * n)
        f = features(title, summary, when, aliases, params, topics=topics)
        d = index.decide(f)
        if d.story_id is None:
            stories += 1
            index.add(n, f)
        else:
            joins[d.reason] += 1
            index.add(d.story_id, f)
    total = sum(joins.values())
    by_rule = ", ".join(f"{k} {v}" for k, v in sorted(joins.items())) or "none"
    print(
        f"stress stream: {len(items)} matched items, one every {args.hours:g} h: "
        f"{total} joins ({by_rule}), {stories} stories"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
