"""A fifth blind evaluation set for event clustering (round 7), built like the third
(bench/event_blind3.py) by helpers who never saw a clusterer, its code, its output or the other
labelled sets, with the guideline quoted in bench/event_blind2.py. Written and labelled before
the change it judges; measured with the grouping as it stood, then once with the change.

1. **Written multi-outlet coverage** (``load_written``), ``tests/data/event_blind5_written.jsonl``:
   40 real events of 2016–2025 (30 on the Armenia–Azerbaijan conflict, Russia's mediation and
   the CSTO, none of them an event of an earlier written set), each told by 3–4 of 14 invented
   outlets 0–30 h apart, retold as outlets mostly do; plus 12 look-alike events of 1–2 items
   (Agdam and Kelbadjar handed over five days apart, the Hakari checkpoint and a shooting on
   its bridge, two Brussels rounds, a ratification and its coming into force, a toll update
   three days later…), grouped in ``tests/data/event_blind5_written_lookalikes.tsv``.
2. **The Armenian community site, April–August 2022 and January 2025–February 2026**
   (``load_community``): its 272 posts in the windows no other set reads, as
   bench/event_blind3.py reads the site's other windows.

``python bench/event_blind5.py`` prints counts only; ``python bench/eval_events.py --blind5``
scores.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import event_blind2 as b2  # noqa: E402
from bench import event_blind3 as b3  # noqa: E402
from bench.eval_item import Loaded  # noqa: E402
from bench.shared import CAPTURES  # noqa: E402

DATA = ROOT / "tests" / "data"
WRITTEN = DATA / "event_blind5_written.jsonl"
WRITTEN_LOOKALIKES = DATA / "event_blind5_written_lookalikes.tsv"
COMMUNITY_LABELS = DATA / "event_blind5_community_labels.tsv"
COMMUNITY_LOOKALIKES = DATA / "event_blind5_community_lookalikes.tsv"
COMMUNITY_WINDOWS: tuple[tuple[str, str], ...] = (
    ("2022-04-01", "2022-08-31"),
    ("2025-01-01", "2026-02-28"),
)


def load_written() -> Loaded:
    """Part 1: (items in time order, item -> event, item -> look-alike group of its event)."""
    return b2.load_written(WRITTEN, WRITTEN_LOOKALIKES)


def load_community(captures: Path = CAPTURES) -> Loaded:
    """Part 2, as bench/event_blind3.load_community with this set's windows and labels."""
    return b3.load_community(captures, COMMUNITY_WINDOWS, COMMUNITY_LABELS, COMMUNITY_LOOKALIKES)


def main() -> int:
    b2.print_counts([("written", load_written), ("community", load_community)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
