"""A second blind evaluation set for event clustering, labelled by hand.

Whoever labelled it never looked at a clusterer's output, never ran a clusterer on it and
never read the clusterer's code or the other labelled sets: it was built apart from the
tuning, so it can be measured once, at the end, on data nothing was tuned on. Every item was
read and given an event by the guideline below. Two parts:

1. **Real captures, exhaustive labels** (``load_real``), read in place from
   ``../shared/fixtures/real-feeds`` (no publisher text is in the repository, only ids):

   * Le Monde, 2022-09-13..16, five feeds of one outlet: ``lemonde_2022-09-13_une.xml``,
     ``lemonde_2022-09-14_international.xml``, ``lemonde_2022-09-14_sport.xml``,
     ``lemonde_2022-09-15_international.xml``, ``lemonde_2022-09-16_europe.xml``. One event
     may appear in several feeds (Godard's death, the Queen's lying in state, the Izium mass
     grave); the Armenia-Azerbaijan border clashes of 13 September 2022 and the days after
     (new attacks, the truce, a later toll, Pashinyan's statement) are there as look-alikes.
   * NewsAPI French top headlines of 2021-05-16 and 2021-05-18 (many outlets, two days).

   Items are read as the project reads them: ``monitor.parse.parse_feed`` for the XML, id
   ``<file stem>#<sha1(item key)[:10]>``, an item key kept once (first file wins, files in
   the order above); for the JSON, id ``<file stem>#<sha1(url)[:10]>`` and time
   ``publishedAt``. ``tests/data/event_blind2_labels.tsv`` lists the items of every event with
   several items (an item not listed is an event of its own);
   ``tests/data/event_blind2_lookalikes.tsv`` groups items that read alike but are, in
   part, different events (successive days of the Caucasus clashes, Ukraine live pages,
   matches of one Champions League week, two US Open finals, the royal mourning's stages).
   Mostly one outlet per event, so this part tests *precision*.
2. **Written multi-outlet coverage** (``load_written``). ``tests/data/event_blind2_written.jsonl``:
   40 real events of 2019-2025 (15 on the Armenia-Azerbaijan conflict, Russia's mediation and
   the CSTO; the rest politics, disasters, sport, world news), each told by 3-4 invented French
   outlets written for this set from the facts, with no sentence of any publisher: each outlet
   has its own angle (the happening, the toll, reactions, what comes next) and its own words,
   naming what a reader needs, published 0-36 h apart. Plus 12 look-alike events that must
   stay apart from one of the 40 (a truce and its violation the next night, two border clashes
   ten months apart, two trilateral summits in Moscow and two in Sochi, an offensive and the
   next day's capitulation, a toll update three days later, an aftershock two weeks later, the
   no-confidence vote four days after the 49.3). ``tests/data/event_blind2_written_lookalikes.tsv``
   gives each look-alike event its group. This part tests *recall* across outlets.

3. **A second written set** (``load_written(WRITTEN3, WRITTEN3_LOOKALIKES)``),
   ``tests/data/event_blind2_written3.jsonl``: written the same way by another writer who saw
   neither a clusterer nor the other sets: 50 real events of 2015-2025 (17 on the
   Armenia-Azerbaijan conflict) told by 3-4 of 19 invented outlets, and 16 look-alike events
   of 2 items each (the Ganja strike after the Moscow truce, two Sochi summits, a verdict and
   its trial's opening, a nomination and the censure before it, the TGV sabotage on the day of
   the Olympic opening), 205 items; ``event_blind2_written3_lookalikes.tsv`` groups them.

The guideline ("the same event"):

* Same event = the same real-world happening, whatever the angle: the happening, its toll,
  reactions to it, its announcement, a consequence reported the same or the next day.
* A new happening in a continuing story is a new event: a new attack on a new day, a new truce,
  the next day's epidemic figures, the next hearing, a measure announced one day and coming into
  force days later. A toll reported the next day joins its happening; a toll update two or
  more days later is an event of its own.
* Columns, analyses, interviews, live pages are events of their own unless they report the news
  of a labelled event (a live page headed by a happening joins it).
* In doubt, apart; items that read alike but are apart are recorded as look-alikes.

This module only loads; scoring is the evaluation script's job. ``python bench/event_blind2.py``
prints counts only.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.eval_item import EvalItem, Loaded, labelled, load_parts, read_labels  # noqa: E402
from bench.shared import CAPTURES, need_capture  # noqa: E402
from monitor.parse import parse_feed  # noqa: E402

DATA = ROOT / "tests" / "data"
LABELS = DATA / "event_blind2_labels.tsv"
LOOKALIKES = DATA / "event_blind2_lookalikes.tsv"
WRITTEN = DATA / "event_blind2_written.jsonl"
WRITTEN_LOOKALIKES = DATA / "event_blind2_written_lookalikes.tsv"
# Part 3, written the same way by another writer (50 events, 16 look-alike events, 205 items)
WRITTEN3 = DATA / "event_blind2_written3.jsonl"
WRITTEN3_LOOKALIKES = DATA / "event_blind2_written3_lookalikes.tsv"

XML_FILES: tuple[str, ...] = (
    "lemonde_2022-09-13_une.xml",
    "lemonde_2022-09-14_international.xml",
    "lemonde_2022-09-14_sport.xml",
    "lemonde_2022-09-15_international.xml",
    "lemonde_2022-09-16_europe.xml",
)
JSON_FILES: tuple[str, ...] = (
    "newsapi_fr_top-headlines_2021-05-16.json",
    "newsapi_fr_top-headlines_2021-05-18.json",
)
PARSE_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _capture_day(name: str) -> datetime:
    """Noon UTC of the date in a capture's file name: the time of an undated item."""
    day = next(p for p in name.replace(".", "_").split("_") if p[:2] == "20" and len(p) == 10)
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(hours=12)


