"""Event clustering: does a matched item report the same real-world event as a recent story?

Pure decisions over data, beside `pipeline.py`: `features()` turns an item into what the
decision needs (weighted stems of the title and lede, named actors, numbers, its time);
`EventIndex` holds the recent stories in memory (centroids, an inverted index by term) and
`EventIndex.decide()` says "join story X" or "start a new one". `store/stories.py` only loads
and saves what this module computes.

How an item is compared with a story:

* **Candidates** come from an inverted index (term → stories), looked up with the item's
  rarest terms only, most recent stories first, and kept when the story's events are close
  in time to the item's: no scan over the window.
* **Similarity** is the cosine of TF-IDF vectors (folded, stemmed words of the title, three
  times, and of the lede; figures such as « 83 millions » and a longer word's first five letters
  as lighter terms, so « libérés » and « libération » meet) between the item and the story's
  centroid, plus the share of the item's words the story already holds (a story told from
  several angles takes a report of any of them; only when the titles share a word of what
  happened, and fading as the item is further in time), plus a bonus for shared named actors
  (capitalised names, acronyms, the profile's entity groups: Pachinian and Pashinyan are the same
  actor; a name of several words such as Haut-Karabakh is its entity, none of its words is a
  word of what happened).
* **Time**: the item's published date (else when it was first seen, which may be up to
  `undated_slack` after its publication) against the story's first and latest items. Past
  `max_gap` nothing joins; within it the bar rises with the gap (to `join_far` at a day, on to
  `join_max` at two days), so the next day's event (a summit, then another summit) must be
  far more similar than a paraphrase of the same hour.
* **Look-alikes**: different years, or different dates in the titles (« ce samedi 10 février »
  / « ce dimanche 11 février »), or different episode numbers never join, nor a title with a
  word of a turn (« violé », « échec », « annulé », « démenti ») that the story never mentions;
  a title's own key word that the story never mentions (« sommet ») lowers the score.
  A continuing story's next happening stays apart too: a title naming a new happening
  (« de nouvelles attaques ») the story's titles never name, and, more than `far_after`
  after the story began, a title sharing no word with the story's titles outside its rubric
  (« Mort d'Elizabeth II : » the lying in state, then the funeral plan). An opinion piece
  (a title that is one quotation, after at most a rubric) is its own event, joining only as
  a near-identical copy; a repost's attribution (« - Author 19/09/2022 - Source : Outlet »)
  is no word of the title.
* **Near-identical copies** (title signatures with Jaccard ≥ 0.7) join whatever the other
  signals say, unless the numbers in the titles disagree.
* **Word vectors** (`monitor.wordvec`, static French fastText vectors; off when the package is
  absent): an item's direction (its title's and lede's words) against the story's running
  centroid adds `sem_mix × (cosine − sem_floor)` when the cosine passes the floor, fading with
  the time gap like the coverage bonus, so « combats meurtriers » and « soldats tués » count
  for each other. A cosine of `sem_gate` or more also stands in for a shared word of what
  happened (shared names alone still never join), and brings, as extra candidates, the
  stories of the item's actors and the latest stories whose centroid points the same way
  (a few, compared in one matrix product). The look-alike guards above apply before any
  score: a truce and its violation point the same way and still stay apart. Limits,
  measured: other angles of one event (the toll, a reaction, the causes) have cosines
  (0.36–0.6) no higher than other news of the same day and actors (0.4–0.8), so the vectors
  join paraphrases, not angles.
* **The profile's stream** (an item given the topics its classification matched): when no
  story joins by the above, the item joins the story that shares a topic, an actor or place
  and a kind of happening (`event_kinds`: fighting, a truce or talks and what they settle, a
  capture, the CSTO, a blockade) whose latest item is within `kind_window` (18 h; 24 h for
  an item of neither fighting nor a truce, happenings that do not recur daily) of it and
  first item no more than `kind_span` (36 h: the next day) before it, the look-alike guards
  applying. A word of a broken truce makes an item fighting, never the truce's; a title with
  words of fighting and of a truce gives neither (one is the other's context), and words
  after « après », « depuis » count only when the title names nothing else. A title of no
  kind but of a reaction (« appelle à la retenue », « dénonce ») joins the one story of a
  kind its topic and an actor point to within the window, none if two. Topic and time alone
  join unrelated news of the conflict (every join they made on real single-outlet streams
  was wrong); the kind is what keeps them apart. Failing that, a shared specific name (a
  town, a summit city, a minister: `specific_names`, none of the conflict's common names)
  joins the same way within `kind_window_slow`, of kinds told together when both have one,
  never a capture with what is not one (the battle for a town, then its fall), never an
  opinion piece; then a figure of the title (« 32 soldats ») that a story of its topic holds
  (« Trente-deux soldats » in a lede counts), within `max_gap`.
"""

from __future__ import annotations

import base64
import heapq
import math
import re
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import islice
from typing import Literal

import numpy as np

from monitor import wordvec
from monitor.classify import Profile
from monitor.text import fold, signature, stem
from monitor.wordvec import Vector, WordVectors

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

# Title words of a turn in a story: a truce and its violation, talks and their failure, a
# plan and its cancellation are two events however many words they share. An item whose
# title has one the story never mentions does not join it. A denial (« Erevan dément toute
# frappe sur Gandja ») is not one: it is a reaction to the happening, the same event by the
# labelling guideline, and it was keeping reactions out of their story.
TURNS = frozenset(
    """viole violee violer violation rompu rompue rompt rupture echec echoue echouent
    annule annulee annuler annulation bafoue bafouee bafouer""".split()
)

