"""OPML import: what users export from their feed readers, appended to feeds.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import yaml

from monitor.errors import ConfigError, InputError
from monitor.settings import DEFAULT_POLL_INTERVAL, load_feeds, validate_feed_url


@dataclass(frozen=True)
class Outline:
    """One leaf outline of the file: a feed when it has an xmlUrl."""

    number: int  # 1-based, among all the file's outlines (folders included), in order
    url: str | None
    title: str | None

    def describe(self) -> str:
        what = self.url or f"outline #{self.number}"
        return f"{what} ({self.title})" if self.title else what


@dataclass
class ImportReport:
    added: list[Outline] = field(default_factory=list)
    skipped: list[tuple[Outline, str]] = field(default_factory=list)  # (outline, why)

    def lines(self) -> Iterator[str]:
        """One line per skipped outline, then the summary."""
        for outline, why in self.skipped:
            yield f"skipped {outline.describe()}: {why}"
        yield f"{len(self.added)} feeds added, {len(self.skipped)} skipped"


def _leaves(node: Element) -> Iterator[Element]:
    """Outlines that are not folders: with an xmlUrl, or without children."""
    for child in node:
        if child.tag != "outline":
            yield from _leaves(child)
        elif child.get("xmlUrl") or child.get("xmlurl") or not len(child):
            yield child
            yield from _leaves(child)
        else:
            yield from _leaves(child)


def read_outlines(path: Path) -> list[Outline]:
    """Every leaf outline, in document order (folders are walked, not listed)."""
    try:
        root = SafeET.parse(path).getroot()
    except FileNotFoundError as e:
        raise InputError(f"{path}: file not found") from e
    except Exception as e:  # ParseError, DTD/entity refusals of defusedxml
        raise InputError(f"{path}: not a readable OPML file: {e}") from e
    numbers = {id(node): n for n, node in enumerate(root.iter("outline"), 1)}
    out = []
    for node in _leaves(root):
        number = numbers[id(node)]
        url = (node.get("xmlUrl") or node.get("xmlurl") or "").strip() or None
        title = (node.get("title") or node.get("text") or "").strip() or None
        out.append(Outline(number, url, title))
    return out


def read_opml(path: Path) -> list[tuple[str, str | None]]:
    """(url, title) of every outline with an xmlUrl, in document order."""
    return [(o.url, o.title) for o in read_outlines(path) if o.url]


def _why_not(url: str) -> str | None:
    try:
        return validate_feed_url(url)
    except ValueError as e:  # urlsplit: "Invalid IPv6 URL"…
        return f"feed url is not a URL ({e}): {url!r}"


def import_into_feeds_file(opml: Path, feeds_file: Path) -> ImportReport:
    """Append new feeds to feeds.yaml (comments kept); says what was skipped and why."""
    existing = {f.url for f in load_feeds(feeds_file, DEFAULT_POLL_INTERVAL)}
    report = ImportReport()
    imported: set[str] = set()
    lines = []
    for outline in read_outlines(opml):
        url = outline.url
        if url is None:
            report.skipped.append((outline, "no xmlUrl (not a feed)"))
            continue
        why = (
            "already in feeds.yaml"
            if url in existing
            else "listed twice in this file"
            if url in imported
            else _why_not(url)
        )
        if why:
            report.skipped.append((outline, why))
            continue
        imported.add(url)
        report.added.append(outline)
        entry = {"url": url, "name": outline.title} if outline.title else {"url": url}
        dumped = yaml.safe_dump([entry], allow_unicode=True, sort_keys=False, width=1000)
        lines.append("".join("  " + ln + "\n" for ln in dumped.splitlines()))
    if not report.added:
        return report
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
    return report
