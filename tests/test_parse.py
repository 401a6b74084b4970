"""Normalisation of feed entries: ids, links, text, dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.errors import ParseError
from monitor.parse import canonical_link, parse_feed, parse_french_date
from tests.conftest import DATA, real_feed

NOW = datetime(2022, 9, 20, tzinfo=UTC)


def rss(items: str, encoding: str = "UTF-8") -> bytes:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
        f"<title>t</title>{items}</channel></rss>"
    ).encode(encoding.lower() if encoding != "windows-1252" else "cp1252")


def test_fixture_feed_normalised() -> None:
    feed = parse_feed((DATA / "caucase_a.xml").read_bytes(), "https://fil-a.example.org/rss", NOW)
    first = feed.items[0]
    assert first.link == "https://fil-a.example.org/monde/karabakh-violations-latchine"
    assert first.key == first.link
    assert first.summary.startswith("Erevan et Bakou s’accusent mutuellement de tirs nocturnes")
    assert "<p>" not in first.summary and "&" not in first.summary
    assert first.published == datetime(2022, 9, 13, 6, 15, tzinfo=UTC)


def test_french_dates() -> None:
    assert parse_french_date("mar., 13 sept. 2022 08:20:00 +0200") == datetime(
        2022, 9, 13, 6, 20, tzinfo=UTC
    )
    assert parse_french_date("21 octobre 2025") == datetime(2025, 10, 21, tzinfo=UTC)
    assert parse_french_date("13 Brumaire an VIII") is None
    b = parse_feed((DATA / "caucase_b.xml").read_bytes(), "https://fil-b.example.org/rss", NOW)
    assert b.items[0].published == datetime(2022, 9, 13, 6, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("HTTPS://WWW.Example.org:443/a?utm_source=x&id=3#frag", "https://www.example.org/a?id=3"),
        ("http://example.org", "http://example.org/"),
        ("https://e.org/a?xtor=RSS-1&fbclid=z", "https://e.org/a"),
        ("javascript:alert(1)", None),
        ("", None),
    ],
)
def test_canonical_link(raw: str, canonical: str | None) -> None:
    assert canonical_link(raw) == canonical


def test_repeated_guid_is_ignored_and_hash_used_without_link() -> None:
    body = rss(
        "<item><guid>same</guid><title>Un</title><link>https://e.org/1</link></item>"
        "<item><guid>same</guid><title>Deux</title><link>https://e.org/2</link></item>"
        "<item><title>Sans lien ni guid</title><description>texte</description></item>"
        "<item><title>Sans lien ni guid</title><description>texte</description></item>"
    )
    feed = parse_feed(body, "https://e.org/rss", NOW)
    assert [i.key for i in feed.items[:2]] == ["https://e.org/1", "https://e.org/2"]
    assert len(feed.items) == 3  # the duplicate inside the feed is dropped
    assert feed.items[2].key.startswith("sha1:")


def test_absurd_dates_and_long_titles() -> None:
    body = rss(
        "<item><title>Futur</title><link>https://e.org/f</link><pubDate>Sat, 01 Jan 2095 00:00:00 GMT</pubDate></item>"
        "<item><title>1970</title><link>https://e.org/o</link><pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate></item>"
        f"<item><title>{'Arménie ' * 20000}</title><link>https://e.org/l</link></item>"
    )
    items = parse_feed(body, "https://e.org/rss", NOW).items
    assert items[0].published == NOW
    assert items[1].published is None
    assert len(items[2].title) <= 500


def test_windows_1252_and_mojibake() -> None:
    body = rss(
        "<item><title>Arménie : l’été à Erevan</title><link>https://e.org/w</link></item>",
        "windows-1252",
    )
    assert parse_feed(body, "https://e.org/rss", NOW).items[0].title == "Arménie : l’été à Erevan"
    moji = rss("<item><title>ArmÃ©nie : lâ€™Ã©tÃ©</title><link>https://e.org/m</link></item>")
    assert parse_feed(moji, "https://e.org/rss", NOW).items[0].title == "Arménie : l’été"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"\x00\xff\x13garbage" * 50,
        b'{"error": "maintenance"}',
        b"<html><body><h1>Maintenance</h1></body></html>",
    ],
)
def test_not_a_feed(body: bytes) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(body, "https://e.org/rss", NOW)


def test_entity_declarations_refused() -> None:
    lol = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<rss><channel><title>&lol2;</title></channel></rss>"
    )
    with pytest.raises(ParseError, match="entities"):
        parse_feed(lol, "https://e.org/rss", NOW)


def test_real_atom_capture() -> None:
    feed = parse_feed(
        real_feed("sociomedia-fixture_2020-05_liberation.xml"), "https://www.liberation.fr/rss", NOW
    )
    assert len(feed.items) == 50
    assert all(i.title for i in feed.items)