# The kind of happening a title of the profile's stream reports, by its folded words (whole
# words, with the forms the press uses: a prefix took other words, « signalés » a signing,
# « traitement » a treaty, « tirer les leçons » and « mortalité » fighting, « réunification »
# talks): fighting; a truce, talks, a signing and what they settle (peacekeepers, territory
# handed back, prisoners); a capture; the CSTO; a blockade or an exodus. « revendique » a town
# and « perdu le contrôle » of it are a capture, « discussions » talks, « rétrocéder » land
# handed back. Items the topic profile matched, of a shared topic and of one kind, within
# `kind_window` of a story's latest item and `kind_span` of its first, are one event (other
# angles of it: the toll, a reaction, the consequence) when their words alone do not join
# them. « guerre » is no kind (« crimes de guerre », « tournant de la guerre » are anything),
# nor « combattre », nor « armes » alone (« vente d'armes »: see ARMS_DOWN).
KINDS: dict[str, str] = {
    "fight": """combat combats affrontement affrontements affrontent heurt heurts accrochage
        accrochages bombarde bombardee bombardees bombardes bombardement bombardements
        bombarder bombardent frappe frappes frappee frappees frappent frapper tir tirs tire
        tires tiree tirees tirent attaque attaques attaquee attaquees attaquent attaquer
        offensive offensives escalade hostilites agression agressions incursion incursions
        tue tues tuee tuees tuent tuer tuerie tueries mort morts morte mortes mortel mortels
        mortelle mortelles meurtrier meurtriers meurtriere meurtrieres pilonnage pilonnages
        pilonne pilonnee pilonnes pilonnent obus drone drones abattu abattus abattue abattues
        assaut assauts antiterroriste antiterroristes mobilisation mobilisations mobilise
        mobilisee mobilisees mobilises mobilisent mobiliser martial martiale bombe bombes
        explosion explosions explose explosent exploser disparu disparus disparue disparues""",
    "truce": "cessez treve treves capitulation capitulent capitule capituler",
    "talks": """negociation negociations negociateur negociateurs negocie negociee negociees
        negocies negocient negocier negocierons negocieront pourparlers rencontre rencontres
        rencontrent rencontrer rencontrera rencontreront reunion reunions reunis reunit reunie
        reunies reunir reunira reuniront reunirait reunissent sommet sommets discussions tripartite
        tripartites trilateral trilaterale trilaterales trilateraux""",
    "deal": """accord accords accorde accordent paraphe paraphee paraphes paraphent parapher
        traite traites signe signes signee signees signent signer signera signeront signature
        signatures signataire signataires paix""",
    "border": """demarcation delimitation delimitations delimitee delimitent delimiter
        restituer restitue restitues restituee restituees restitution retrocession
        ceder cede cedee cedes cession retroceder retrocede retrocedes retrocedee
        retrocedees""",
    "troops": "casques contingent contingents maintien",
    "prisoners": """prisonnier prisonniers prisonniere prisonnieres captif captifs captive
        captives detenu detenus detenue detenues otage otages echange echanges echangent
        echanger libere liberes liberee liberees liberer liberent liberation liberations""",
    "capture": """chute capitulation capitulent capitule capituler pris prise tombe tombee
        revendique""",
    "blockade": """exode refugie refugies refugiee refugiees deplace deplaces deplacee
        deplacees blocus corridor corridors coupe coupee isole isolee""",
}
_KIND_OF_WORD: dict[str, tuple[str, ...]] = {}
for _kind, _words in KINDS.items():
    for _w in _words.split():
        _KIND_OF_WORD[_w] = (*_KIND_OF_WORD.get(_w, ()), _kind)
# « armes » is a truce only when they are laid down or fall silent, a verb of these within two
# words of it (« déposent les armes », « les armes se taisent »), not sold or delivered.
ARMS_DOWN = frozenset(
    """deposer deposent depose deposeront deposant remettent remettre remet rendent rendre
    rendu taisent taire tairont""".split()
)
# The CSTO's happenings, for items the profile matched on `otsc` (its name alone is no kind:
# its exercises and Armenia's freeze are two events): a summit, membership, a mission.
CSTO_KINDS: dict[str, str] = {
    "csto-summit": "sommet reuni reunit",
    "csto-member": "gel quitt retir particip adhes membre represent distanc sorti",
    "csto-mission": "troupes deploi intervention parachut contingent",
    "csto-drill": "exerc manoeuvr",
}
_CSTO_PREFIXES: tuple[tuple[str, str], ...] = tuple(
    (w, kind) for kind, words in CSTO_KINDS.items() for w in words.split()
)

# A word of a broken truce makes the item fighting, not the truce (« la trêve déjà bafouée »),
# and of the kind `broken`, which never joins a story of a truce that has none.
VIOLATION = frozenset(
    """viole violee violes violees violer violation violations bafoue bafouee bafoues bafouees
    bafouer rompu rompue rompt rupture eclats echec echoue echouent lambeaux""".split()
)
# A title of no kind of happening but of a reaction (a condemnation, a call, a demand, a
# denial, protests): it reacts to a happening of its hours, and joins the one story of a kind
# its topic and an actor point to (none when two could be meant).
REACTIONS: tuple[str, ...] = tuple(
    """denonc condamn appel reclam demand salu inquiet preoccup exhort retenue regrett dement
    accus explicat reagi reaction colere manifest protest soutien satisf critiqu invoqu""".split()
)
# What follows these words (within `CONTEXT_REACH` words) is what came before the news, not
# the news, when the title names a happening of its own: « capitulent après 24 heures
# d'offensive », « premiers combats depuis le cessez-le-feu », « au lendemain de la trêve, les
# bombardements reprennent ». When it names none, it is the news reacted to: « Aliev dénonce
# un crime de guerre après le bombardement ». Fighting that ended (« signent la fin des
# combats », « obtient un arrêt des combats ») is no fighting.
CONTEXT_MARKERS = frozenset("apres depuis lendemain malgre avant".split())
ENDED_MARKERS = frozenset("fin arret".split())
CONTEXT_REACH = 4
SETTLE_KINDS = frozenset({"truce", "talks", "deal", "border", "troops", "prisoners"})
_CONTEXT_KINDS = SETTLE_KINDS | {"fight"}
# Kinds of a settlement told together: a truce negotiated, for an exchange of prisoners; an
# agreement reached at a summit, handing back land, sending peacekeepers.
_LINKED: dict[str, frozenset[str]] = {
    "truce": frozenset({"truce", "talks", "prisoners"}),
    "talks": frozenset({"talks", "truce", "deal", "border"}),
    "deal": frozenset({"deal", "talks", "border", "troops", "prisoners"}),
    "border": frozenset({"border", "deal", "talks"}),
    "troops": frozenset({"troops", "deal"}),
    "prisoners": frozenset({"prisoners", "truce", "deal"}),
}
_REACTION = frozenset({"reaction"})

# Names too common in the conflict's news to tell one of its happenings from another: its
# parties, capitals, leaders and the Karabakh (folded, light-stemmed as actors are), the
# capitalised words of institutions and of the world at large. Any other name two items of
# the profile's stream share (a town, a lake, a summit city, a minister, a court) is a
# specific place or person: `_same_name` joins them within the kind window. A name's first
# letters are its key (Choucha / Chouchi, Kelbadjar / Kelbajar).
COMMON_NAMES = frozenset(
    """armenie armenien armenienne erevan yerevan pachinian pashinyan pashinian
    nikol azerbaidjan azerbaidjanai azeri bakou baku aliev aliyev ilham russie russe moscou
    kremlin poutine putin vladimir karabakh karabagh haut nagorny nagorno artsakh caucase sud
    etat conseil parlement assemblee republique union ue onu otan osce nation unie commission
    cour defense affaire president armee gouvernement ministre ministere europe europeen
    occident occidentau france pari francai washington bruxelle turquie iran amerique
    americain ukraine chine otsc monde ville""".split()
)
_NAME_KEY = 5
_DAILY = _CONTEXT_KINDS | {"broken"}


