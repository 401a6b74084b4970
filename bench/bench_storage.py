"""Storage: database size per 100,000 items, and the time of `monitor matches --since` over
1,000,000 stored items, on SQLite and on PostgreSQL.

    python bench/bench_storage.py [--items 1000000] [--db sqlite|postgresql|both] [--smoke]
    python bench/bench_storage.py --simulate-days 365 --feeds 3000   # retention: bench_retention

Rows are written through the project's own schema (`monitor db upgrade`), with realistic
French RSS text sizes: 300 feeds, items spread over 30 days, 2 % of them matched (a story,
a match, its topics and an alert each). `matches --since` asks for the last 24 hours, as an
analyst's morning review would, through the CLI (process start included) and the library.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.bench_latency import postgres_database  # noqa: E402
from monitor.store import Database, ensure_schema  # noqa: E402
from monitor.store.models import (  # noqa: E402
    Alert,
    Feed,
    Item,
    ItemFeed,
    Match,
    MatchTopic,
    Story,
)
from monitor.views import list_matches  # noqa: E402
from tests.conftest import monitor_env, write_config  # noqa: E402

WORDS = (
    "gouvernement réforme Assemblée budget grève tribunal élection ministre Europe climat "
    "santé hôpital école police sécurité économie chômage énergie prix retraite sport match "
    "culture festival Paris Lyon Marseille région maire député Sénat justice enquête procès"
).split()
MATCH_SHARE = 0.02
CHUNK = 5_000


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def fill(db: Database, start: int, count: int, now: datetime, rng: random.Random) -> None:
    """Insert items [start, start+count) with their item_feeds, and 2 % of them matched."""
    with db.session() as s:
        if start == 0:
            s.execute(
                Feed.__table__.insert(),
                [
                    dict(
                        url=f"https://site{f}.example.fr/rss.xml",
                        name=f"Site {f}",
                        interval=300,
                        enabled=True,
                        error_count=0,
                        items_seen=0,
                        language="fr",
                        created_at=now,
                    )
                    for f in range(300)
                ],
            )
    for lo in range(start, start + count, CHUNK):
        hi = min(lo + CHUNK, start + count)
        items, links, matched = [], [], []
        for i in range(lo, hi):
            when = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
            feed = i % 300 + 1
            items.append(
                dict(
                    id=i + 1,
                    key=f"https://site{feed}.example.fr/article/{i}",
                    link=f"https://site{feed}.example.fr/2026/11/article-{i}.html",
                    guid=f"https://site{feed}.example.fr/article/{i}",
                    title=sentence(rng, 11)[:120],
                    summary=sentence(rng, 45)[:320],
                    content="",
                    author=None,
                    published=when,
                    first_seen=when,
                    updated_at=None,
                    feed_id=feed,
                    story_id=None,
                )
            )
            links.append(dict(item_id=i + 1, feed_id=feed, first_seen=when))
            if rng.random() < MATCH_SHARE:
                matched.append((i + 1, when, items[-1]["title"]))
        with db.session() as s:
            s.execute(Item.__table__.insert(), items)
            s.execute(ItemFeed.__table__.insert(), links)
            if matched:
                s.execute(
                    Story.__table__.insert(),
                    [
                        dict(id=i, title=t, title_signature=t, body_signature="", first_seen=w)
                        for i, w, t in matched
                    ],
                )
                s.execute(
                    Match.__table__.insert(),
                    [
                        dict(
                            id=i,
                            item_id=i,
                            story_id=i,
                            topics=["karabakh_ceasefire"],
                            scores={
                                "karabakh_ceasefire": 9.5,
                                "russian_mediation": 0.0,
                                "otsc": 0.0,
                            },
                            evidence=[
                                {
                                    "topic": "karabakh_ceasefire",
                                    "term": "haut-karabakh",
                                    "field": "title",
                                    "weight": 12.0,
                                }
                            ],
                            explanation="karabakh_ceasefire=9.5: haut-karabakh(t+12)",
                            score=9.5,
                            created_at=w,
                        )
                        for i, w, _ in matched
                    ],
                )
                s.execute(
                    MatchTopic.__table__.insert(),
                    [
                        dict(match_id=i, topic="karabakh_ceasefire", created_at=w)
                        for i, w, _ in matched
                    ],
                )
                s.execute(
                    Alert.__table__.insert(),
                    [dict(story_id=i, match_id=i, created_at=w) for i, w, _ in matched],
                )


def size_bytes(db: Database, path: Path | None) -> int:
    if path is not None:
        import sqlite3

        with sqlite3.connect(path) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with db.engine.connect() as c:
        return int(c.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def bench(kind: str, total: int, url: str, path: Path | None) -> None:
    rng = random.Random(11)
    now = datetime.now(UTC)
    db = Database(url)
    ensure_schema(db.engine)
    empty = size_bytes(db, path)
    first = min(100_000, total)
    t = time.perf_counter()
    fill(db, 0, first, now, rng)
    at_first = size_bytes(db, path) - empty
    if total > first:
        fill(db, first, total - first, now, rng)
    load = time.perf_counter() - t
    if kind == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE")
    full = size_bytes(db, path) - empty
    with db.session() as s:
        n_matches = s.scalar(text("SELECT count(*) FROM matches"))
    since = now - timedelta(days=1)
    t = time.perf_counter()
    rows = list_matches(db, since, None, None)
    lib = time.perf_counter() - t
    t = time.perf_counter()
    topic_rows = list_matches(db, since, "karabakh_ceasefire", None)
    lib_topic = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        env = monitor_env(write_config(Path(tmp) / "config", [], []), url)
        t = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "monitor",
                "matches",
                "--since",
                since.isoformat(),
                "--format",
                "jsonl",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        cli = time.perf_counter() - t
    assert len(out.stdout.splitlines()) == len(rows) == len(topic_rows)
    db.engine.dispose()
    per100k = full / (total / 100_000)
    print(
        f"{kind:10} {total:>9,} items ({n_matches:,} matches) loaded in {load:5.1f} s; "
        f"size {full / 2**20:7.1f} MiB = {per100k / 2**20:6.1f} MiB per 100k items "
        f"(first 100k: {at_first / 2**20:.1f} MiB)"
    )
    print(
        f"{'':10} matches --since 24 h: {len(rows):,} rows; library {lib * 1000:6.0f} ms, "
        f"with --topic {lib_topic * 1000:6.0f} ms, CLI (process start included) "
        f"{cli * 1000:6.0f} ms"
    )


def main() -> None:
    if any(a.startswith("--simulate-days") for a in sys.argv[1:]):
        from bench.bench_retention import main as simulate_year

        simulate_year(sys.argv[1:])  # a year on a simulated clock, retention on
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.items = 20_000
    print(f"{os.cpu_count()} cores; {args.items:,} items, {MATCH_SHARE:.0%} matched, 30 days")
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "storage.db"
            bench("sqlite", args.items, f"sqlite:///{path}", path)
    if args.db in ("postgresql", "both"):
        with postgres_database() as url:
            bench("postgresql", args.items, url, None)


if __name__ == "__main__":
    main()
