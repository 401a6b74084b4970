"""A third blind evaluation set for event clustering, labelled by hand (round 6).

Built like the second (bench/event_blind2.py) by two helpers who never saw a clusterer, its
code, its output or the other labelled sets, with the same guideline ("the same event", quoted
in bench/event_blind2.py). It was written before the change it judges and measured twice: with
the grouping as it stood, then with the change (the keep rule was fixed before either run).

1. **Real captures, exhaustive labels** (``load_real``), read in place from
   ``../shared/fixtures/real-feeds`` (ids only in the repository): the single-day Le Monde
   feeds not used by any other event set (international 2022-01-13, 2022-03-27, 2022-04-07,
   2022-10-14, 2022-11-24, 2024-03-27; Europe 2022-11-01, 2022-12-15; « à la une »
   2018-06-27), Sciences et Avenir's space feed of 2018-06-28, and NewsAPI's Le Monde (May
   2023) and Libération (1–2 February 2021) responses: 247 items, read and id'd as
   bench/event_blind2.py reads its captures. ``tests/data/event_blind3_labels.tsv`` lists the
   items of every event with several items; ``tests/data/event_blind3_lookalikes.tsv`` groups
   items that read alike but are different events. Mostly one outlet per event: a test of
   *precision*.
2. **A real stream of the conflict, exhaustive labels** (``load_community``): every post of
   the Armenian community site's capture (``aamc_armenian-community-site_posts_2022-2026.jsonl``,
   mostly reposts of armenews.com) in three windows, 1 Sep–31 Oct 2022 (the attacks on Armenia
   of 13 September), 1 Sep–31 Dec 2023 (the offensive on Karabakh and the exodus) and 1 Feb–31
   Mar 2024: 192 posts, id ``aamc#<sha1(source_file)[:10]>``, time the post's date.
   ``tests/data/event_blind3_community_labels.tsv`` and ``..._community_lookalikes.tsv`` as
   above. The profile's own stream, told by one site: where the kind-of-happening join acts.
3. **Written multi-outlet coverage** (``load_written``), ``tests/data/event_blind3_written.jsonl``:
   real events told by 3–4 invented French outlets each, 0–36 h apart, most of them on the
   Armenia–Azerbaijan conflict, Russia's mediation and the CSTO, plus look-alike events (a
   truce and its violation, two summits in one city, a toll update days later), grouped in
   ``tests/data/event_blind3_written_lookalikes.tsv``. Unlike the second set's writers, who
   gave every outlet its own angle, this writer was asked for what outlets mostly do: retell
   the happening in their own words, some leading with the toll, a reaction or the context.

This module only loads; scoring is bench/eval_events.py's job (``--blind3``).
``python bench/event_blind3.py`` prints counts only.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import event_blind2 as b2  # noqa: E402
from bench.eval_item import EvalItem, Loaded, labelled  # noqa: E402
from bench.shared import CAPTURES, need_capture  # noqa: E402

DATA = ROOT / "tests" / "data"
LABELS = DATA / "event_blind3_labels.tsv"
LOOKALIKES = DATA / "event_blind3_lookalikes.tsv"
COMMUNITY_LABELS = DATA / "event_blind3_community_labels.tsv"
COMMUNITY_LOOKALIKES = DATA / "event_blind3_community_lookalikes.tsv"
WRITTEN = DATA / "event_blind3_written.jsonl"
WRITTEN_LOOKALIKES = DATA / "event_blind3_written_lookalikes.tsv"

XML_FILES: tuple[str, ...] = (
    "lemonde_2022-01-13_international.xml",
    "lemonde_2022-03-27_international.xml",
    "lemonde_2022-04-07_international.xml",
    "lemonde_2022-10-14_international.xml",
    "lemonde_2022-11-01_europe.xml",
    "lemonde_2022-11-24_international.xml",
    "lemonde_2022-12-15_europe.xml",
    "lemonde_2024-03-27_international.xml",
    "lemonde_2018-06-27_une.xml",
    "sciencesetavenir_2018-06-28_espace.xml",
)
JSON_FILES: tuple[str, ...] = (
    "newsapi_lemonde_2023-05.json",
    "newsapi_liberation_2021-02.json",
)


def load_real(captures: Path = CAPTURES) -> Loaded:
    """Part 1: (items in time order, item -> event for multi-item events, item -> look-alike
    group). Raises CapturesMissing when a capture is absent."""
    return b2.load_real(captures, LABELS, LOOKALIKES, (XML_FILES, JSON_FILES))


COMMUNITY = "aamc_armenian-community-site_posts_2022-2026.jsonl"
# The labelled windows, inclusive, as the post's date (YYYY-MM-DD).
COMMUNITY_WINDOWS: tuple[tuple[str, str], ...] = (
    ("2022-09-01", "2022-10-31"),
    ("2023-09-01", "2023-12-31"),
    ("2024-02-01", "2024-03-31"),
)


def community_items(
    captures: Path = CAPTURES, windows: tuple[tuple[str, str], ...] = COMMUNITY_WINDOWS
) -> list[EvalItem]:
    """Every post of the windows (this set's by default), in time order (see the docstring)."""
    path = captures / COMMUNITY
    need_capture(path, "the blind set")
    out: list[EvalItem] = []
    # split on newlines only: str.splitlines also breaks inside strings at U+2028 and kin
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        post = json.loads(line)
        stamp = str(post["date"])
        if not any(lo <= stamp[:10] <= hi for lo, hi in windows):
            continue
        ident = f"aamc#{hashlib.sha1(str(post['source_file']).encode()).hexdigest()[:10]}"
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
        out.append(EvalItem(ident, str(post["title"]), str(post.get("summary") or ""), when))
    out.sort(key=lambda i: (i.time, i.id))
    return out


def load_community(
    captures: Path = CAPTURES,
    windows: tuple[tuple[str, str], ...] = COMMUNITY_WINDOWS,
    labels: Path = COMMUNITY_LABELS,
    lookalikes: Path = COMMUNITY_LOOKALIKES,
) -> Loaded:
    """Part 2: (posts in time order, post -> event for multi-post events, post -> look-alike
    group). Raises CapturesMissing when the capture is absent, ValueError when a label names a
    post the windows do not have."""
    return labelled(community_items(captures, windows), labels, lookalikes)


def load_written() -> Loaded:
    """Part 2: (items in time order, item -> event, item -> look-alike group of its event)."""
    return b2.load_written(WRITTEN, WRITTEN_LOOKALIKES)


def main() -> int:
    b2.print_counts([("real", load_real), ("community", load_community), ("written", load_written)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
