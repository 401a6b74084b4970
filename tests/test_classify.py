"""The classifier: French text handling, aliases, traps, context, CLI contract, measured quality."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from monitor.classify import Scorer, classify, load_profile
from monitor.errors import ProfileError
from monitor.types import Item
from tests.conftest import ROOT

PROFILE = load_profile(ROOT / "config" / "topics.yaml")


def topics(title: str, summary: str = "") -> tuple[str, ...]:
    return classify(
        Item(key="x", guid=None, link=None, title=title, summary=summary), PROFILE
    ).topics


@pytest.mark.parametrize(
    "title",
    [
        "Haut-Karabakh : reprise des combats",
        "Nagorny-Karabakh : reprise des combats",
        "Nagorno-Karabakh : reprise des combats",
        "Karabagh : reprise des combats",
        "Artsakh : reprise des combats",
        "HAUT KARABAKH : REPRISE DES COMBATS",
        "Stepanakert bombardée",
        "Combats à la frontière entre l’Arménie et l’Azerbaïdjan",
        "Combats à la frontière entre l'Armenie et l'Azerbaidjan",
    ],
)
def test_aliases_and_spellings(title: str) -> None:
    assert "karabakh_ceasefire" in topics(title)


@pytest.mark.parametrize(
    "title",
    [
        "OTSC : Erevan gèle sa participation",
        "CSTO summit: Erevan absent, l'Arménie gèle tout",
        "L'Organisation du traité de sécurité collective sans l'Arménie",
        "L’alliance militaire dirigée par Moscou se réunit",
    ],
)
def test_otsc_names(title: str) -> None:
    assert "otsc" in topics(title)


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("Kamila Valieva suspendue", "La patineuse russe est sanctionnée."),
        ("Le chat Bakounine retrouvé", "Il avait fugué."),
        ("Karabatic prend sa retraite", "Le handballeur français."),
        ("Parménide au bac", "Les candidats ont planché."),
        ("Biélorussie : manifestation à Minsk", "La police a arrêté des opposants."),
        ("Ukraine : Lavrov appelle à un cessez-le-feu", "Moscou veut négocier avec Kiev."),
        ("Gaza : nouveau cessez-le-feu", "Les négociations reprennent au Caire."),
        ("Formule 1 : victoire à Bakou", "Le Grand Prix d'Azerbaïdjan."),
        ("L'OTAN et la sécurité collective européenne", "Le flanc est renforcé face à la Russie."),
        ("Aznavour célébré à Erevan", "Un concert pour le centenaire du chanteur arménien."),
    ],
)
def test_traps_do_not_match(title: str, summary: str) -> None:
    assert topics(title, summary) == ()


def test_context_lavrov_needs_armenia_or_azerbaijan() -> None:
    assert "russian_mediation" not in topics("Lavrov reçoit son homologue turc")
    assert "russian_mediation" in topics("Lavrov reçoit ses homologues arménien et azerbaïdjanais")
    assert "russian_mediation" in topics(
        "Le groupe de Minsk de l'OSCE appelle à la retenue au Karabakh"
    )


def test_html_summary_and_title_only_items() -> None:
    assert "karabakh_ceasefire" in topics(
        "Nouvelles tensions",
        "<p>Tirs &agrave; la fronti&egrave;re entre l&#8217;Arm&eacute;nie "
        "et l&rsquo;Azerba&iuml;djan, cessez-le-feu viol&eacute;</p>",
    )
    assert "karabakh_ceasefire" in topics("Haut-Karabakh : cessez-le-feu violé")


def test_explanation_names_terms_fields_and_weights() -> None:
    c = classify(
        Item(
            key="x",
            guid=None,
            link=None,
            title="Haut-Karabakh : cessez-le-feu violé",
            summary="Erevan accuse Bakou.",
        ),
        PROFILE,
    )
    ev = [e for e in c.evidence if e.topic == "karabakh_ceasefire"]
    # The rules' terms, and the second stage's calibrated probability (its weight).
    assert {e.field for e in ev} == {"title", "summary", "model"}
    terms = [e for e in ev if e.field != "model"]
    assert sum(e.weight for e in terms) == pytest.approx(c.scores["karabakh_ceasefire"])
    (model,) = [e for e in ev if e.field == "model"]
    assert model.weight == c.confidence["karabakh_ceasefire"] > 0.9
    assert "haut-karabakh" in c.explain()
    assert f"model: {model.weight:.2f}" in c.explain()


def test_cli_classify_contract() -> None:
    lines = [
        json.dumps(
            {
                "id": "a",
                "title": "Haut-Karabakh : trêve violée",
                "summary": "<b>Erevan</b> accuse Bakou",
            }
        ),
        "{not json",
        json.dumps({"id": "b", "title": "Météo : orages", "summary": "Vigilance orange"}),
        json.dumps({"title": "sans id"}),
    ]
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "classify",
            "-",
            "--profile",
            str(ROOT / "config" / "topics.yaml"),
        ],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(out) == 4
    assert (
        out[0]["id"] == "a" and out[0]["match"] is True and "karabakh_ceasefire" in out[0]["topics"]
    )
    assert set(out[0]) >= {"id", "match", "topics", "scores", "evidence", "confidence"}
    assert 0.5 < out[0]["confidence"]["karabakh_ceasefire"] <= 1.0
    assert out[2]["id"] == "b" and out[2]["match"] is False and out[2]["topics"] == []
    assert "line 2" in r.stderr and "line 4" in r.stderr


def test_held_out_quality_meets_the_targets() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.eval_classifier import evaluate, load_set

    metrics, _ = evaluate(
        load_set(ROOT / "tests" / "data" / "eval_items.jsonl", "test"),
        ROOT / "config" / "topics.yaml",
    )
    assert metrics["relevance"]["precision"] >= 0.95
    # Measured 0.970 (notes/precision.md); 1.000 before the event definitions (issue 14).
    assert metrics["relevance"]["recall"] >= 0.96
    for t in ("karabakh_ceasefire", "russian_mediation", "otsc"):
        assert metrics[t]["f1"] >= 0.9, (t, metrics[t])


def test_profile_learn_proposes_terms_from_the_seeds(tmp_path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench.shared import SHARED

    seeds = sorted((SHARED / "seeds").glob("*.txt"))
    if not seeds:
        pytest.skip("../shared/seeds is absent (seed articles are read in place)")
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "profile", "learn", *map(str, seeds), "--top", "40"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    out = tmp_path / "proposed.yaml"
    out.write_text(r.stdout)
    proposed = load_profile(out)  # the proposal is a valid profile
    sources = {p.source.lower() for p in proposed.patterns}
    assert any("lavrov" in s for s in sources) and any("karabakh" in s for s in sources)


def test_real_captures_labels_resolve_and_quality_holds() -> None:
    """The hand labels of ../shared/fixtures/real-feeds still name real items, and the profile
    keeps the figures the README reports for them (a floor just under them, not the target)."""
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    from bench.eval_classifier import evaluate, load_real
    from bench.real_captures import CAPTURES, load_records

    if not CAPTURES.is_dir():
        pytest.skip("../shared/fixtures/real-feeds is absent (captures are read in place)")
    labels = ROOT / "tests" / "data" / "real_labels.tsv"
    ids = {r.id for r in load_records()}
    labelled = [
        ln.split("\t")[0] for ln in labels.read_text(encoding="utf-8").splitlines() if "\t" in ln
    ]
    assert len(labelled) >= 400 and set(labelled) <= ids
    rows = load_real(labels)
    assert sum(bool(r["topics"]) for r in rows) >= 100
    profile = ROOT / "config" / "topics.yaml"
    everything = evaluate(rows, profile)[0]["relevance"]
    assert everything["precision"] >= 0.89 and everything["recall"] >= 0.88, everything
    news = evaluate([r for r in rows if not r["id"].startswith("aamc")], profile)[0]["relevance"]
    # News recall measured 0.940: at least the 0.928 of the name-based profile (issue 14).
    assert news["precision"] >= 0.97 and news["recall"] >= 0.93, news


def test_context_alternatives_and_implied_topics(tmp_path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "groups:\n"
        "  a: [arménie]\n"
        "  b: [azerbaïdjan]\n"
        "  place: [karabakh]\n"
        "topics:\n"
        "  war:\n"
        "    threshold: 5\n"
        "    terms:\n"
        "      - {match: [morts], weight: 5, when: [place, [a, b]]}\n"
        "  talks:\n"
        "    threshold: 3\n"
        "    implies: [war]\n"
        "    terms:\n"
        "      - {match: [lavrov], weight: 3}\n",
        encoding="utf-8",
    )
    p = load_profile(profile)

    def got(title: str) -> tuple[str, ...]:
        return classify(Item(key="k", guid=None, link=None, title=title, summary=""), p).topics

    assert got("Explosion en Arménie : trois morts") == ()  # one side only
    assert got("Arménie et Azerbaïdjan : trois morts") == ("war",)  # both sides
    assert got("Karabakh : trois morts") == ("war",)  # the place
    result = classify(Item(key="k", guid=None, link=None, title="Lavrov parle", summary=""), p)
    assert result.topics == ("talks", "war")
    assert "implied by talks" in result.explain()
    profile.write_text(
        profile.read_text(encoding="utf-8").replace("implies: [war]", "implies: [peace]"),
        encoding="utf-8",
    )
    with pytest.raises(ProfileError, match=r"p\.yaml:12: .*unknown topic 'peace'"):
        load_profile(profile)


def test_a_long_summary_counts_as_lede_then_body() -> None:
    """Past its first 600 characters a summary is an article body: a passing mention of the
    place there is weak evidence, while the same words in the lede are strong."""
    filler = "Le conseil municipal a voté le budget des écoles et des crèches. " * 12
    mention = " Le maire a aussi évoqué le Haut-Karabakh et les réfugiés arméniens."
    late = classify(
        Item(key="x", guid=None, link=None, title="Vie locale", summary=filler + mention), PROFILE
    )
    early = classify(
        Item(key="y", guid=None, link=None, title="Vie locale", summary=mention + filler), PROFILE
    )
    assert late.topics == () and "karabakh_ceasefire" in early.topics
    assert {e.field for e in early.evidence} - {"model"} == {"summary"}
    assert late.scores["karabakh_ceasefire"] < early.scores["karabakh_ceasefire"]


def test_a_term_counts_once_per_topic() -> None:
    """Issue 10 item 10: `cessez-le-feu` listed in two entries of a topic was counted twice
    (`cessez-le-feu(t+5) … cessez-le-feu(t+4)`); a term now counts once per topic, and a later
    entry that lists it can only be satisfied by another of its terms."""
    c = classify(
        Item(
            key="x",
            guid=None,
            link=None,
            title="Arménie-Azerbaïdjan : cessez-le-feu violé",
            summary="Erevan et Bakou s'accusent.",
        ),
        PROFILE,
    )
    for topic in c.topics:
        terms = [e.term for e in c.evidence if e.topic == topic and e.field != "topic"]
        assert len(terms) == len(set(terms)), (topic, terms)
    ev = [e for e in c.evidence if e.topic == "karabakh_ceasefire" and e.field != "model"]
    assert sum(e.weight for e in ev) == pytest.approx(c.scores["karabakh_ceasefire"])
    assert [e.term for e in ev].count("cessez-le-feu") == 1


def test_the_packaged_profile_is_the_config_profile() -> None:
    """The profile ships inside the package (issue 10 item 12); config/topics.yaml is a copy
    of it, byte for byte, so the two never drift apart."""
    from monitor.classify import default_profile_path

    packaged = default_profile_path()
    assert packaged.is_file()
    assert packaged.read_bytes() == (ROOT / "config" / "topics.yaml").read_bytes()
    assert load_profile(packaged).topic_ids == PROFILE.topic_ids


def test_cli_classify_outside_the_repository_uses_the_packaged_profile(tmp_path) -> None:
    """`monitor classify` from a directory with no config/ used to fail with
    'config/topics.yaml: file not found'; it now falls back to the packaged profile, while an
    explicit MONITOR_PROFILE that does not exist is still an error."""
    import os

    env = {
        k: v for k, v in os.environ.items() if k not in ("MONITOR_PROFILE", "MONITOR_CONFIG_DIR")
    }
    env["PYTHONPATH"] = str(ROOT)
    line = json.dumps({"id": "a", "title": "Haut-Karabakh : reprise des combats", "summary": ""})
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "classify", "-"],
        input=line + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "karabakh_ceasefire" in json.loads(r.stdout)["topics"]
    env["MONITOR_PROFILE"] = str(tmp_path / "missing.yaml")
    r = subprocess.run(
        [sys.executable, "-m", "monitor", "classify", "-"],
        input=line + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 2 and "missing.yaml" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        # COP29: Baku as host, negotiations and an agreement that are not this conflict's.
        (
            "COP29 : accord arraché à Bakou après deux semaines de négociations",
            "Ilham Aliyev salue un succès ; l'Arménie a envoyé une délégation.",
        ),
        # Culture whose venue is in Karabakh.
        (
            "Festival « Artsakh vit » : concerts et danses à Stepanakert",
            "Des troupes de danse d'Arménie se produiront dans la capitale du Haut-Karabakh.",
        ),
        # CSTO peacekeeping elsewhere, with Armenian soldiers.
        (
            "Kazakhstan : les soldats de la paix arméniens de l'OTSC rentrent à Erevan",
            "La mission de maintien de la paix de l'alliance est terminée.",
        ),
        # Russia meets a party about something other than mediating.
        (
            "Poutine et Aliev signent des accords gaziers à Bakou",
            "Les deux présidents ont mené des négociations sur le corridor Nord-Sud.",
        ),
        (
            "Crash d'un avion d'Azerbaijan Airlines : Aliev accuse des tirs russes",
            "Poutine présente ses excuses au président azerbaïdjanais.",
        ),
        # Turkey–Armenia normalisation, and a conflict named only as background.
        (
            "La Turquie et l'Arménie relancent la normalisation",
            "Les deux pays nomment des émissaires ; leur frontière est fermée depuis 1993.",
        ),
        (
            "Nouvelle-Calédonie : Paris accuse Bakou d'ingérence",
            "Des relations déjà tendues par le soutien français à l'Arménie dans le conflit "
            "du Haut-Karabakh.",
        ),
    ],
)
def test_names_without_the_conflicts_events_are_not_the_conflict(title: str, summary: str) -> None:
    """Issue 14: the rules fired when the conflict's actors and places co-occurred without its
    events, or when Russia met a party about something else. Mediation and the conflict need
    events; the CSTO in Kazakhstan is `otsc` only."""
    got = topics(title, summary)
    assert "karabakh_ceasefire" not in got and "russian_mediation" not in got, got


def test_events_tied_to_the_place_or_both_parties_are_the_conflict() -> None:
    assert topics("Artsakh : exode massif vers l'Arménie") == ("karabakh_ceasefire",)
    assert topics(
        "Tavush : manifestations contre la délimitation de la frontière",
        "Erevan doit rendre quatre villages à l'Azerbaïdjan.",
    ) == ("karabakh_ceasefire",)
    assert set(
        topics(
            "Lavrov réunit ses homologues arménien et azerbaïdjanais à Moscou",
            "Les trois ministres ont discuté du traité de paix et de la délimitation.",
        )
    ) == {"karabakh_ceasefire", "russian_mediation"}
    assert set(
        topics("Kazakhstan : fin de la mission de l'OTSC", "Les soldats arméniens rentrent.")
    ) == {"otsc"}


def test_confidence_is_calibrated_beside_the_raw_score() -> None:
    """A probability per topic beside the score: between 0 and 1, rising with the score, high
    for a clear conflict story and low for the topics it is not about."""
    strong = classify(
        Item(
            key="a",
            guid=None,
            link=None,
            title="Haut-Karabakh : reprise des combats, le cessez-le-feu violé",
            summary="Erevan et Bakou s'accusent de tirs sur la ligne de contact.",
        ),
        PROFILE,
    )
    weak = classify(
        Item(key="b", guid=None, link=None, title="Erevan : combats de boxe", summary=""), PROFILE
    )
    assert set(strong.confidence) == set(PROFILE.topics)
    assert all(0.0 <= v <= 1.0 for v in strong.confidence.values())
    assert strong.confidence["karabakh_ceasefire"] > 0.95
    assert strong.confidence["otsc"] < 0.05
    assert weak.confidence["karabakh_ceasefire"] < strong.confidence["karabakh_ceasefire"]
    k = PROFILE.topics["karabakh_ceasefire"]
    from monitor.classify.scoring import calibrated

    values = [calibrated(s, k.threshold, k.slope, k.offset) for s in (0, 3, 6, 9, 12, 20)]
    assert values == sorted(values) and values[0] < 0.1 and values[-1] > 0.9


def test_calibration_errors_name_file_and_line(tmp_path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "topics:\n  t:\n    threshold: 1\n    calibration: {slope: 1}\n"
        "    terms:\n      - {match: a, weight: 1}\n",
        encoding="utf-8",
    )
    with pytest.raises(ProfileError, match=r"p\.yaml:4: 'calibration' needs 'slope' and 'offset'"):
        load_profile(profile)


def test_unseen_written_set_quality_holds() -> None:
    """The items written from news pages found after the rules (tests/data/unseen_written.jsonl):
    floors just under the figures measured on its held-out half (notes/precision.md)."""
    sys.path.insert(0, str(ROOT))
    from bench.eval_classifier import evaluate, load_set

    rows = load_set(ROOT / "tests" / "data" / "unseen_written.jsonl", "heldout")
    assert len(rows) >= 100 and all("ref" in r and r["ref"].startswith("http") for r in rows)
    metrics, _ = evaluate(rows, ROOT / "config" / "topics.yaml")
    assert metrics["relevance"]["precision"] >= 0.97, metrics["relevance"]
    assert metrics["relevance"]["recall"] >= 0.94, metrics["relevance"]
    assert metrics["otsc"]["f1"] >= 0.95 and metrics["karabakh_ceasefire"]["f1"] >= 0.96
    # 0.85 before ten Minsk Group "end" items were relabelled karabakh only (precision8; three
    # of them in this half, support 24 → 21): on the new labels the previous profile and model
    # measure 0.800, this one 0.842 (the same five misses, one false alert instead of three).
    assert metrics["russian_mediation"]["f1"] >= 0.84, metrics["russian_mediation"]


def test_second_unseen_set_quality_holds() -> None:
    """tests/data/unseen_written_2.jsonl: written and committed before anything scored it, no
    page of the first unseen set. Measured once held out (recall 0.877), then read and used as
    tune material in round 3: floors at the round-3 figures (all 1.000), not a held-out claim."""
    sys.path.insert(0, str(ROOT))
    from bench.eval_classifier import evaluate, load_set

    rows = load_set(ROOT / "tests" / "data" / "unseen_written_2.jsonl", "all")
    first = {r["ref"] for r in load_set(ROOT / "tests" / "data" / "unseen_written.jsonl", "all")}
    refs = [r["ref"] for r in rows]
    assert len(rows) >= 120 and len(set(refs)) == len(refs) and not set(refs) & first
    assert all(r["ref"].startswith("http") and r["split"] == "heldout" for r in rows)
    metrics, _ = evaluate(rows, ROOT / "config" / "topics.yaml")
    assert metrics["relevance"]["precision"] >= 0.97, metrics["relevance"]
    assert metrics["relevance"]["recall"] >= 0.99, metrics["relevance"]
    assert metrics["karabakh_ceasefire"]["f1"] >= 0.99 and metrics["otsc"]["f1"] >= 0.99
    assert metrics["russian_mediation"]["f1"] >= 0.99, metrics["russian_mediation"]


def test_third_unseen_set_quality_holds() -> None:
    """tests/data/unseen_written_3.jsonl: written and committed before the round-3 rules and
    before anything scored it, no page of the first two sets. Held out for two measurements
    (notes/precision.md, notes/model.md); since round 4 its errors were read and fixed and the
    model trains on it, so these floors guard tune material, not a held-out figure."""
    sys.path.insert(0, str(ROOT))
    from bench.eval_classifier import evaluate, load_set

    data = ROOT / "tests" / "data"
    rows = load_set(data / "unseen_written_3.jsonl", "all")
    earlier = {
        r["ref"]
        for name in ("unseen_written.jsonl", "unseen_written_2.jsonl")
        for r in load_set(data / name, "all")
    }
    refs = [r["ref"] for r in rows]
    assert len(rows) >= 100 and len(set(refs)) == len(refs) and not set(refs) & earlier
    assert all(r["ref"].startswith("http") and r["split"] == "heldout" for r in rows)
    metrics, _ = evaluate(rows, ROOT / "config" / "topics.yaml")
    assert metrics["relevance"]["precision"] >= 0.99, metrics["relevance"]
    assert metrics["relevance"]["recall"] >= 0.99, metrics["relevance"]
    assert metrics["karabakh_ceasefire"]["f1"] >= 0.99 and metrics["otsc"]["f1"] >= 0.99
    assert metrics["russian_mediation"]["f1"] >= 0.95, metrics["russian_mediation"]


def test_russian_peacekeepers_and_csto_clashes_are_the_conflict() -> None:
    """Recall recovered from the tune splits: Russia's peacekeepers stand for the place unless
    the story is set elsewhere; a CSTO story about Armenia and clashes is the conflict too."""
    assert set(
        topics(
            "Le Kremlin confirme le retrait des soldats de la paix russes",
            "Des convois de blindés ont quitté la région en vertu de l'accord de 2020.",
        )
    ) == {"karabakh_ceasefire", "russian_mediation"}
    assert "karabakh_ceasefire" not in topics(
        "Kazakhstan : les soldats de la paix russes quittent Almaty",
        "Le contingent de l'OTSC a terminé sa mission et se retire.",
    )
    assert set(topics("L'OTSC refuse d'envoyer une mission en Arménie après les combats")) == {
        "karabakh_ceasefire",
        "otsc",
    }
    # A list of the world's crises that names Karabakh is not news of the conflict.
    assert (
        topics(
            "Le pape appelle à la fraternité face aux crises",
            "Liban, Haut-Karabakh, Ukraine, Soudan du Sud : des pays en proie à des crises humanitaires.",
        )
        == ()
    )


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        # Russia convening, hosting or brokering between the two parties.
        (
            "Poutine convoque les ministres arménien et azerbaïdjanais",
            "Le Kremlin veut arrêter les hostilités.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        (
            "Avec Moscou comme intermédiaire, Bakou et Erevan préparent un traité",
            "",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        # Russian soldiers in Azerbaijan were Karabakh's peacekeepers.
        (
            "Les derniers soldats russes ont quitté l'Azerbaïdjan",
            "Le contingent stationné dans l'enclave depuis 2020 est parti.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        # Peace with no event word, both parties named.
        (
            "Erevan et Bakou réconciliés, selon Washington",
            "Les deux pays ouvrent des relations diplomatiques.",
            {"karabakh_ceasefire"},
        ),
        # Soldiers of one party released after the border fighting.
        (
            "Cinq soldats arméniens libérés",
            "Ils avaient été capturés lors des combats à la frontière.",
            {"karabakh_ceasefire"},
        ),
        # Hard negatives for the same vocabulary.
        ("Des soldats russes tués en Ukraine", "Les combats continuent dans le Donbass.", set()),
        (
            "Crash près de Grozny : Bakou met en cause les militaires russes",
            "Les tirs de la défense antiaérienne auraient touché l'avion d'Azerbaijan Airlines.",
            set(),
        ),
        (
            "Poutine reçoit Aliev au Kremlin",
            "Les deux présidents parlent commerce et corridor nord-sud.",
            set(),
        ),
        (
            "Les troupes russes quittent l'aéroport de Zvartnots",
            "L'Arménie reprend le contrôle du poste-frontière.",
            set(),
        ),
        (
            "Un opposant arménien libéré",
            "Il avait été arrêté lors d'affrontements avec la police à Erevan.",
            set(),
        ),
        (
            "Sommet de l'OTSC à Erevan : le Premier ministre refuse de signer",
            "Il reproche à l'alliance son silence face à Bakou.",
            {"otsc"},
        ),
    ],
)
def test_hosting_russian_troops_reconciliation_and_prisoners(
    title: str, summary: str, expected: set[str]
) -> None:
    """Round 3 (from the second unseen set's misses, now tune material): the vocabulary of
    hosting and brokering, Russian soldiers beside Azerbaijan or Karabakh, peace without an
    event word when both parties are named, prisoners released after the fighting; and the
    hard negatives that share those words."""
    assert set(topics(title, summary)) == expected


RULES_ONLY = Scorer(PROFILE, use_model=False)


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        # A named war of this conflict is its place and its event, without the region's name.
        (
            "Trois ans après la guerre de 44 jours, des familles attendent encore des corps",
            "",
            {"karabakh_ceasefire"},
        ),
        # Karabakh's districts and Armenia's border towns stand for the place and the parties.
        (
            "Un berger blessé par une mine près de Martakert",
            "Le déminage de la région reprend.",
            {"karabakh_ceasefire"},
        ),
        (
            "Tirs à la frontière : un soldat arménien tué près de Sotk",
            "Erevan accuse les forces azerbaïdjanaises.",
            {"karabakh_ceasefire"},
        ),
        # One party, one of the conflict's events, and its fighting.
        (
            "Deux soldats arméniens tués malgré la trêve",
            "Le ministère de la Défense parle de tirs d'artillerie.",
            {"karabakh_ceasefire"},
        ),
        # The end of the hostilities, and the treaty under its own title.
        (
            "Bakou accuse Erevan de violer l'arrêt des hostilités",
            "Des tirs nocturnes sont signalés dans le Tavouch.",
            {"karabakh_ceasefire"},
        ),
        (
            "Erevan publie le projet d'accord sur l'établissement de la paix",
            "Le gouvernement veut un référendum.",
            {"karabakh_ceasefire"},
        ),
        # The two parties meeting: peace talks.
        (
            "Aliev et Pachinian se rencontrent à Grenade",
            "Sans accord sur le texte final.",
            {"karabakh_ceasefire"},
        ),
        # Prisoners of one party set free, with the conflict's captives.
        (
            "Quatre prisonniers arméniens rentrent à Erevan",
            "Leur libération clôt un dossier de captifs ouvert depuis la guerre.",
            {"karabakh_ceasefire"},
        ),
        # Russia obtaining, guaranteeing or signing with both parties; its peacekeepers in
        # other word orders; peacekeepers beside Russia and Azerbaijan.
        (
            "Moscou a arraché un cessez-le-feu humanitaire à Erevan et Bakou",
            "",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        (
            "Pachinian, Aliev et Poutine signent une déclaration commune",
            "Le texte porte sur les voies de transport régionales.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        (
            "Des militaires russes de maintien de la paix blessés par une mine",
            "Près de Martakert, selon Moscou.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        (
            "Poutine reçoit Aliev au Kremlin",
            "Ils ont évoqué le travail du contingent de maintien de la paix et le règlement du "
            "conflit.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        (
            "Poutine téléphone à Aliev et Pachinian après les tirs à la frontière",
            "",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        (
            "Sommet de Saint-Pétersbourg : le président russe veut calmer Erevan et Bakou",
            "Les deux voisins se disputent de nouveau sur le corridor.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        # The CSTO described instead of named.
        (
            "Erevan gèle sa participation au bloc militaire dirigé par la Russie",
            "",
            {"otsc"},
        ),
        ("L'alliance de défense conduite par Moscou réunit ses ministres à Minsk", "", {"otsc"}),
        # An attack at the border beside one party; shelling; the state of war.
        (
            "Un soldat arménien tué à la frontière",
            "Le ministère évoque des tirs venus d'en face.",
            {"karabakh_ceasefire"},
        ),
        ("Des obus tombent sur Stepanakert", "", {"karabakh_ceasefire"}),
        (
            "Loi martiale en Arménie",
            "Mobilisation générale décrétée après l'attaque azerbaïdjanaise.",
            {"karabakh_ceasefire"},
        ),
        # Provocations, shots and mercenaries; Russia "tearing" an agreement from both sides;
        # the statement of November 2020 by its date.
        (
            "Erevan dénonce une provocation azerbaïdjanaise",
            "Des coups de feu ont visé un village du Syunik.",
            {"karabakh_ceasefire"},
        ),
        ("Des mercenaires syriens au Karabakh, selon Paris", "", {"karabakh_ceasefire"}),
        (
            "Le Kremlin dit avoir arraché un accord aux deux belligérants",
            "Les combats autour du Haut-Karabakh doivent cesser à minuit.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        (
            "Poutine appelle Aliev et Pachinian à respecter leurs engagements",
            "Le président russe rappelle la déclaration de novembre 2020.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        # Armenia leaving "the military alliance": the CSTO.
        (
            "Pachinian menace de quitter l'alliance militaire",
            "Erevan reproche son inaction à Moscou.",
            {"otsc"},
        ),
        # Hard negatives sharing the new vocabulary.
        ("Frontière géorgienne : un camion arménien attaqué", "", set()),
        ("Erevan : un policier tué dans une attaque contre un commissariat", "", set()),
        ("L'Arménie et l'Iran renforcent la sécurité à la frontière", "", set()),
        (
            "L'Arménie renforce son alliance militaire avec la France",
            "Paris livre des radars à Erevan.",
            set(),
        ),
        (
            "Moldavie : Chisinau réclame le départ de la mission de maintien de la paix russe",
            "Tiraspol refuse de discuter du format.",
            set(),
        ),
        (
            "L'OTSC entame ses manœuvres au Tadjikistan avec des soldats arméniens",
            "Des exercices de combat en montagne.",
            {"otsc"},
        ),
        ("L'OTAN, alliance militaire menée par Washington, accueille la Suède", "", set()),
        ("Moldavie : l'alliance pro-russe perd les élections", "", set()),
        (
            "Poutine téléphone à Aliev après le crash de l'avion",
            "Le président russe présente ses excuses.",
            set(),
        ),
        (
            "Pachinian à Moscou pour le sommet de l'Union économique eurasiatique",
            "Il signe des accords commerciaux.",
            set(),
        ),
        (
            "Arménie : le match de football contre l'Azerbaïdjan reporté",
            "Les deux fédérations se rencontrent à Zurich.",
            set(),
        ),
        ("Gumri : la base militaire russe fête son anniversaire", "", set()),
        (
            "Un plan de paix pour l'Ukraine présenté par Pékin",
            "La Russie salue l'initiative.",
            set(),
        ),
    ],
)
def test_events_named_otherwise_and_mediation_in_other_words(
    title: str, summary: str, expected: set[str]
) -> None:
    """Round 4 (set 3's misses, now tune material, generalised and written anew): the
    conflict's events without the region's name, Russia's mediating role phrased as obtaining,
    signing, calling or calming, its peacekeepers in other word orders, the CSTO described as
    an alliance led by Moscow; and hard negatives that share those words. The rules alone and
    the rules with the model agree."""
    item = Item(key="x", guid=None, link=None, title=title, summary=summary)
    assert set(RULES_ONLY.classify(item).topics) == expected
    assert set(topics(title, summary)) == expected


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        # The CSTO under the names of its bodies, or as "the alliance" beside its members.
        (
            "Douchanbé accueillera le Conseil de sécurité collective",
            "Les chefs d'État se retrouveront en novembre.",
            {"otsc"},
        ),
        (
            "Erevan absent de la réunion de l'alliance à Astana",
            "Les ministres kazakh, biélorusse et russe discutent de défense antiaérienne.",
            {"otsc"},
        ),
        # ...but NATO is an alliance too.
        (
            "L'alliance renforce sa présence face à la Biélorussie",
            "L'Otan déploie des troupes en Lituanie ; Moscou proteste.",
            set(),
        ),
        # An attack in Armenia's border provinces is the conflict's border.
        (
            "Tavouch : un soldat arménien tué par des tirs",
            "Le ministère de la Défense accuse les forces adverses.",
            {"karabakh_ceasefire"},
        ),
        # ...or in a village on the line, shots from the positions opposite.
        (
            "Nuit de tirs près de Tegh",
            "Les positions adverses ont ouvert le feu ; le ministère arménien ne signale aucun blessé.",
            {"karabakh_ceasefire"},
        ),
        # Peacekeepers under other names beside Russia and Azerbaijan.
        (
            "Moscou dément le départ de ses troupes de paix",
            "Bakou a repris le contrôle de toute la région.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        # The Minsk Group's co-chairs named by their nationality.
        (
            "Les coprésidents russe, américain et français à Erevan",
            "Ils rencontrent le Premier ministre arménien pour relancer les négociations.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        # Karabakh as a comparison in a story about Moldova's Russian troops.
        (
            "Chisinau demande le départ des soldats russes",
            "La présidente moldave veut une mission civile sous l'égide de l'OSCE en "
            "Transnistrie ; après le Karabakh, un autre conflit gelé pourrait bouger.",
            set(),
        ),
        # Culture: carpets and films about the region.
        (
            "Les tapis du Karabakh exposés dans un musée",
            "Des pièces évacuées de Choucha pendant la guerre.",
            set(),
        ),
    ],
)
def test_round5_vocabularies(title: str, summary: str, expected: set[str]) -> None:
    """Round 5 (the fourth unseen set's failure kinds, written anew): the CSTO named by its
    bodies or as the alliance beside its members, attacks in Armenia's border provinces,
    peacekeepers and Minsk Group co-chairs under other names; hard negatives sharing those
    words. The rules alone and the rules with the model agree."""
    item = Item(key="x", guid=None, link=None, title=title, summary=summary)
    assert set(RULES_ONLY.classify(item).topics) == expected
    assert set(topics(title, summary)) == expected


def test_round5_training_set_is_well_formed() -> None:
    """tests/data/train_written_5.jsonl: items written for training (round 5), labelled by the
    definitions; known topics only, mediation always with the conflict, many hard negatives,
    and no title shared with the unseen sets."""
    data = ROOT / "tests" / "data"
    rows = [
        json.loads(line)
        for line in (data / "train_written_5.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    known = {"karabakh_ceasefire", "russian_mediation", "otsc"}
    assert len(rows) >= 300 and len({r["id"] for r in rows}) == len(rows)
    assert all(set(r["topics"]) <= known and r["split"] == "tune" for r in rows)
    assert all(
        "karabakh_ceasefire" in r["topics"] for r in rows if "russian_mediation" in r["topics"]
    )
    assert sum(not r["topics"] for r in rows) >= len(rows) / 3
    others = {
        json.loads(line)["title"]
        for name in (
            "unseen_written.jsonl",
            "unseen_written_2.jsonl",
            "unseen_written_3.jsonl",
            "unseen_written_4.jsonl",
        )
        for line in (data / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    assert not {r["title"] for r in rows} & others


def test_multilateral_summits_are_not_trilateral_ones() -> None:
    """Putin's BRICS, SCO, CIS or Eurasian summits gather both leaders without Russia mediating:
    the rules take 3 points off mediation. (The model, which decides below the threshold, gives
    this one karabakh_ceasefire at 0.51: few multilateral summits are in its training data.)"""
    item = Item(
        key="x",
        guid=None,
        link=None,
        title="Sommet des BRICS à Kazan : trente dirigeants autour de Poutine",
        summary="Aliev et Pachinian figurent parmi les invités.",
    )
    assert RULES_ONLY.classify(item).topics == ()
    assert RULES_ONLY.rules(item).scores["russian_mediation"] < 6


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        # The Minsk Group's end is not its mediation (README: russian_mediation is Russia or
        # the group acting as mediator): karabakh_ceasefire only.
        (
            "L'OSCE ferme définitivement le groupe de Minsk",
            "Les deux capitales avaient demandé la dissolution de l'instance créée en 1992.",
            {"karabakh_ceasefire"},
        ),
        # Russia's patrols in Karabakh are its peacekeepers.
        (
            "Tirs sur une patrouille russe près de Martouni",
            "Le ministère russe de la Défense signale un véhicule touché au Karabakh, sans blessé.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        # Russia lowering the tension between the parties.
        (
            "Moscou s'efforce de faire retomber la tension",
            "Le Kremlin appelle Erevan et Bakou à la retenue après les incidents au Karabakh.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        # Russia named in a compound: the Russian–Turkish monitoring centre.
        (
            "Le centre russo-turc d'observation de la trêve achève sa mission",
            "Installé dans le district d'Aghdam, il contrôlait le cessez-le-feu au Karabakh.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        # The conflict as the background of another story (Turkey–Armenia normalisation).
        (
            "Arménie-Turquie : les émissaires se revoient à Vienne",
            "La frontière fermée depuis 1993 reste au centre des discussions ; le conflit du "
            "Karabakh demeure en toile de fond.",
            set(),
        ),
        # Armenia refusing to sign the alliance's text over Baku's attacks: its grievance, otsc.
        (
            "L'Arménie refuse de signer le communiqué de l'OTSC",
            "Erevan reproche au texte de taire les tirs azerbaïdjanais à sa frontière.",
            {"otsc"},
        ),
    ],
)
def test_set8_failure_kinds(title: str, summary: str, expected: set[str]) -> None:
    """Round 5's fifth cycle (the eighth unseen set's failure kinds, written anew): the Minsk
    Group's end, Russian patrols, de-escalation, Russia in a compound, the conflict as a
    background, a refusal to sign the alliance's text. The rules alone and the
    rules with the model agree."""
    item = Item(key="x", guid=None, link=None, title=title, summary=summary)
    assert set(RULES_ONLY.classify(item).topics) == expected
    assert set(topics(title, summary)) == expected


ORIGIN = (
    "Deux commerçants originaires de Choucha tués à Moscou",
    "La police russe enquête ; Bakou convoque l'ambassadeur de Russie.",
)


def test_a_place_as_peoples_origin_is_not_the_conflict_by_the_rules() -> None:
    """A place of Karabakh as people's origin in a story set elsewhere (set 8's Russia–
    Azerbaijan crisis), and an ambassador summoned (a protest, not Russia convening the
    parties): the rules say neither topic."""
    item = Item(key="x", guid=None, link=None, title=ORIGIN[0], summary=ORIGIN[1])
    assert set(RULES_ONLY.classify(item).topics) == set()


@pytest.mark.xfail(
    strict=True,
    reason="the model reads 'Choucha' and 'tués' in the title as the conflict and overrides "
    "the rules' no (precision8's notes): a hard-negative kind the training data lacks",
)
def test_a_place_as_peoples_origin_is_not_the_conflict_with_the_model() -> None:
    assert set(topics(*ORIGIN)) == set()


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        # An attack on a front-line town of one side, named by the town and an incident noun.
        (
            "Une roquette s'abat sur Barda",
            "Le bombardement a fait trois blessés dans la ville azerbaïdjanaise, selon le parquet.",
            {"karabakh_ceasefire"},
        ),
        # The war's dead and missing.
        (
            "Les restes de quarante soldats retrouvés sur les champs de bataille",
            "Erevan poursuit l'identification des portés disparus.",
            {"karabakh_ceasefire"},
        ),
        # Baku trying a Karabakh official: a prisoner of the conflict.
        (
            "Le procureur de Bakou réclame dix ans de réclusion contre un ancien responsable "
            "du Karabakh",
            "Le verdict est attendu le mois prochain.",
            {"karabakh_ceasefire"},
        ),
        # The EU's observers at the line stand for the conflict.
        (
            "L'EUMA prolongée de deux ans",
            "Les observateurs européens patrouillent côté arménien de la ligne.",
            {"karabakh_ceasefire"},
        ),
        # Relief at Armenia's border posts: the exodus arriving.
        (
            "À Kornidzor, la Croix-Rouge distribue des vivres",
            "Des familles arméniennes arrivent par centaines au poste-frontière.",
            {"karabakh_ceasefire"},
        ),
        # The Minsk Group's co-chairs by name.
        (
            "Andrew Schofer et Igor Popov à Stepanakert",
            "Les diplomates doivent ensuite se rendre à Bakou.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        # Russia taking the initiative of an exchange: an oblique mediation.
        (
            "À l'initiative de Moscou, Erevan et Bakou échangent des prisonniers",
            "Cinq Arméniens et deux Azerbaïdjanais ont regagné leur pays.",
            {"karabakh_ceasefire", "russian_mediation"},
        ),
        # Armenia's border with Turkey (the adjective's feminine form) is not the line.
        (
            "Un soldat tué près de la frontière turque",
            "L'armée arménienne enquête sur un accident de tir à Margara.",
            set(),
        ),
        # "The organisation" Armenia owes dues to, beside Russia: the CSTO.
        (
            "L'Arménie ne paie plus sa cotisation à l'organisation",
            "Moscou assure qu'aucun membre n'en sera exclu.",
            {"otsc"},
        ),
    ],
)
def test_set9_failure_kinds(title: str, summary: str, expected: set[str]) -> None:
    """Round 6's sixth cycle (the ninth unseen set's failure kinds, written anew and by kind):
    front-line towns and incident nouns, the war's dead, Baku's trials, the EU's observers, the
    exodus's arrival, the co-chairs by name, Russia's initiative,
    the other borders' adjectives, the CSTO as "the organisation". The rules alone and the rules
    with the model agree."""
    item = Item(key="x", guid=None, link=None, title=title, summary=summary)
    assert set(RULES_ONLY.classify(item).topics) == expected
    assert set(topics(title, summary)) == expected


CSTO_SENT = (
    "Une mission d'évaluation de l'OTSC dépêchée en Arménie",
    "Le secrétaire général de l'alliance conduira lui-même l'équipe.",
)


def test_the_alliance_sent_to_armenia_is_the_conflict_by_the_rules() -> None:
    """The alliance sending a mission to Armenia is the alliance asked to act in the conflict
    (README, otsc): karabakh_ceasefire and otsc by the rules (set 9's m040/m043 kind)."""
    item = Item(key="x", guid=None, link=None, title=CSTO_SENT[0], summary=CSTO_SENT[1])
    assert set(RULES_ONLY.classify(item).topics) == {"karabakh_ceasefire", "otsc"}


@pytest.mark.xfail(
    strict=True,
    reason="the rules give karabakh 8.0 (inside the model's band) and the model, trained on many "
    "CSTO items labelled otsc alone (the grievance kind), says no (precision9's notes)",
)
def test_the_alliance_sent_to_armenia_is_the_conflict_with_the_model() -> None:
    assert set(topics(*CSTO_SENT)) == {"karabakh_ceasefire", "otsc"}


@pytest.mark.parametrize("use_model", [False, True])
def test_a_denial_takes_back_only_the_meeting_or_the_talks(use_model: bool) -> None:
    """« sans se rencontrer », « sans aborder les négociations » deny the link the rules would
    count; « sans parler à la presse » or « sans évoquer la date du prochain sommet » deny
    nothing of the summit (the review of round 6: a bare « sans évoquer » lost this alert)."""
    scorer = Scorer(PROFILE, use_model=use_model)

    def of(title: str, summary: str = "") -> set[str]:
        return set(
            scorer.classify(
                Item(key="x", guid=None, link=None, title=title, summary=summary)
            ).topics
        )

    summit = "Poutine réunit Aliev et Pachinian au Kremlin"
    both = {"karabakh_ceasefire", "russian_mediation"}
    assert of(summit) == both
    assert of(f"{summit}, sans parler à la presse") == both
    assert of(f"{summit} sans évoquer la date d'un prochain sommet") == both
    assert of("Aliev et Pachinian au sommet de la CEI, sans se rencontrer") == set()
    assert (
        of(
            "Lavrov reçoit Mirzoïan sans aborder les négociations avec Bakou",
            "La coopération militaire et la base de Gyumri au menu.",
        )
        == set()
    )


def test_round7_training_set_is_well_formed() -> None:
    """tests/data/train_written_7.jsonl: items written for training (round 7) by four writers,
    each labelled again by a second labeller and kept only where both agreed; no page of the
    held-out sets (10, 11) and no title or summary of any other set."""
    data = ROOT / "tests" / "data"

    def rows(name: str) -> list[dict[str, Any]]:
        text = (data / name).read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    new = rows("train_written_7.jsonl")
    known = {"karabakh_ceasefire", "russian_mediation", "otsc"}
    assert len(new) == 699 and len({r["id"] for r in new}) == len(new)
    assert all(set(r["topics"]) <= known and r["split"] == "train" for r in new)
    assert all(
        "karabakh_ceasefire" in r["topics"] for r in new if "russian_mediation" in r["topics"]
    )
    held = rows("unseen_written_10.jsonl") + rows("unseen_written_11.jsonl")
    assert not {r["ref"].rstrip("/") for r in new} & {r["ref"].rstrip("/") for r in held}
    others = [
        r
        for path in data.glob("*_written*.jsonl")
        if not path.name.startswith(("event_", "train_written_7"))
        for r in rows(path.name)
    ]
    seen = {r["title"].casefold() for r in others} | {
        r["summary"].casefold() for r in others if r.get("summary")
    }
    assert not [r["id"] for r in new if r["title"].casefold() in seen]
    assert not [r["id"] for r in new if r.get("summary") and r["summary"].casefold() in seen]


def test_a_texts_tokens_are_its_pieces_tokens_whatever_the_white_space() -> None:
    """The scorer folds each distinct piece between white space once (`text.split()`) and
    keeps it: that holds only while white space stays white space through NFKC, case folding
    and the fold table, and joins nothing (a table entry deleting one would join two words)."""
    from monitor.text import stem, tokens

    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    # Combining marks, deleted and joining characters, compatibility forms, Hangul jamo.
    tricky = ["a", "É", "\u0301", "\u00ad", "\u200b", "\u02bc", "\u00b4", "ﬁ", "\u1100", "\u1161"]
    tricky += ["\u3099", "’", "œ", "_", "-"]
    scorer = Scorer(PROFILE, use_model=False)
    for space in spaces:
        for a in tricky:
            for b in tricky:
                text = f"x{a}{space}{b}y"
                want = tokens(text)
                assert [t for piece in text.split() for t in tokens(piece)] == want, text
                assert scorer.tokens(text) == (want, [stem(t) for t in want]), text
