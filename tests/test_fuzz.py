"""Property-based tests (hypothesis): text normalisation, id and link canonicalisation, dates,
Retry-After, the parser front end and the configuration loaders. Whatever the input, nothing
but the project's own error types may come out."""

from __future__ import annotations

import contextlib
import os
import re
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.classify import classify, load_profile
from monitor.errors import ConfigError, MonitorError, ParseError
from monitor.fetch import parse_retry_after
from monitor.parse import canonical_link, parse_feed, parse_french_date
from monitor.settings import load_feeds
from monitor.targets import load_targets
from monitor.text import clean_text, fix_mojibake, fold, signature, tokens
from monitor.types import Item
from tests.conftest import DATA, ROOT

PROFILE = load_profile(ROOT / "config" / "topics.yaml")
# The suite's run is derandomized (the same 300 examples each time, so CI is repeatable);
# `FUZZ_EXAMPLES=3000 python -m pytest tests/test_fuzz.py` explores with fresh random seeds.
EXPLORE = "FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    derandomize=not EXPLORE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# Text that looks like what feeds send: accents, typographic marks, entities, tags, controls.
FRENCH = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list("éèêàçôîïûœÉÈÀ’‘“”«»\u00a0\u202f–—…-'&<>;#/ ")),
        st.sampled_from(["&amp;", "&#039;", "&nbsp;", "<b>", "</p>", "Ã©", "â€™", "l’", "qu’"]),
    ),
    max_size=120,
).map("".join)


@FUZZ
@given(FRENCH)
def test_normalisation_is_total_and_stable(s: str) -> None:
    cleaned = clean_text(s)
    assert isinstance(cleaned, str) and "<b>" not in cleaned
    assert clean_text(cleaned) == cleaned  # idempotent
    folded = fold(cleaned)
    assert fold(folded) == folded
    assert folded == folded.casefold()  # (casefold, not lower: Cherokee folds to capitals)
    assert all(re.fullmatch(r"[^\W_]+", t) for t in tokens(cleaned))
    assert isinstance(fix_mojibake(s), str)
    assert signature(s) == signature(s)


@FUZZ
@given(st.one_of(st.none(), FRENCH, st.from_regex(r"[a-zA-Z]{0,6}://[^\s]{0,80}")))
def test_canonical_link_is_total_and_idempotent(url: str | None) -> None:
    link = canonical_link(url)
    if link is not None:
        assert link.startswith(("http://", "https://"))
        assert canonical_link(link) == link
        assert "#" not in link and "utm_" not in link


@FUZZ
@given(
    st.sampled_from(["https://", "HTTP://", "http://"]),
    st.from_regex(r"[A-Za-z0-9.-]{1,20}", fullmatch=True),
    st.sampled_from(["", ":80", ":443", ":8080", ":99999", ":x"]),
    st.from_regex(r"(/[A-Za-z0-9%._~-]{0,10}){0,3}", fullmatch=True),
    st.lists(st.sampled_from(["utm_source=x", "xtor=RSS-1", "id=3", "a=", "b=%20"]), max_size=4),
    st.sampled_from(["", "#frag", "#"]),
)
def test_tracking_and_fragments_never_make_two_items(
    scheme: str, host: str, port: str, path: str, query: list[str], frag: str
) -> None:
    url = f"{scheme}{host}{port}{path}" + ("?" + "&".join(query) if query else "") + frag
    link = canonical_link(url)
    if link is None:
        return
    bare = canonical_link(f"{scheme}{host}{port}{path}" + (
        "?" + "&".join(q for q in query if not q.startswith(("utm_", "xtor"))) if query else ""
    ))  # fmt: skip
    assert link == bare


@FUZZ
@given(FRENCH)
def test_dates_and_retry_after_are_total(raw: str) -> None:
    d = parse_french_date(raw)
    assert d is None or (isinstance(d, datetime) and d.tzinfo is not None)
    r = parse_retry_after(raw, now=1_700_000_000.0)
    assert r is None or r >= 0


@FUZZ
@given(st.binary(max_size=2000))
def test_parser_front_end_raises_only_parse_error(body: bytes) -> None:
    try:
        parsed = parse_feed(body, "https://fuzz.example.org/rss.xml")
    except ParseError:
        return
    for it in parsed.items:
        assert it.key and isinstance(it.title, str)


@FUZZ
@given(
    st.lists(
        st.tuples(FRENCH, FRENCH, FRENCH, FRENCH, st.sampled_from(["", "guid", "link"])),
        max_size=6,
    ),
    st.sampled_from(["utf-8", "windows-1252", "iso-8859-1"]),
)
def test_parser_on_feeds_with_arbitrary_fields(
    entries: list[tuple[str, str, str, str, str]], encoding: str
) -> None:
    parts = []
    for title, summary, link, date, which in entries:
        item = f"<title>{escape(title)}</title><description>{escape(summary)}</description>"
        item += f"<pubDate>{escape(date)}</pubDate>"
        if which == "link":
            item += f"<link>{escape(link)}</link>"
        elif which == "guid":
            item += f"<guid>{escape(link)}</guid>"
        parts.append(f"<item>{item}</item>")
    xml = (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
        f"<title>fuzz</title>{''.join(parts)}</channel></rss>"
    )
    body = xml.encode(encoding, errors="replace")
    try:
        parsed = parse_feed(body, "https://fuzz.example.org/rss.xml")
    except ParseError:
        return
    keys = [it.key for it in parsed.items]
    assert len(keys) == len(set(keys))  # never two items with one id
    for it in parsed.items:
        c = classify(it, PROFILE)  # whatever came out classifies
        assert set(c.topics) <= set(PROFILE.topics)


@FUZZ
@given(st.integers(min_value=0, max_value=9000), st.integers(0, 255), st.integers(0, 64))
def test_parser_on_damaged_real_feed(pos: int, byte: int, cut: int) -> None:
    data = bytearray((DATA / "caucase_a.xml").read_bytes())
    pos %= len(data)
    data[pos] = byte
    body = bytes(data[: len(data) - cut * 50])
    with contextlib.suppress(ParseError):
        parse_feed(body, "https://fuzz.example.org/rss.xml")


@FUZZ
@given(FRENCH, FRENCH)
def test_classifier_is_total(title: str, summary: str) -> None:
    c = classify(Item(key="k", guid=None, link=None, title=title, summary=summary), PROFILE)
    assert set(c.topics) <= set(PROFILE.topics)
    assert all(v == v for v in c.scores.values())  # no NaN


@FUZZ
@given(text=st.text(max_size=400))
def test_config_loaders_raise_only_config_errors(text: str, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    d: Path = tmp_path_factory.mktemp("cfg")
    for name, load in (
        ("feeds.yaml", lambda p: load_feeds(p, 300)),
        ("notify.yaml", load_targets),
        ("topics.yaml", load_profile),
    ):
        p = d / name
        p.write_text(text, encoding="utf-8")
        try:
            load(p)
        except ConfigError as e:
            assert str(e).startswith(str(p)), e  # the error names the file
        except MonitorError as e:  # pragma: no cover - a wrong error type is a failure
            raise AssertionError(f"{type(e).__name__} from {name}: {e}") from e