def event_kinds(title: str, topics: Iterable[str]) -> frozenset[str]:
    """The kinds of happening of a title of the profile's stream (`topics`: the profile's
    topics the item matched; an `otsc` item's CSTO happenings are kinds of their own)."""
    out: set[str] = set()
    before: set[str] = set()  # fighting or a truce named as what came before (« après … »)
    broken = False
    csto = "otsc" in topics
    reach = 0  # words left in a marker's reach
    ended = False  # the marker says it ended (« fin des combats »)
    toks = _WORD.findall(fold(title))
    for i, tok in enumerate(toks):
        if tok in VIOLATION:  # not « violents »
            broken = True
        if tok in CONTEXT_MARKERS or tok in ENDED_MARKERS:
            reach, ended = CONTEXT_REACH, tok in ENDED_MARKERS
            continue
        within = reach > 0
        reach = max(reach - 1, 0)
        kinds = _KIND_OF_WORD.get(tok, ())
        if tok == "armes" and not ARMS_DOWN.isdisjoint(toks[max(i - 2, 0) : i + 3]):
            kinds = ("truce",)
        elif tok == "controle" and "perdu" in toks[max(i - 3, 0) : i]:
            kinds = ("capture",)  # « a perdu le contrôle de la ville »
        elif tok == "mort" and i and toks[i - 1] == "point":
            kinds = ()  # « au point mort »: stalled
        elif tok == "traite" and toks[i + 1 : i + 3] == ["de", "securite"]:
            kinds = ()  # the CSTO's name (« Organisation du traité de sécurité collective »)
        for kind in kinds:
            if not within or kind not in _CONTEXT_KINDS:
                out.add(kind)
            elif not ended:
                before.add(kind)
        if csto:
            for prefix, kind in _CSTO_PREFIXES:
                if tok.startswith(prefix):
                    out.add(kind)
    if not out & _CONTEXT_KINDS:
        out |= before  # a reaction « après le bombardement » is the bombing's
    if not out and any(tok.startswith(REACTIONS) for tok in toks):
        out.add("reaction")
    if broken:
        out -= SETTLE_KINDS
        out |= {"fight", "broken"}
    elif "fight" in out and out & SETTLE_KINDS:
        # Words of fighting and of a truce or talks in one title: one is the other's context
        # (« capitulent après 24 heures d'offensive », « une réunion urgente après
        # l'offensive »), which one is the news the words do not say: neither kind joins.
        out -= _CONTEXT_KINDS
    return frozenset(out)


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


@dataclass(frozen=True)
class Params:
    """The knobs of the decision (tuned on the `tune` split of the evaluation set)."""

    join: float = 0.32  # score needed to join a story of the same hours
    join_far: float = 0.70  # score needed from `far_after` to `max_gap` from the story's items
    max_gap: timedelta = timedelta(hours=48)
    far_after: timedelta = timedelta(hours=24)  # the bar reaches join_far at this gap
    join_max: float = 0.80  # past far_after the bar goes on rising, to this at max_gap
    # A title naming a new happening (« nouvelles attaques », « nouvelle reine ») joins only
    # a story whose titles name it too; an item more than far_after after a story's first
    # item must share a title word outside its rubric (« Mort d'Elizabeth II : … »).
    fresh_guard: bool = True
    continuing_guard: bool = True
    # A title's attribution (« - Serge Tateossian 19/09/2022 - Source : Paris Match », a
    # community site's repost) is no word of what happened: dropped from the title's words.
    drop_byline: bool = True
    # A title that is a quotation and nothing else (after its rubric: « Attentat près de
    # Moscou : « La population russe semble condamnée… » ») heads an opinion piece, a
    # tribune's own event: it joins a story only as a near-identical copy.
    opinion_apart: bool = True
    # An undated item's time is when it was first seen: it was published then or earlier
    # (a feed's first poll brings its backlog), up to this much earlier for the decision.
    undated_slack: timedelta = timedelta(hours=48)
    actor_bonus: float = 0.05  # per shared actor, at most 3
    novel_penalty: float = 0.08  # per key title word the story never mentions, at most 2
    near_duplicate: float = 0.7  # title-signature Jaccard of near-identical copies
    lookup_terms: int = 6  # rarest terms of the item used to find candidates
    postings_scanned: int = 120  # most recent stories read per term
    candidates: int = 12  # stories scored, best by shared rare terms
    title_weight: float = 3.0
    title_mix: float = 0.3  # share of the titles' cosine in the similarity
    stem_chars: int = 40  # words cut to this many letters (6 was tried: suspension/suspendue)
    lede_chars: int = 600
    centroid_terms: int = 80  # terms kept per story (persisted with it)
    synonyms: bool = True  # the SYNONYMS classes count as terms
    numbers_as_terms: bool = True  # « 83 millions », « 28 colons »: a shared figure is a clue
    prefix_chars: int = 5  # a longer word's first letters are one more, lighter term
    prefix_weight: float = 0.5  # (libérés / libération, mystère / mystérieuse)
    coverage_mix: float = 0.3  # weight of the share of the item's words found in the story
    # Word vectors (monitor.wordvec): an item's direction against the story's centroid.
    semantic: bool = True  # False: lexical only (as when the vectors package is absent)
    sem_title_weight: float = 2.0  # the title's mean counts this many times the lede's
    sem_min_words: int = 3  # known words (rows) its title needs for an item to have a vector
    sem_mix: float = 1.0  # score += sem_mix × max(0, cosine − sem_floor), fading with the gap
    sem_floor: float = 0.55
    sem_fade: float = 1.0  # share of the semantic term gone at `far_after` from the story
    sem_gate: float = 0.8  # cosine that stands in for a shared word of what happened
    # Candidates in other words (the lexical lookup finds stories by shared rare terms):
    actor_terms: int = 3  # the item's rarest actors whose latest stories are looked at
    actor_candidates: int = 20  # latest stories per actor
    recent_candidates: int = 30  # latest stories of all
    sem_candidates: int = 2  # kept among those, best cosine first (≥ sem_gate)
    # The profile's stream (items given their matched topics): one topic, one kind of
    # happening (`event_kinds`, or kinds told together) and an actor join a story within these
    # times of its latest and first items.
    kind_window: timedelta = timedelta(hours=18)  # from the story's latest item
    kind_window_slow: timedelta = timedelta(hours=24)  # for an item of no fight or truce
    kind_span: timedelta = timedelta(hours=36)  # from its first: the next day, no later
    kind_candidates: int = 128  # latest stories of a kind looked at for it
    # A specific name (`specific_names`: a town, a summit city, a minister) and a topic in
    # common join within kind_window_slow of the story's latest item and kind_span of its first.
    name_join: bool = True
    # Then a figure of the title (two digits or more, no year: « 32 prisonniers ») a story of
    # a shared topic holds joins it within max_gap.
    number_join: bool = True
    # Off (MONITOR_GROUPING=strict): the profile's stream joins by words and copies only, no
    # kind, name or figure join (`grouping_params`).
    kind_join: bool = True


