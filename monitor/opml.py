"""OPML import: what users export from their feed readers, appended to feeds.yaml."""

from __future__ import annotations

from pathlib import Path

import defusedxml.ElementTree as SafeET
import yaml

from monitor.errors import ConfigError, InputError
from monitor.settings import DEFAULT_POLL_INTERVAL, load_feeds, validate_feed_url


def read_opml(path: Path) -> list[tuple[str, str | None]]:
    """(url, title) of every outline with an xmlUrl, in document order."""
    try:
        root = SafeET.parse(path).getroot()
    except FileNotFoundError as e:
        raise InputError(f"{path}: file not found") from e
    except Exception as e:  # ParseError, DTD/entity refusals of defusedxml
        raise InputError(f"{path}: not a readable OPML file: {e}") from e
    out = []
    for node in root.iter("outline"):
        url = (node.get("xmlUrl") or node.get("xmlurl") or "").strip()
        if url:
            out.append((url, node.get("title") or node.get("text")))
    return out


def import_into_feeds_file(opml: Path, feeds_file: Path) -> tuple[int, int]:
    """Append new feeds to feeds.yaml (comments kept); returns (added, skipped)."""
    existing = {f.url for f in load_feeds(feeds_file, DEFAULT_POLL_INTERVAL)}
    lines = []
    added = skipped = 0
    for url, title in read_opml(opml):
        if url in existing or validate_feed_url(url):
            skipped += 1
            continue
        existing.add(url)
        entry = {"url": url, "name": title} if title else {"url": url}
        dumped = yaml.safe_dump([entry], allow_unicode=True, sort_keys=False, width=1000)
        lines.append("".join("  " + ln + "\n" for ln in dumped.splitlines()))
        added += 1
    if not added:
        return 0, skipped
    text = feeds_file.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not data.get("feeds"):
        # No list yet (or `feeds: []`): write the key afresh below the comments.
        kept = [ln for ln in text.splitlines() if ln.lstrip().startswith("#") or not ln.strip()]
        text = "\n".join(kept).rstrip() + ("\n" if kept else "") + "feeds:\n"
    elif not text.endswith("\n"):
        text += "\n"
    staged = feeds_file.with_name(feeds_file.name + ".importing")
    staged.write_text(text + "".join(lines), encoding="utf-8")
    try:
        load_feeds(staged, DEFAULT_POLL_INTERVAL)
    except ConfigError as e:  # never leave a file we broke
        staged.unlink()
        raise ConfigError(f"import would break {feeds_file}: {e}") from e
    staged.replace(feeds_file)
    return added, skipped
