"""Polling speed: `monitor run --once` on N feeds that each answer after 0.25 s, against the
loop a user would write by hand (feedparser.parse(url) for each feed, sequentially), same feeds,
same run. Then a second cycle: share of conditional requests answered 304, and its CPU time.
Also the peak RSS of the `monitor run --once` process tree.

    python bench/bench_poll.py [--feeds 300] [--hosts 30] [--delay 0.25] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import feedparser  # noqa: E402
import psutil  # noqa: E402

from tests.conftest import FeedServer, monitor_env, write_config  # noqa: E402

ITEM = """<item><title>{title}</title><link>https://bench{f}.example.org/article/{i}</link>
<guid>https://bench{f}.example.org/article/{i}</guid><description>{summary}</description>
<pubDate>Tue, 13 Sep 2022 08:{m:02d}:00 +0200</pubDate></item>"""
TITLES = [
    (
        "Haut-Karabakh : nouvelles violations du cessez-le-feu (fil {f})",
        "Erevan et Bakou s'accusent de tirs.",
    ),
    (
        "Réforme des retraites : journée de mobilisation n°{i} (fil {f})",
        "Les syndicats appellent à la grève.",
    ),
    ("Ukraine : Lavrov rejette le plan de paix (fil {f}, {i})", "Moscou accuse Kiev."),
    (
        "Météo : orages dans le Sud-Ouest (fil {f}, {i})",
        "Vigilance orange dans vingt départements.",
    ),
]


def feed_body(f: int, items: int = 20) -> bytes:
    parts = []
    for i in range(items):
        t, s = TITLES[i % len(TITLES)]
        parts.append(ITEM.format(title=t.format(f=f, i=i), summary=s, f=f, i=i, m=i % 60))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Fil {f}</title>'
        + "".join(parts)
        + "</channel></rss>"
    ).encode()


def run_measured(
    cmd: list[str], env: dict[str, str], memory: bool = False
) -> tuple[float, float, int, int]:
    """Run a command; return (wall seconds, CPU seconds of the tree, peak RSS and peak PSS of
    the tree in bytes). The pool processes are forked: their RSS counts the pages they share
    with the parent again, their PSS (proportional set size) counts each shared page once.
    Reading PSS costs CPU on a small machine, so timed runs do not sample memory."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = psutil.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_rss = peak_pss = 0
    while proc.poll() is None:
        if not memory:
            time.sleep(0.01)
            continue
        try:
            procs = [proc, *proc.children(recursive=True)]
            infos = [p.memory_full_info() for p in procs if p.is_running()]
            peak_rss = max(peak_rss, sum(i.rss for i in infos))
            peak_pss = max(peak_pss, sum(getattr(i, "pss", i.rss) for i in infos))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, peak_rss, peak_pss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feeds", type=int, default=300)
    ap.add_argument("--hosts", type=int, default=30)
    ap.add_argument("--delay", type=float, default=0.25)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--skip-naive", action="store_true", help="only time monitor (profiling)")
    ap.add_argument(
        "--py-spy", metavar="FILE", help="record the first cycle with py-spy (collapsed stacks)"
    )
    args = ap.parse_args()
    if args.smoke:
        args.feeds, args.hosts, args.delay = 12, 3, 0.05
    servers = [FeedServer(host=f"127.0.0.{h + 1}") for h in range(args.hosts)]
    urls = []
    for f in range(args.feeds):
        s = servers[f % args.hosts]
        urls.append(s.add(f"/feed{f}.xml", feed_body(f), delay=args.delay))
    try:
        start = time.perf_counter()
        for u in [] if args.skip_naive else urls:  # the hand-written loop
            feedparser.parse(u)
        naive = time.perf_counter() - start
        for s in servers:
            s.requests.clear()
        with tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp) / "config", urls, [])
            env = monitor_env(config, f"sqlite:///{tmp}/bench.db")
            cmd = [sys.executable, "-m", "monitor", "run", "--once"]
            spy = ["py-spy", "record", "-r", "200", "-s", "-f", "raw", "-o", args.py_spy, "--"]
            wall1, cpu1, _, _ = run_measured(spy + cmd if args.py_spy else cmd, env)
            first_requests = sum(len(s.requests) for s in servers)
            for s in servers:
                s.requests.clear()
            wall2, cpu2, _, _ = run_measured(cmd, env)
            second = [h for s in servers for _, h in s.requests]
            _, _, rss2, pss2 = run_measured(cmd, env, memory=True)
            # The first cycle again on an empty database, this time sampling memory.
            env["MONITOR_DATABASE_URL"] = f"sqlite:///{tmp}/memory.db"
            _, _, rss1, pss1 = run_measured(cmd, env, memory=True)
        conditional = sum("If-None-Match" in h or "If-Modified-Since" in h for h in second)
    finally:
        for s in servers:
            s.close()
    print(
        f"{args.feeds} feeds on {args.hosts} loopback hosts, {args.delay:g} s per answer, "
        f"{os.cpu_count()} cores"
    )
    print(f"hand-written loop (feedparser.parse(url) sequentially): {naive:7.2f} s")
    print(
        f"monitor run --once, first cycle:                        {wall1:7.2f} s  "
        f"-> {naive / wall1:5.1f}x faster ({first_requests} requests, CPU {cpu1:.2f} s, "
        f"peak RSS {rss1 / 2**20:.0f} MiB, PSS {pss1 / 2**20:.0f} MiB)"
    )
    print(
        f"monitor run --once, second cycle:                       {wall2:7.2f} s  "
        f"conditional {conditional}/{len(second)} = {100 * conditional / max(len(second), 1):.1f}%, "
        f"CPU {cpu2:.2f} s = {100 * cpu2 / max(cpu1, 1e-9):.0f}% of the first, "
        f"peak RSS {rss2 / 2**20:.0f} MiB, PSS {pss2 / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