DEFAULT = Params()


def grouping_params(grouping: str) -> Params:
    """The decision's knobs for MONITOR_GROUPING: `wide` (the default: the profile's stream
    also joins by kind of happening, specific name and figure) or `strict` (words and
    near-identical copies only: fewer joins of different happenings in a dense war stream,
    more alerts per event)."""
    if grouping == "strict":
        return replace(DEFAULT, kind_join=False, name_join=False, number_join=False)
    return DEFAULT


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
    synonyms = _SYNONYM_OF if params.synonyms else {}
    for i, (tok, st) in enumerate(title_words):
        if tok.isdigit():
            number = tok.lstrip("0") or "0"
            numbers.add(number)
            if _YEAR.match(tok):
                years.add(int(tok))
            elif i + 1 < len(title_words) and title_words[i + 1][0] in _MONTHS:
                dates.add(f"{int(tok)} {title_words[i + 1][0]}")
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
            elif (
                params.numbers_as_terms
                and not (i + 1 < len(lede_words) and lede_words[i + 1][0] in _MONTHS)
                and "#" + (tok.lstrip("0") or "0") not in terms
            ):
                terms["#" + (tok.lstrip("0") or "0")] = 1.0
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
    actors = _actors(title, title_words, title_names, aliases or {}) | _actors(
        lede, lede_words, lede_names, aliases or {}
    )
    opinion = opinion_title(title)  # an opinion piece is its own event: no name joins it
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
        names=specific_names(actors) if topics and not opinion else frozenset(),
    )


_UNITS = {
    w: n for n, w in enumerate("zero un deux trois quatre cinq six sept huit neuf".split()) if n
}
_TEENS = {w: 10 + n for n, w in enumerate("dix onze douze treize quatorze quinze seize".split())}
_TENS = {"vingt": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60}


def spelled_numbers(words: Sequence[str]) -> list[str]:
    """The figures from 11 to 76 spelled in folded words (« trente », « deux » as hyphens
    leave them, « vingt et un », « seize »): « trente-deux soldats » names 32, as « 32
    soldats » does. Units alone (« deux », « un ») are not figures: too common."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _TENS:
            n = _TENS[w]
            j = i + 1
            if j < len(words) and words[j] == "et":
                j += 1
            if j < len(words) and words[j] in _UNITS:
                n += _UNITS[words[j]]
                i = j
            elif j < len(words) and words[j] in _TEENS and n == 60:
                n += _TEENS[words[j]]  # « soixante-seize »
                i = j
            out.append(str(n))
        elif w in _TEENS and w != "dix":
            out.append(str(_TEENS[w]))
        i += 1
    return out


def specific_names(actors: Iterable[str]) -> frozenset[str]:
    """The keys (first letters) of an item's names that are no entity key, no common name of
    the conflict (COMMON_NAMES) and no figure: a town, a lake, a summit city, a minister."""
    return frozenset(
        a[:_NAME_KEY]
        for a in sorted(actors)
        if a[0] != "@" and a not in COMMON_NAMES and not a[0].isdigit() and len(a) > 2
    )


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


@dataclass
class StoryState:
    """A story as the index holds it: its centroid and what look-alike checks need."""

    id: int
    first: datetime
    last: datetime
    terms: dict[str, float]
    actors: Counter[str]
    years: set[int]
    title_sigs: list[frozenset[str]]  # a few titles' signatures (near-identical copies)
    title_numbers: list[frozenset[str]]
    title_dates: list[frozenset[str]]
    items: int = 1
    norm: float = 0.0  # cached norm of the centroid (0: to compute)
    title_union: frozenset[str] | None = None  # cached union of title_sigs
    title_norm: float = 0.0
    centroid: Vector | None = None  # mean of the items' unit vectors (None: none had one)
    vectors: int = 0  # items in the centroid
    unit: Vector | None = field(default=None, repr=False)  # cached centroid / its norm
    topics: set[str] = field(default_factory=set)  # the profile's topics of its items
    kinds: set[str] = field(default_factory=set)  # their kinds of happening
    names: set[str] = field(default_factory=set)  # their specific names' keys
    # every item of it is an opinion piece titled by a quotation alone, no rubric before it
    # (« « Quand on s'attaquera au Syunik… » »): it takes near-identical copies only. A
    # rubric names the event the quotation is about (« Cancer de Charles III : « … » »).
    opinion: bool = False

    def as_features(self) -> dict[str, object]:
        """The persisted form (the `features` column of a story)."""
        out: dict[str, object] = {
            "terms": {t: round(w, 3) for t, w in self.terms.items()},
            "actors": dict(self.actors),
            "years": sorted(self.years),
            "titles": [sorted(s) for s in self.title_sigs],
            "numbers": [sorted(n) for n in self.title_numbers],
            "dates": [sorted(d) for d in self.title_dates],
            "items": self.items,
        }
        if self.centroid is not None:
            out["vec"] = encode_vector(self.centroid)
            out["vec_items"] = self.vectors
        if self.topics or self.kinds:
            out["topics"] = sorted(self.topics)
            out["kinds"] = sorted(self.kinds)
        if self.names:
            out["names"] = sorted(self.names)
        if self.opinion:
            out["opinion"] = True
        return out

    @classmethod
    def from_features(
        cls, story_id: int, first: datetime, last: datetime, data: Mapping[str, object]
    ) -> StoryState:
        terms = data.get("terms") or {}
        actors = data.get("actors") or {}
        assert isinstance(terms, dict) and isinstance(actors, dict)
        return cls(
            id=story_id,
            first=first,
            last=last,
            terms={str(k): float(v) for k, v in terms.items()},
            actors=Counter({str(k): int(v) for k, v in actors.items()}),
            years={int(str(y)) for y in _list(data.get("years"))},
            title_sigs=[frozenset(map(str, _list(s))) for s in _list(data.get("titles"))],
            title_numbers=[frozenset(map(str, _list(s))) for s in _list(data.get("numbers"))],
            title_dates=[frozenset(map(str, _list(s))) for s in _list(data.get("dates"))],
            items=int(str(data.get("items") or 1)),
            centroid=decode_vector(data.get("vec")),
            vectors=int(str(data.get("vec_items") or 0)),
            topics={str(t) for t in _list(data.get("topics"))},
            kinds={str(k) for k in _list(data.get("kinds"))},
            names={str(k) for k in _list(data.get("names"))},
            opinion=data.get("opinion") is True,
        )


@dataclass(frozen=True)
class StoryName:
    """What a story is named after: an item's title and the signatures of its title and lede
    (near-identical copies are found by them)."""

    title: str
    title_signature: str
    body_signature: str


def story_name(title: str, summary: str) -> StoryName:
    """A story named after an item: the story a poll opens for it, or the story a split leaves
    behind, named after its next item."""
    return StoryName(
        title=title[:500],
        title_signature=" ".join(sorted(signature(title))),
        body_signature=" ".join(sorted(signature(summary[:600]))),
    )


def story_of(story_id: int, items: Sequence[EventFeatures], params: Params = DEFAULT) -> StoryState:
    """A story's state made again from its items' features alone, as an index holding only
    them would keep it: what a story becomes when an item is split off it (the story left
    behind, from its other items) and the new story the item opens (from the item)."""
    if not items:
        raise ValueError("a story has at least one item")
    index = EventIndex(params)
    st: StoryState | None = None
    for f in items:
        st = index.add(story_id, f)
    assert st is not None
    return st


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


def encode_vector(v: Vector) -> str:
    """A vector as base64 of its float16 values (600 bytes for 300 dimensions, 800 in text)."""
    return base64.b64encode(np.asarray(v, dtype="<f2").tobytes()).decode("ascii")


def decode_vector(data: object) -> Vector | None:
    """`encode_vector`'s inverse; None for a missing or malformed value (stories stored before
    the vectors, or by a build with another dimension)."""
    if not isinstance(data, str) or not data:
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        return None
    if len(raw) != 2 * wordvec.DIMS:
        return None
    out: Vector = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    return out


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []


@dataclass(frozen=True)
class Decision:
    story_id: int | None  # None: start a new story
    score: float
    reason: str  # "near-duplicate" | "similar" | "kind" | "new"


@dataclass
class _Query:
    """An item's vectors, weighted once per decision (not once per candidate)."""

    f: EventFeatures
    weights: dict[str, float]  # term → weight × idf
    weights2: dict[str, float]  # term → weight × idf² (dot products with a raw centroid)
    norm: float
    title: dict[str, float]  # title term → idf²
    title_norm: float
    novel: frozenset[str]  # title terms rare enough to count when a story lacks them
    vector: Vector | None = None
    # its terms that are a word of what happened (no entity key, no actor's name)
    happened: frozenset[str] = frozenset()


