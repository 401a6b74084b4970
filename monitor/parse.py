"""Fetched bytes → normalised Items, with feedparser. Never fetches anything itself."""

from __future__ import annotations

import calendar
import codecs
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser
from feedparser.encodings import convert_to_utf8

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
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Root elements of the documents feedparser reads (local names; CDF's is `channel`).
_FEED_ROOTS = frozenset({b"rss", b"feed", b"rdf", b"channel"})
_NAME = re.compile(rb"<([A-Za-z_][\w.:-]*)")
# A UTC offset beyond ±18:00 (`+9999`) is no offset: the date is dropped, not shifted by days.
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})\s*$")
MAX_OFFSET = timedelta(hours=18)


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
    if _CONTROL_CHARS.search(url):  # a NUL or a control character: not a link
        return None
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
        hours, minutes = int(digits[:2]), int(digits[2:])
        offset = timedelta(hours=hours, minutes=minutes)
        if minutes > 59 or offset > MAX_OFFSET:
            return None
        try:
            dt = dt - offset if zone[0] == "+" else dt + offset
        except OverflowError:  # year 1 or 9999 pushed out of range
            return None
    return dt


def _absurd_offset(raw: Any) -> bool:
    m = _OFFSET.search(str(raw or ""))
    if not m:
        return False
    hours, minutes = int(m.group(2)), int(m.group(3))
    return minutes > 59 or timedelta(hours=hours, minutes=minutes) > MAX_OFFSET


def entry_date(entry: Any, now: datetime) -> datetime | None:
    """Published (else updated) date in UTC; None when missing or absurd."""
    dt: datetime | None = None
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value and not _absurd_offset(entry.get(key.removesuffix("_parsed"))):
            try:
                dt = datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, OSError, TypeError):
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


# Starts of documents that are not ASCII-compatible: BOMs, then `<?xm` in UTF-32/16, EBCDIC.
_WIDE_STARTS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x4c\x6f\xa7\x94", "cp037"),
)
_XML_DECL = re.compile(r"^<\?xml[^>]*?>")
_DECLARED_ENCODING = re.compile(r"<\?xml[^>]*?encoding=[\"']([\w.:-]{1,40})[\"']")
_UTF8_DECL = "<?xml version='1.0' encoding='utf-8'?>"
_FIRST_LINE_MAX = 512
_HEAD_END = re.compile(rb"<\w")
_SPACE_RUN = re.compile(rb"\s+")
MAX_ATTRIBUTES = 16
# Character references that may be out of range (the lenient parser needs no `;`).
_BIG_CHARREF = re.compile(rb"&#(?:[xX]0*([0-9a-fA-F]{4,})|0*([0-9]{5,}))")
AUTHOR_MAX = 2048
# Start tags long enough to hold more than MAX_ATTRIBUTES attributes (each ` a=""`, 5 bytes).
_LONG_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)(\s[^<>]{%d,})>" % (5 * MAX_ATTRIBUTES))
_ATTRIBUTE = re.compile(rb"""\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]*)""")
_AUTHOR_TAG = re.compile(
    rb"<((?:[\w.-]+:)?(?:author|creator|publisher|managingEditor|webMaster|owner))(?=[\s/>])[^<>]*>",
    re.I,
)


