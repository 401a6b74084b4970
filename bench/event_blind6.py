"""A sixth blind evaluation set for event clustering (round 7): a DENSE written stream.

Written by a helper who never saw a clusterer, its code, its output or the other labelled sets,
with the guideline quoted in bench/event_blind2.py, before the change it judges.
``tests/data/event_blind6_written.jsonl``: 40 real events (34 on the Armenia–Azerbaijan
conflict, Russia's mediation and the CSTO), each told by 3–4 of 15 invented outlets within 23
hours, gathered in the busy periods (the 2020 war, September 2022, September 2023, the 2024
delimitation, summer 2025) so that different happenings of one kind fall on the same days
(Stepanakert and Gandja shelled on 4 October 2020; the Barda strike and the Stepanakert
maternity hospital on 28 October; the Yevlakh talks and the UN Security Council on 21
September 2023), plus 12 look-alike events: 141 items, 21 look-alike groups in
``tests/data/event_blind6_written_lookalikes.tsv``. Where the fifth set measures recall across
outlets, this one measures the profile's joins where a war makes them risky.

``python bench/event_blind6.py`` prints counts only; ``python bench/eval_events.py --blind6``
scores.
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
WRITTEN = DATA / "event_blind6_written.jsonl"
WRITTEN_LOOKALIKES = DATA / "event_blind6_written_lookalikes.tsv"


def load_written() -> Loaded:
    """(items in time order, item -> event, item -> look-alike group of its event)."""
    return b2.load_written(WRITTEN, WRITTEN_LOOKALIKES)


def main() -> int:
    b2.print_counts([("written (dense)", load_written)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
