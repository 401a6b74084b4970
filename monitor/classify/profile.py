"""Topic profiles: loading, validation (errors name file and line) and compilation.

A profile is YAML:

    title_weight: 2          # a term found in the title counts this many times its weight
    content_weight: 0.5      # ... and in the full content (not the summary) this much
    groups:                  # named vocabularies, used as terms or as context
      armenia: ["arménie", "arméni*", "erevan"]
    topics:
      karabakh_ceasefire:
        label: "..."
        threshold: 6
        require: [[karabakh, [armenia, azerbaijan]]]  # each list: one of its alternatives
        terms:
          - {match: "@karabakh", weight: 6}
          - {match: "cessez-le-feu", weight: 4, when: [armenia, azerbaijan]}
          - {match: "guerre", weight: 2, when: [karabakh, [armenia, azerbaijan]]}

A pattern is a phrase of words; hyphens, apostrophes and spaces all separate words, case and
accents do not count, a plural -s does not count, and a final `*` makes a word a prefix.

A model file beside the profile (`topics.yaml` → `topics.model.json`, written by `monitor profile
train`) adds the statistical second stage (monitor/classify/model.py); without one, the rules
decide alone.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from monitor.classify.model import Model, load_model, model_path_for
from monitor.errors import ConfigError, ProfileError
from monitor.text import fold, stem
from monitor.yamlconf import check_keys, line_of, load_yaml_nodes, mapping_items, node_value

_WORD = re.compile(r"[^\W_]+\*?")


@dataclass(frozen=True)
class Word:
    text: str
    prefix: bool


@dataclass(frozen=True)
class Pattern:
    words: tuple[Word, ...]
    source: str


@dataclass
class Entry:
    """A weighted term of a topic: fires when any of its patterns occurs."""

    label: str
    patterns: list[int]
    weight: float
    # Context: any one alternative must be present; an alternative is one group, or a list of
    # groups that must all be present (`when: [karabakh, [armenia, azerbaijan]]`).
    when: list[tuple[str, ...]] = field(default_factory=list)


@dataclass
class Topic:
    id: str
    label: str
    threshold: float
    entries: list[Entry]
    # Each requirement: one of its alternatives must hold; an alternative is one group, or a
    # list of groups that must all be present (`require: [[karabakh, [armenia, azerbaijan]]]`).
    require: list[list[tuple[str, ...]]]
    implies: list[str] = field(default_factory=list)  # topics that also hold when this one does
    # Platt calibration of the score: confidence = 1 / (1 + exp(-(slope·(score − threshold)
    # + offset))); fitted on labelled items by `python bench/eval_classifier.py --calibrate`.
    slope: float = 1.0
    offset: float = 0.0

    @cached_property
    def by_weight(self) -> list[Entry]:
        """Entries by decreasing weight (stable): a term shared by several counts at the most."""
        return sorted(self.entries, key=lambda e: -e.weight)


@dataclass
class Profile:
    path: str
    title_weight: float
    content_weight: float
    patterns: list[Pattern]
    groups: dict[str, list[int]]  # group name → pattern ids
    topics: dict[str, Topic]
    digest: str
    # Groups that name actors and places (story clustering compares them); a profile without
    # an `entities:` key treats every group as one.
    entities: tuple[str, ...] = ()
    # Compiled index: first word (exact stem) → pattern ids; prefix first words apart.
    exact_first: dict[str, list[int]] = field(default_factory=dict)
    prefix_first: list[tuple[str, int]] = field(default_factory=list)
    # The statistical second stage, from the file beside the profile when there is one.
    model: Model | None = None

    @property
    def topic_ids(self) -> list[str]:
        return list(self.topics)


def compile_pattern(source: str) -> Pattern:
    words = []
    for raw in _WORD.findall(fold(source)):
        if raw.endswith("*"):
            words.append(Word(raw[:-1], True))
        else:
            words.append(Word(stem(raw), False))
    if not words or any(w.prefix and len(w.text) < 3 for w in words):
        raise ValueError(f"pattern {source!r} has no words, or a prefix shorter than 3 letters")
    return Pattern(tuple(words), source)


class _Builder:
    def __init__(self, path: Path):
        self.path = path
        self.patterns: list[Pattern] = []
        self.index: dict[tuple[Word, ...], int] = {}
        self.groups: dict[str, list[int]] = {}

    def pattern(self, source: str, line: int) -> int:
        try:
            p = compile_pattern(source)
        except ValueError as e:
            raise ProfileError(f"{self.path}:{line}: {e}") from e
        if p.words in self.index:
            return self.index[p.words]
        self.index[p.words] = len(self.patterns)
        self.patterns.append(p)
        return self.index[p.words]

    def resolve(self, source: str, line: int) -> list[int]:
        """A pattern, or `@group` for all of a group's patterns."""
        if source.startswith("@"):
            name = source[1:]
            if name not in self.groups:
                raise ProfileError(f"{self.path}:{line}: unknown group '@{name}'")
            return list(self.groups[name])
        return [self.pattern(source, line)]

    def context(self, value: Any, line: int) -> list[tuple[str, ...]]:
        alts = value if isinstance(value, list) else [value]
        return [tuple(self.group_names(alt, line, "when")) for alt in alts]

    def group_names(self, value: Any, line: int, what: str) -> list[str]:
        names = value if isinstance(value, list) else [value]
        out = []
        for n in names:
            if not isinstance(n, str):
                raise ProfileError(f"{self.path}:{line}: {what} must list group names")
            n = n.lstrip("@")
            if n not in self.groups:
                raise ProfileError(f"{self.path}:{line}: unknown group '{n}' in {what}")
            out.append(n)
        return out