def _decode(body: bytes) -> tuple[bytes, str | None]:
    """The document as feedparser reads it: UTF-8, its XML declaration rewritten (feedparser's
    own detection: BOM, declaration, then utf-8, windows-1252…), and what was wrong.

    feedparser's encoding sniffing is cubic in the length of the first line: a first line
    longer than an XML declaration is cut after it, and documents in UTF-16/32 or EBCDIC are
    decoded here so that the same limit applies. Then `_defuse`."""
    for start, sniffed in _WIDE_STARTS:
        if body.startswith(start):
            encodings = [sniffed]
            if sniffed == "cp037":  # one EBCDIC code page read the declaration: which one?
                m = _DECLARED_ENCODING.match(body[:_FIRST_LINE_MAX].decode(sniffed))
                if m:
                    encodings.insert(0, m.group(1))
            for encoding in encodings:
                try:
                    text = body.decode(encoding).lstrip("\ufeff")
                except (UnicodeDecodeError, LookupError):
                    continue
                body = (_UTF8_DECL + _XML_DECL.sub("", text, count=1)).encode("utf-8")
                break
            break  # undecodable: feedparser does not sniff it either, and falls back
    body = body.removeprefix(codecs.BOM_UTF8)
    if body.startswith(b"<?") and body.find(b"\n", 0, _FIRST_LINE_MAX) < 0:
        end = body.find(b"?>", 0, _FIRST_LINE_MAX)
        if end >= 0:
            body = body[: end + 2] + b"\n" + body[end + 2 :]
        else:  # not an XML declaration: the XML default applies
            body = b"<?xml version='1.0'?>\n" + body
    info: dict[str, Any] = {}
    try:
        data = convert_to_utf8({}, body, info)
    except Exception as e:  # e.g. a NUL in the declared encoding's name
        info["bozo_exception"] = f"unusable encoding declaration ({type(e).__name__})"
        text = _XML_DECL.sub("", body.decode("utf-8", "replace"), count=1)
        data = (_UTF8_DECL + text).encode("utf-8")
    problem = info.get("bozo_exception")
    return _defuse(data), (str(problem) if problem else None)


_SAX_PLACE = re.compile(r"^<unknown>:(\d+):(\d+): ")


def _bozo_warning(exc: object) -> str:
    """feedparser's complaint about a document it still read, named by its kind: the XML was
    broken (with its line and column), or its declared encoding was wrong."""
    text = str(exc or "")
    if type(exc).__name__.startswith("CharacterEncoding"):
        return f"encoding: {text}"
    place = _SAX_PLACE.match(text)
    if place:
        return f"malformed XML at line {place[1]}, column {place[2]}: {text[place.end() :]}"
    return f"malformed XML: {text}" if text else "malformed XML"


def _defuse(data: bytes) -> bytes:
    """Rewrite, in linear time, what would make feedparser (or the XML reader under it)
    super-linear, leaving every ordinary document unchanged:

    * blank lines before the root element collapse to one (feedparser's DOCTYPE and ENTITY
      search is quadratic in a run of them);
    * a character reference to a surrogate or beyond U+10FFFF becomes U+FFFD (feedparser's
      lenient parser raises on them, which cost the whole feed);
    * a start tag with more than MAX_ATTRIBUTES attributes loses them (xml.sax looks each one
      up by a linear search: quadratic in their number), namespace declarations kept;
    * an author-like element (author, dc:creator, managingEditor, webMaster, publisher,
      itunes:owner) longer than AUTHOR_MAX is emptied (feedparser's e-mail regex is
      quadratic in its text).
    """
    if b"&#" in data:
        data = _BIG_CHARREF.sub(_no_surrogate, data)
    head = _HEAD_END.search(data)
    if head and data.count(b"\n", 0, head.start()) > 16:
        data = _SPACE_RUN.sub(_one_line_break, data[: head.start()]) + data[head.start() :]
    out: list[bytes] = []
    pos = 0
    for m in _LONG_TAG.finditer(data):
        tag = m.group(0)
        if tag.count(b"=") <= MAX_ATTRIBUTES:
            continue
        attributes = _ATTRIBUTE.findall(tag)
        if len(attributes) <= MAX_ATTRIBUTES:
            continue
        kept = b"".join(a for a in attributes if a.lstrip().lower().startswith(b"xmlns"))
        closing = b"/>" if tag.endswith(b"/>") else b">"
        out += [data[pos : m.start()], b"<", m.group(1), kept, closing]
        pos = m.end()
    if out:
        data = b"".join([*out, data[pos:]])
    out, pos = [], 0
    unclosed: set[bytes] = set()
    for m in _AUTHOR_TAG.finditer(data):
        if m.start() < pos or m.group(0).endswith(b"/>"):
            continue
        name, start = m.group(1), m.end()
        end = -1 if name in unclosed else data.find(b"</" + name, start)
        if end < 0:  # no closer after here: its text runs to the next tag
            unclosed.add(name)
            end = data.find(b"<", start)
            end = len(data) if end < 0 else end
        if end - start > AUTHOR_MAX:
            out.append(data[pos:start])
            pos = end
    if out:
        data = b"".join([*out, data[pos:]])
    return data