def real_items(
    captures: Path = CAPTURES,
    xml_files: tuple[str, ...] = XML_FILES,
    json_files: tuple[str, ...] = JSON_FILES,
) -> list[EvalItem]:
    """Every item of the captures (this set's seven by default), once per key, in time order
    (see the docstring)."""
    seen: set[str] = set()
    out: list[EvalItem] = []
    for name in xml_files:
        path = captures / name
        need_capture(path, "the blind set")
        feed = parse_feed(path.read_bytes(), f"https://capture.invalid/{path.name}", PARSE_NOW)
        for it in feed.items:
            if it.key in seen:
                continue
            seen.add(it.key)
            ident = f"{path.stem}#{hashlib.sha1(it.key.encode()).hexdigest()[:10]}"
            when = it.published or _capture_day(name)
            out.append(EvalItem(ident, it.title, it.summary, when, it.published is not None))
    for name in json_files:
        path = captures / name
        need_capture(path, "the blind set")
        for art in json.loads(path.read_text(encoding="utf-8"))["articles"]:
            url = str(art["url"])
            if url in seen:
                continue
            seen.add(url)
            ident = f"{path.stem}#{hashlib.sha1(url.encode()).hexdigest()[:10]}"
            stamp = art.get("publishedAt")
            when = (
                datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).astimezone(UTC)
                if stamp
                else _capture_day(name)
            )
            out.append(
                EvalItem(
                    ident,
                    str(art.get("title") or ""),
                    str(art.get("description") or ""),
                    when,
                    bool(stamp),
                )
            )
    out.sort(key=lambda r: (r.time, r.id))
    return out


def load_real(
    captures: Path = CAPTURES,
    labels: Path = LABELS,
    lookalikes: Path = LOOKALIKES,
    files: tuple[tuple[str, ...], tuple[str, ...]] = (XML_FILES, JSON_FILES),
) -> Loaded:
    """Part 1: (items in time order, item -> event for multi-item events, item -> look-alike
    group). Raises CapturesMissing when a capture is absent, ValueError when a label names an
    item the captures do not have."""
    return labelled(real_items(captures, *files), labels, lookalikes)


def load_written(path: Path = WRITTEN, lookalikes: Path = WRITTEN_LOOKALIKES) -> Loaded:
    """Part 2: (items in time order, item -> event for every item, item -> look-alike group
    of its event, for the events of a look-alike group)."""
    items: list[EvalItem] = []
    events: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        r = json.loads(line)
        try:
            published = datetime.fromisoformat(str(r["published"]).replace("Z", "+00:00"))
            if published.tzinfo is None:
                raise ValueError("published has no time zone")
            ident = str(r["id"])
            if ident in events:
                raise ValueError(f"{ident} listed twice")
            events[ident] = str(r["event"])
            items.append(
                EvalItem(ident, str(r["title"]), str(r["summary"]), published.astimezone(UTC))
            )
        except (KeyError, ValueError) as e:
            raise ValueError(f"{path.name}:{n}: {e}") from e
    items.sort(key=lambda i: (i.time, i.id))
    groups = read_labels(lookalikes, ("event", "group"))
    unknown = set(groups) - set(events.values())
    if unknown:
        raise ValueError(f"look-alike events with no item: {sorted(unknown)}")
    look = {i: groups[e] for i, e in events.items() if e in groups}
    return items, events, look


def load_written3() -> Loaded:
    """Part 3: the second written set, loaded as part 2."""
    return load_written(WRITTEN3, WRITTEN3_LOOKALIKES)


def counts(name: str, loaded: Loaded) -> str:
    items, labels, look = loaded
    sizes: dict[str, int] = {}
    for event in labels.values():
        sizes[event] = sizes.get(event, 0) + 1
    several = sum(1 for s in sizes.values() if s >= 2)
    in_several = sum(s for s in sizes.values() if s >= 2)
    return (
        f"{name}: {len(items)} items, {several} events with several items "
        f"({in_several} items), {len(items) - in_several} single items, "
        f"{len(set(look.values()))} look-alike groups ({len(look)} items)"
    )


def print_counts(loaders: Iterable[tuple[str, Callable[[], Loaded]]]) -> None:
    """Each named part's counts (a part whose capture is absent is skipped, saying so)."""
    for name, loaded in load_parts(loaders):
        print(counts(name, loaded))


def main() -> int:
    print_counts(
        [
            ("real", load_real),
            ("written", load_written),
            ("written3", lambda: load_written(WRITTEN3, WRITTEN3_LOOKALIKES)),
        ]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
