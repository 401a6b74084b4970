"""A fourth blind evaluation set for event clustering: two real streams, labelled by hand
(round 6).

Labelled by a helper who never saw a clusterer, its code, its output or the other sets, by the
guideline quoted in bench/event_blind2.py, after the third set had been read: it judges the
changes made on the third set (bench/event_blind3.py), measured before and after them.

1. **A war as one outlet told it** (``load_war``): every item of Le Monde's « À la une »
   extraction of 2020 (``lemonde_2020-09-to-12_une_titles-descriptions_bao1.xml``) that names
   Armenia, Azerbaijan, Karabakh, the Caucasus or their places and leaders (``NAMES``, a
   selection by words, not by the classifier), outside the first blind set's windows: 42
   items from 13 September to 25 December 2020, about one a day through the 44-day war. Ids
   and times as bench/event_heldout.py reads that capture (noon of the item's day). A daily
   stream of one kind of happening: where a join by kind would merge one day's fighting
   with the next.
2. **The Armenian community site, April–December 2024** (``load_community``): its 242 posts,
   read as bench/event_blind3.py reads the site's other windows.

``tests/data/event_blind4_*.tsv`` hold the labels (ids only). ``python bench/event_blind4.py``
prints counts only; ``python bench/eval_events.py --blind4`` scores.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import event_blind2 as b2  # noqa: E402
from bench import event_blind3 as b3  # noqa: E402
from bench import event_heldout as ho  # noqa: E402
from bench.eval_item import EvalItem, Loaded, labelled  # noqa: E402
from bench.shared import CAPTURES  # noqa: E402

DATA = ROOT / "tests" / "data"
WAR_LABELS = DATA / "event_blind4_war_labels.tsv"
WAR_LOOKALIKES = DATA / "event_blind4_war_lookalikes.tsv"
COMMUNITY_LABELS = DATA / "event_blind4_community_labels.tsv"
COMMUNITY_LOOKALIKES = DATA / "event_blind4_community_lookalikes.tsv"
COMMUNITY_WINDOWS: tuple[tuple[str, str], ...] = (("2024-04-01", "2024-12-31"),)

NAMES = re.compile(
    r"arm[ée]ni|azerba|karabakh|bakou|erevan|stepanakert|aliev|pachinian|caucase|artsakh"
    r"|chouchi|latchine|otsc|minsk",
    re.IGNORECASE,
)


def _war_item(date: str, title: str, summary: str) -> bool:
    return not ho.in_windows(date) and bool(NAMES.search(f"{title} {summary}"))


def load_war(captures: Path = CAPTURES) -> Loaded:
    """Part 1: (items in time order, item -> event for multi-item events, item -> look-alike
    group). Raises CapturesMissing when the capture is absent."""
    items = [EvalItem(i, t, s, when) for i, t, s, when in ho.load_heldout(captures, _war_item)]
    return labelled(items, WAR_LABELS, WAR_LOOKALIKES)


def load_community(captures: Path = CAPTURES) -> Loaded:
    """Part 2, as bench/event_blind3.load_community with this set's window and labels."""
    return b3.load_community(captures, COMMUNITY_WINDOWS, COMMUNITY_LABELS, COMMUNITY_LOOKALIKES)


def main() -> int:
    b2.print_counts([("war stream", load_war), ("community", load_community)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
