"""Polling speed, embedded and distributed, on N feeds that each answer after 0.25 s.

Embedded: `monitor run --once` against the loop a user would write by hand
(feedparser.parse(url) for each feed, sequentially), same feeds, same run; then a second cycle
(share of conditional requests answered 304, its CPU time).

Celery: the README's command, `celery -A monitor.worker worker --beat` (one worker), then the
same with a second `celery worker` process beside it (as on a second machine), on Redis db 12
and a fresh PostgreSQL database. The workers are started and idle first; the cycle starts when
every feed is made due in the database and ends when every feed has been polled (first cycle:
200 with new items; second cycle: 304).

For each: wall time of the cycle, CPU of the process tree (and of the PostgreSQL backends of
the database), peak PSS of the tree, peak PostgreSQL connections to the database, and the most
requests one loopback host was answering at once (the per-host limit is 4). For Celery, how
long beat's `enqueue_due_feeds` ticks took (they must stay well under their 1 s period).

    python bench/bench_poll.py [--mode embedded|celery|both] [--feeds 300] [--hosts 30]
        [--delay 0.25] [--embedded-db sqlite|postgresql] [--celery-workers 1,2] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import feedparser  # noqa: E402
import psutil  # noqa: E402

from tests.conftest import (  # noqa: E402
    FeedServer,
    fresh_pg_database,
    monitor_env,
    write_config,
)
from tests.integration.servers import SERVERS, redis_database  # noqa: E402

PER_HOST = 4

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


# --- measuring a process tree -----------------------------------------------------------------


@dataclass
class Cycle:
    wall: float = 0.0
    # The process tree (monitor run and its pool: exact, from wait4's rusage; Celery workers:
    # each process's own time, sampled).
    cpu: float = 0.0
    db_cpu: float = 0.0  # PostgreSQL backends of the database
    pss: int = 0  # peak, bytes
    rss: int = 0
    connections: int = 0  # peak PostgreSQL connections to the database
    per_host: int = 0  # the most requests one loopback host was answering at once
    requests: int = 0
    conditional: int = 0
    in_process: float | None = None  # the cycle as `monitor run --once` logs it
    ticks: int = 0  # poll-due-feeds ticks beat sent during the cycle
    per_process: dict[int, float] = field(default_factory=dict)  # CPU by pid


def _tree(roots: list[psutil.Process]) -> list[psutil.Process]:
    procs = []
    for r in roots:
        with suppress(psutil.Error):
            procs += [r, *r.children(recursive=True)]
    return procs


def _cpu(p: psutil.Process) -> float:
    """The process's own CPU time: its reaped children are sampled as processes of their own
    (adding children_user/children_system counted them twice)."""
    t = p.cpu_times()
    return float(t.user + t.system)


class Sampler:
    """Samples, while a cycle runs: CPU of the tree and PostgreSQL connections to the database
    (every 0.1 s); PSS/RSS of the tree and CPU of the database's backends (every second:
    reading PSS and walking /proc cost CPU)."""

    def __init__(self, roots: list[psutil.Process], database: str | None):
        self.roots, self.database = roots, database
        self.cycle = Cycle()
        self._stop = threading.Event()
        self._cpu0: dict[int, float] = {}
        self._cpu: dict[int, float] = {}
        self._db0: dict[int, float] = {}
        self._db: dict[int, float] = {}
        for p in _tree(roots):
            with suppress(psutil.Error):
                self._cpu0[p.pid] = _cpu(p)
        self._db0 = self._backends()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _backends(self) -> dict[int, float]:
        if not self.database:
            return {}
        out = {}
        for p in psutil.process_iter(["name", "cmdline"]):
            try:
                if p.info["name"] == "postgres" and self.database in " ".join(
                    p.info["cmdline"] or []
                ):
                    out[p.pid] = _cpu(p)
            except psutil.Error:
                pass
        return out

    def _run(self) -> None:
        engine = None
        if self.database:
            from sqlalchemy import create_engine, text

            engine = create_engine(SERVERS.postgres_url())
            conn = engine.connect()
            count = text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = :d AND application_name <> 'bench'"
            )
        last_memory = last_backends = 0.0
        while not self._stop.wait(0.1):
            procs = _tree(self.roots)
            for p in procs:
                with suppress(psutil.Error):
                    self._cpu[p.pid] = _cpu(p)
            if engine is not None:
                n = conn.execute(count, {"d": self.database}).scalar_one()
                conn.rollback()
                self.cycle.connections = max(self.cycle.connections, int(n))
                if time.monotonic() - last_backends >= 1.0:  # walking /proc costs CPU
                    last_backends = time.monotonic()
                    self._db.update(self._backends())
            if time.monotonic() - last_memory >= 1.0:
                last_memory = time.monotonic()
                try:
                    infos = [p.memory_full_info() for p in procs if p.is_running()]
                except psutil.Error:
                    continue
                self.cycle.rss = max(self.cycle.rss, sum(i.rss for i in infos))
                self.cycle.pss = max(self.cycle.pss, sum(getattr(i, "pss", i.rss) for i in infos))
        if engine is not None:
            conn.close()
            engine.dispose()

    def stop(self) -> Cycle:
        self._stop.set()
        self._thread.join()
        for p in _tree(self.roots):
            with suppress(psutil.Error):
                self._cpu[p.pid] = _cpu(p)
        self._db.update(self._backends())
        self.cycle.per_process = {pid: v - self._cpu0.get(pid, 0.0) for pid, v in self._cpu.items()}
        self.cycle.cpu = sum(self.cycle.per_process.values())
        self.cycle.db_cpu = sum(v - self._db0.get(pid, 0.0) for pid, v in self._db.items())
        return self.cycle


def observe(servers: list[FeedServer], cycle: Cycle) -> None:
    """What the loopback hosts saw during the cycle (then reset for the next one)."""
    cycle.per_host = max(s.peak_active for s in servers)
    heads = [h for s in servers for _, h in s.requests]
    cycle.requests = len(heads)
    cycle.conditional = sum("If-None-Match" in h or "If-Modified-Since" in h for h in heads)
    for s in servers:
        with s.lock:
            s.requests.clear()
            s.peak_active = 0


# --- the embedded mode ------------------------------------------------------------------------

CYCLE_LINE = re.compile(r"cycle: .*, ([\d.]+)s$", re.M)


def embedded_cycle(env: dict[str, str], servers: list[FeedServer], database: str | None) -> Cycle:
    cmd = [sys.executable, "-m", "monitor", "run", "--once"]
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = psutil.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        sampler = Sampler([proc], database)
        # wait4: the CPU of the process and of every descendant it reaped (its pool), exactly.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        cycle = sampler.stop()
        cycle.cpu = usage.ru_utime + usage.ru_stime
        log.seek(0)
        text = log.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"monitor run --once failed:\n{text[-3000:]}")
    cycle.wall = wall
    found = CYCLE_LINE.findall(text)
    cycle.in_process = float(found[-1]) if found else None
    observe(servers, cycle)
    return cycle


@contextmanager
def database(kind: str, prefix: str, tmp: str) -> Iterator[tuple[str, str | None]]:
    """(URL, PostgreSQL database name or None)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp}/{prefix}.db", None
        return
    with fresh_pg_database(prefix) as url:
        yield url, url.rsplit("/", 1)[1]


