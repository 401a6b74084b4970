"""One event told by two outlets in their own words: one story, one alert (`monitor run --once`,
loopback feeds, a real apprise delivery), and `monitor stories` shows both sources."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tests.conftest import FeedServer, Webhook, monitor_env, write_config


def rss(outlet: str, items: list[tuple[str, str, str, datetime]]) -> bytes:
    entries = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<description>{d}</description><pubDate>{format_datetime(when)}</pubDate></item>"
        for t, d, link, when in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{outlet}'
        f"</title><link>https://{outlet}.example.org/</link>{entries}</channel></rss>"
    ).encode()


def run_monitor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_outlets_one_event_one_story_one_alert(
    tmp_path: Path, feed_server: FeedServer, webhook: Webhook, db_url: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    a = feed_server.add(
        "/gazette.xml",
        rss(
            "gazette",
            [
                (
                    "Arménie et Azerbaïdjan concluent un cessez-le-feu à minuit",
                    "Erevan et Bakou ont accepté une trêve humanitaire à partir de minuit, sous "
                    "l'égide de Moscou, après deux semaines de combats au Haut-Karabakh.",
                    "https://gazette.example.org/treve",
                    now - timedelta(hours=3),
                ),
                (
                    "Festival de jazz : la programmation dévoilée",
                    "Trois jours de concerts en juillet.",
                    "https://gazette.example.org/jazz",
                    now - timedelta(hours=2),
                ),
            ],
        ),
    )
    b = feed_server.add(
        "/courrier.xml",
        rss(
            "courrier",
            [
                (
                    "Haut-Karabakh : une trêve entre Bakou et Erevan négociée à Moscou",
                    "Après dix heures de discussions dans la capitale russe, les ministres des "
                    "affaires étrangères arménien et azerbaïdjanais ont annoncé un cessez-le-feu "
                    "humanitaire au Haut-Karabakh.",
                    "https://courrier.example.org/karabakh-treve",
                    now - timedelta(hours=1),
                ),
            ],
        ),
    )
    config = write_config(
        tmp_path / "config",
        [{"url": a, "name": "La Gazette"}, {"url": b, "name": "Le Courrier"}],
        [{"url": webhook.url, "name": "desk"}],
    )
    env = monitor_env(config, db_url)
    r = run_monitor(env, "run", "--once")
    assert r.returncode == 0, r.stderr
    assert len(webhook.received) == 1, webhook.titles()

    listed = run_monitor(env, "stories", "--since", "24h", "--format", "jsonl")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 1
    story = rows[0]
    assert story["items"] == 2 and story["source_count"] == 2
    assert sorted(story["feeds"]) == ["La Gazette", "Le Courrier"]
    assert story["first_item"]["link"] == "https://gazette.example.org/treve"
    assert story["latest_item"]["link"] == "https://courrier.example.org/karabakh-treve"
    assert story["alerts"] == {"desk": 1} and "karabakh_ceasefire" in story["topics"]
    links = {link for src in story["sources"] for link in src["links"]}
    assert links == {
        "https://gazette.example.org/treve",
        "https://courrier.example.org/karabakh-treve",
    }

    table = run_monitor(env, "stories", "--topic", "karabakh_ceasefire")
    assert table.returncode == 0 and "La Gazette" in table.stdout and "desk:1" in table.stdout
    head, row = table.stdout.splitlines()
    assert head.split()[:5] == ["id", "last_seen", "items", "source_count", "score"]
    assert "first" in head.split() and "latest" in head.split()
    assert row.split()[0] == str(story["id"]) and f"{story['score']:g}" in row.split()
    # the first item (the Gazette's) and the latest (the Courrier's), each with its feed
    assert row.index("La Gazette") < row.index("Le Courrier")
    future = (now + timedelta(hours=1)).isoformat()
    assert run_monitor(env, "stories", "--since", future, "--format", "jsonl").stdout == ""
    bad = run_monitor(env, "stories", "--since", "yesterday")
    assert bad.returncode == 2 and "--since 'yesterday'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    recent = run_monitor(env, "matches", "--since", "30m", "--format", "jsonl")
    assert recent.returncode == 0 and len(recent.stdout.splitlines()) == 2  # matched just now
    later = (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    assert run_monitor(env, "matches", "--since", later).stdout.strip().endswith("(none)")
