"""What the decision reads from one item (`features()` → `EventFeatures`): its weighted
terms, its actors (capitalised names and the profile's entity aliases), its specific names,
numbers, years, dates and spelled figures, its kinds of happening and its word vector."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from monitor import wordvec
from monitor.classify import Profile
from monitor.events.kinds import event_kinds
from monitor.events.params import DEFAULT, Params
from monitor.events.words import (
    _DAYS,
    _MONTHS,
    _ORDINAL,
    _RAW_WORD,
    _SENTENCE_END,
    _SYNONYM_OF,
    _WORD,
    _YEAR,
    STOPWORDS,
    _event_terms,
    _fresh_terms,
    _rubric_words,
    _word,
    opinion_title,
    strip_byline,
)
from monitor.text import fold, stem
from monitor.wordvec import Vector, WordVectors


@dataclass(frozen=True)
class EventFeatures:
    """What the decision reads from one item."""

    terms: Mapping[str, float]  # stem → weight (title words count title_weight times)
    title_terms: frozenset[str]
    actors: frozenset[str]
    numbers: frozenset[str]  # numbers of the title (episode, toll, date)
    years: frozenset[int]  # years named in title or lede
    dates: frozenset[str]  # "10 fevrier" style day+month of the title
    time: datetime
    dated: bool = True  # False: `time` is when the item was first seen (no published date)
    vector: Vector | None = field(default=None, compare=False)  # unit; None: vectors off
    # the terms of a new happening its title names (« nouvelles attaques »: attaque, ~attaque)
    fresh: frozenset[str] = frozenset()
    # its title's terms outside a rubric (the few words before a colon: « Covid-19 : … »);
    # None: the same as title_terms
    body: frozenset[str] | None = None
    topics: frozenset[str] = frozenset()  # the profile's topics it matched (none: not given)
    kinds: frozenset[str] = frozenset()  # its kinds of happening (`event_kinds`), with topics
    opinion: bool = False  # its title is a quotation and nothing else (`opinion_title`)
    names: frozenset[str] = frozenset()  # its specific names' keys (`specific_names`)
    title_names: frozenset[str] = frozenset()  # those of them its title names
    # the title's figures a figure join reads: two digits or more, no year, no duration
    # (« 35 soldats », not « 20 ans de prison »)
    figures: frozenset[str] = frozenset()


def entity_aliases(groups: Mapping[str, Iterable[tuple[str, bool]]]) -> dict[str, str]:
    """Word → entity key, from named groups of (word, is_prefix): Pachinian, Pashinyan and
    Erevan all name the `armenia` actor."""
    out: dict[str, str] = {}
    for name, words in groups.items():
        for word, prefix in words:
            out[word + ("*" if prefix else "")] = f"@{name}"
    return out


def profile_aliases(profile: Profile) -> dict[str, str]:
    """The entity aliases of a topic profile: its groups' patterns. A name of several words
    is one key with its words separated by spaces (« haut karabakh »)."""
    groups: dict[str, list[tuple[str, bool]]] = {}
    for name, pids in profile.groups.items():
        if name not in profile.entities:  # vocabularies (events, fighting…) are not actors
            continue
        for pid in pids:
            words = profile.patterns[pid].words
            text = " ".join(w.text + ("*" if w.prefix and len(words) > 1 else "") for w in words)
            groups.setdefault(name, []).append((text, len(words) == 1 and words[0].prefix))
    return entity_aliases(groups)


def _alias(token: str, aliases: Mapping[str, str]) -> str | None:
    hit = aliases.get(stem(token))
    if hit is not None:
        return hit
    for n in range(len(token), 2, -1):  # the whole word too: azerbaïdjan* names Azerbaïdjan
        hit = aliases.get(token[:n] + "*")
        if hit is not None:
            return hit
    return None


def _actors(
    text: str,
    words: list[tuple[str, str]],
    spans: Mapping[int, str],
    aliases: Mapping[str, str],
) -> set[str]:
    """Capitalised names and acronyms (not only because they open a sentence) and the
    profile's entities. `words` and `spans`: the text's words and its multi-word names, as
    `features` reads them."""
    found: set[str] = set()
    initial_caps: set[str] = set()
    later_caps: set[str] = set()
    for m in _RAW_WORD.finditer(text):
        raw = m.group(0)
        if "'" in raw or "’" in raw:
            raw = re.split(r"['’]", raw, maxsplit=1)[1]
        if not raw or not raw[0].isupper() or len(raw) < 2:
            continue
        key = stem(fold(raw))
        if key in STOPWORDS or key.isdigit():
            continue
        before = text[: m.start()].rstrip()
        if not before or _SENTENCE_END.search(before):
            initial_caps.add(key)
        else:
            later_caps.add(key)
        if raw.isupper() and len(raw) >= 2:
            later_caps.add(key)  # an acronym is a name wherever it stands
    found |= later_caps
    found |= initial_caps & later_caps
    if aliases:
        for i, (tok, st) in enumerate(words):
            a = spans.get(i)
            if a is not None:
                found.discard(st)  # « Haut » of Haut-Karabakh is no actor of its own
            else:
                a = _alias(tok, aliases)
            if a is not None:
                found.add(a)
    return found


def features(
    title: str,
    summary: str,
    time: datetime,
    aliases: Mapping[str, str] | None = None,
    params: Params = DEFAULT,
    *,
    dated: bool = True,
    vectors: WordVectors | Literal["shared"] | None = "shared",
    topics: Iterable[str] = (),
) -> EventFeatures:
    """The features of an item (title, summary, its published date or, with `dated=False`,
    the time it was first seen). `vectors`: the word vectors (default: the process's own,
    loaded on first use; None: no semantic term). `topics`: the profile's topics the item
    matched (its classification), which let it join by kind of happening."""
    lede = summary[: params.lede_chars]
    terms: dict[str, float] = {}
    if params.drop_byline:
        title = strip_byline(title)
    folded = fold(title)
    title_words = [_word(t) for t in _WORD.findall(folded)]
    rubric = _rubric_words(folded)
    body: set[str] = set()
    lede_words = [_word(t) for t in _WORD.findall(fold(lede))]
    multi = _multi_word_entities(aliases) if aliases else {}
    title_names = _entity_spans(title_words, multi)
    lede_names = _entity_spans(lede_words, multi)
    title_terms: set[str] = set()
    numbers: set[str] = set()
    years: set[int] = set()
    dates: set[str] = set()
    durations: set[str] = set()
    synonyms = _SYNONYM_OF if params.synonyms else {}
    for i, (tok, st) in enumerate(title_words):
        if tok.isdigit():
            number = tok.lstrip("0") or "0"
            numbers.add(number)
            if _YEAR.match(tok):
                years.add(int(tok))
            elif i + 1 < len(title_words) and title_words[i + 1][0] in _MONTHS:
                dates.add(f"{int(tok)} {title_words[i + 1][0]}")
            elif _duration(title_words, i):
                durations.add(number)  # « 20 ans de prison », « il y a 35 ans »: no toll
                if params.numbers_as_terms:
                    terms["#" + number + "a"] = params.title_weight
            elif params.numbers_as_terms:
                terms["#" + number] = params.title_weight
            continue
        if tok in _DAYS:
            dates.add(tok)
            continue
        ordinal = _ORDINAL.match(tok)
        if ordinal and not (i + 1 < len(title_words) and title_words[i + 1][0] in _MONTHS):
            numbers.add(f"{int(ordinal.group(1))}e")  # « 1ère » / « 2ème circonscription »
        entity = title_names.get(i)
        if entity is None and aliases:
            entity = _alias(tok, aliases)
        if entity is not None:  # a profile entity's word counts as the entity only
            title_terms.add(entity)  # Latchine and Lachin are one word for the cosine
            terms[entity] = params.title_weight
            if i >= rubric:
                body.add(entity)
            continue
        if st in STOPWORDS or len(st) < 2:
            continue
        for term in _event_terms(st, synonyms, params):
            if term[0] == "^":  # light: not a word of the title's signature
                terms[term] = max(terms.get(term, 0.0), params.title_weight * params.prefix_weight)
            else:
                title_terms.add(term)
                terms[term] = params.title_weight
                if i >= rubric:
                    body.add(term)
    for i, (tok, st) in enumerate(lede_words):
        if tok.isdigit():
            if _YEAR.match(tok):
                years.add(int(tok))
            elif params.numbers_as_terms and not (
                i + 1 < len(lede_words) and lede_words[i + 1][0] in _MONTHS
            ):
                term = "#" + (tok.lstrip("0") or "0") + ("a" if _duration(lede_words, i) else "")
                terms.setdefault(term, 1.0)
            continue
        entity = lede_names.get(i)
        if entity is None and aliases:
            entity = _alias(tok, aliases)
        if entity is not None:
            terms.setdefault(entity, 1.0)
            continue
        if st in STOPWORDS or len(st) < 2 or tok in _DAYS or tok in _MONTHS:
            continue
        for term in _event_terms(st, synonyms, params):
            if term not in terms:
                terms[term] = params.prefix_weight if term[0] == "^" else 1.0
    if topics and params.number_join and params.numbers_as_terms:
        for n in spelled_numbers([t for t, _ in lede_words]):
            terms.setdefault("#" + n, 1.0)  # « trente-deux soldats » is « 32 soldats »
    actors = _actors(drop_credits(title), title_words, title_names, aliases or {}) | _actors(
        drop_credits(lede), lede_words, lede_names, aliases or {}
    )
    opinion = opinion_title(title)  # an opinion piece is its own event: no name joins it
    names = specific_names(actors) if topics and not opinion else frozenset()
    title_keys = {st[:_NAME_KEY] for _, st in title_words}
    vector = None
    if params.semantic:
        wv = wordvec.shared() if vectors == "shared" else vectors
        if wv is not None:
            vector = wv.embed(title, lede, params.sem_title_weight, params.sem_min_words)
    return EventFeatures(
        terms=terms,
        title_terms=frozenset(title_terms),
        actors=frozenset(actors),
        numbers=frozenset(numbers),
        years=frozenset(years),
        dates=frozenset(dates),
        time=time,
        dated=dated,
        vector=vector,
        fresh=_fresh_terms(title, synonyms, params),
        body=frozenset(body) if rubric else None,
        topics=frozenset(topics),
        kinds=event_kinds(title, topics) if topics else frozenset(),
        opinion=opinion,
        names=names,
        title_names=frozenset(n for n in names if n in title_keys),
        figures=frozenset(
            n for n in numbers if len(n) >= 2 and not _YEAR.match(n) and n not in durations
        ),
    )


def _multi_word_entities(aliases: Mapping[str, str]) -> dict[str, list[tuple[list[str], str]]]:
    """The profile's names of several words (« Haut-Karabakh », « casques bleus russes »),
    by first word: (its words, its entity key)."""
    out: dict[str, list[tuple[list[str], str]]] = {}
    for key, entity in aliases.items():
        if " " in key:
            words = key.split(" ")
            out.setdefault(words[0].rstrip("*"), []).append((words, entity))
    return out


def _entity_spans(
    words: list[tuple[str, str]], multi: Mapping[str, list[tuple[list[str], str]]]
) -> dict[int, str]:
    """Position → entity key for the words that belong to a multi-word name: they name a
    place or an actor, they are not words of what happened (the « haut » of Haut-Karabakh)."""
    if not multi:
        return {}
    out: dict[int, str] = {}
    for i, (tok, st) in enumerate(words):
        for pattern, entity in multi.get(st, ()) or multi.get(tok, ()):
            end = i + len(pattern)
            if end <= len(words) and all(
                _word_matches(w, words[j]) for j, w in zip(range(i, end), pattern, strict=True)
            ):
                for j in range(i, end):
                    out[j] = entity
                break
    return out


def _word_matches(pattern: str, word: tuple[str, str]) -> bool:
    tok, st = word
    if pattern.endswith("*"):
        return tok.startswith(pattern[:-1])
    return pattern in (tok, st)


_UNITS = {
    w: n for n, w in enumerate("zero un deux trois quatre cinq six sept huit neuf".split()) if n
} | {"une": 1}
_TEENS = {w: 10 + n for n, w in enumerate("dix onze douze treize quatorze quinze seize".split())}
_TENS = {"vingt": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60}
_NUMBER_WORDS = (
    frozenset(_UNITS) | frozenset(_TEENS) | frozenset(_TENS) | {"vingts", "cent", "cents", "mille"}
)
# What follows a figure that is a time, not a toll: « il y a trente-cinq ans », « 20 ans de
# prison », « depuis 45 jours ».
DURATIONS = frozenset("ans annees jours mois".split())
_LARGE = frozenset("million millions milliard milliards".split())


def _duration(words: Sequence[tuple[str, str]], i: int) -> bool:
    return i + 1 < len(words) and words[i + 1][0] in DURATIONS


def _below_100(ws: Sequence[str], k: int) -> tuple[int, int] | None:
    """The value of the number words from `k` below 100, and where they end."""
    if k >= len(ws):
        return None
    w = ws[k]
    if w == "quatre" and k + 1 < len(ws) and ws[k + 1] in ("vingt", "vingts"):
        n, k, teens_ok, et_ok = 80, k + 2, True, False  # quatre-vingt(s)
    elif w in _TENS:
        n, k, teens_ok, et_ok = _TENS[w], k + 1, w == "soixante", True
    elif w in _TEENS:
        n = _TEENS[w]
        if w == "dix" and k + 1 < len(ws) and ws[k + 1] in ("sept", "huit", "neuf"):
            return 10 + _UNITS[ws[k + 1]], k + 2
        return n, k + 1
    elif w in _UNITS:
        return _UNITS[w], k + 1
    else:
        return None
    if n == 80 and ws[k - 1] == "vingts":
        return n, k  # « quatre-vingts » ends the number
    if et_ok and k + 1 < len(ws) and ws[k] == "et" and ws[k + 1] in ("un", "une", "onze"):
        return n + (11 if ws[k + 1] == "onze" else 1), k + 2
    if (k < len(ws) and ws[k] in _UNITS and ws[k] not in ("un", "une")) or (
        k < len(ws) and n == 80 and ws[k] in ("un", "une")
    ):
        return n + _UNITS[ws[k]], k + 1
    if teens_ok and k < len(ws) and ws[k] in _TEENS:
        rest = _below_100(ws, k)
        if rest is not None and 10 <= rest[0] < 20:
            return n + rest[0], rest[1]
    return n, k


def _below_1000(ws: Sequence[str], k: int) -> tuple[int, int] | None:
    """The value of the number words from `k` below 1000 (« deux cent trente »)."""
    head = 1
    if (
        k + 1 < len(ws)
        and ws[k] in _UNITS
        and ws[k] not in ("un", "une")
        and ws[k + 1]
        in (
            "cent",
            "cents",
        )
    ):
        head, k = _UNITS[ws[k]], k + 1
    if k < len(ws) and ws[k] in ("cent", "cents"):
        k += 1
        rest = _below_100(ws, k) if k < len(ws) else None
        return (head * 100 + rest[0], rest[1]) if rest else (head * 100, k)
    return _below_100(ws, k)


def _number(ws: Sequence[str]) -> int | None:
    """The value of a run of number words, or None when it is not one number whole."""
    k = 0
    n = 0
    if ws and ws[0] == "mille":
        n, k = 1000, 1
    else:
        head = _below_1000(ws, 0)
        if head is None:
            return None
        n, k = head
        if k < len(ws) and ws[k] == "mille":
            n, k = n * 1000, k + 1
    if k < len(ws) and n >= 1000:
        rest = _below_1000(ws, k)
        if rest is None:
            return None
        n, k = n + rest[0], rest[1]
    return n if k == len(ws) else None


def spelled_numbers(words: Sequence[str]) -> list[str]:
    """The figures spelled in folded words (hyphens split them: « trente deux », « vingt et
    un », « dix sept », « quatre vingt dix », « deux cent trente », « trente mille »):
    « trente-deux soldats » names 32, as « 32 soldats » does. A run of number words that is
    not one number whole, or next to « millions », is dropped; units alone (« deux », « un »)
    and « dix » are too common to be figures; a time (« il y a trente-cinq ans ») is none."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] not in _NUMBER_WORDS:
            i += 1
            continue
        j = i + 1
        while j < len(words) and (
            words[j] in _NUMBER_WORDS
            or (
                words[j] == "et"
                and words[j - 1] in _TENS
                and j + 1 < len(words)
                and words[j + 1] in ("un", "une", "onze")
            )
        ):
            j += 1
        run = words[i:j]
        after = words[j] if j < len(words) else ""
        before = words[i - 1] if i else ""
        n = _number(run)
        if (
            n is not None
            and n > 10
            and after not in DURATIONS
            and after not in _LARGE
            and before not in _LARGE
            and not (run == ["cent"] and before == "pour")
        ):
            out.append(str(n))
        i = j
    return out


