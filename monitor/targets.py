"""Notification targets: `notify.yaml` (or MONITOR_NOTIFY_URLS) read and validated, each error
naming its file and line. A target's URL is kept only in memory; what is shown, logged or
stored is its name or apprise's privacy form of the URL."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from monitor.apprise_setup import privacy_url
from monitor.errors import ConfigError
from monitor.types import UPDATES, AlertPolicy, Target, strip_secrets
from monitor.yamlconf import check_keys, line_of, load_yaml_nodes, mapping_items, node_value

TARGET_KEYS = {
    "url",
    "tags",
    "name",
    "min_score",
    "min_confidence",
    "max_per_hour",
    "quiet_hours",
    "timezone",
    "digest_at",
    "updates",
}
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: Any, what: str) -> time:
    if not isinstance(value, str) or not _HHMM.match(value.strip()):
        raise ValueError(f"'{what}' must be a time HH:MM, got {value!r}")
    h, m = value.strip().split(":")
    return time(int(h), int(m))


def parse_policy(fields: dict[str, Any]) -> AlertPolicy:
    """The alert-policy keys of one target; ValueError names the key."""
    min_score = fields.get("min_score")
    if min_score is not None and (
        isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or min_score < 0
    ):
        raise ValueError(f"'min_score' must be a number ≥ 0, got {min_score!r}")
    min_conf = fields.get("min_confidence")
    if min_conf is not None and (
        isinstance(min_conf, bool)
        or not isinstance(min_conf, (int, float))
        or not 0 <= min_conf <= 1
    ):
        raise ValueError(f"'min_confidence' must be a number from 0 to 1, got {min_conf!r}")
    per_hour = fields.get("max_per_hour")
    if per_hour is not None and (
        isinstance(per_hour, bool) or not isinstance(per_hour, int) or per_hour < 1
    ):
        raise ValueError(f"'max_per_hour' must be a whole number ≥ 1, got {per_hour!r}")
    quiet = fields.get("quiet_hours")
    quiet_hours = None
    if quiet is not None:
        if not isinstance(quiet, str) or quiet.count("-") != 1:
            raise ValueError(f"'quiet_hours' must look like \"22:00-07:00\", got {quiet!r}")
        start, end = (parse_hhmm(p, "quiet_hours") for p in quiet.split("-"))
        if start == end:
            raise ValueError("'quiet_hours' must not start and end at the same time")
        quiet_hours = (start, end)
    tz = fields.get("timezone", "UTC")
    try:
        if not isinstance(tz, str):
            raise ValueError
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"'timezone' must be an IANA name such as Europe/Paris, got {tz!r}") from e
    digest = fields.get("digest_at")
    updates = fields.get("updates", "none")
    if updates not in UPDATES:
        raise ValueError(f"'updates' must be one of {', '.join(UPDATES)}, got {updates!r}")
    return AlertPolicy(
        min_score=float(min_score) if min_score is not None else None,
        min_confidence=float(min_conf) if min_conf is not None else None,
        max_per_hour=per_hour,
        quiet_hours=quiet_hours,
        timezone=tz,
        digest_at=parse_hhmm(digest, "digest_at") if digest is not None else None,
        updates=updates,
    )


def make_target(
    url: str,
    origin: str,
    tags: Sequence[str] = (),
    name: str | None = None,
    policy: AlertPolicy | None = None,
) -> Target:
    safe = privacy_url(url)
    if safe is None:
        raise ConfigError(f"{origin}: apprise does not accept the URL {strip_secrets(url)}")
    return Target(
        url=url,
        tags=tuple(tags),
        name=name,
        policy=policy or AlertPolicy(),
        safe_url=safe,
        origin=origin,
    )


def load_targets(path: Path) -> tuple[Target, ...]:
    if not path.exists():
        return ()
    root = load_yaml_nodes(path)
    if root is None:
        return ()
    top = mapping_items(root, path, "notify.yaml")
    check_keys(top, {"targets"}, path, "the top level")
    node = next((v for k, v, _ in top if k == "targets"), None)
    if node is None or (isinstance(node, yaml.ScalarNode) and not node.value):
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(f"{path}:{line_of(node)}: 'targets' must be a list")
    targets: list[Target] = []
    for entry in node.value:
        line = line_of(entry)
        lines: dict[str, int] = {}
        if isinstance(entry, yaml.ScalarNode):
            fields: dict[str, Any] = {"url": node_value(entry)}
        else:
            items = mapping_items(entry, path, "a target")
            check_keys(items, TARGET_KEYS, path, "a target")
            fields = {k: node_value(v) for k, v, _ in items}
            lines = {k: ln for k, _, ln in items}
        url = fields.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"{path}:{line}: a target needs an apprise 'url'")
        tags = fields.get("tags", [])
        if isinstance(tags, str):
            tags = [t for t in tags.replace(",", " ").split() if t]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ConfigError(
                f"{path}:{lines.get('tags', line)}: 'tags' must be a list of topic ids"
            )
        name = fields.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigError(f"{path}:{lines.get('name', line)}: 'name' must be text")
        try:
            policy = parse_policy(fields)
        except ValueError as e:
            key = next((k for k in lines if f"'{k}'" in str(e)), "url")
            raise ConfigError(f"{path}:{lines.get(key, line)}: {e}") from e
        target = make_target(url.strip(), f"{path}:{lines.get('url', line)}", tags, name, policy)
        # Tag errors (checked against the profile later) point at the tags line.
        targets.append(replace(target, origin=f"{path}:{lines.get('tags', line)}"))
    check_unique(targets)
    return tuple(targets)


def targets_from_env(value: str) -> tuple[Target, ...]:
    targets = tuple(
        make_target(url, "environment MONITOR_NOTIFY_URLS") for url in value.split() if url
    )
    check_unique(targets)
    return targets


def check_unique(targets: Sequence[Target]) -> None:
    """Two targets with one key would share outbox rows: one of them would never hear."""
    seen: dict[str, Target] = {}
    for t in targets:
        if t.key in seen:
            raise ConfigError(
                f"{t.origin}: a second target is known as {t.key!r} (as at "
                f"{seen[t.key].origin}); give one of them a distinct 'name'"
            )
        seen[t.key] = t


def check_tags(targets: Sequence[Target], topics: Collection[str]) -> None:
    """A tag that names no topic of the profile would silently route nothing: a config error."""
    known = set(topics)
    for t in targets:
        unknown = [tag for tag in t.tags if tag not in known]
        if unknown:
            raise ConfigError(
                f"{t.origin}: tag {unknown[0]!r} names no topic of the profile "
                f"(topics: {', '.join(sorted(known))})"
            )
