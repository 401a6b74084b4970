"""Storage growth over a year with retention on, on a simulated clock.

    python bench/bench_storage.py --simulate-days 365 --feeds 3000 [--db sqlite|postgresql]
    (the same as python bench/bench_retention.py --days 365 --feeds 3000)

Every simulated day each feed publishes `--per-day` new items (French-sized text written here)
and keeps its last 20 items in its body, so each poll also sees items it already stored; 2 % of
the new items are matched (story, match, alert). Items go through the project's own
`store_items` and matches through `record_matches`, and the daily retention run is the one
`monitor run` and Celery beat call (`maintenance.prune`, MONITOR_RETENTION_DAYS=30). The
database size is printed at day 30, 90, 180 and 365 (and at the end): with pruning it levels
off; without (`--no-prune`) it grows by a constant amount a day.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from monitor.maintenance import database_size, prune  # noqa: E402
from monitor.retention import Retention, plan  # noqa: E402
from monitor.store import Database, ensure_schema  # noqa: E402
from monitor.store import feeds as feed_store  # noqa: E402
from monitor.store import items as item_store  # noqa: E402
from monitor.store import matches as match_store  # noqa: E402
from monitor.store.models import Feed  # noqa: E402
from monitor.store.prune import reclaim_space  # noqa: E402
from monitor.types import Classification, Evidence, FeedConfig  # noqa: E402
from monitor.types import Item as ParsedItem  # noqa: E402

WORDS = (
    "gouvernement réforme Assemblée budget grève tribunal élection ministre Europe climat "
    "santé hôpital école police sécurité économie chômage énergie prix retraite sport match "
    "culture festival Paris Lyon Marseille région maire député Sénat justice enquête procès"
).split()
IN_FEED = 20  # items a feed body carries
FEEDS_PER_POLL = 100  # feeds stored per call (one poll's transaction each in the service)
MATCHED = Classification(
    ("karabakh_ceasefire",),
    {"karabakh_ceasefire": 9.0},
    (Evidence("karabakh_ceasefire", "karabakh", "title", 9.0),),
)
CHECKPOINTS = (30, 90, 180, 365)


def phrases(rng: random.Random, count: int, lo: int, hi: int) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=rng.randint(lo, hi))) for _ in range(count)]


def simulate(url: str, days: int, feeds: int, per_day: int, pruning: bool) -> list[str]:
    rng = random.Random(7)
    start = datetime(2025, 1, 1, 6, tzinfo=UTC)
    db = Database(url)
    ensure_schema(db.engine)
    with db.session() as s:
        feed_store.sync_feeds(
            s, [FeedConfig(f"https://site{f}.example.fr/rss.xml") for f in range(feeds)], start
        )
        feed_ids = list(s.scalars(select(Feed.id).order_by(Feed.id)))
    bodies: dict[int, deque[ParsedItem]] = {f: deque(maxlen=IN_FEED) for f in feed_ids}
    titles, summaries = phrases(rng, 4096, 8, 16), phrases(rng, 4096, 40, 90)
    serial = 0
    lines: list[str] = []
    t0 = time.perf_counter()
    for day in range(1, days + 1):
        now = start + timedelta(days=day)
        for lo in range(0, len(feed_ids), FEEDS_PER_POLL):
            chunk = feed_ids[lo : lo + FEEDS_PER_POLL]
            seen: list[ParsedItem] = []
            for f in chunk:
                for _ in range(per_day):
                    serial += 1
                    link = f"https://site{f}.example.fr/a/{serial}"
                    bodies[f].append(
                        ParsedItem(
                            key=link,
                            guid=link,
                            link=link,
                            title=f"{titles[serial % 4093]} {serial}",
                            summary=summaries[serial % 4091],
                            published=now,
                        )
                    )
                seen.extend(bodies[f])
            with db.session() as s:
                stored = item_store.store_items(s, chunk[0], seen, now)
                new = [st for st in stored if st.new]
                matched = [(st.row_id, st.item, MATCHED) for st in new if rng.random() < 0.02]
                match_store.record_matches(s, matched, now)
        if pruning:
            prune(db, plan(Retention(unmatched_days=30), now), now)
        if day in CHECKPOINTS or day == days:
            size = database_size(db) or 0
            lines.append(
                f"day {day:>3}: {serial:>10,} items published, database "
                f"{size / 2**20:8.1f} MiB ({time.perf_counter() - t0:5.0f} s)"
            )
            print(lines[-1], flush=True)
    if not pruning:
        reclaim_space(db.engine)
    db.dispose()
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", "--simulate-days", type=int, default=365)
    ap.add_argument("--feeds", type=int, default=3000)
    ap.add_argument("--per-day", type=int, default=5)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--no-prune", action="store_true", help="the same year without retention")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.days, args.feeds = 35, 40
    print(
        f"{args.feeds:,} feeds × {args.per_day} items a day for {args.days} days on {args.db}, "
        f"retention {'off' if args.no_prune else 'on (30 days)'}"
    )
    if args.db == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            simulate(
                f"sqlite:///{Path(tmp) / 'year.db'}",
                args.days,
                args.feeds,
                args.per_day,
                not args.no_prune,
            )
    else:
        from bench.bench_latency import postgres_database

        with postgres_database() as url:
            simulate(url, args.days, args.feeds, args.per_day, not args.no_prune)


if __name__ == "__main__":
    main()