# Names too common in the conflict's news to tell one of its happenings from another: its
# parties, capitals (the Karabakh's under both names), peoples, leaders and ministers of every
# week, the Karabakh, the big countries and their adjectives (folded, light-stemmed as actors
# are), the capitalised words of institutions and of the world at large. A name whose key
# (first letters) is a common name's key is common too (« Karabakhtsis », « Américains »).
# Any other name two items of the profile's stream share (a town, a lake, a summit city, a
# court) is a specific place or person: `_same_name` joins them within the kind window. A
# name's first letters are its key (Choucha / Chouchi, Kelbadjar / Kelbajar).
COMMON_NAMES = frozenset(
    """armenie armenien armenienne erevan yerevan pachinian pashinyan pashinian
    nikol azerbaidjan azerbaidjanai azeri bakou baku aliev aliyev ilham russie russe moscou
    kremlin poutine putin vladimir karabakh karabagh haut nagorny nagorno artsakh caucase sud
    etat conseil parlement assemblee republique union ue onu otan osce nation unie commission
    cour defense affaire president armee gouvernement ministre ministere europe europeen
    occident occidentau france pari francai washington bruxelle turquie iran amerique
    americain ukraine chine otsc monde ville
    stepanakert khankendi karabakhtsi artsakhtsi unis turc turque iranien georgie georgien
    tbilissi ankara teheran pekin chinoi israel israelien allemagne allemand berlin londre
    royaume britannique inde indien pakistan ukrainien kiev kyiv occidental
    macron emmanuel lavrov serguei sergue erdogan recep tayyip mirzoyan ararat bayramov
    jeyhun djeyhoun blinken antony michel charle borrell josep scholz biden trump donald
    zakharova maria peskov dmitri choigou shoigu hajiyev hikmet simonyan sarkissian
    kotcharian vardanyan vardanian ruben haroutiounian harutyunyan arayik samvel
    chahramanian shahramanyan grigoryan armen mnatsakanyan jamal overchuk""".split()
)
_NAME_KEY = 5
_COMMON_KEYS = frozenset(n[:_NAME_KEY] for n in COMMON_NAMES)
# News agencies and outlets: a credit (« selon l'AFP », « a rapporté Reuters », « (Photo :
# …) ») names who told the news, not where or to whom it happened. Taken out of the text the
# names are read from, and never a specific name (an old story's stored actors hold them).
OUTLETS = (
    "Agence France[- ]Presse|AFP|Reuters|Associated Press|AP|TASS|Tass|RIA(?: Novosti)?|"
    "Novosti|Interfax|Armenpress|Arminfo|APA|Trend|RFI|France ?24|AzerTac|Azertac|AZERTAC|"
    r"news\.am|Sputnik|Anadolu|EFE|DPA|ANSA|Belga|Xinhua|franceinfo|France ?[Ii]nfo|"
    "France Inter|France Bleu|France Culture|France Télévisions|BFM ?TV|LCI|Mediapart|"
    "Euronews|Ouest-France|Le Monde|Le Figaro|Libération|Le Parisien|Paris Match|"
    "Courrier international|Al[- ]Jazeera|CNN|BBC|RT|Report\\.az|JAMnews|OC Media|Azatutyun|"
    "CivilNet|Hetq|Asbarez|Kommersant|Izvestia|Nouvelles d'Arménie|Arménews|Public Sénat"
)
_OUTLET = re.compile(r"(?<![\w-])(?:" + OUTLETS + r")(?![\w-])")
_CREDIT = re.compile(r"(?:\b(?:Sources?|Crédits?|Photo|Illustration)\s*:|©)[^.\n|()]*")
OUTLET_NAMES = frozenset(
    """afp reuter tass novosti interfax armenpress arminfo apa trend rfi azertac sputnik
    anadolu efe dpa ansa belga xinhua franceinfo mediapart euronews bfmtv lci cnn bbc
    jamnew azatutyun civilnet hetq asbarez kommersant izvestia armenew""".split()
)


