"""`monitor feeds import-opml`: feeds appended to feeds.yaml, and every outline it did not
import named on its own line with the reason (issue 10 item 15)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from monitor.settings import load_feeds
from tests.conftest import monitor_env, write_config

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Export</title></head>
  <body>
    <outline text="Caucase" title="Caucase">
      <outline type="rss" text="Déjà là" xmlUrl="https://present.example.org/rss"/>
      <outline type="rss" text="Nouveau" title="Nouveau fil" xmlUrl="https://new.example.org/rss"/>
      <outline type="rss" text="Doublon" xmlUrl="https://new.example.org/rss"/>
    </outline>
    <outline type="rss" text="Vieux FTP" xmlUrl="ftp://old.example.org/feed.xml"/>
    <outline type="rss" text="Sans hôte" xmlUrl="https:///feed.xml"/>
    <outline type="rss" text="IPv6 cassé" xmlUrl="http://[::1/feed"/>
    <outline type="link" text="Un signet" htmlUrl="https://bookmark.example.org/"/>
    <outline type="rss" text="Second nouveau" xmlurl="https://second.example.org/atom.xml"/>
    <outline text="Dossier vide"/>
  </body>
</opml>
"""


def run_import(tmp_path: Path, opml: str) -> subprocess.CompletedProcess[str]:
    config = write_config(tmp_path / "config", ["https://present.example.org/rss"])
    (tmp_path / "feeds.before").write_bytes((config / "feeds.yaml").read_bytes())
    (tmp_path / "list.opml").write_text(opml, encoding="utf-8")
    env = monitor_env(config, f"sqlite:///{tmp_path}/m.db")
    return subprocess.run(
        [sys.executable, "-m", "monitor", "feeds", "import-opml", str(tmp_path / "list.opml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_import_names_each_skipped_outline_and_why(tmp_path: Path) -> None:
    r = run_import(tmp_path, OPML)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == [
        "skipped https://present.example.org/rss (Déjà là): already in feeds.yaml",
        "skipped https://new.example.org/rss (Doublon): listed twice in this file",
        "skipped ftp://old.example.org/feed.xml (Vieux FTP): feed url must be http or https,"
        " got 'ftp://old.example.org/feed.xml'",
        "skipped https:///feed.xml (Sans hôte): feed url has no host: 'https:///feed.xml'",
        "skipped http://[::1/feed (IPv6 cassé): feed url is not a URL (Invalid IPv6 URL):"
        " 'http://[::1/feed'",
        "skipped outline #8 (Un signet): no xmlUrl (not a feed)",
        "skipped outline #10 (Dossier vide): no xmlUrl (not a feed)",
        "2 feeds added, 7 skipped",
    ]
    feeds = load_feeds(tmp_path / "config" / "feeds.yaml", 300)
    assert [(f.url, f.name) for f in feeds] == [
        ("https://present.example.org/rss", None),
        ("https://new.example.org/rss", "Nouveau fil"),
        ("https://second.example.org/atom.xml", "Second nouveau"),
    ]


def test_import_of_nothing_new_writes_nothing(tmp_path: Path) -> None:
    opml = '<opml version="1.0"><body><outline xmlUrl="https://present.example.org/rss"/></body></opml>'
    r = run_import(tmp_path, opml)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "skipped https://present.example.org/rss: already in feeds.yaml",
        "0 feeds added, 1 skipped",
    ]
    assert (tmp_path / "config" / "feeds.yaml").read_bytes() == (
        tmp_path / "feeds.before"
    ).read_bytes()


def test_opml_with_entities_is_refused_in_one_line(tmp_path: Path) -> None:
    opml = (
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x "https://evil.example.org/">]>'
        '<opml><body><outline xmlUrl="&x;rss"/></body></opml>'
    )
    r = run_import(tmp_path, opml)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "not a readable OPML file" in r.stderr
    assert "evil" not in (tmp_path / "config" / "feeds.yaml").read_text()
