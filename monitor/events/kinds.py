"""The kinds of happening a title of the profile's stream reports (`event_kinds`: fighting, a
truce or talks and what they settle, a capture, the CSTO, a blockade, a reaction) and their
vocabularies."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet

from monitor.events.words import _WORD
from monitor.text import fold

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


def linked_kinds(kinds: Iterable[str]) -> set[str]:
    """The kinds of happening told together with these (`_LINKED`), these included."""
    linked = set(kinds)
    for k in kinds:
        linked |= _LINKED.get(k, frozenset())
    return linked


def truce_and_violation(own: AbstractSet[str], theirs: AbstractSet[str]) -> bool:
    """Two sides' kinds (reactions left out) of which one breaks a truce and the other does
    not, where a truce or a deal is told: a truce and its violation, two happenings."""
    return ("broken" in own) != ("broken" in theirs) and bool((own | theirs) & SETTLE_KINDS)


_DAILY = _CONTEXT_KINDS | {"broken"}
# « perdu le contrôle » denied in the three words before « perdu »: no capture.
NEGATIONS = frozenset("pas jamais nie nient dement dementent".split())
# « revendique » is a capture of what follows it within two words: a place (a capitalised
# name: « revendique Choucha ») or the control or the taking (« revendique le contrôle de… »,
# « la prise de… »), not an attack, a victory, the responsibility or the sovereignty.
_CLAIMED = frozenset("controle prise".split())


def _claims_land(toks: list[str], raw: list[str], i: int) -> bool:
    return any(
        toks[j] in _CLAIMED or raw[j][:1].isupper() for j in range(i + 1, min(i + 3, len(toks)))
    )


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
    raw = _WORD.findall(title)
    if len(raw) != len(toks):  # folding split or joined a word: no capitals to read
        raw = toks
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
            # « a perdu le contrôle de la ville », not « assure ne pas avoir perdu le contrôle »
            lost = i - 1 - toks[max(i - 3, 0) : i][::-1].index("perdu")
            negated = not NEGATIONS.isdisjoint(toks[max(lost - 3, 0) : lost])
            kinds = () if negated else ("capture",)
        elif tok == "revendique" and not _claims_land(toks, raw, i):
            kinds = ()  # « revendique l'attaque / la victoire / la souveraineté »
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
