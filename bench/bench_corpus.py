"""A corpus of feeds no one here wrote, through the whole pipeline: every file of a directory
is served from loopback HTTP servers and polled by ONE `monitor run --once`; then
`monitor feeds --format jsonl` says what each feed became. Reports how many feeds, how many
were read (with or without a warning), the errors by kind and message, and how many errors
or log lines show a Python exception (a traceback, 'internal:', an exception's class name):
that count must be 0, and the script exits 1 otherwise.

Also, in-process and in the same run, the CPU time of parsing a ~9.8 MB feed whose items hold
10,000 escaped `<script>` openers each, against plain text of the same size (issue 10 item 6).

    python bench/bench_corpus.py --corpus DIR [--hosts 8] [--hostile-mb 9.8]
    python bench/bench_corpus.py --smoke      # tests/data/hostile, a 1 MB hostile feed
    python bench/bench_corpus.py --smoke --monitor-from /tmp/before   # another version's code

`--monitor-from DIR` runs the `monitor` package found in DIR (for before/after numbers:
`git archive REV monitor | tar -x -C /tmp/before`), in this process and in `monitor run`.

The corpus of the README's numbers is feedparser's own test suite, extracted outside the repo
(its feeds are not copied here):

    git --git-dir=PATH/feedparser.git archive HEAD tests | tar -x -C /tmp/fpcorpus
    python bench/bench_corpus.py --corpus /tmp/fpcorpus
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "--monitor-from" in sys.argv:  # before anything imports monitor
    MONITOR_ROOT = Path(sys.argv[sys.argv.index("--monitor-from") + 1]).resolve()
    sys.path.insert(0, str(MONITOR_ROOT))
else:
    MONITOR_ROOT = ROOT

from monitor.errors import ParseError  # noqa: E402
from monitor.parse import parse_feed  # noqa: E402
from tests.conftest import FeedServer, monitor_env, write_config  # noqa: E402

SUFFIXES = {".xml", ".rss", ".atom", ".rdf", ".txt", ".html", ".json", ".opml", ".feed"}
# What a Python exception looks like when it leaks into a feed's error or the log.
EXCEPTION = re.compile(
    r"Traceback \(most recent call last\)|\binternal:|"
    r"\b[A-Z][A-Za-z]*(?:Error|Exception)\b(?!: the document)|\bStopIteration\b"
)
# Positions and numbers vary; the kind of message does not.
_NUMBERS = re.compile(r"\d+")


def corpus_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.endswith(".expected.json")
    )


def message_kind(error: str) -> str:
    return _NUMBERS.sub("N", error)[:90]


def run_corpus(directory: Path, hosts: int) -> int:
    files = corpus_files(directory)
    servers = [FeedServer(host=f"127.0.0.{h + 1}") for h in range(hosts)]
    urls = []
    for n, path in enumerate(files):
        route = "/" + quote(str(path.relative_to(directory)))
        urls.append(servers[n % hosts].add(route, path.read_bytes(), etag=False))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp) / "config", urls, [])
            env = monitor_env(config, f"sqlite:///{tmp}/corpus.db", MONITOR_FETCH_DEADLINE="20")
            env["PYTHONPATH"] = str(MONITOR_ROOT)
            started = time.perf_counter()
            run = subprocess.run(
                [sys.executable, "-m", "monitor", "run", "--once"],
                env=env,
                cwd=MONITOR_ROOT,
                capture_output=True,
                text=True,
                timeout=3600,
            )
            wall = time.perf_counter() - started
            listed = subprocess.run(
                [sys.executable, "-m", "monitor", "feeds", "--format", "jsonl"],
                env=env,
                cwd=MONITOR_ROOT,
                capture_output=True,
                text=True,
                timeout=600,
            )
    finally:
        for s in servers:
            s.close()
    feeds = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    ok = [f for f in feeds if f["last_status"] == "ok"]
    warned = [f for f in ok if f.get("error")]
    errors = [f for f in feeds if f["last_status"] == "error"]
    by_kind = Counter(f.get("error_kind") or "?" for f in errors)
    by_message = Counter((f.get("error_kind"), message_kind(f.get("error") or "")) for f in errors)
    leaked = [f for f in feeds if EXCEPTION.search(f.get("error") or "")]
    log_leaks = [line for line in run.stderr.splitlines() if EXCEPTION.search(line)]
    print(f"corpus {directory}: {len(files)} feeds on {hosts} loopback hosts")
    print(f"monitor package: {Path(sys.modules['monitor'].__file__ or '').parent}")
    print(f"monitor run --once: {wall:.1f} s wall, exit status {run.returncode}")
    print(
        f"feeds listed {len(feeds)}: read {len(ok)} ({len(warned)} with a warning kept), "
        f"errors {len(errors)}, other {len(feeds) - len(ok) - len(errors)}"
    )
    for kind, n in by_kind.most_common():
        print(f"  {kind:14} {n:6}")
        for (k, msg), m in by_message.most_common():
            if k == kind:
                print(f"      {m:6}  {msg}")
    print(f"Python exceptions in feed errors: {len(leaked)}; in the log: {len(log_leaks)}")
    for f in leaked[:20]:
        print(f"  {f['url']}: {f['error']}")
    for line in log_leaks[:20]:
        print(f"  log: {line[:200]}")
    healthy = run.returncode == 0 and len(feeds) == len(files)
    return 0 if healthy and not leaked and not log_leaks else 1


def hostile_feed(size: int, unit: str, element: str = "description") -> bytes:
    """Items of 10,000 `unit`s each in `element`, as many as make `size` bytes."""
    item = (
        f"<item><title>t{{i}}</title><link>https://e.org/{{i}}</link>"
        f"<{element}>{unit * 10_000}</{element}></item>"
    )
    items = "".join(item.format(i=i) for i in range(max(1, size // len(item))))
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>t</title>'
        f"{items}</channel></rss>"
    ).encode()


def cpu_parse(body: bytes) -> float:
    started = time.process_time()
    with contextlib.suppress(ParseError):
        parse_feed(body, "https://e.org/rss")
    return time.process_time() - started


def run_hostile(megabytes: float) -> None:
    size = int(megabytes * 1_000_000)
    cases = [
        ("plain text (10-character words)", "texte sûr ", "description"),
        ("escaped <script> openers", "&lt;script&gt;", "description"),
        ("escaped <script> openers in content:encoded", "&lt;script&gt;", "content:encoded"),
        ("escaped <!-- openers", "&lt;!--", "description"),
    ]
    plain = 0.0
    for label, unit, element in cases:
        body = hostile_feed(size, unit, element)
        cpu = cpu_parse(body)
        plain = plain or cpu
        print(
            f"parse CPU, {len(body) / 1e6:4.1f} MB, 10,000 per item, {label:45} "
            f"{cpu:7.2f} s  ({cpu / plain:.1f}x plain)"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, help="directory of feed files (searched recursively)")
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--hostile-mb", type=float, default=9.8)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--monitor-from", type=Path, help="directory holding the monitor package")
    args = ap.parse_args()
    if args.smoke:
        args.corpus, args.hosts, args.hostile_mb = ROOT / "tests" / "data" / "hostile", 2, 1.0
    if args.corpus is None:
        ap.error("--corpus DIR is required (or --smoke)")
    if not args.corpus.is_dir():
        ap.error(f"--corpus {args.corpus}: not a directory")
    status = run_corpus(args.corpus, args.hosts)
    run_hostile(args.hostile_mb)
    sys.exit(status)


if __name__ == "__main__":
    main()
