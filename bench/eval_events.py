"""Event clustering against hand labels: real multi-outlet captures and written look-alikes.

    python bench/eval_events.py [--split tune|test|all] [--errors] [--smoke] [--no-bench]
                                [--heldout | --blind2 | --blind3 | --blind4 | --blind5 | --blind6] [--profile-stream]
                                [--grouping wide|learned|strict]

The real captures of ../shared/fixtures/real-feeds (twelve outlets in May 2020, six in
January–February 2024) are read in place with the project's own feed parser; every item goes
through `monitor.events` in the order of its time (published date, else the capture time of its
file), as a stream of matched items would. tests/data/event_labels.tsv says which items report
the same event (ids only, no publisher text; an item not listed is an event of its own);
tests/data/event_lookalikes.tsv lists items that read alike but report different events.

The split is fixed by a hash of the event id (a third `test`, two thirds `tune`), so an event's
items never straddle it. Pairwise precision/recall/F1 count the pairs of items of the split
that share a story against the pairs that share an event; "alerts per event" is the number of
stories an event's items ended in (one alert per story), over events with several items.
tests/data/event_pairs.jsonl holds paraphrases (must join) and look-alikes (must stay apart)
written for this project in French.

`--profile-stream` scores only the items the topic profile matches (config/topics.yaml, the
classifier with its model), as production groups only those: the other items are left out of
the stream and of the scores. It applies to the captures' splits and to `--heldout`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.eval_item import EvalItem, Loaded, load_parts  # noqa: E402  (re-exported: older importers)
from bench.shared import CAPTURES  # noqa: E402
from monitor.classify import Scorer, load_profile  # noqa: E402
from monitor.events import (  # noqa: E402
    EventIndex,
    Params,
    grouping_params,
    profile_aliases,
)
from monitor.events import features as item_features  # noqa: E402
from monitor.parse import parse_feed  # noqa: E402
from monitor.types import Item  # noqa: E402

DATA = ROOT / "tests" / "data"
LABELS = DATA / "event_labels.tsv"
LOOKALIKES = DATA / "event_lookalikes.tsv"
PAIRS = DATA / "event_pairs.jsonl"
FILES = [
    "sociomedia-fixture_2020-05_*.xml",
    "bfmtv_2024-0[12]-*.xml",
    "blast_2024-0[12]-*.xml",
    "elucid_2024-0[12]-*.xml",
    "franceinfo_2024-0[12]-*.xml",
    "lefigaro_2024-0[12]-*.xml",
    "liberation_2024-0[12]-*.xml",
    "french-multi-outlet_2024-01-02_topic-candidates_merged.xml",  # last: repeats of the above
]
PARSE_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def load_items(captures: Path = CAPTURES) -> list[EvalItem]:
    """Every item of the multi-outlet captures, once per item key (as the store keeps it),
    in time order. An item without a date gets its file's capture time (its newest date)."""
    seen: set[str] = set()
    out: list[EvalItem] = []
    for pattern in FILES:
        for path in sorted(captures.glob(pattern)):
            feed = parse_feed(path.read_bytes(), f"https://capture.invalid/{path.name}", PARSE_NOW)
            dated = [it.published for it in feed.items if it.published]
            captured = max(dated) if dated else _capture_time(path.name)
            for it in feed.items:
                if it.key in seen:
                    continue
                seen.add(it.key)
                ident = f"{path.stem}#{hashlib.sha1(it.key.encode()).hexdigest()[:10]}"
                out.append(
                    EvalItem(
                        ident, it.title, it.summary, it.published or captured, bool(it.published)
                    )
                )
    out.sort(key=lambda r: (r.time, r.id))
    return out


_SCORER: list[Scorer] = []


def _topics(it: EvalItem) -> tuple[str, ...]:
    """The topics config/topics.yaml matches for an item (its classification's)."""
    if not _SCORER:
        _SCORER.append(Scorer(load_profile(ROOT / "config" / "topics.yaml")))
    return (
        _SCORER[0].classify(Item(it.id, None, None, it.title, it.summary, published=it.time)).topics
    )


def profile_stream(items: list[EvalItem]) -> list[EvalItem]:
    """The items the topic profile matches, in their order (what production groups)."""
    return [it for it in items if _topics(it)]


def _capture_time(name: str) -> datetime:
    # Files without any date: the latest day of their capture set.
    if name.startswith("sociomedia-fixture_2020-05"):
        return datetime(2020, 5, 9, 15, 0, tzinfo=UTC)
    return datetime(2024, 2, 14, 12, 0, tzinfo=UTC)