def run_embedded(
    args: argparse.Namespace, urls: list[str], servers: list[FeedServer]
) -> tuple[Cycle, Cycle]:
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp) / "config", urls, [])
        with database(args.embedded_db, "bench_embedded", tmp) as (url, name):
            env = monitor_env(config, url, MONITOR_POLL_INTERVAL="3600")
            # The schema first, as for the workers: the first cycle times polling, not DDL.
            subprocess.run([sys.executable, "-m", "monitor", "db", "upgrade"], env=env,
                           check=True, capture_output=True, timeout=120)  # fmt: skip
            first = embedded_cycle(env, servers, name)
            second = embedded_cycle(env, servers, name)
    return first, second


# --- the Celery mode --------------------------------------------------------------------------

TICK = re.compile(r"Sending due task poll-due-feeds")


class SQL:
    """One connection to the benchmark's database (a new one per query would cost the
    PostgreSQL server a process each time)."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine

        self.engine = create_engine(
            url.replace("postgresql://", "postgresql+psycopg://", 1),
            connect_args={"application_name": "bench"},  # not counted as the program's
        )
        self.conn = self.engine.connect()

    def __call__(self, statement: str) -> float:
        from sqlalchemy import text

        result = self.conn.execute(text(statement))
        value = float(result.scalar_one()) if result.returns_rows else 0.0
        self.conn.commit()
        return value

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def celery_cycles(
    args: argparse.Namespace, urls: list[str], servers: list[FeedServer], workers: int
) -> tuple[Cycle, Cycle]:
    import redis

    procs: list[psutil.Popen] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_pg_database("bench_celery") as db_url,
        redis_database() as broker_url,  # this benchmark's own Redis database, emptied
    ):
        broker = redis.Redis.from_url(broker_url)
        name = db_url.rsplit("/", 1)[1]
        config = write_config(Path(tmp) / "config", urls, [])
        env = monitor_env(config, db_url, MONITOR_BROKER_URL=broker_url,
                          MONITOR_POLL_INTERVAL="3600")  # fmt: skip
        if args.poll_batch:
            env["MONITOR_POLL_BATCH"] = str(args.poll_batch)
        subprocess.run([sys.executable, "-m", "monitor", "db", "upgrade"], env=env, check=True,
                       capture_output=True, timeout=120)  # fmt: skip
        # The feeds in the database, not due yet: the workers start idle.
        sync = (
            "from monitor.pipeline import Runtime, sync_feeds\n"
            "from monitor.settings import load_settings\n"
            "sync_feeds(Runtime.build(load_settings()))\n"
        )
        subprocess.run([sys.executable, "-c", sync], env=env, check=True, timeout=120)
        sql = SQL(db_url)
        sql("UPDATE feeds SET next_check_at = now() + interval '1 day'")
        logs = []
        try:
            for w in range(workers):
                # The README's commands: the first worker with --beat, the others without.
                cmd = [sys.executable, "-m", "celery", "-A", "monitor.worker", "worker",
                       "-l", "info", "-n", f"bench{w}@%h"]  # fmt: skip
                if w == 0:
                    cmd += ["--beat", "-s", f"{tmp}/beat-schedule"]
                cmd += args.worker_args.split()
                logdir = args.keep_logs or tmp
                log = open(f"{logdir}/worker{w}.log", "wb")  # noqa: SIM115
                logs.append(Path(f"{logdir}/worker{w}.log"))
                procs.append(psutil.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
            deadline = time.monotonic() + 120
            while not all(" ready." in p.read_text(errors="replace") for p in logs):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise SystemExit("workers did not start:\n" + logs[0].read_text()[-3000:])
                time.sleep(0.1)
            time.sleep(3)  # beat's first ticks, the feeds.yaml check
            for s in servers:
                s.requests.clear()
                s.peak_active = 0
            cycles = []
            for _ in range(2):
                ticks_before = len(TICK.findall(logs[0].read_text(errors="replace")))
                sampler = Sampler(list(procs), name)
                start = time.perf_counter()
                sql("UPDATE feeds SET next_check_at = now()")
                t0 = sql("SELECT (extract(epoch from now()) * 1000)::bigint") / 1000
                while True:
                    left = sql(
                        "SELECT count(*) FROM feeds WHERE leased_until IS NOT NULL OR "
                        f"last_polled_at IS NULL OR last_polled_at < to_timestamp({t0}) "
                        "OR next_check_at < now()",
                    )
                    if left == 0:
                        break
                    if time.monotonic() - start > args.timeout:
                        raise SystemExit(f"cycle not done after {args.timeout} s: {left} left")
                    time.sleep(0.1)
                wall = time.perf_counter() - start
                cycle = sampler.stop()
                cycle.wall = wall
                sent = len(TICK.findall(logs[0].read_text(errors="replace")))
                cycle.ticks = sent - ticks_before
                observe(servers, cycle)
                cycles.append(cycle)
                time.sleep(2)
            print(lease_probe(db_url, len(urls)), flush=True)
        finally:
            sql.close()
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(30)
                except psutil.TimeoutExpired:
                    p.kill()
            broker.flushdb()
    return cycles[0], cycles[1]


def lease_probe(db_url: str, feeds: int) -> str:
    """How long taking 50 due feeds takes with this many feeds: none due, then all due
    (each in a transaction rolled back)."""
    from sqlalchemy import text

    from monitor.pipeline import utcnow
    from monitor.store import Database
    from monitor.store.feeds import lease_due_feed_rows

    db = Database(db_url)
    out = []
    try:
        for label, due in (("none due", False), ("all due", True)):
            times = []
            for _ in range(20):
                with db.sessions() as s:
                    if due:
                        s.execute(text("UPDATE feeds SET next_check_at = now() - interval '1 s'"))
                    start = time.perf_counter()
                    lease_due_feed_rows(s, utcnow(), "probe", 60, 50)
                    times.append(time.perf_counter() - start)
                    s.rollback()
            out.append(f"{label} {1000 * sorted(times)[len(times) // 2]:.1f} ms")
    finally:
        db.dispose()
    return f"taking 50 due feeds among {feeds}: " + ", ".join(out)


# --- report -----------------------------------------------------------------------------------


def line(label: str, c: Cycle, base: Cycle | None = None) -> str:
    ratio = f" = {c.wall / base.wall:4.2f}x embedded" if base else ""
    inner = f" (in-process cycle {c.in_process:.2f} s)" if c.in_process is not None else ""
    conn = f", peak PG connections {c.connections}" if c.connections else ""
    db = f" + PG backends {c.db_cpu:.2f} s" if c.db_cpu else ""
    ticks = f", beat ticks {c.ticks} in {c.wall:.0f} s" if c.ticks else ""
    return (
        f"{label:<34} {c.wall:7.2f} s{ratio}{inner}; {c.requests} requests, "
        f"conditional {c.conditional}/{c.requests}, CPU {c.cpu:.2f} s{db}, peak PSS "
        f"{c.pss / 2**20:.0f} MiB (RSS {c.rss / 2**20:.0f}){conn}, per-host max "
        f"{c.per_host}/{PER_HOST}{ticks}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["embedded", "celery", "both"], help="default: embedded")
    ap.add_argument("--feeds", type=int, default=300)
    ap.add_argument("--hosts", type=int, default=30)
    ap.add_argument("--delay", type=float, default=0.25)
    ap.add_argument("--embedded-db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--celery-workers", default="1,2", help="worker counts to measure")
    ap.add_argument("--worker-args", default="", help="more `celery worker` options (sizing)")
    ap.add_argument("--poll-batch", type=int, help="MONITOR_POLL_BATCH for the workers")
    ap.add_argument("--keep-logs", metavar="DIR", help="write the Celery workers' logs here")
    ap.add_argument("--timeout", type=float, default=900, help="seconds a cycle may take")
    ap.add_argument("--processes", action="store_true", help="Celery: CPU by process")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--skip-naive", action="store_true", help="no hand-written loop")
    args = ap.parse_args()
    if args.smoke:  # both modes, two Celery workers: that everything still runs
        args.feeds, args.hosts, args.delay = 12, 3, 0.05
        args.mode = args.mode or "both"
        args.celery_workers = "2"
    args.mode = args.mode or "embedded"
    naive_loop = args.mode != "celery" and not args.skip_naive and args.feeds <= 1000
    servers = [FeedServer(host=f"127.0.0.{h + 1}") for h in range(args.hosts)]
    urls = []
    for f in range(args.feeds):
        s = servers[f % args.hosts]
        urls.append(s.add(f"/feed{f}.xml", feed_body(f), delay=args.delay))
    load = os.getloadavg()
    print(
        f"{args.feeds} feeds on {args.hosts} loopback hosts, {args.delay:g} s per answer, "
        f"{os.cpu_count()} cores, load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    try:
        if naive_loop:
            start = time.perf_counter()
            for u in urls:
                feedparser.parse(u)
            naive = time.perf_counter() - start
            print(f"hand-written loop (feedparser.parse(url) sequentially): {naive:7.2f} s")
            for s in servers:
                s.requests.clear()
                s.peak_active = 0
        base = None
        if args.mode in ("embedded", "both"):
            first, second = run_embedded(args, urls, servers)
            base = first
            db = args.embedded_db
            print(line(f"monitor run --once ({db}), first", first), flush=True)
            print(line(f"monitor run --once ({db}), 304", second), flush=True)
            if naive_loop:
                print(f"  -> {naive / first.wall:5.1f}x faster than the hand-written loop")
        if args.mode in ("celery", "both"):
            for n in [int(x) for x in args.celery_workers.split(",")]:
                first, second = celery_cycles(args, urls, servers, n)
                label = f"celery, {n} worker{'s' * (n > 1)}"
                print(line(f"{label}, first", first, base), flush=True)
                if args.processes:
                    print("  CPU by process (pid: s): " + ", ".join(
                        f"{pid}: {cpu:.2f}" for pid, cpu in sorted(first.per_process.items())))  # fmt: skip
                print(line(f"{label}, 304", second), flush=True)
                if base and base.in_process:
                    print(
                        f"  -> first cycle {first.wall / base.in_process:4.2f}x the embedded "
                        f"in-process cycle ({base.in_process:.2f} s, start-up excluded)"
                    )
    finally:
        for s in servers:
            s.close()
    load = os.getloadavg()
    print(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
