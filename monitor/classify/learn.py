"""`monitor profile learn`: propose weighted terms from example articles, as YAML to curate.

Distinctiveness is a smoothed log-odds of a term's document frequency in the examples against
ordinary French news (the --background files, plus a built-in list of everyday words), so that
what the examples share and ordinary news does not comes first. Capitalised words inside
sentences are proposed as names, recurring two- and three-word sequences as phrases.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

from monitor.errors import InputError
from monitor.text import _STOPWORDS, clean_text, fold

_WORDS = re.compile(r"[^\W\d_][^\W_]*(?:-[^\W\d_][^\W_]*)*")
# Everyday words of French news that are never distinctive on their own.
_COMMON = frozenset(
    """ministre president gouvernement pays etat etats annee annees jour jours mois semaine
    premier premiere nouveau nouvelle nouveaux grand grande plus deja encore aussi ainsi
    selon fait faire ete avoir etre dit declare declaration mardi mercredi jeudi vendredi
    samedi dimanche lundi hier aujourd hui heure heures monde international internationale
    politique affaires etrangeres relations partie parties region pendant depuis dont
    egalement toujours cependant plusieurs autres autre notre votre leurs cette contre ans
    fin debut cas lors avant apres entre vers sous sans avec pour dans sur par""".split()
)


def _documents(path: Path) -> list[str]:
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from e
    if path.suffix == ".jsonl":
        docs = []
        for line in raw.splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                docs.append(" ".join(str(obj.get(k) or "") for k in ("title", "summary", "text")))
        return docs
    if "<item" in raw or "<entry" in raw:
        parts = re.split(r"<item\b|<entry\b", raw)[1:]
        return [clean_text(p, 20_000) for p in parts]
    return [clean_text(raw, 200_000)]


def _terms(doc: str) -> tuple[set[str], set[str], Counter[str]]:
    """Folded words, 2–3 word phrases, and capitalised names with their surface form."""
    words = [w for w in _WORDS.findall(doc)]
    folded = [fold(w) for w in words]
    unigrams = {w for w in folded if len(w) > 3 and w not in _STOPWORDS}
    phrases = set()
    for n in (2, 3):
        for i in range(len(folded) - n + 1):
            gram = folded[i : i + n]
            if gram[0] in _STOPWORDS or gram[-1] in _STOPWORDS:
                continue
            phrases.add(" ".join(gram))
    names: Counter[str] = Counter()
    for i, w in enumerate(words):
        if i and w[0].isupper() and len(w) > 2 and not words[i - 1].endswith("."):
            names[w] += 1
    return unigrams, phrases, names


def learn_profile(examples: list[Path], background: list[Path], top: int, topic: str) -> str:
    docs = [d for p in examples for d in _documents(p) if d.strip()]
    if not docs:
        raise InputError("no text in the example files")
    bg_docs = [d for p in background for d in _documents(p) if d.strip()]
    ex_df: Counter[str] = Counter()
    name_forms: dict[str, Counter[str]] = {}
    for d in docs:
        uni, phr, names = _terms(d)
        ex_df.update(uni | phr)
        for surface in names:
            name_forms.setdefault(fold(surface), Counter())[surface] += 1
    bg_df: Counter[str] = Counter()
    for d in bg_docs:
        uni, phr, _ = _terms(d)
        bg_df.update(uni | phr)
    n_ex, n_bg = len(docs), max(len(bg_docs), 1)
    scored = []
    for term, df in ex_df.items():
        if df < 2 and n_ex > 1:
            continue
        if any(w in _COMMON for w in term.split()) and " " not in term:
            continue
        p_ex = (df + 0.5) / (n_ex + 1)
        p_bg = (bg_df[term] + 0.5) / (n_bg + 1)
        score = math.log(p_ex / p_bg) * (1 + 0.5 * term.count(" "))
        if score > 0:
            scored.append((score, term, df))
    scored.sort(reverse=True)
    best = scored[:top]
    hi = best[0][0] if best else 1.0
    lines = [
        f"# Proposed by `monitor profile learn` from {n_ex} example documents",
        f"# against {len(bg_docs)} background documents. Curate before use: merge spellings",
        "# into groups, drop generic words, add context (`when:`) where a term is ambiguous.",
        "title_weight: 2",
        "topics:",
        f"  {topic}:",
        "    threshold: 6",
        "    terms:",
    ]
    for score, term, df in best:
        weight = max(1, round(6 * score / hi))
        kind = "phrase" if " " in term else "word"
        surface = term
        forms = name_forms.get(term)
        if forms:
            kind = "name"
            surface = forms.most_common(1)[0][0]
        lines.append(
            f'      - {{match: "{surface}", weight: {weight}}}  # {kind}, in {df}/{n_ex} examples'
        )
    return "\n".join(lines) + "\n"