def _no_surrogate(m: re.Match[bytes]) -> bytes:
    digits = m.group(1) or m.group(2)
    if len(digits) <= 8:
        code = int(digits, 16 if m.group(1) else 10)
        if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return m.group(0)
    return b"&#xFFFD"


def _one_line_break(m: re.Match[bytes]) -> bytes:
    run = m.group(0)
    return b"\n" if b"\n" in run else run


def _root_element(data: bytes) -> bytes | None:
    """Local name of the first element, when only a prolog (XML declaration, comments,
    processing instructions, DOCTYPE, spaces) precedes it; None when text comes first.
    Linear: each step moves past what it skips."""
    i, n = 0, len(data)
    while i < n:
        if data[i : i + 1].isspace():
            i += 1
            continue
        if data.startswith(b"<?", i):
            end, close = data.find(b"?>", i + 2), 2
        elif data.startswith(b"<!--", i):
            end, close = data.find(b"-->", i + 4), 3
        elif data.startswith(b"<!", i):  # DOCTYPE; its internal subset ends with `]>`
            gt = data.find(b">", i)
            bracket = data.find(b"[", i, gt if gt >= 0 else n)
            end, close = (data.find(b"]>", bracket), 2) if bracket >= 0 else (gt, 1)
        else:
            m = _NAME.match(data, i)
            return m.group(1).rpartition(b":")[2].lower() if m else None
        if end < 0:
            return None
        i = end + close
    return None


def resolve_link(link: str | None, feed_url: str) -> str | None:
    """A link as feedparser left it (already joined with any absolute xml:base; joined with a
    relative one) made absolute against the feed's final URL."""
    if not link:
        return None
    link = link.strip()
    if "://" in link[:12]:
        return link
    try:
        return urljoin(feed_url, link)
    except ValueError:  # an unparsable feed URL or link
        return None


def _item(
    entry: Any, guid: str, reliable: bool, feed_url: str, feed_host: str, now: datetime
) -> Any:  # Item | None
    """One entry → Item (None when it holds nothing). A field that cannot be read is left
    empty; an exception here costs this entry only (the caller skips it)."""
    from monitor.types import Item

    title = _text(entry.get("title"), TITLE_MAX)
    summary = _text(entry.get("summary") or entry.get("description"), SUMMARY_MAX)
    content = _text(entry.get("content"), CONTENT_MAX)
    if content == summary:
        content = ""
    if not summary and content:
        summary = content[:SUMMARY_MAX]
    raw_link = str(entry.get("link") or "")
    if entry.get("guidislink") and "://" not in raw_link[:12]:
        raw_link = ""  # `<guid>123</guid>` without a link: an id, not an address
    link = canonical_link(resolve_link(raw_link, feed_url))
    if not title and not summary and not link:
        return None
    reliable_guid = guid if reliable else None
    if reliable_guid:
        key = _guid_key(reliable_guid, feed_host)
    elif link:
        key = link
    else:
        key = content_hash(title, summary)
    try:
        published = entry_date(entry, now)
    except Exception:  # an unreadable date is no date; the item is kept
        published = None
    author = entry.get("author")
    return Item(
        key=key[:1000],
        guid=reliable_guid[:1000] if reliable_guid else None,
        link=link[:2000] if link else None,
        title=title or (summary[:120] if summary else link or ""),
        summary=summary,
        content=content,
        published=published,
        author=clean_text(str(author), 200) if author else None,
    )


