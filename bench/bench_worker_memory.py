"""Steady-state memory of a Celery worker: RSS of the worker's processes sampled as the polls
go by, up to N polls (default 1,000), on Redis and PostgreSQL. Growth between the first
checkpoint and the last is what a leak would show.

    python bench/bench_worker_memory.py [--polls 1000] [--feeds 40] [--smoke]

Every feed answers each poll with a new item at the head (so every poll parses, classifies
and stores something, and one in four is a matching item that gets alerted to a loopback
webhook).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.bench_latency import postgres_database  # noqa: E402
from tests.conftest import FeedServer, Webhook, monitor_env, write_config  # noqa: E402
from tests.integration.servers import redis_database  # noqa: E402
from tests.processes import Workers  # noqa: E402

COUNTER = itertools.count()
TITLES = [
    "Haut-Karabakh : nouvel incident sur la ligne de contact n°{n}",
    "Budget : le Sénat examine l'article {n}",
    "Tennis : qualification au tour {n}",
    "Météo : épisode pluvieux numéro {n}",
]


def dynamic_feed(handler: BaseHTTPRequestHandler) -> None:
    n = next(COUNTER)
    items = "".join(
        f"<item><title>{TITLES[k % 4].format(n=k)} ({handler.path})</title>"
        f"<link>https://dyn.example.org{handler.path}/{k}</link>"
        f"<description>Texte {k} du fil {handler.path}.</description></item>"
        for k in range(n, max(n - 20, -1), -1)
    )
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{items}</channel></rss>'
    )
    data = body.encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/rss+xml")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def tree_memory(proc: psutil.Process) -> tuple[int, int]:
    """RSS and PSS summed over the worker's processes (the prefork children and beat share
    pages with the parent: RSS counts them in each, PSS once)."""
    infos = [p.memory_full_info() for p in [proc, *proc.children(recursive=True)]
             if p.is_running()]  # fmt: skip
    return sum(i.rss for i in infos), sum(getattr(i, "pss", i.rss) for i in infos)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--polls", type=int, default=1000)
    ap.add_argument("--feeds", type=int, default=40)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.polls, args.feeds = 40, 10
    server, hook = FeedServer(), Webhook()
    urls = [server.add(f"/dyn{f}.xml", handler=dynamic_feed) for f in range(args.feeds)]
    checkpoints = sorted({args.polls // 10, args.polls // 4, args.polls // 2, args.polls})
    samples: list[tuple[int, float, tuple[int, int]]] = []
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        postgres_database() as db_url,
        redis_database() as broker,
    ):
        tmp = Path(tmpdir)
        feeds = [{"url": u, "interval": 1} for u in urls]
        env = monitor_env(write_config(tmp / "config", feeds, [hook.url]), db_url)
        env["MONITOR_BROKER_URL"] = broker
        subprocess.run([sys.executable, "-m", "monitor", "db", "upgrade"], env=env, check=True)
        workers = Workers(env, tmp)
        proc = workers.start(beat=True, name="worker", level="warning")
        worker = psutil.Process(proc.pid)
        started = time.monotonic()
        try:
            for target in checkpoints:
                while len(server.requests) < target:
                    if not workers.alive() or time.monotonic() - started > 30 + target:
                        raise SystemExit(
                            f"worker stalled at {len(server.requests)} polls:\n"
                            + workers.log("worker")[-3000:]
                        )
                    time.sleep(0.05)
                samples.append(
                    (len(server.requests), time.monotonic() - started, tree_memory(worker))
                )
        finally:
            workers.stop()
    server.close()
    hook.close()
    (first, first_pss), (last, last_pss) = samples[0][2], samples[-1][2]
    print(f"Celery worker (-c 2, with beat) on Redis + PostgreSQL, {args.feeds} feeds every 1 s, "
          f"{os.cpu_count()} cores; {len(hook.received)} alerts delivered")  # fmt: skip
    for polls, at, (rss, pss) in samples:
        print(f"  after {polls:5d} polls ({at:5.1f} s): the worker's processes RSS "
              f"{rss / 2**20:6.1f} MiB, PSS {pss / 2**20:6.1f} MiB")  # fmt: skip
    print(f"growth from {samples[0][0]} to {samples[-1][0]} polls: RSS "
          f"{(last - first) / 2**20:+.1f} MiB ({100 * (last - first) / first:+.1f} %), PSS "
          f"{(last_pss - first_pss) / 2**20:+.1f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
