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
* **The learned join** (`pairs`, `pair_join`; off in MONITOR_GROUPING=strict): when no rule joins
  an item of the profile's stream, a logistic regression over (item, candidate story) features
  (the rules' score, the vectors' cosine, the gap and the story's age, names, kinds, clashes of
  numbers and names, the key title words the story lacks) weighs the candidates the rules scored
  and the latest stories of a kind and of its specific names; the likeliest joins when its
  probability reaches `pair_threshold`. The guards above veto first, and a candidate must share
  a topic, some word of what happened, and a title word or name (or close vectors). Trained on
  tune material by bench/train_pairs.py; the coefficients ship in `pairs.model.json`.

The package, one job a module, each importing only modules listed before it: `params` (the
knobs), `words` (tokens, stopwords, synonyms, bylines, opinion titles, a title's rubric and
the happenings it calls new), `kinds` (kinds of happening), `features` (an item's features,
actors, entity aliases, specific names, figures), `story` (a story's state, name and stored
form), `guards` (time gaps, the look-alike guards, near-identical copies), `pairs` (the
learned join's features and model), `index` (the index and the decision). This module
re-exports the names the rest of the project imports.
"""

from __future__ import annotations

from monitor.events.features import (
    EventFeatures,
    features,
    profile_aliases,
    specific_names,
    spelled_numbers,
    stored_features,
)
from monitor.events.guards import TURNS
from monitor.events.index import EventIndex, story_of
from monitor.events.kinds import event_kinds
from monitor.events.params import DEFAULT, Params, grouping_params
from monitor.events.story import StoryName, StoryState, story_name
from monitor.events.words import opinion_title, strip_byline

__all__ = [
    "DEFAULT",
    "TURNS",
    "EventFeatures",
    "EventIndex",
    "Params",
    "StoryName",
    "StoryState",
    "event_kinds",
    "features",
    "grouping_params",
    "opinion_title",
    "profile_aliases",
    "specific_names",
    "spelled_numbers",
    "stored_features",
    "story_name",
    "story_of",
    "strip_byline",
]
