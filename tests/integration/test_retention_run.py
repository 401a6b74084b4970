"""Retention end to end: `monitor db prune --older-than 0d` after a run, then a full re-fetch
stores and alerts nothing; and a full disk under `monitor run` loses nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DATA, FeedServer, Webhook, monitor_env, write_config
from tests.processes import MonitorRun
from tests.processes import wait_for as wait


def run_monitor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def on_disk(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def bulk_items(tag: str, n: int, words: int = 60) -> bytes:
    """`n` ordinary (unmatched) items written for this test."""
    filler = " ".join(["Le conseil municipal examine le budget des écoles et des routes."] * words)
    return "".join(
        f"<item><title>Conseil municipal {tag} : séance numéro {i}</title>"
        f"<link>https://ville.example.org/{tag}/{i}</link>"
        f"<description>{filler} ({i})</description></item>"
        for i in range(n)
    ).encode()


def bulk_feed(tag: str, n: int) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        b"<title>Ville</title><link>https://ville.example.org/</link>"
        + bulk_items(tag, n)
        + b"</channel></rss>"
    )


def test_prune_then_a_full_refetch_stores_and_alerts_nothing(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook
) -> None:
    # etag=False: the second run gets every body in full (no 304), as after a feed's restart.
    urls = [
        feed_server.add("/a.xml", (DATA / "caucase_a.xml").read_bytes(), etag=False),
        feed_server.add("/b.xml", (DATA / "caucase_b.xml").read_bytes(), etag=False),
        feed_server.add("/ville.xml", bulk_feed("v", 300), etag=False),
    ]
    config = write_config(tmp_path / "config", urls, [webhook.url])
    db = tmp_path / "monitor.db"
    env = monitor_env(config, f"sqlite:///{db}")
    first = run_monitor(env, "run", "--once")
    assert first.returncode == 0, first.stderr
    alerts = webhook.titles()
    assert alerts
    matches = run_monitor(env, "matches", "--format", "jsonl").stdout.splitlines()
    size_before = on_disk(db)

    dry = run_monitor(env, "db", "prune", "--older-than", "0d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would be emptied" in dry.stdout and "nothing written" in dry.stdout
    pruned = run_monitor(env, "db", "prune", "--older-than", "0d")
    assert pruned.returncode == 0, pruned.stderr
    emptied = int(pruned.stdout.split(" unmatched items")[0])
    assert emptied >= 300  # every unmatched item; the matched ones keep their text
    assert on_disk(db) < size_before, pruned.stdout

    again = run_monitor(env, "run", "--once")
    assert again.returncode == 0, again.stderr
    assert "0 new items" in again.stderr and " 0 alerts" in again.stderr
    assert webhook.titles() == alerts
    after = run_monitor(env, "matches", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(x)["title"] for x in after] == [json.loads(x)["title"] for x in matches]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs of our own: the disk that fills up."""
    mount = tmp_path / "small"
    mount.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {r.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write until the filesystem says ENOSPC."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_full_disk_loses_nothing_and_run_recovers(
    tmp_path: Path, small_disk: Path, feed_server: FeedServer, webhook: Webhook
) -> None:
    empty = b'<?xml version="1.0"?><rss version="2.0"><channel><title>vide</title></channel></rss>'
    urls = [
        feed_server.add("/a.xml", empty),
        feed_server.add("/b.xml", empty),
        feed_server.add("/ville.xml", bulk_feed("v", 50)),
    ]
    config = write_config(tmp_path / "config", urls, [webhook.url])
    db = small_disk / "monitor.db"
    env = monitor_env(
        config, f"sqlite:///{db}", MONITOR_POLL_INTERVAL="1", MONITOR_LEASE_SECONDS="3",
        MONITOR_CLAIM_SECONDS="3", MONITOR_RETRY_BASE_SECONDS="0.5",
    )  # fmt: skip
    run = MonitorRun(env, tmp_path)
    run.start()
    try:
        wait(lambda: "cycle:" in run.log("run"), 60, "a first cycle", run.logs)
        filler = fill(small_disk)
        # Now the news arrives, with a lot of text: the poll cannot be written.
        a = (DATA / "caucase_a.xml").read_bytes()
        a = a.replace(b"</channel>", bulk_items("a", 200) + b"</channel>")
        feed_server.add("/a.xml", a)
        feed_server.add("/b.xml", (DATA / "caucase_b.xml").read_bytes())
        wait(lambda: "disk is full" in run.log("run"), 60, "the full disk to be seen", run.logs)
        assert run.alive()
        full_lines = [ln for ln in run.log("run").splitlines() if "disk is full" in ln]
        assert all("Traceback" not in ln for ln in full_lines)
        assert "Traceback" not in run.log("run")
        assert webhook.titles() == []
        os.unlink(filler)  # space is back
        wait(lambda: len(set(webhook.titles())) >= 2, 90, "both alerts after recovery", run.logs)
    finally:
        run.stop()
    counts = Counter(webhook.titles())
    assert len(counts) == 2 and max(counts.values()) == 1, counts
    with sqlite3.connect(db) as conn:  # the poll that could not be written came back whole
        (stored,) = conn.execute(
            "SELECT count(*) FROM items WHERE link LIKE 'https://ville.example.org/a/%'"
        ).fetchone()
    assert stored == 200
    listed = run_monitor(env, "matches", "--format", "jsonl").stdout.splitlines()
    assert len(listed) >= 2
