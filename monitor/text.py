"""French text normalisation: HTML remnants, spaces, folding, elisions, tokens, light stems.

Pure functions, tuned for speed (the classifier runs them on every item): one `str.translate`
table after NFKC + casefold does accents, ligatures, typographic quotes, dashes and spaces.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache

# Spaces that NFKC leaves alone or maps inconsistently; all become a plain space.
_SPACES = (
    "\u00a0\u2007\u202f\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a"
    "\u205f\u3000\t\r\f\v"
)
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_APOSTROPHES = "\u2019\u2018\u02bc\u2032\u00b4\u0060\u201b"
_QUOTES = "\u00ab\u00bb\u201c\u201d\u201e\u201f\u2039\u203a"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"


def _build_fold_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for cp in list(range(0x00C0, 0x0250)) + list(range(0x1E00, 0x1F00)):
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if base != ch and base.isascii():
            table[cp] = base.lower()
    table.update({ord("œ"): "oe", ord("æ"): "ae", ord("ß"): "ss", ord("ø"): "o", ord("ł"): "l"})
    table.update({ord("đ"): "d", ord("ı"): "i"})
    for c in _SPACES:
        table[ord(c)] = " "
    for c in _ZERO_WIDTH:
        table[ord(c)] = None
    for c in _APOSTROPHES:
        table[ord(c)] = "'"
    for c in _QUOTES:
        table[ord(c)] = '"'
    for c in _DASHES:
        table[ord(c)] = "-"
    # Combining marks left over after NFKC (decomposed input) are dropped.
    for cp in range(0x0300, 0x0370):
        table[cp] = None
    return table


_FOLD = _build_fold_table()
# Typography only (no case or accent change): used for display text.
_TYPO = {k: v for k, v in _FOLD.items() if chr(k) in _SPACES + _ZERO_WIDTH}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_WS = re.compile(r"\s+")
# Elements whose content is not text: dropped with their content.
_RAW_ELEMENTS = frozenset({"script", "style", "iframe", "object", "noscript"})
# Elements that separate words: replaced by a space.
_BLOCK_ELEMENTS = frozenset(
    {"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td"}
    | {"blockquote"}
)
# What can start a tag: `<a`, `</a`, `<!…`, `<?…` (a `<` before anything else is text).
_TAG_START = re.compile(r"<(/?)([a-zA-Z][^\s/>]*)|<!--|</?[!?]")
_CLOSERS = {name: re.compile(rf"</{name}(?![\w-])", re.I) for name in _RAW_ELEMENTS}
_TOKEN = re.compile(r"[^\W_]+")
_MAX_ROUNDS = 8


def strip_tags(s: str) -> str:
    """Tags removed (block elements leave a space), comments and script-like elements removed
    with their content. One pass, linear in the length of `s` whatever it holds: every search
    moves forward, and a closer that is not found is not looked for again (an unclosed
    `<script>` or `<!--` is then an ordinary tag, up to its `>`; a `<` with no `>` after it
    ends the scan, the rest being text)."""
    out: list[str] = []
    unclosed: set[str] = set()  # no closer of these after the current position
    i, n = 0, len(s)
    while i < n:
        lt = s.find("<", i)
        if lt < 0:
            break
        m = _TAG_START.match(s, lt)
        if m is None:  # "3 < 5": text
            out.append(s[i : lt + 1])
            i = lt + 1
            continue
        out.append(s[i:lt])
        if m.group(0) == "<!--" and "--" not in unclosed:
            end = s.find("-->", lt + 4)
            if end >= 0:
                i = end + 3
                continue
            unclosed.add("--")
        gt = s.find(">", m.end())
        if gt < 0:  # no `>` after this point: no tag can end, the rest is text
            i = lt
            break
        name = (m.group(2) or "").lower()
        i = gt + 1
        if name in _RAW_ELEMENTS and not m.group(1) and name not in unclosed:
            closer = _CLOSERS[name].search(s, i)
            end = s.find(">", closer.end()) if closer else -1
            if end >= 0:
                i = end + 1
            else:
                unclosed.add(name)
            out.append(" ")
        elif name in _BLOCK_ELEMENTS:
            out.append(" ")
    out.append(s[i:])
    return "".join(out)


def clean_text(value: str | None, max_chars: int = 20_000) -> str:
    """HTML or plain text from a feed → one line of display text.

    Removes scripts and tags, decodes entities (again while that reveals more: feeds
    double-escape), normalises typographic spaces and drops control characters. Caps the
    length. Cleaning clean text changes nothing. Linear time in the length of the input.
    """
    if not value:
        return ""
    s = _CONTROL.sub("", value[: max_chars * 4])
    for _ in range(_MAX_ROUNDS):  # each round that changes something makes the text shorter
        before = s
        if "<" in s:
            s = strip_tags(s)
        if "&" in s:
            s = _CONTROL.sub("", html.unescape(s))
        if s == before:
            break
    s = s.translate(_TYPO)
    s = _WS.sub(" ", s).strip()
    if len(s) > max_chars:
        s = s[: max_chars - 1].rstrip() + "…"
    return s


def fold(text: str) -> str:
    """Case, accent and typography folding: « L’Arménie » → "l'armenie"."""
    return unicodedata.normalize("NFKC", text).casefold().translate(_FOLD)


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """A light French stem: plural -s/-x dropped on longer words (accords → accord)."""
    if len(token) > 4 and token[-1] in "sx" and token[-2] != "s":
        return token[:-1]
    return token


def tokens(text: str) -> list[str]:
    """Folded word tokens. Elisions (l', d', qu') and hyphens split words apart.

    A text's tokens are those of its pieces between white space (`text.split()`), in order:
    white space stays white space through NFKC, case folding and the table, composes with
    nothing, and is in no token. A caller may therefore keep them per piece (the classifier
    does: a news vocabulary is bounded)."""
    return _TOKEN.findall(fold(text))


def stems(text: str) -> list[str]:
    return [stem(t) for t in _TOKEN.findall(fold(text))]


def is_shouting(title: str) -> bool:
    """A title written in capitals (often without accents)."""
    letters = [c for c in title if c.isalpha()]
    return len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.8


_MOJIBAKE = re.compile(
    "[ÃÂâ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u2122]"
)


def fix_mojibake(s: str) -> str:
    """Undo UTF-8 text that was decoded as windows-1252 (« Ã©tÃ© » → « été »)."""
    if not _MOJIBAKE.search(s):
        return s
    try:
        repaired = s.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return s
    return repaired


_STOPWORDS = frozenset(
    """le la les l un une des de du d et ou a au aux en dans sur sous pour par avec sans ce cet
    cette ces son sa ses leur leurs qui que qu quoi dont est sont ete etre a ont avait il
    elle ils elles on nous vous se s y ne pas plus moins tres apres avant selon contre entre
    vers chez lors depuis mais comme si tout tous toute toutes deux trois c n j m t""".split()
)


def signature(text: str) -> frozenset[str]:
    """The content words of a text as stems: for near-duplicate detection (Jaccard)."""
    return frozenset(stem(t) for t in _TOKEN.findall(fold(text)) if t not in _STOPWORDS)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
