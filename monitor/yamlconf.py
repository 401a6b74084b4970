"""YAML with line numbers: every config loader (settings, profiles) reads files through these,
so that each error names its file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError


def load_yaml_nodes(path: Path) -> yaml.Node | None:
    """Compose a YAML file into nodes (which carry line numbers); errors name file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: file not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from e
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        # An unclosed bracket or quote, a key without its colon, is where its context starts
        # (« while scanning … »): the problem mark is only where the scanner gave up. Any
        # other mistake (a line indented wrongly) is at the problem mark: its context is the
        # block before it.
        opened = e.context_mark and e.context and ("flow" in e.context or "scanning" in e.context)
        mark = (e.context_mark if opened else e.problem_mark) or e.context_mark
        line = mark.line + 1 if mark else 1
        where = f" ({e.context})" if e.context else ""
        raise ConfigError(f"{path}:{line}: invalid YAML: {e.problem or e}{where}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def node_value(node: yaml.Node) -> Any:
    """Plain Python value of a node (safe constructors only)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def mapping_items(node: yaml.Node, path: Path, what: str) -> list[tuple[str, yaml.Node, int]]:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}:{line_of(node)}: {what} must be a mapping")
    out = []
    seen: set[str] = set()
    for k, v in node.value:
        key = str(node_value(k))
        if key in seen:
            raise ConfigError(f"{path}:{line_of(k)}: duplicate key '{key}' in {what}")
        seen.add(key)
        out.append((key, v, line_of(k)))
    return out


def check_keys(
    items: list[tuple[str, yaml.Node, int]], allowed: set[str], path: Path, what: str
) -> None:
    for key, _, line in items:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise ConfigError(f"{path}:{line}: unknown key '{key}' in {what} (known: {known})")