@dataclass
class EventIndex:
    """The recent stories in memory, with an inverted index term → story ids.

    Postings are append-only; what a removed story or a trimmed term leaves behind is skipped
    when read and compacted away once a list is twice its live size, so removing a story never
    walks a long list."""

    params: Params = DEFAULT
    stories: dict[int, StoryState] = field(default_factory=dict)
    postings: dict[str, list[int]] = field(default_factory=dict)
    df: dict[str, int] = field(default_factory=dict)  # live stories holding each term
    _recent: deque[int] = field(default_factory=lambda: deque(maxlen=256))  # latest added to
    # Stories with a kind of happening (the profile's stream), the latest added to or loaded last.
    _kinded: dict[int, None] = field(default_factory=dict)
    # Specific name key → the stories that hold it, latest last (stale ids skipped on reading).
    _named: dict[str, list[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.stories)

    def idf(self, term: str) -> float:
        return math.log((len(self.stories) + 10) / (self.df.get(term, 0) + 1)) + 1.0

    def _idfs(self, terms: Iterable[str]) -> dict[str, float]:
        n = math.log(len(self.stories) + 10) + 1.0
        df = self.df
        log1 = _LOG
        return {t: n - log1[df.get(t, 0)] for t in terms}

    def _norm(self, weights: Mapping[str, float]) -> float:
        """The length of term weights × their idf (as `_idfs` gives it), without building
        the idf dict: a story's norm is summed on its first comparison after each change."""
        n = math.log(len(self.stories) + 10) + 1.0
        df = self.df
        log1 = _LOG
        return math.sqrt(sum(((n - log1[df.get(t, 0)]) * w) ** 2 for t, w in weights.items()))

    # --- the decision --------------------------------------------------------------------

    def decide(self, f: EventFeatures) -> Decision:
        """Join the most similar story close in time, or start a new one."""
        p = self.params
        best: tuple[float, int, str] | None = None
        q: _Query | None = None
        for sid in self._candidates(f):
            st = self.stories[sid]
            gap = _gap(f, st, p.undated_slack)
            if gap > p.max_gap:
                continue
            if _look_alike(f, st):
                continue
            if p.opinion_apart and (f.opinion or st.opinion):
                if _near_duplicate(f, st, p.near_duplicate):
                    best = (1.0, sid, "near-duplicate")
                continue  # an opinion piece is its own event, joined by no other item
            if p.fresh_guard and f.fresh and f.fresh.isdisjoint(self._title_union(st)):
                continue  # a new happening the story's titles never name
            if p.continuing_guard and self._continued_elsewhere(f, st):
                continue
            if _near_duplicate(f, st, p.near_duplicate):
                score, reason = 1.0, "near-duplicate"
            else:
                q = q or self._query(f)
                frac = min(gap / p.far_after, 1.0)
                score = self._score(q, st, frac)
                if score < self._bar(gap, frac):
                    continue
                reason = "similar"
            if best is None or score > best[0]:
                best = (score, sid, reason)
        if best is None and p.kind_join and f.kinds and not (p.opinion_apart and f.opinion):
            same = self._same_kind(f)
            if same is not None:
                return Decision(same, p.join, "kind")
        if (
            best is None
            and (f.names or f.numbers)
            and f.topics
            and p.name_join
            and not (p.opinion_apart and f.opinion)
        ):
            same = self._same_name(f)
            if same is not None:
                return Decision(same, p.join, "name")
        if best is None:
            return Decision(None, 0.0, "new")
        return Decision(best[1], best[0], best[2])

    def _bar(self, gap: timedelta, frac: float) -> float:
        """The score needed at a gap: rising to join_far at far_after, then to join_max at
        max_gap (two days apart, the same words are most often the next happening)."""
        p = self.params
        bar = p.join + (p.join_far - p.join) * frac
        if gap > p.far_after and p.max_gap > p.far_after:
            bar += (p.join_max - p.join_far) * ((gap - p.far_after) / (p.max_gap - p.far_after))
        return bar

    def _continued_elsewhere(self, f: EventFeatures, st: StoryState) -> bool:
        """An item more than far_after after the story's first item (a continuing story: the
        lying in state, then the funeral plan) whose title shares no word outside its rubric
        with the story's titles."""
        since = f.time - st.first
        if not f.dated:
            since -= self.params.undated_slack
        if since <= self.params.far_after:
            return False
        body = f.title_terms if f.body is None else f.body
        return body.isdisjoint(self._title_union(st))

    def _same_kind(self, f: EventFeatures) -> int | None:
        """The profile's stream: the story of a topic, a kind of happening and an actor of
        the item's whose latest item is within `kind_window` of it and first item no more
        than `kind_span` before it (the nearest in time), unless a look-alike guard keeps
        them apart."""
        p = self.params
        best: tuple[timedelta, int] | None = None
        # Fighting and truces recur day after day (a new attack, a truce and its violation);
        # the other happenings and the reactions are told into the next day.
        window = p.kind_window if f.kinds & _DAILY else p.kind_window_slow
        lo, hi = f.time - window, f.time + window
        span = p.kind_span
        stories = self.stories
        reaction = f.kinds == _REACTION
        linked = set(f.kinds)
        for k in f.kinds:
            linked |= _LINKED.get(k, frozenset())
        found = 0
        for sid in islice(reversed(self._kinded), p.kind_candidates):
            st = stories.get(sid)
            if st is None or st.last < lo or st.first > hi or f.time - st.first > span:
                continue
            if st.topics.isdisjoint(f.topics) or (p.opinion_apart and st.opinion):
                continue
            if reaction:
                if st.kinds <= _REACTION:
                    continue  # a reaction reacts to a happening, not to another reaction
            elif not (st.kinds & linked) - _REACTION:
                continue
            if not any(a in st.actors for a in f.actors) or _look_alike(f, st):
                continue  # some actor or place in common: not a quake of the same hours
            if p.fresh_guard and f.fresh and f.fresh.isdisjoint(self._title_union(st)):
                continue  # « de nouveaux bombardements »: a new happening, as in `decide`
            gap = abs(f.time - st.first)
            if "broken" in f.kinds and st.kinds & SETTLE_KINDS and "broken" not in st.kinds:
                continue  # a truce and its violation
            found += 1
            if best is None or gap < best[0]:
                best = (gap, sid)
        if best is None or (reaction and found > 1):
            return None  # a reaction to which of two happenings: apart
        return best[1]

    def _same_name(self, f: EventFeatures) -> int | None:
        """The profile's stream: the story of a topic and a specific name of the item's (a
        town, a summit city, a minister: `specific_names`) whose latest item is within
        `kind_window_slow` of it and first no more than `kind_span` before it, of a kind
        told with the item's when both have one, unless a look-alike guard keeps them apart
        (the nearest in time). Failing that (`number_join`), a figure of its title (« 32
        prisonniers ») the story holds, within `max_gap`."""
        p = self.params
        named = (
            (sid, name)
            for name in f.names
            for sid in self._named.get(name, ())[-8:]
            if name in getattr(self.stories.get(sid), "names", ())
        )
        best = self._nearest(f, named, p.kind_window_slow, p.kind_span)
        if best is None and p.number_join:
            figures = [
                "#" + n
                for n in f.numbers
                if len(n) >= 2 and not _YEAR.match(n) and "#" + n in self.postings
            ]
            numbered = (
                (sid, t)
                for t in figures
                for sid in self.postings[t][-8:]
                if t in getattr(self.stories.get(sid), "terms", ())
            )
            best = self._nearest(f, numbered, p.max_gap, p.max_gap)
        return best

    def _nearest(
        self,
        f: EventFeatures,
        found: Iterable[tuple[int, str]],
        window: timedelta,
        span: timedelta,
    ) -> int | None:
        """Of the stories found by a shared clue, the one nearest in time whose latest item is
        within `window` of the item and first no more than `span` before it, of a shared
        topic and of kinds told together when both have one, unless a look-alike guard keeps
        them apart."""
        p = self.params
        lo, hi = f.time - window, f.time + window
        own = f.kinds - _REACTION
        linked = set(own)
        for k in own:
            linked |= _LINKED.get(k, frozenset())
        best: tuple[timedelta, int] | None = None
        seen: set[int] = set()
        for sid, _clue in found:
            st = self.stories.get(sid)
            if st is None or sid in seen:
                continue
            seen.add(sid)
            if st.last < lo or st.first > hi or f.time - st.first > span:
                continue
            if st.topics.isdisjoint(f.topics) or (p.opinion_apart and st.opinion):
                continue
            theirs = st.kinds - _REACTION
            if own and theirs and not theirs & linked:
                continue  # a truce and the fighting of its town: two happenings
            if ("broken" in own) != ("broken" in theirs) and (own | theirs) & SETTLE_KINDS:
                continue  # a truce and its violation
            if ("capture" in own) != ("capture" in theirs):
                continue  # the battle for a town, then its fall
            if _look_alike(f, st):
                continue
            if p.fresh_guard and f.fresh and f.fresh.isdisjoint(self._title_union(st)):
                continue
            gap = abs(f.time - st.first)
            if best is None or gap < best[0]:
                best = (gap, sid)
        return None if best is None else best[1]

    def similarity(self, f: EventFeatures, story_id: int) -> float:
        """The score of an item against one story, at their distance in time (for tests and
        the evaluation; `decide` compares it with the bar of that distance)."""
        st = self.stories[story_id]
        frac = min(_gap(f, st, self.params.undated_slack) / self.params.far_after, 1.0)
        return self._score(self._query(f), st, frac)

    def _query(self, f: EventFeatures) -> _Query:
        idf = self._idfs(f.terms.keys() | f.title_terms)
        weights = {t: w * idf[t] for t, w in f.terms.items()}
        weights2 = {t: wi * idf[t] for t, wi in weights.items()}
        norm = math.sqrt(sum(wi * wi for wi in weights.values()))
        title = {t: idf[t] ** 2 for t in f.title_terms}
        novel = frozenset(t for t, w2 in title.items() if w2 > 6.25 and t not in _PACKAGING)
        title_norm = math.sqrt(sum(title.values()))
        happened = frozenset(t for t in weights2 if t[0] != "@" and t not in f.actors)
        return _Query(f, weights, weights2, norm, title, title_norm, novel, f.vector, happened)

    def _score(self, q: _Query, st: StoryState, frac: float = 0.0) -> float:
        """The similarity of an item and a story; `frac` is how far apart in time they are
        (0: the same hours, 1: `far_after` or more): the bonuses that let other angles of
        one event join fade with it, the words alone must carry a next-day item."""
        p = self.params
        terms = st.terms
        dot = covered = 0.0
        common = q.weights2.keys() & terms.keys()  # a set operation in C, not a loop
        for t in common:
            dot += q.weights2[t] * terms[t]
            covered += q.weights[t] ** 2
        sem = self._semantic(q, st)
        if not q.norm or (not dot and sem < p.sem_gate):
            return 0.0
        # Shared names alone are not one event: the same two capitals on the same day can be
        # a ceasefire violation and a prisoner exchange. Some word of what happened must be
        # shared too (an entity key or an actor's name does not count), or the item's words
        # must point the same way as the story's (different words for the same happening)
        # and some actor be shared (an event told in other words still names its places).
        shared = sum(1 for a in q.f.actors if a in st.actors)
        if q.happened.isdisjoint(common) and (sem < p.sem_gate or not shared):
            return 0.0
        if not st.norm:
            st.norm = self._norm(terms)
        cos = dot / (q.norm * st.norm) if st.norm else 0.0
        if p.title_mix:
            cos = (1.0 - p.title_mix) * cos + p.title_mix * self._title_cosine(q, st)
        coverage = 0.0
        if p.coverage_mix and self._titles_share_what_happened(q, st):
            # The share of the item's words that the story already holds: a story told from
            # several angles covers a new report of any of them (the cosine with the whole
            # story falls as angles accumulate). Only when the titles share a word of what
            # happened: a short item (a name and one line) is covered by anything.
            coverage = covered / (q.norm * q.norm)
        novel = sum(1 for t in q.novel if t not in terms)
        return (
            cos
            + (1.0 - frac) * p.coverage_mix * coverage
            + (1.0 - p.sem_fade * frac) * p.sem_mix * max(sem - p.sem_floor, 0.0)
            + p.actor_bonus * min(shared, 3)
            - p.novel_penalty * min(max(novel - 2, 0), 2) * (1.0 - cos)
        )

    def _semantic(self, q: _Query, st: StoryState) -> float:
        """Cosine of the item's word-vector direction and the story's centroid (0: either
        has none)."""
        if q.vector is None:
            return 0.0
        unit = _unit_centroid(st)
        return 0.0 if unit is None else float(np.dot(q.vector, unit))

    def _titles_share_what_happened(self, q: _Query, st: StoryState) -> bool:
        union = self._title_union(st)
        actors = q.f.actors
        return any(t in union for t in q.f.title_terms if t[0] not in "@#~" and t not in actors)

    def _title_union(self, st: StoryState) -> frozenset[str]:
        if st.title_union is None:
            st.title_union = frozenset().union(*st.title_sigs) if st.title_sigs else frozenset()
            idf = self._idfs(st.title_union)
            st.title_norm = math.sqrt(sum(v * v for v in idf.values()))
        return st.title_union

    def _title_cosine(self, q: _Query, st: StoryState) -> float:
        """Cosine (IDF² weights) of the item's title words and the story's titles' words."""
        union = self._title_union(st)
        if not q.title or not st.title_norm:
            return 0.0
        dot = sum(w2 for t, w2 in q.title.items() if t in union)
        return dot / (q.title_norm * st.title_norm) if dot else 0.0

    def _candidates(self, f: EventFeatures) -> list[int]:
        p = self.params
        df = self.df
        ranked = sorted((t for t in f.terms if t in df), key=df.__getitem__)[: p.lookup_terms]
        counts: dict[int, float] = {}
        for t in ranked:
            plist = self.postings[t]
            if len(plist) > 2 * df[t] + 16:
                plist = self._compact(t)
            w = f.terms[t]
            for sid in plist[-1 : -p.postings_scanned - 1 : -1]:
                counts[sid] = counts.get(sid, 0.0) + w
        stories = self.stories
        live = [(w, sid) for sid, w in counts.items() if sid in stories]
        found = [sid for _, sid in heapq.nlargest(p.candidates, live)]
        if f.vector is not None and p.sem_candidates:
            found += self._semantic_candidates(f, f.vector, set(found))
        return found

    def _semantic_candidates(self, f: EventFeatures, vector: Vector, seen: set[int]) -> list[int]:
        """Stories told in other words: among the latest stories of the item's actors (its
        rarest few) and the latest stories of all, those whose centroid points the item's
        way (cosine ≥ sem_gate), best first. Bounded: at most actor_terms × actor_candidates
        + recent_candidates centroids, compared in one matrix product."""
        p = self.params
        df = self.df
        pool: dict[int, None] = {}
        actors = sorted(
            (t for t in f.terms if t in df and (t[0] == "@" or t in f.actors)), key=df.__getitem__
        )
        for t in actors[: p.actor_terms]:
            plist = self.postings[t]
            if len(plist) > 2 * df[t] + 16:
                plist = self._compact(t)
            pool.update(dict.fromkeys(plist[-1 : -p.actor_candidates - 1 : -1]))
        pool.update(dict.fromkeys(list(self._recent)[-1 : -p.recent_candidates - 1 : -1]))
        stories = self.stories
        ids = []
        rows = []
        for sid in pool:
            st = stories.get(sid)
            if st is not None and sid not in seen:
                unit = _unit_centroid(st)
                if unit is not None:
                    ids.append(sid)
                    rows.append(unit)
        if not ids:
            return []
        cos = np.stack(rows) @ vector
        best = np.argsort(-cos)[: p.sem_candidates]
        return [ids[i] for i in best if cos[i] >= p.sem_gate]

    def _compact(self, term: str) -> list[int]:
        seen: set[int] = set()
        kept = []
        for sid in self.postings[term]:
            st = self.stories.get(sid)
            if st is not None and term in st.terms and sid not in seen:
                seen.add(sid)
                kept.append(sid)
        self.postings[term] = kept
        return kept

    # --- keeping the index up to date ----------------------------------------------------

    def add(self, story_id: int, f: EventFeatures) -> StoryState:
        """Record an item in a story: a new story, or one more item of an existing one."""
        st = self.stories.get(story_id)
        sig = frozenset(f.title_terms)
        if st is None:
            st = StoryState(
                id=story_id,
                first=f.time,
                last=f.time,
                terms={},
                actors=Counter(),
                years=set(),
                title_sigs=[],
                title_numbers=[],
                title_dates=[],
                items=0,
                opinion=f.opinion and f.body is None,
            )
            self.stories[story_id] = st
        st.first = min(st.first, f.time)
        st.last = max(st.last, f.time)
        st.opinion = st.opinion and f.opinion and f.body is None
        st.items += 1
        self._touch(story_id)
        for t, w in f.terms.items():
            if t not in st.terms:
                self._post(t, story_id)
                st.terms[t] = 0.0
            st.terms[t] += w
        st.actors.update(f.actors)
        if f.vector is not None:
            if st.centroid is None or st.vectors <= 0:
                st.centroid, st.vectors = f.vector.astype(np.float32), 1
            else:
                st.vectors += 1
                moved = st.centroid + (f.vector - st.centroid) / st.vectors
                st.centroid = moved.astype(np.float32)
            st.unit = None
        st.years |= set(f.years)
        st.topics |= f.topics
        st.kinds |= f.kinds
        for name in f.names - st.names:
            self._name(name, story_id)
        st.names |= f.names
        if st.kinds:
            self._kinded.pop(story_id, None)
            self._kinded[story_id] = None
        if len(st.title_sigs) < 8:
            st.title_sigs.append(sig)
            st.title_numbers.append(f.numbers)
            st.title_dates.append(f.dates)
            st.title_union = None
        self._trim(st)
        st.norm = 0.0
        return st

    def put(self, st: StoryState) -> None:
        """Insert or replace a story loaded from the database."""
        old = self.stories.get(st.id)
        if old is not None:
            for t in old.terms:
                if t not in st.terms:
                    self._unpost(t)
        for t in st.terms:
            if old is None or t not in old.terms:
                self._post(t, st.id)
        st.norm = 0.0
        st.title_union = None
        st.unit = None
        self.stories[st.id] = st
        # A story another process created or grew is as recent as one added here: without
        # this, the latest stories the meaning looks at were only this process's own.
        self._touch(st.id)
        self._kinded.pop(st.id, None)
        if st.kinds:
            self._kinded[st.id] = None
        for name in st.names:
            self._name(name, st.id)

    def _name(self, name: str, story_id: int) -> None:
        plist = self._named.setdefault(name, [])
        plist.append(story_id)
        if len(plist) > 64:
            del plist[:32]  # the latest stories only: the window is short

    def _touch(self, story_id: int) -> None:
        """Mark a story as the latest added to (once in a row)."""
        if not self._recent or self._recent[-1] != story_id:
            self._recent.append(story_id)

    def evict(self, before: datetime) -> int:
        """Forget the stories whose latest item is older than `before`."""
        gone = [sid for sid, st in self.stories.items() if st.last < before]
        for sid in gone:
            self.remove(sid)
        return len(gone)

    def remove(self, story_id: int) -> None:
        st = self.stories.pop(story_id, None)
        self._kinded.pop(story_id, None)
        if st is not None:
            for t in st.terms:
                self._unpost(t)

    def _post(self, term: str, sid: int) -> None:
        self.postings.setdefault(term, []).append(sid)
        n = self.df[term] = self.df.get(term, 0) + 1
        if n >= len(_LOG):
            _grow_log(n)

    def _unpost(self, term: str) -> None:
        n = self.df.get(term, 0) - 1
        if n > 0:
            self.df[term] = n
        else:
            self.df.pop(term, None)
            self.postings.pop(term, None)

    def _trim(self, st: StoryState) -> None:
        keep = self.params.centroid_terms
        if len(st.terms) <= keep:
            return
        idf = self._idfs(st.terms)
        ranked = sorted(st.terms, key=lambda t: st.terms[t] * idf[t], reverse=True)
        for t in ranked[keep:]:
            del st.terms[t]
            self._unpost(t)


# log(df + 1) by document frequency: a table, since frequencies are small integers. `_post`
# keeps it longer than any frequency of any index, so a read is a plain list index.
_LOG: list[float] = [math.log(n + 1) for n in range(1024)]


def _grow_log(df: int) -> None:
    _LOG.extend(math.log(n + 1) for n in range(len(_LOG), max(df + 1, 2 * len(_LOG))))


def _unit_centroid(st: StoryState) -> Vector | None:
    """The story's centroid normalised (cached until an item is added)."""
    if st.unit is None and st.centroid is not None:
        norm = float(np.linalg.norm(st.centroid))
        if norm:
            st.unit = (st.centroid / norm).astype(np.float32)
    return st.unit


def _gap(f: EventFeatures, st: StoryState, undated_slack: timedelta) -> timedelta:
    """Time between an item and a story's items (0 when it falls among them)."""
    t = f.time
    if t < st.first:
        return st.first - t
    if t > st.last:
        late = t - st.last
        return late if f.dated else max(late - undated_slack, timedelta(0))
    return timedelta(0)


def _look_alike(f: EventFeatures, st: StoryState) -> bool:
    """Signs of a different event that words cannot outweigh: other years named, other dates
    in the titles, or titles that read alike but carry other numbers (episode 1 / episode 2,
    « ce samedi 10 février » / « ce dimanche 11 février »)."""
    if f.years and st.years and not (f.years & st.years):
        return True
    if any(t in TURNS and t not in st.terms for t in f.title_terms):
        return True
    if f.dates and any(d and not (d & f.dates) for d in st.title_dates):
        return True
    if f.numbers:
        for sig, nums in zip(st.title_sigs, st.title_numbers, strict=False):
            if nums and not (nums & f.numbers) and _jaccard(sig, f.title_terms) >= 0.4:
                return True
    return False


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _near_duplicate(f: EventFeatures, st: StoryState, threshold: float) -> bool:
    sig = f.title_terms
    if len(sig) < 4:
        return False
    for other, nums in zip(st.title_sigs, st.title_numbers, strict=False):
        if not other:
            continue
        j = len(sig & other) / len(sig | other)
        if j >= threshold:
            if f.numbers and nums and not (f.numbers & nums):
                continue  # « épisode 1 » / « épisode 2 »
            return True
    return False