def drop_credits(text: str) -> str:
    """A text without its credit lines (« Source : … », « © … », « Photo : … ») and the
    names of news agencies and outlets (« selon l'AFP », « a rapporté Reuters »): what
    names are read from."""
    return _OUTLET.sub(" ", _CREDIT.sub(" ", text))


def specific_names(actors: Iterable[str]) -> frozenset[str]:
    """The keys (first letters) of an item's names that are no entity key, no common name of
    the conflict (COMMON_NAMES, by name or key), no outlet and no figure: a town, a lake, a
    summit city, a court."""
    return frozenset(
        a[:_NAME_KEY]
        for a in sorted(actors)
        if len(a) > 2
        and not a.startswith("@")
        and not a[0].isdigit()
        and a not in COMMON_NAMES
        and a not in OUTLET_NAMES
        and a[:_NAME_KEY] not in _COMMON_KEYS
    )


def stored_features(
    title: str,
    summary: str | None,
    published: datetime | None,
    first_seen: datetime,
    topics: Iterable[str] = (),
    aliases: Mapping[str, str] | None = None,
    params: Params = DEFAULT,
) -> EventFeatures:
    """The features of an item as stored (its row and its match's topics) or as a poll sees it
    (first seen now): at its published date, or when it was first seen if the feed gave none."""
    when = published or first_seen
    return features(
        title, summary or "", when, aliases, params, dated=published is not None, topics=topics
    )
