"""The real French captures in ../shared/fixtures/real-feeds, read in place as classifier input.

Nothing here copies publishers' text into the repository: the loader reads the capture files
where they are and hands back (id, title, summary) records; tests/data/real_labels.tsv holds only
ids and the topics a person gave them.
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser

from bench.shared import CAPTURES

ROOT = Path(__file__).resolve().parent.parent

# The screen: an item that matches none of these words is not about the profile's topics (no
# place, party, organisation or mediator of the conflict is named). Every item that does match
# was read and labelled by hand in tests/data/real_labels.tsv.
SCREEN = re.compile(
    r"karaba[kg]h|artsakh|arm[ée]ni|azerba[ïi]dj|az[ée]ri|\botsc\b|\bcsto\b|s[ée]curit[ée] collective"
    r"|pa[cs]hinian|pashinyan|aliy?ev\b|erevan|yerevan|bakou\b|baku\b|lavrov|caucase|\bminsk\b"
    r"|\bosce\b|cessez-le-feu|stepanakert|latch[iy]ne|lachin|chouchi|choucha",
    re.I,
)


@dataclass(frozen=True)
class Record:
    id: str
    title: str
    summary: str


def _short(value: str) -> str:
    return hashlib.sha1(value.encode("utf-8")).hexdigest()[:12]


def _feed_records(path: Path) -> Iterator[Record]:
    parsed = feedparser.parse(path.read_bytes())
    for n, e in enumerate(parsed.entries):
        ident = e.get("id") or e.get("link") or str(n)
        summary = e.get("summary", "") or ""
        yield Record(f"{path.name}#{_short(ident)}", e.get("title", "") or "", summary)


def _bao1_records(path: Path) -> Iterator[Record]:
    root = ET.parse(path).getroot()
    for it in root.iter("item"):
        yield Record(
            f"{path.name}#{it.get('numero')}",
            it.findtext("titre") or "",
            it.findtext("description") or "",
        )


def _jsonl_records(path: Path) -> Iterator[Record]:
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n")):
        if not line.strip():
            continue
        r = json.loads(line)
        ident = r.get("source_file") or r.get("text_id") or str(n)
        body = r.get("text") or r.get("summary") or ""
        yield Record(f"{path.name}#{_short(ident)}", r.get("title", ""), body)


def _json_records(path: Path) -> Iterator[Record]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if "articles" in data:
        for a in data["articles"]:
            summary = " ".join(x for x in (a.get("description"), a.get("content")) if x)
            yield Record(f"{path.name}#{_short(a.get('url') or a['title'])}", a["title"], summary)
        return
    for sections in data.values():
        if not isinstance(sections, list):
            continue
        for section in sections:
            for a in section.get("articles", []):
                yield Record(f"{path.name}#{_short(a.get('url') or a['title'])}", a["title"], "")


def load_records(captures: Path = CAPTURES) -> list[Record]:
    """Every record of every capture, first occurrence of a title only (merged files repeat)."""
    out: list[Record] = []
    seen: set[str] = set()
    for path in sorted(captures.iterdir()):
        if path.name.startswith("lemonde_2020"):
            records: Iterator[Record] = _bao1_records(path)
        elif path.suffix == ".xml":
            records = _feed_records(path)
        elif path.suffix == ".jsonl":
            records = _jsonl_records(path)
        elif path.suffix == ".json":
            records = _json_records(path)
        else:
            continue
        for r in records:
            title_key = re.sub(r"\W+", " ", r.title).strip().casefold()
            if title_key in seen:
                continue
            seen.add(title_key)
            out.append(r)
    return out


def screened(records: list[Record]) -> list[Record]:
    return [r for r in records if SCREEN.search(r.title) or SCREEN.search(r.summary)]
