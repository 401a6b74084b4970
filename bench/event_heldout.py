"""A held-out evaluation set for event clustering (issue 11), labelled blind.

Nobody who labelled it looked at any clusterer's output: it was built while the clusterer was
being tuned elsewhere, so that it can be measured once, at the end, on data it was not tuned on.
It has two parts.

1. **Real data, exhaustive labels** (``load_heldout``). Three windows of Le Monde's "A la une"
   feed of 2020 (``lemonde_2020-09-to-12_une_titles-descriptions_bao1.xml`` in
   ``../shared/fixtures/real-feeds``, read in place: no publisher text is in the repository):
   2020-09-02..07, 2020-10-08..13 (the Karabakh war's 10 October truce and its violations) and
   2020-12-14..18, 305 items. Every item of these dates was read and given an event;
   ``tests/data/event_heldout_labels.tsv`` lists the items of every event with several items,
   and every item not listed is an event of its own. ``tests/data/event_heldout_lookalikes.tsv``
   groups items that read alike but are different events (successive truce violations, stages of
   a race, Nobel prizes, restriction pages of different days). One outlet writing one article
   per event makes this part a test of *precision*: it punishes merging look-alikes.
2. **Written multi-outlet coverage** (``load_written``). ``tests/data/event_heldout_written.jsonl``:
   real events of 2019-2024 told in French by 3-4 invented "outlets" each, written for this set
   from the facts (no sentence copied from any publisher), each outlet with its own angle (toll,
   reaction, cause) and words, published 0-36 h apart; plus look-alike events that must stay
   apart (a truce and its violation, two clashes months apart, two summits in one city).
   This part tests *recall* across outlets, which one outlet cannot.

The guideline both parts were labelled by ("the same event"):

* Same event = the same real-world happening, whatever the angle: the happening, its toll,
  reactions to it, its announcement, a consequence reported the same or the next day.
* A new happening in a continuing story is a new event: a new attack on a new day, a new truce,
  the next day's epidemic figures, the next hearing, a measure announced one day and coming into
  force days later.
* Columns, analyses, interviews, live pages are events of their own unless they report the news
  of a labelled event (an editorial on yesterday's announcement joins it).
* In doubt, apart; items that read alike but are apart are recorded as look-alikes.

Scoring (pairwise precision/recall/F1 of stories against events, look-alike merges) is left to
the evaluation script; this module only loads.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.eval_item import EvalItem, Loaded, read_labels  # noqa: E402
from bench.shared import CAPTURES, CapturesMissing, need_capture  # noqa: E402

DATA = ROOT / "tests" / "data"
LABELS = DATA / "event_heldout_labels.tsv"
LOOKALIKES = DATA / "event_heldout_lookalikes.tsv"
WRITTEN = DATA / "event_heldout_written.jsonl"

CAPTURE_NAME = "lemonde_2020-09-to-12_une_titles-descriptions_bao1.xml"
ID_PREFIX = "lemonde2020#"
# The labelled windows, inclusive, as the capture's date attribute (YYYYMMDD).
WINDOWS: tuple[tuple[str, str], ...] = (
    ("20200902", "20200907"),
    ("20201008", "20201013"),
    ("20201214", "20201218"),
)


def in_windows(date: str) -> bool:
    return any(lo <= date <= hi for lo, hi in WINDOWS)


def load_heldout(
    captures: Path = CAPTURES, keep: Callable[[str, str, str], bool] | None = None
) -> list[tuple[str, str, str, datetime]]:
    """(id, title, summary, time) of every item of the labelled windows (or, with `keep`, of
    every item `keep(date, title, summary)` accepts), in time order.

    The capture has a day, not a time: an item's time is 12:00 UTC of its date attribute, and
    items of one day keep the capture's order (its numero), which the sort preserves.
    Raises CapturesMissing when the capture is not there.
    """
    path = captures / CAPTURE_NAME
    need_capture(path, "the held-out set")
    rows: list[tuple[int, tuple[str, str, str, datetime]]] = []
    for item in ET.parse(path).getroot().iter("item"):
        date = item.get("date") or ""
        numero = item.get("numero") or ""
        title = (item.findtext("titre") or "").strip()
        summary = (item.findtext("description") or "").strip()
        wanted = in_windows(date) if keep is None else keep(date, title, summary)
        if not wanted or not numero.isdigit():
            continue
        when = datetime.strptime(date, "%Y%m%d").replace(tzinfo=UTC) + timedelta(hours=12)
        rows.append((int(numero), (f"{ID_PREFIX}{numero}", title, summary, when)))
    rows.sort(key=lambda r: (r[1][3], r[0]))
    return [r for _, r in rows]


def load_labels(path: Path = LABELS) -> dict[str, str]:
    """Item id -> event id for the items of multi-item events (others are their own event)."""
    return read_labels(path, ("item", "event"))


def load_lookalikes(path: Path = LOOKALIKES) -> dict[str, str]:
    """Item id -> look-alike group (items of one group are different events)."""
    return read_labels(path, ("item", "group"))


def events_of(ids: list[str], labels: dict[str, str]) -> dict[str, str]:
    """Every id's event: its label, or the id itself when it is an event of its own."""
    return {i: labels.get(i, i) for i in ids}


@dataclass(frozen=True)
class WrittenItem:
    id: str
    event: str
    title: str
    summary: str
    published: datetime
    outlet: str
    lookalike_of: str | None = None


def load_written(path: Path = WRITTEN) -> list[WrittenItem]:
    """Part 2, in time order: items written for this set, each with its event and outlet."""
    items: list[WrittenItem] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        r = json.loads(line)
        try:
            published = datetime.fromisoformat(r["published"].replace("Z", "+00:00"))
            if published.tzinfo is None:
                raise ValueError("published has no time zone")
            items.append(
                WrittenItem(
                    id=str(r["id"]),
                    event=str(r["event"]),
                    title=str(r["title"]),
                    summary=str(r["summary"]),
                    published=published.astimezone(UTC),
                    outlet=str(r["outlet"]),
                    lookalike_of=r.get("lookalike_of") or None,
                )
            )
        except (KeyError, ValueError) as e:
            raise ValueError(f"{path.name}:{n}: {e}") from e
    items.sort(key=lambda i: (i.published, i.id))
    return items


def real_loaded() -> Loaded:
    """The real part as the evaluations read it: (items in time order, labels, look-alikes)."""
    items = [EvalItem(i, t, s, when) for i, t, s, when in load_heldout()]
    return items, load_labels(), load_lookalikes()


def written_loaded() -> Loaded:
    """The written part as the evaluations read it: an item's look-alike group is the event
    it reads like, else its own event."""
    rows = load_written()
    items = [EvalItem(w.id, w.title, w.summary, w.published) for w in rows]
    return items, {w.id: w.event for w in rows}, {w.id: w.lookalike_of or w.event for w in rows}


def main() -> int:
    """Counts only (scoring is bench/eval_events.py --heldout)."""
    written = load_written()
    print(f"written: {len(written)} items, {len({w.event for w in written})} events")
    try:
        real = load_heldout()
    except CapturesMissing as e:  # the shared captures are optional
        print(f"real: skipped ({e})")
        return 0
    print(f"real: {len(real)} items, {len(load_labels())} labelled")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
