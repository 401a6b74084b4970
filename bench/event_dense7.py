"""A dense TUNE stream for event clustering (round 8), written for training the learned join.

Written by a helper who never saw a clusterer, its code, its output or the other labelled sets,
with the guideline quoted in bench/event_blind2.py, and given only the ids of the events the
other sets use (to avoid them). ``tests/data/event_dense7_written.jsonl``: 40 real events (32
on the Armenia–Azerbaijan conflict, Russia's mediation and the CSTO), each told by 3–4 of 15
invented outlets within 20 hours, gathered in the busy periods (April 2016, July 2020, the
autumn 2020 war, November 2021, March and August 2022, the Lachin blockade, 2024–2025) so that
different happenings of one kind fall on the same days, plus 12 look-alike events of 2 items
(Medvedev in Yerevan, then in Baku the next day; the Parukh incursion and the next day's drone
strikes; four gas cuts to Karabakh): 154 items, groups in
``tests/data/event_dense7_written_lookalikes.tsv``.

Unlike the sixth blind set (the dense judge), this one is tune material: `bench/train_pairs.py`
trains the learned join on it, and its errors may be read (`eval_events.py --dense7 --errors`).

``python bench/event_dense7.py`` prints counts only.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import event_blind2 as b2  # noqa: E402
from bench.eval_item import Loaded  # noqa: E402

DATA = ROOT / "tests" / "data"
WRITTEN = DATA / "event_dense7_written.jsonl"
WRITTEN_LOOKALIKES = DATA / "event_dense7_written_lookalikes.tsv"


def load_written() -> Loaded:
    """(items in time order, item -> event, item -> look-alike group of its event)."""
    return b2.load_written(WRITTEN, WRITTEN_LOOKALIKES)


def main() -> int:
    b2.print_counts([("written (dense, tune)", load_written)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
