"""The words of a title and lede as the decision reads them: tokens, dates and ordinals,
stopwords and news packaging, synonym classes, a repost's byline (`strip_byline`), an
opinion piece's title (`opinion_title`), a title's rubric and the happenings it calls new, and
the terms one word gives."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from monitor.events.params import Params
from monitor.text import fold, stem

_WORD = re.compile(r"[^\W_]+")
_RAW_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_SENTENCE_END = re.compile(r"[.!?:;«»\"“”()\[\]|—–-]\s*$")
_YEAR = re.compile(r"^(19[5-9]\d|20[0-4]\d)$")
# An ordinal (« 1ère », « 2ème », « 109e », « 3e »): a number of the title, as « épisode 2 »'s,
# unless a month follows (« 1er mai » is a date).
_ORDINAL = re.compile(r"^(\d{1,4})(?:e|er|ere|eme|nd|nde)$")
_MONTHS = frozenset(
    "janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre".split()
)
_DAYS = frozenset("lundi mardi mercredi jeudi vendredi samedi dimanche".split())

# Function words and the words of news packaging ("ce qu'il faut retenir", "en direct",
# "vidéo"): they say nothing about which event an item reports.
STOPWORDS = frozenset(
    """le la les l un une des de du d et ou a au aux en dans sur sous pour par avec sans ce cet
    cette ces son sa ses leur leurs qui que qu quoi dont est sont ete etre ont avait il elle
    ils elles on nous vous se s y ne pas plus moins tres apres avant selon contre entre vers
    chez lors depuis mais comme si tout tous toute toutes c n j m t me te lui eux je tu ni
    car donc or sont fait faire faut peut doit va vont etait sera seront avoir aussi encore
    deja bien ainsi alors dont quel quelle quels quelles comment pourquoi quand ou cela ca
    celui celle ceux celles autre autres meme memes notre nos votre vos mon ma mes ton ta tes
    direct video videos photo photos images image retenir savoir sait ce qu il ci la voici
    voila live info infos actu essentiel point tribune chronique edito entretien interview
    podcast reportage temoignage temoignages episode dit dire selon plus ans an jour jours
    fois deux trois quatre cinq six sept huit neuf dix premier premiere nouveau nouvelle
    nouveaux nouvelles grand grande grands grandes""".split()
)
_PACKAGING = frozenset({"direct", "video", "episode", "podcast"})


# Words the French press uses for one happening told from different angles (folded,
# light-stemmed, with their common inflections): each class is one more term beside the word
# itself, so « affrontements meurtriers » and « combats … soldats tués » share two.
SYNONYMS: tuple[str, ...] = (
    "affrontement combat heurt accrochage escarmouche echauffouree",
    "tue tuee tuer mort morte meurtrier meurtriere victime deces mourir",
    "bloque bloquee bloquer blocus coupe coupee couper ferme fermee fermer bouclage paralyse",
    "corridor route axe",
    "bombardement bombarde bombarder frappe pilonnage",
    "attaque attaquer assaut raid offensive",
    "treve cessez pause",
    "sommet rencontre reunion",
    "demission demissionne demissionner",
    "seisme tremblement",
    "otage captif",
    "libere liberee liberer liberation relache relacher",
    "report reporte reportee reporter repousse repoussee repousser ajourne ajournee",
    "election scrutin vote presidentielle legislative",
    "censure censuree censurer",
    "navire bateau",
    "prevoit prevoir predit predire prevision",
    "suspend suspendu suspendue suspendre suspension",
)


def synonym_table(groups: Iterable[str]) -> dict[str, str]:
    """Term → its class ("~" + the group's first word)."""
    out: dict[str, str] = {}
    for line in groups:
        words = line.split()
        for w in words:
            out.setdefault(w, "~" + words[0])
    return out


_SYNONYM_OF = synonym_table(SYNONYMS)


def _word(tok: str) -> tuple[str, str]:
    """A folded token → (itself, its term: light-stemmed)."""
    return tok, stem(tok)


# A repost's attribution: « Source » and what follows, a numeric date (« 19/09/2022 ») and the
# author's name before it, then, once one of those is gone, an author left alone after a dash
# (« - Serge Tateosian - Source : Revue des deux mondes »).
_SOURCE = re.compile(r"\s(?:[-–—:]\s*)?[Ss]ource\s*:?\s*[A-Z].*$")
_NUM_DATE = re.compile(
    r"\s(?:[-–—]\s*)?(?:[A-Z][\w'’-]*\s+(?:[^\W\d_][\w'’-]*\s+)?)?(?:le\s+)?"
    r"\d{1,2}/\d{1,2}/\d{2,4}\b.*$"
)
_NAME_TAIL = re.compile(r"\s[-–—]\s*[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*){0,2}$")


def strip_byline(title: str) -> str:
    """A title without its attribution tail (« … - Serge Tateossian 19/09/2022 - Source :
    Paris Match »): the author and the outlet a post is reposted from are no part of the
    happening, and a site reposting one author's picks would otherwise join them all. A
    title without « Source » or a numeric date is left as it is (« Kosovo - Serbie »)."""
    out = _NUM_DATE.sub("", _SOURCE.sub("", title)).rstrip()
    if out == title.rstrip():
        return title
    out = _NAME_TAIL.sub("", out)
    return out if _WORD.search(out) else title


_QUOTED = re.compile(r"^[«“\"]([^«»“”\"]+)[»”\"]\W*$")


def opinion_title(title: str) -> bool:
    """A title that is one quotation of four words or more, with at most a rubric before it
    (« « Si une coalition contre l'EI devait rassembler… » », « Attentat près de Moscou :
    « La population russe… » »): how an opinion piece is titled. A quotation followed by what
    happened (« « La patrie est en danger » : Pachinian appelle… », « …, déclare le ministre »)
    is not."""
    text = title.strip()
    m = _COLON.search(text)
    if m is not None and 0 < len(_WORD.findall(text[: m.start()])) <= 5:
        text = text[m.end() :].strip()
    quoted = _QUOTED.match(text)
    return quoted is not None and len(_WORD.findall(quoted.group(1))) >= 4


_NEW = re.compile(r"\b[Nn]ouv(?:eau|eaux|el|elle|elles)\s+([^\W_]+)(?:\s+([^\W_]+))?")
# Adjectives French puts before the noun (« une nouvelle forte réplique »): the noun after
# one names the happening too.
_BEFORE_NOUN = frozenset(
    """fort forte forts fortes grand grande grands grandes gros grosse grosses petit petite
    petits petites lourd lourde lourds lourdes vaste vastes longue longues violent violente
    violents violentes puissant puissante puissants puissantes""".split()
)
_COLON = re.compile(r"\s:\s|:\s")


def _fresh_terms(title: str, synonyms: Mapping[str, str], params: Params) -> frozenset[str]:
    """The terms of the happenings a title calls new (« de nouvelles attaques », « nouvelle
    reine »; after an adjective, its noun too: « une nouvelle forte réplique »): not a name
    (« Nouvelle-Zélande » has no space, « Nouveau Front populaire » a capital), not a stopword
    (« une nouvelle fois », « nouvelle reine de Roland-Garros »)."""
    out: set[str] = set()
    for m in _NEW.finditer(title):
        for word in m.groups():
            if not word or word[0].isupper():
                break
            st = stem(fold(word))
            if st in STOPWORDS or len(st) < 2 or st.isdigit():
                break
            out.update(t for t in _event_terms(st, synonyms, params) if t[0] != "^")
            if fold(word) not in _BEFORE_NOUN:
                break
    return frozenset(out)


def _rubric_words(folded: str) -> int:
    """How many words a title's rubric has: the few words before its first colon (« Mort
    d'Elizabeth II : », « Covid-19 : »), when words follow; 0 without one."""
    m = _COLON.search(folded)
    if m is None:
        return 0
    head = len(_WORD.findall(folded[: m.start()]))
    tail = len(_WORD.findall(folded[m.end() :]))
    return head if 0 < head <= 5 and tail >= 2 else 0


def _event_terms(st: str, synonyms: Mapping[str, str], params: Params) -> list[str]:
    """The terms one word of what happened gives: its stem, its synonym class, and its first
    letters (French inflection: « libérés », « libération »)."""
    st = st[: params.stem_chars]
    out = [st]
    syn = synonyms.get(st)
    if syn is not None:
        out.append(syn)
    n = params.prefix_chars
    if n and len(st) > n + 1:
        out.append("^" + st[:n])
    return out
