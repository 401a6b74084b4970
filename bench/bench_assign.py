"""Story assignment latency with a large window: `EventIndex.decide` + `add` per item.

    python bench/bench_assign.py [--stories 100000] [--probes 2000] [--smoke] [--lexical]
                                 [--kinds [--shared-topic]] [--pair-join]

Builds an index of N synthetic stories (Zipf-distributed vocabulary of 60,000 words, a title
of 9 words and a lede of 30, named actors, spread over three days), then assigns probe items:
the words are real French words of the word-vector package (monitor.wordvec) when it is
installed, most frequent first, so every item has a vector and the semantic candidates and
score are exercised (else made-up words, lexical only);
half are paraphrases of a random story (part of its words, new ones), half are new events.
Prints p50/p95/p99 of one assignment, how many paraphrases joined their story and new items
stayed new, and, measured in the same run, a linear scan that scores every story for a few
probes (what the inverted index avoids).

`--kinds`: the profile's stream at its most costly: every title has a word of a kind of
happening (« combats ») and every item topics (stories one of 50, each probe its own), so an
item no story joins by words scans the latest stories of a kind and joins none.
`--shared-topic` (with --kinds): each probe of one of the stories' 50 topics, so the learned
join (monitor/events/pairs.py, on with `--pair-join` as MONITOR_GROUPING=learned turns it on)
weighs the candidates of its topic.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import wordvec  # noqa: E402
from monitor.events import TURNS, EventIndex, Params, features  # noqa: E402
from monitor.text import fold  # noqa: E402

VOCAB = 60_000
START = datetime(2024, 3, 1, tzinfo=UTC)
SPAN = timedelta(days=3)


WORDS: list[str] = []


def vocabulary() -> list[str]:
    """VOCAB lower-case French words that have a vector, most frequent first (rows of the
    table are in order of frequency); made-up words when the package is absent."""
    vectors = wordvec.shared()
    directory = wordvec.data_dir()
    if vectors is None or directory is None:
        return [f"mot{n}" for n in range(VOCAB)]
    strings = json.loads((directory / "strings.json").read_text(encoding="utf-8"))
    skip = {fold(w) for w in wordvec.STOPWORDS} | set(TURNS)
    ranked = []
    for w in strings:
        if len(w) >= 4 and w.isalpha() and w.islower() and fold(w) not in skip:
            row = vectors.row(w)
            if row >= 0:
                ranked.append((row, w))
    ranked.sort()
    words = [w for _, w in ranked[:VOCAB]]
    return words + [f"mot{n}" for n in range(VOCAB - len(words))]


def _word(rng: random.Random, weights: list[float]) -> str:
    n = rng.choices(range(VOCAB), cum_weights=weights)[0]
    return WORDS[n] if WORDS else f"mot{n}"


def _story_text(rng: random.Random, weights: list[float]) -> tuple[list[str], list[str], list[str]]:
    actors = [f"Nom{rng.randrange(20_000)}" for _ in range(2)]
    title = [_word(rng, weights) for _ in range(7)]
    lede = [_word(rng, weights) for _ in range(30)]
    return actors, title, lede


def _render(actors: list[str], title: list[str], lede: list[str]) -> tuple[str, str]:
    t = f"{title[0]} {actors[0]} " + " ".join(title[1:]) + f" {actors[1]}"
    s = f"selon {actors[0]}, " + " ".join(lede) + f" avec {actors[1]}."
    return t, s


def run(
    stories: int = 100_000,
    probes: int = 2_000,
    seed: int = 7,
    semantic: bool = True,
    kinds: bool = False,
    shared_topic: bool = False,
    pair_join: bool = False,
) -> dict[str, float]:
    rng = random.Random(seed)
    if not WORDS:
        WORDS.extend(vocabulary())
    cum, acc = [], 0.0
    for n in range(VOCAB):
        acc += 1.0 / (n + 10)
        cum.append(acc)
    params = Params(semantic=semantic, pair_join=pair_join)
    index = EventIndex(params)
    texts = []
    t0 = time.perf_counter()
    for sid in range(stories):
        actors, title, lede = _story_text(rng, cum)
        when = START + SPAN * (sid / stories)
        t, s = _render(actors, title, lede)
        if kinds:
            story_topics: tuple[str, ...] = (f"topic{sid % 50}",)
            index.add(sid, features(t + " combats", s, when, None, params, topics=story_topics))
        else:
            index.add(sid, features(t, s, when, None, params))
        texts.append((actors, title, lede, when))
    build = time.perf_counter() - t0

    latencies = []
    joined = stayed_new = 0
    probe_items: list[tuple[int | None, str, str, datetime]] = []
    for k in range(probes):
        if k % 2 == 0:
            sid = rng.randrange(stories)
            actors, title, lede, when = texts[sid]
            t_words = rng.sample(title, 5) + [_word(rng, cum) for _ in range(3)]
            l_words = rng.sample(lede, 15) + [_word(rng, cum) for _ in range(12)]
            t, s = _render(actors, t_words, l_words)
            probe_items.append((sid, t, s, when + timedelta(hours=2)))
        else:
            actors, title, lede = _story_text(rng, cum)
            when = START + SPAN * rng.random()
            t, s = _render(actors, title, lede)
            probe_items.append((None, t, s, when))
    next_id = stories
    feature_times = []
    cpu: list[float] = []
    for k, (expected, t, s, when) in enumerate(probe_items):
        t0 = time.perf_counter()
        if kinds:
            topic = f"topic{k % 50}" if shared_topic else f"probe{k}"
            f = features(t + " combats", s, when, None, params, topics=(topic,))
        else:
            f = features(t, s, when, None, params)
        t1 = time.perf_counter()
        feature_times.append(t1 - t0)
        c1 = time.thread_time()
        d = index.decide(f)
        sid = d.story_id if d.story_id is not None else next_id
        index.add(sid, f)
        cpu.append(time.thread_time() - c1)
        latencies.append(time.perf_counter() - t1)
        if d.story_id is None:
            next_id += 1
        if expected is not None and d.story_id == expected:
            joined += 1
        if expected is None and d.story_id is None:
            stayed_new += 1
    latencies.sort()
    cpu.sort()

    def pct(q: float, values: list[float] | None = None) -> float:
        v = latencies if values is None else cpu
        return v[min(len(v) - 1, int(q * len(v)))] * 1000

    feature_times.sort()
    scan_probes = [features(t, s, w, None, params) for _, t, s, w in probe_items[:10]]
    t2 = time.perf_counter()
    for f in scan_probes:
        best = max(index.stories, key=lambda s: index.similarity(f, s))
        del best
    scan = (time.perf_counter() - t2) / len(scan_probes) * 1000
    half = probes // 2
    f95 = feature_times[int(0.95 * len(feature_times))] * 1000
    print(
        f"assignment with {stories:,} stories in the window (index built in {build:.1f} s), "
        f"{probes:,} items, decide + add"
        + ("" if semantic else " (lexical only: --lexical)")
        + (" (every item of a kind: --kinds)" if kinds else "")
        + (" (probes of the stories' topics: --shared-topic)" if kinds and shared_topic else "")
        + (" (the learned join, MONITOR_GROUPING=learned: --pair-join)" if pair_join else "")
        + ":"
    )
    print(
        f"  CPU time of the thread: p50 {pct(0.50, cpu):.3f} ms, p95 {pct(0.95, cpu):.3f} ms, "
        f"p99 {pct(0.99, cpu):.3f} ms"
    )
    print(
        f"  wall clock (includes waiting for the CPU on a shared machine): p50 {pct(0.50):.3f} ms, "
        f"p95 {pct(0.95):.3f} ms, p99 {pct(0.99):.3f} ms"
    )
    print(f"  computing an item's features (before assignment), wall p95 {f95:.3f} ms")
    print(
        f"paraphrases joined their story {joined}/{probes - half}; "
        f"new events stayed new {stayed_new}/{half}"
    )
    print(
        f"linear scan scoring every story: {scan:.1f} ms per item "
        f"({scan / max(pct(0.5), 1e-9):.0f}x the indexed p50)"
    )
    return {
        "p50": pct(0.5, cpu),
        "p95": pct(0.95, cpu),
        "p99": pct(0.99, cpu),
        "wall_p95": pct(0.95),
        "scan": scan,
        "features": f95,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stories", type=int, default=100_000)
    ap.add_argument("--probes", type=int, default=2_000)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--lexical", action="store_true", help="without the word vectors")
    ap.add_argument("--kinds", action="store_true", help="every item of a kind of happening")
    ap.add_argument(
        "--shared-topic",
        action="store_true",
        help="with --kinds: each probe of a topic of the stories (the pair stage weighs them)",
    )
    ap.add_argument(
        "--pair-join", action="store_true", help="the learned join on (MONITOR_GROUPING=learned)"
    )
    args = ap.parse_args()
    options = {
        "semantic": not args.lexical,
        "kinds": args.kinds,
        "shared_topic": args.shared_topic,
        "pair_join": args.pair_join,
    }
    if args.smoke:
        run(2_000, 200, **options)
    else:
        run(args.stories, args.probes, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