def _alternatives(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _number(value: Any, path: Path, line: int, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{path}:{line}: {what} must be a number")
    return float(value)


def default_profile_path() -> Path:
    """The profile shipped inside the package (used when no config directory has one)."""
    return Path(__file__).resolve().parent / "default_topics.yaml"


log = logging.getLogger("monitor.classify")


def _stale(model: Model, topics: Mapping[str, object], digest: str) -> str | None:
    """Why a model beside a profile does not fit it, or None."""
    unknown = [t for t in model.topics if t not in topics]
    if unknown:
        return f"it has topic '{unknown[0]}', which the profile does not"
    if model.profile_digest != digest:
        return (
            f"it was trained for another version of the profile "
            f"(digest {model.profile_digest or 'none'}, the profile's is {digest})"
        )
    return None


def load_profile(path: Path | str, with_model: bool = True) -> Profile:
    """The profile at `path`, with the topic model beside it (NAME.model.json) when there is
    one that was trained for this very file; `with_model=False` leaves it out (training)."""
    path = Path(path)
    try:
        root = load_yaml_nodes(path)
    except ProfileError:
        raise
    except ConfigError as e:
        raise ProfileError(str(e)) from e
    if root is None:
        raise ProfileError(f"{path}:1: the profile is empty")
    top = mapping_items(root, path, "the profile")
    check_keys(
        top,
        {"version", "title_weight", "content_weight", "groups", "entities", "topics"},
        path,
        "the top level of the profile",
    )
    b = _Builder(path)
    nodes = {k: (v, ln) for k, v, ln in top}
    title_weight = 2.0
    content_weight = 0.5
    if "title_weight" in nodes:
        v, ln = nodes["title_weight"]
        title_weight = _number(node_value(v), path, ln, "title_weight")
    if "content_weight" in nodes:
        v, ln = nodes["content_weight"]
        content_weight = _number(node_value(v), path, ln, "content_weight")
    if "groups" in nodes:
        for name, gnode, ln in mapping_items(nodes["groups"][0], path, "groups"):
            if not isinstance(gnode, yaml.SequenceNode):
                raise ProfileError(f"{path}:{ln}: group '{name}' must be a list of patterns")
            ids: list[int] = []
            for p in gnode.value:
                value = node_value(p)
                if not isinstance(value, str):
                    raise ProfileError(f"{path}:{line_of(p)}: a pattern must be text")
                ids.extend(b.resolve(value, line_of(p)))
            b.groups[name] = ids
    if "topics" not in nodes:
        raise ProfileError(f"{path}:1: the profile has no 'topics'")
    topics: dict[str, Topic] = {}
    implied_lines: dict[str, int] = {}
    for tid, tnode, tline in mapping_items(nodes["topics"][0], path, "topics"):
        items = mapping_items(tnode, path, f"topic '{tid}'")
        check_keys(
            items,
            {"label", "threshold", "require", "implies", "terms", "calibration"},
            path,
            f"topic '{tid}'",
        )
        fields = {k: (v, ln) for k, v, ln in items}
        label = str(node_value(fields["label"][0])) if "label" in fields else tid
        if "threshold" not in fields:
            raise ProfileError(f"{path}:{tline}: topic '{tid}' needs a 'threshold'")
        threshold = _number(
            node_value(fields["threshold"][0]), path, fields["threshold"][1], "threshold"
        )
        require: list[list[tuple[str, ...]]] = []
        if "require" in fields:
            rnode, rline = fields["require"]
            rvalue = node_value(rnode)
            if not isinstance(rvalue, list):
                raise ProfileError(f"{path}:{rline}: 'require' must be a list of group lists")
            for alt in rvalue:
                require.append(
                    [tuple(b.group_names(a, rline, "require")) for a in _alternatives(alt)]
                )
        if "terms" not in fields or not isinstance(fields["terms"][0], yaml.SequenceNode):
            raise ProfileError(f"{path}:{tline}: topic '{tid}' needs a list of 'terms'")
        entries: list[Entry] = []
        for enode in fields["terms"][0].value:
            eline = line_of(enode)
            eitems = mapping_items(enode, path, "a term")
            check_keys(eitems, {"match", "weight", "when", "label"}, path, "a term")
            ef = {k: node_value(v) for k, v, _ in eitems}
            match = ef.get("match")
            sources = match if isinstance(match, list) else [match]
            if not sources or not all(isinstance(s, str) and s for s in sources):
                raise ProfileError(f"{path}:{eline}: a term needs 'match' (text or list)")
            ids = [i for s in sources if isinstance(s, str) for i in b.resolve(s, eline)]
            weight = _number(ef.get("weight"), path, eline, "weight")
            when = b.context(ef["when"], eline) if "when" in ef else []
            entries.append(Entry(str(ef.get("label") or sources[0]), ids, weight, when))
        implies: list[str] = []
        if "implies" in fields:
            inode, iline = fields["implies"]
            ivalue = node_value(inode)
            implies = ivalue if isinstance(ivalue, list) else [ivalue]
            if not all(isinstance(t, str) for t in implies):
                raise ProfileError(f"{path}:{iline}: 'implies' must list topic ids")
            implied_lines[tid] = iline
        slope, offset = 1.0, 0.0
        if "calibration" in fields:
            cnode, cline = fields["calibration"]
            cvalue = node_value(cnode)
            if not isinstance(cvalue, dict) or set(cvalue) != {"slope", "offset"}:
                raise ProfileError(f"{path}:{cline}: 'calibration' needs 'slope' and 'offset'")
            slope = _number(cvalue["slope"], path, cline, "calibration slope")
            offset = _number(cvalue["offset"], path, cline, "calibration offset")
        topics[tid] = Topic(tid, label, threshold, entries, require, implies, slope, offset)
    for tid, iline in implied_lines.items():
        for other in topics[tid].implies:
            if other not in topics or other == tid:
                raise ProfileError(f"{path}:{iline}: topic '{tid}' implies unknown topic '{other}'")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    entities = tuple(b.groups)
    if "entities" in nodes:
        v, ln = nodes["entities"]
        names = node_value(v)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ProfileError(f"{path}:{ln}: 'entities' must be a list of group names")
        unknown = [n for n in names if n not in b.groups]
        if unknown:
            raise ProfileError(f"{path}:{ln}: 'entities' names unknown group '{unknown[0]}'")
        entities = tuple(names)
    model_path = model_path_for(path)
    model = load_model(model_path) if with_model and model_path.is_file() else None
    if model is not None and (why := _stale(model, topics, digest)):
        # A model trained for another version of the rules decides near their thresholds
        # from scores it never saw (an added pattern would be vetoed): the rules decide alone
        # until it is trained again.
        log.warning(
            "%s: not used, %s; the rules decide alone: re-train it with "
            "`monitor profile train --profile %s` (or delete the file)",
            model_path,
            why,
            path,
        )
        model = None
    profile = Profile(
        str(path),
        title_weight,
        content_weight,
        b.patterns,
        b.groups,
        topics,
        digest,
        entities,
        model=model,
    )
    for pid, p in enumerate(profile.patterns):
        first = p.words[0]
        if first.prefix:
            profile.prefix_first.append((first.text, pid))
        else:
            profile.exact_first.setdefault(first.text, []).append(pid)
    return profile
