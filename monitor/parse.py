"""Fetched bytes → normalised Items, with feedparser. Never fetches anything itself."""

from __future__ import annotations

import calendar
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser

from monitor.errors import ParseError
from monitor.text import clean_text, fix_mojibake, fold

TITLE_MAX = 500
SUMMARY_MAX = 4_000
CONTENT_MAX = 20_000
OLDEST_DATE = datetime(1995, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
# Query parameters that only track the reader; dropped from canonical links.
TRACKING_PARAMS = {
    "xtor",
    "xts",
    "at_medium",
    "at_campaign",
    "at_platform",
    "at_send_date",
    "fbclid",
    "gclid",
    "dclid",
    "mc_cid",
    "mc_eid",
    "ito",
    "ns_mchannel",
    "ns_source",
    "ns_campaign",
    "ns_linkname",
    "cmp",
    "icid",
    "ref",
    "source",
    "origin",
    "yclid",
    "_ga",
    "igshid",
}
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.I)


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    items: tuple[Any, ...]  # tuple[Item, ...]
    bozo: str | None  # what was wrong with the XML, when feedparser still read it


def canonical_link(url: str | None) -> str | None:
    """Lower-case scheme and host, no fragment, no default port, no tracking parameters."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    ]
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(query, doseq=True), ""))


_FR_MONTHS = {
    "janv": 1,
    "janvier": 1,
    "fevr": 2,
    "fev": 2,
    "fevrier": 2,
    "mars": 3,
    "avr": 4,
    "avril": 4,
    "mai": 5,
    "juin": 6,
    "juil": 7,
    "juillet": 7,
    "aout": 8,
    "sept": 9,
    "sep": 9,
    "septembre": 9,
    "oct": 10,
    "octobre": 10,
    "nov": 11,
    "novembre": 11,
    "dec": 12,
    "decembre": 12,
}
_FR_DATE = re.compile(
    r"(\d{1,2})\s+([a-z]+)\.?\s+(\d{4})(?:\D+(\d{1,2})[:h](\d{2})(?::(\d{2}))?)?\s*([+-]\d{2}:?\d{2}|gmt|utc|z)?"
)


def parse_french_date(raw: str | None) -> datetime | None:
    """Dates feedparser does not read: « mar., 21 oct. 2025 14:05:00 +0200 »."""
    if not raw:
        return None
    m = _FR_DATE.search(fold(raw))
    if not m:
        return None
    month = _FR_MONTHS.get(m.group(2))
    if not month:
        return None
    try:
        dt = datetime(
            int(m.group(3)),
            month,
            int(m.group(1)),
            int(m.group(4) or 0),
            int(m.group(5) or 0),
            int(m.group(6) or 0),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    zone = m.group(7)
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        dt = dt - offset if zone[0] == "+" else dt + offset
    return dt


def entry_date(entry: Any, now: datetime) -> datetime | None:
    """Published (else updated) date in UTC; None when missing or absurd."""
    dt: datetime | None = None
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                dt = datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, OSError):
                dt = None
            if dt:
                break
    if dt is None:
        dt = parse_french_date(entry.get("published") or entry.get("updated"))
    if dt is None:
        return None
    if dt < OLDEST_DATE:
        return None
    if dt > now + FUTURE_SLACK:
        return now  # a date in the future: the item is news now, not later
    return dt


def _guid_key(guid: str, feed_host: str) -> str:
    g = guid.strip()
    link = canonical_link(g) if g.lower().startswith(("http://", "https://")) else None
    if link:
        return link
    if g.lower().startswith(("urn:", "tag:")):
        return g
    return f"{feed_host}#{g}"  # a bare number is only unique within its publisher


def content_hash(title: str, summary: str) -> str:
    digest = hashlib.sha1(fold(f"{title}\n{summary}").encode("utf-8")).hexdigest()
    return f"sha1:{digest}"


def _text(value: Any, cap: int) -> str:
    if isinstance(value, list):  # content: a list of dicts
        value = " ".join(str(v.get("value", "")) for v in value if isinstance(v, dict))
    return fix_mojibake(clean_text(str(value) if value else "", cap))


def parse_feed(body: bytes, url: str, now: datetime | None = None) -> ParsedFeed:
    """Read a feed; raise ParseError when the bytes are not a feed at all."""
    from monitor.types import Item

    now = now or datetime.now(UTC)
    if not body or not body.strip():
        raise ParseError("not a feed: empty body")
    if _ENTITY_DECL.search(body[:65536]):
        raise ParseError("refused: the document declares XML entities (expansion/XXE risk)")
    try:
        parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    except Exception as e:  # feedparser is tolerant, but not proven total
        raise ParseError(f"not a feed: {type(e).__name__}: {e}") from e
    entries = parsed.get("entries") or []
    if not entries and not parsed.get("version"):
        reason = parsed.get("bozo_exception")
        raise ParseError(f"not a feed: {reason or 'no RSS/Atom/RDF document found'}")
    feed_host = (urlsplit(url).hostname or "").lower()
    guids = [str(e.get("id") or "").strip() for e in entries]
    # A guid that several different entries share identifies nothing (some CMSs do that).
    shared = {g for g, n in Counter(guids).items() if g and n > 1}
    shared_bad: set[str] = set()
    for g in shared:
        variants = {
            (e.get("link"), e.get("title")) for e in entries if str(e.get("id") or "").strip() == g
        }
        if len(variants) > 1:
            shared_bad.add(g)
    items: list[Item] = []
    seen: set[str] = set()
    for entry, guid in zip(entries, guids, strict=True):
        title = _text(entry.get("title"), TITLE_MAX)
        summary = _text(entry.get("summary") or entry.get("description"), SUMMARY_MAX)
        content = _text(entry.get("content"), CONTENT_MAX)
        if content == summary:
            content = ""
        if not summary and content:
            summary = content[:SUMMARY_MAX]
        link = canonical_link(entry.get("link"))
        if not title and not summary and not link:
            continue
        reliable_guid = guid if guid and guid not in shared_bad else None
        if reliable_guid:
            key = _guid_key(reliable_guid, feed_host)
        elif link:
            key = link
        else:
            key = content_hash(title, summary)
        if key in seen:
            continue
        seen.add(key)
        author = entry.get("author")
        items.append(
            Item(
                key=key[:1000],
                guid=reliable_guid[:1000] if reliable_guid else None,
                link=link[:2000] if link else None,
                title=title or (summary[:120] if summary else link or ""),
                summary=summary,
                content=content,
                published=entry_date(entry, now),
                author=clean_text(str(author), 200) if author else None,
            )
        )
    bozo = None
    if parsed.get("bozo"):
        bozo = str(parsed.get("bozo_exception") or "malformed XML")[:300]
    feed_title = _text((parsed.get("feed") or {}).get("title"), TITLE_MAX)
    return ParsedFeed(title=feed_title, items=tuple(items), bozo=bozo)