def _read_tsv(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("item\t"):
            continue
        item, value = line.split("\t")
        out[item] = value
    return out


def split_of(event: str) -> str:
    return "test" if int(hashlib.sha1(event.encode()).hexdigest()[:8], 16) % 3 == 0 else "tune"


def cluster(items: list[EvalItem], params: Params, aliases: dict[str, str]) -> dict[str, int]:
    """Item id → story id, assigning the items one by one in time order. Each item comes with
    the topics the profile matched, as production passes its classification."""
    index = EventIndex(params)
    story_of: dict[str, int] = {}
    for n, it in enumerate(items):
        topics = _topics(it)
        f = item_features(
            it.title, it.summary, it.time, aliases, params, dated=it.dated, topics=topics
        )
        d = index.decide(f)
        sid = d.story_id if d.story_id is not None else n
        index.add(sid, f)
        story_of[it.id] = sid
    return story_of


@dataclass
class Scores:
    items: int
    pairs_true: int
    pairs_predicted: int
    tp: int
    events_multi: int
    stories_for_multi: int
    lookalike_merges: int
    lookalike_pairs: int

    @property
    def precision(self) -> float:
        return self.tp / self.pairs_predicted if self.pairs_predicted else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.pairs_true if self.pairs_true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def alerts_per_event(self) -> float:
        return self.stories_for_multi / self.events_multi if self.events_multi else 0.0


def score(
    items: list[EvalItem],
    story_of: dict[str, int],
    labels: dict[str, str],
    lookalikes: dict[str, str],
    split: str,
) -> Scores:
    event_of = {it.id: labels.get(it.id, f"single:{it.id}") for it in items}
    chosen = [it.id for it in items if split == "all" or split_of(event_of[it.id]) == split]
    by_event: dict[str, list[str]] = defaultdict(list)
    by_story: dict[int, list[str]] = defaultdict(list)
    for i in chosen:
        by_event[event_of[i]].append(i)
        by_story[story_of[i]].append(i)
    pairs_true = sum(len(v) * (len(v) - 1) // 2 for v in by_event.values())
    pairs_pred = sum(len(v) * (len(v) - 1) // 2 for v in by_story.values())
    tp = 0
    for members in by_story.values():
        counts: dict[str, int] = defaultdict(int)
        for i in members:
            counts[event_of[i]] += 1
        tp += sum(c * (c - 1) // 2 for c in counts.values())
    multi = [v for v in by_event.values() if len(v) > 1]
    groups: dict[str, list[str]] = defaultdict(list)
    chosen_set = set(chosen)
    for i, g in lookalikes.items():
        if i in chosen_set:
            groups[g].append(i)
    la_pairs = la_merges = 0
    for members in groups.values():
        for a, b in combinations(members, 2):
            if event_of[a] == event_of[b]:
                continue
            la_pairs += 1
            la_merges += story_of[a] == story_of[b]
    return Scores(
        items=len(chosen),
        pairs_true=pairs_true,
        pairs_predicted=pairs_pred,
        tp=tp,
        events_multi=len(multi),
        stories_for_multi=sum(len({story_of[i] for i in v}) for v in multi),
        lookalike_merges=la_merges,
        lookalike_pairs=la_pairs,
    )


def errors(
    items: list[EvalItem], story_of: dict[str, int], labels: dict[str, str], split: str
) -> list[str]:
    """Lines describing the wrong merges and the split events (titles read from captures)."""
    title = {it.id: it.title for it in items}
    event_of = {it.id: labels.get(it.id, f"single:{it.id}") for it in items}
    chosen = [it.id for it in items if split == "all" or split_of(event_of[it.id]) == split]
    by_story: dict[int, list[str]] = defaultdict(list)
    by_event: dict[str, list[str]] = defaultdict(list)
    for i in chosen:
        by_story[story_of[i]].append(i)
        by_event[event_of[i]].append(i)
    out = []
    for members in by_story.values():
        if len({event_of[i] for i in members}) > 1:
            out.append(
                "WRONG MERGE:\n"
                + "\n".join(f"  {event_of[i][:30]:30} {title[i][:90]}" for i in members)
            )
    for ev, members in by_event.items():
        if len({story_of[i] for i in members}) > 1:
            out.append(
                f"SPLIT {ev}:\n"
                + "\n".join(f"  story {story_of[i]:5} {title[i][:90]}" for i in members)
            )
    return out


def written_pairs(params: Params, aliases: dict[str, str]) -> list[tuple[str, str, bool]]:
    """(name, kind, ok) for each written pair: a joins b, or stays apart."""
    out = []
    for line in PAIRS.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        index = EventIndex(params)
        fa = _pair_features(case["a"], aliases, params)
        fb = _pair_features(case["b"], aliases, params)
        index.add(1, fa)
        joined = index.decide(fb).story_id == 1
        out.append((case["name"], case["kind"], joined == (case["kind"] == "join")))
    return out


def _pair_features(side: dict[str, str], aliases: dict[str, str], params: Params):  # type: ignore[no-untyped-def]
    when = datetime.fromisoformat(side["published"])
    topics = _topics(EvalItem("pair", side["title"], side["summary"], when))
    return item_features(side["title"], side["summary"], when, aliases, params, topics=topics)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["tune", "test", "all"], default="test")
    ap.add_argument("--errors", action="store_true", help="list wrong merges and split events")
    ap.add_argument("--smoke", action="store_true", help="a quick run (tests/test_bench.py)")
    ap.add_argument("--no-bench", action="store_true", help="skip the assignment benchmark")
    ap.add_argument(
        "--heldout",
        action="store_true",
        help="the first blind set (bench/event_heldout.py), tune material since round 5",
    )
    for flag, (_, about, _parts_of) in BLIND_SETS.items():
        ap.add_argument(f"--{flag}", action="store_true", help=about)
    ap.add_argument(
        "--profile-stream",
        action="store_true",
        help=(
            "score only the items the topic profile matches "
            "(captures' splits, --heldout, --blind2, --blind3, --blind4, --blind5, --blind6)"
        ),
    )
    ap.add_argument(
        "--grouping",
        choices=["wide", "learned", "strict"],
        default="wide",
        help="the knobs of MONITOR_GROUPING (default wide; learned adds the learned join)",
    )
    args = ap.parse_args()
    params = grouping_params(args.grouping)
    aliases = profile_aliases(load_profile(ROOT / "config" / "topics.yaml"))
    stream = args.profile_stream
    if args.heldout:
        return heldout(params, aliases, args.errors, stream)
    for flag in BLIND_SETS:
        if getattr(args, flag):
            return blind(flag, params, aliases, args.errors, stream)

    pairs = written_pairs(params, aliases)
    bad = [f"{name} ({kind})" for name, kind, ok in pairs if not ok]
    joins = [ok for _, kind, ok in pairs if kind == "join"]
    aparts = [ok for _, kind, ok in pairs if kind == "apart"]
    print(
        f"written pairs: paraphrases joined {sum(joins)}/{len(joins)}, "
        f"look-alikes kept apart {sum(aparts)}/{len(aparts)}"
        + (f"; wrong: {', '.join(bad)}" if bad else "")
    )

    if not CAPTURES.is_dir():
        print(f"real captures: skipped ({CAPTURES} is absent: publishers' text is read in place)")
    else:
        items = load_items()
        if args.smoke:
            items = items[:120]
        labels = _read_tsv(LABELS)
        lookalikes = _read_tsv(LOOKALIKES)
        ids = {it.id for it in items}
        if stream:
            items = profile_stream(items)
        missing = [i for i in list(labels) + list(lookalikes) if i not in ids]
        if missing and not args.smoke:
            print(f"labels name {len(missing)} items the captures do not have: {missing[:5]}")
            return 1
        story_of = cluster(items, params, aliases)
        print(
            f"real captures: {len(items)} items"
            + (" (the profile's stream)" if stream else "")
            + f", {len(set(labels.values()))} labelled events "
            f"with several items (of all items); split by sha1(event) (test = a third)"
        )
        header = "split   items  P      R      F1     alerts/event (events)  look-alike merges"
        print(header)
        splits = ["tune", "test", "all"] if args.split == "all" else [args.split]
        for sp in splits:
            s = score(items, story_of, labels, lookalikes, sp)
            print(
                f"{sp:6} {s.items:6}  {s.precision:.3f}  {s.recall:.3f}  {s.f1:.3f}  "
                f"{s.alerts_per_event:.2f} ({s.events_multi:3})             "
                f"{s.lookalike_merges}/{s.lookalike_pairs}"
            )
        base = score(items, _baseline(items), labels, lookalikes, args.split)
        old = score(items, _previous_rule(items), labels, lookalikes, args.split)
        print(
            f"before (title Jaccard >= 0.7, or >= 0.4 with a near-identical lede), "
            f"{args.split}: P {old.precision:.3f} R {old.recall:.3f} F1 {old.f1:.3f}, "
            f"alerts/event {old.alerts_per_event:.2f}; one alert per item: "
            f"alerts/event {base.alerts_per_event:.2f}"
        )
        if args.errors:
            for line in errors(items, story_of, labels, args.split):
                print(line)
    if not args.no_bench:
        from bench.bench_assign import run as bench_run

        bench_run(stories=2_000 if args.smoke else 100_000, probes=300 if args.smoke else 2_000)
    return 0


Part = tuple[str, list[EvalItem], dict[str, str], dict[str, str]]


def _parts(loaders: Iterable[tuple[str, Callable[[], Loaded]]]) -> list[Part]:
    """Each named part (skipped, saying so, when its capture is absent)."""
    return [(name, *loaded) for name, loaded in load_parts(loaders)]


def heldout(
    params: Params, aliases: dict[str, str], show_errors: bool, stream: bool = False
) -> int:
    """Both parts of the first blind set (tune material since round 5), over all their items
    (`stream`: only the items the profile matches)."""
    from bench import event_heldout as ho

    parts = _parts(
        [("Le Monde 2020 (real)", ho.real_loaded), ("written multi-outlet", ho.written_loaded)]
    )
    return _score_parts(parts, params, aliases, show_errors, stream)


# The blind sets after the first: flag -> (module, what it is, its parts as (label, loader name)).
BLIND_SETS: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "blind2": (
        "event_blind2",
        "the second blind set (bench/event_blind2.py), tune material since round 6",
        [
            ("Le Monde/NewsAPI (real)", "load_real"),
            ("written multi-outlet 2", "load_written"),
            ("written multi-outlet 3", "load_written3"),
        ],
    ),
    "blind3": (
        "event_blind3",
        "the third blind set (bench/event_blind3.py), tune material since its two runs",
        [
            ("Le Monde/Sc&Av/NewsAPI (real)", "load_real"),
            ("community site (real)", "load_community"),
            ("written multi-outlet 4", "load_written"),
        ],
    ),
    "blind4": (
        "event_blind4",
        "the fourth blind set (bench/event_blind4.py): measured before and after, not tuned on",
        [
            ("Le Monde 2020 war (real)", "load_war"),
            ("community site 2024 (real)", "load_community"),
        ],
    ),
    "dense7": (
        "event_dense7",
        "a dense tune stream (bench/event_dense7.py, round 8): trains the learned join",
        [("written dense 7 (tune)", "load_written")],
    ),
    "blind5": (
        "event_blind5",
        "the fifth blind set (bench/event_blind5.py): measured before and after, not tuned on",
        [
            ("written multi-outlet 5", "load_written"),
            ("community site 2022/25 (real)", "load_community"),
        ],
    ),
    "blind6": (
        "event_blind6",
        "the sixth blind set (bench/event_blind6.py, a dense stream): measured before and after",
        [("written dense 6", "load_written")],
    ),
}


def blind(
    flag: str, params: Params, aliases: dict[str, str], show_errors: bool, stream: bool = False
) -> int:
    """One blind set of BLIND_SETS, each part over all its items (`stream`: only the items
    the profile matches)."""
    import importlib

    module_name, _, parts_of = BLIND_SETS[flag]
    module = importlib.import_module(f"bench.{module_name}")
    parts = _parts([(label, getattr(module, loader)) for label, loader in parts_of])
    return _score_parts(parts, params, aliases, show_errors, stream)


def _score_parts(
    parts: list[Part], params: Params, aliases: dict[str, str], show_errors: bool, stream: bool
) -> int:
    """Cluster and score each part over all its items (`stream`: only those the profile
    matches)."""
    if stream:
        parts = [(f"{name}, profile", profile_stream(its), lab, la) for name, its, lab, la in parts]
    print(
        "set                      items  P      R      F1     alerts/event (events)  "
        "look-alike merges"
    )
    for name, items, labels, lookalikes in parts:
        story_of = cluster(items, params, aliases)
        s = score(items, story_of, labels, lookalikes, "all")
        print(
            f"{name:24} {s.items:5}  {s.precision:.3f}  {s.recall:.3f}  {s.f1:.3f}  "
            f"{s.alerts_per_event:.2f} ({s.events_multi:3})             "
            f"{s.lookalike_merges}/{s.lookalike_pairs}"
        )
        if show_errors:
            for line in errors(items, story_of, labels, "all"):
                print(line)
    return 0


def _baseline(items: list[EvalItem]) -> dict[str, int]:
    return {it.id: n for n, it in enumerate(items)}


def _previous_rule(items: list[EvalItem]) -> dict[str, int]:
    """The rule this replaces (store/stories.py before issue 11), over a 3-day window."""
    from monitor.text import jaccard, signature

    stories: list[tuple[int, frozenset[str], frozenset[str], datetime]] = []
    out: dict[str, int] = {}
    for n, it in enumerate(items):
        tsig, bsig = signature(it.title), signature(it.summary[:600])
        found = None
        for sid, ts, bs, when in stories:
            if abs((it.time - when).total_seconds()) > 3 * 86400:
                continue
            t_sim = jaccard(tsig, ts)
            if (len(tsig) >= 4 and t_sim >= 0.7) or (t_sim >= 0.4 and jaccard(bsig, bs) >= 0.6):
                found = sid
                break
        if found is None:
            found = n
            stories.append((n, tsig, bsig, it.time))
        out[it.id] = found
    return out


if __name__ == "__main__":
    sys.exit(main())