def parse_feed(body: bytes, url: str, now: datetime | None = None) -> ParsedFeed:
    """Read a feed fetched from `url` (the final URL, after redirects: relative links are
    resolved against it when no xml:base applies); raise ParseError when the bytes are not a
    feed at all. One entry that cannot be read is skipped, and said in the warning; the
    others are kept."""
    from monitor.types import Item

    now = now or datetime.now(UTC)
    if not body or not body.strip():
        raise ParseError("not a feed: empty body")
    data, encoding_problem = _decode(body)
    # Anywhere in the decoded document (UTF-16, after a long comment…): feedparser itself
    # keeps "safe" internal entities and would expand them into the text.
    if _ENTITY_DECL.search(data):
        raise ParseError("refused: the document declares XML entities (expansion/XXE risk)")
    # xml:base is resolved by feedparser against the feed's URL (nested relative bases
    # included); without it, relative links are joined with the URL in _item (cheaper:
    # feedparser joins every element's base with the document's URL when it has one).
    headers = {"content-type": "application/xml", "content-location": url}
    try:
        parsed = feedparser.parse(
            data,
            sanitize_html=False,
            resolve_relative_uris=False,
            response_headers=headers if b"xml:base" in data else None,
        )
    except Exception as e:  # feedparser is tolerant, but not proven total
        raise ParseError(f"not a feed: {type(e).__name__}: {e}") from e
    entries = parsed.get("entries") or []
    if not entries and not parsed.get("version"):
        reason = parsed.get("bozo_exception")
        raise ParseError(f"not a feed: {reason or 'no RSS/Atom/RDF document found'}")
    if not parsed.get("version"):
        # feedparser finds <item>s in anything; a feed it cannot name must at least be a
        # document whose root is a feed element (CDF's <channel>, a namespace-less rdf:RDF).
        root = _root_element(data)
        if root not in _FEED_ROOTS:
            what = f"<{root.decode('ascii', 'replace')}> document" if root else "text"
            raise ParseError(f"not a feed: {what}, no RSS/Atom/RDF root element")
    feed_host = (urlsplit(url).hostname or "").lower() if "://" in url else ""
    guids = [_CONTROL_CHARS.sub("", str(e.get("id") or "")).strip() for e in entries]
    # A guid that several different entries share identifies nothing (some CMSs do that).
    variants: dict[str, set[tuple[str, str]]] = {}
    for entry, g in zip(entries, guids, strict=True):
        if g:
            variants.setdefault(g, set()).add((str(entry.get("link")), str(entry.get("title"))))
    shared_bad = {g for g, v in variants.items() if len(v) > 1}
    items: list[Item] = []
    seen: set[str] = set()
    skipped: list[str] = []
    for entry, guid in zip(entries, guids, strict=True):
        try:
            item = _item(entry, guid, bool(guid) and guid not in shared_bad, url, feed_host, now)
        except Exception as e:  # one unreadable entry never costs the others
            skipped.append(f"{type(e).__name__}: {e}")
            continue
        if item is None or item.key in seen:
            continue
        seen.add(item.key)
        items.append(item)
    warnings = []
    if parsed.get("bozo"):
        warnings.append(_bozo_warning(parsed.get("bozo_exception")))
    elif encoding_problem:
        warnings.append(f"encoding: {encoding_problem}")
    if skipped:
        warnings.append(f"{len(skipped)} unreadable entries skipped (first: {skipped[0]})")
    try:
        feed_title = _text((parsed.get("feed") or {}).get("title"), TITLE_MAX)
    except Exception as e:
        feed_title = ""
        warnings.append(f"feed title unreadable: {type(e).__name__}")
    bozo = _CONTROL_CHARS.sub(" ", "; ".join(warnings))[:300] if warnings else None
    return ParsedFeed(title=feed_title, items=tuple(items), bozo=bozo)
