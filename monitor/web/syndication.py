"""The matched stories of a topic as an Atom feed (RFC 4287) and a JSON Feed 1.1. Pure:
stories in, document out. Feed text is put in as text (escaped by ElementTree / json), and a
story's link is given only when it is http or https."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from monitor.store.browse import StoryView
from monitor.web.present import safe_href

ATOM_NS = "http://www.w3.org/2005/Atom"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: str) -> str:
    return _XML_INVALID.sub("", value)


def _rfc3339(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _summary(s: StoryView) -> str:
    sources = ", ".join(src.feed for src in s.sources) or "?"
    scores = ", ".join(f"{t} ({s.scores.get(t, 0):g})" for t in s.topics)
    return f"Sujets : {scores}\nSources : {sources}\nPourquoi : {s.why}"


def _updated(stories: Sequence[StoryView], now: datetime) -> datetime:
    return max((s.first_seen for s in stories), default=now)


def atom_feed(
    topic: str, stories: Sequence[StoryView], site: str, self_url: str, now: datetime
) -> bytes:
    """`site` is the window's base URL (story pages are `{site}/stories/{id}`)."""
    ET.register_namespace("", ATOM_NS)

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        e = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            e.text = _text(text)
        return e

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    el(feed, "id", self_url)
    el(feed, "title", f"monitor — {topic}")
    el(feed, "updated", _rfc3339(_updated(stories, now)))
    el(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    el(feed, "link", rel="alternate", href=f"{site}/?topic={topic}", type="text/html")
    author = el(feed, "author")
    el(author, "name", "monitor")
    el(feed, "generator", "monitor")
    for s in stories:
        entry = el(feed, "entry")
        page = f"{site}/stories/{s.id}"
        el(entry, "id", page)
        el(entry, "title", s.title or "(sans titre)")
        el(entry, "updated", _rfc3339(s.first_seen))
        el(entry, "published", _rfc3339(s.first_seen))
        link = safe_href(s.link)
        el(entry, "link", rel="alternate", href=link or page, type="text/html")
        el(entry, "link", rel="related", href=page, type="text/html")
        for t in s.topics:
            el(entry, "category", term=t)
        el(entry, "summary", _summary(s), type="text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def json_feed(
    topic: str, stories: Sequence[StoryView], site: str, self_url: str, now: datetime
) -> bytes:
    items: list[dict[str, Any]] = []
    for s in stories:
        page = f"{site}/stories/{s.id}"
        item: dict[str, Any] = {
            "id": str(s.id),
            "url": page,
            "title": s.title,
            "content_text": _summary(s),
            "date_published": _rfc3339(s.first_seen),
            "tags": list(s.topics),
            "_monitor": {"scores": s.scores, "sources": [src.feed for src in s.sources]},
        }
        link = safe_href(s.link)
        if link:
            item["external_url"] = link
        items.append(item)
    doc = {
        "version": JSON_FEED_VERSION,
        "title": f"monitor — {topic}",
        "home_page_url": f"{site}/?topic={topic}",
        "feed_url": self_url,
        "language": "fr",
        "authors": [{"name": "monitor"}],
        "items": items,
    }
    return json.dumps(doc, ensure_ascii=False, indent=1).encode()
