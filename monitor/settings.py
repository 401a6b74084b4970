"""Config directory + environment, validated once. Every error names its file and line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from monitor.errors import ConfigError
from monitor.types import FeedConfig, FetchLimits, Target
from monitor.yamlconf import check_keys, line_of, load_yaml_nodes, mapping_items, node_value

DEFAULT_DATABASE_URL = "sqlite:///monitor.db"
DEFAULT_BROKER_URL = "redis://localhost:6379/0"
DEFAULT_POLL_INTERVAL = 300
MIN_INTERVAL = 1

FEEDS_FILE = "feeds.yaml"
TOPICS_FILE = "topics.yaml"
NOTIFY_FILE = "notify.yaml"

# Every environment variable the program reads; docker-compose and the README use these.
ENV_VARS: dict[str, str] = {
    "MONITOR_CONFIG_DIR": "config directory (default ./config)",
    "MONITOR_DATABASE_URL": f"SQLAlchemy URL (default {DEFAULT_DATABASE_URL})",
    "MONITOR_BROKER_URL": f"Celery broker URL (default {DEFAULT_BROKER_URL})",
    "MONITOR_NOTIFY_URLS": "whitespace-separated apprise URLs; replaces notify.yaml",
    "MONITOR_POLL_INTERVAL": f"seconds between polls of a feed (default {DEFAULT_POLL_INTERVAL})",
    "MONITOR_PROFILE": "topic profile path (default <config dir>/topics.yaml)",
    "MONITOR_FETCH_DEADLINE": "total seconds allowed for one feed request (default 30)",
    "MONITOR_CONNECT_TIMEOUT": "connect timeout in seconds (default 10)",
    "MONITOR_MAX_BODY_BYTES": "largest feed body accepted, after decompression (default 10 MiB)",
    "MONITOR_CONCURRENCY": "feeds fetched at once in one process (default 100)",
    "MONITOR_PER_HOST": "requests at once to one host (default 4)",
    "MONITOR_DELIVERY_GIVE_UP_HOURS": "hours an undelivered alert is retried (default 72)",
    "MONITOR_RETRY_BASE_SECONDS": "first delay before a failed delivery is retried (default 30)",
    "MONITOR_CLAIM_SECONDS": "a delivery claimed by a worker that died is retried after (300)",
    "MONITOR_LEASE_SECONDS": "a feed whose poller died is polled again after (120)",
    "MONITOR_LOG_LEVEL": "logging level (default INFO)",
    "MONITOR_POLL_BATCH": "feeds in one Celery poll task, fetched concurrently (default 50)",
}


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = DEFAULT_BROKER_URL
    poll_interval: int = DEFAULT_POLL_INTERVAL
    feeds: tuple[FeedConfig, ...] = ()
    targets: tuple[Target, ...] = ()
    profile_path: Path = Path("config/topics.yaml")
    limits: FetchLimits = field(default_factory=FetchLimits)
    delivery_give_up_hours: float = 72.0
    retry_base_seconds: float = 30.0
    claim_seconds: float = 300.0
    lease_seconds: float = 120.0
    log_level: str = "INFO"
    poll_batch: int = 50


# --- feeds.yaml ---------------------------------------------------------------------------


def validate_feed_url(url: str) -> str | None:
    """Why a feed URL is not acceptable, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"feed url must be http or https, got {url!r}"
    if not parts.hostname:
        return f"feed url has no host: {url!r}"
    return None


def load_feeds(path: Path, default_interval: int) -> tuple[FeedConfig, ...]:
    root = load_yaml_nodes(path)
    if root is None:
        return ()
    top = mapping_items(root, path, "feeds.yaml")
    check_keys(top, {"feeds"}, path, "the top level")
    feeds_node = next((v for k, v, _ in top if k == "feeds"), None)
    if feeds_node is None or (isinstance(feeds_node, yaml.ScalarNode) and not feeds_node.value):
        return ()
    if not isinstance(feeds_node, yaml.SequenceNode):
        raise ConfigError(f"{path}:{line_of(feeds_node)}: 'feeds' must be a list")
    feeds: list[FeedConfig] = []
    seen: dict[str, int] = {}
    for entry in feeds_node.value:
        line = line_of(entry)
        if isinstance(entry, yaml.ScalarNode):
            fields: dict[str, Any] = {"url": node_value(entry)}
        else:
            items = mapping_items(entry, path, "a feed")
            check_keys(items, {"url", "name", "interval", "language"}, path, "a feed")
            fields = {k: node_value(v) for k, v, _ in items}
            lines = {k: ln for k, _, ln in items}
            line = lines.get("url", line)
        url = fields.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"{path}:{line}: a feed needs a 'url'")
        url = url.strip()
        problem = validate_feed_url(url)
        if problem:
            raise ConfigError(f"{path}:{line}: {problem}")
        if url in seen:
            raise ConfigError(f"{path}:{line}: feed {url} is already listed at line {seen[url]}")
        seen[url] = line
        interval = fields.get("interval", default_interval)
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < MIN_INTERVAL:
            raise ConfigError(f"{path}:{line}: 'interval' must be a whole number of seconds ≥ 1")
        name = fields.get("name")
        language = fields.get("language", "fr")
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"{path}:{line}: 'name' must be text")
        if not isinstance(language, str) or not language:
            raise ConfigError(f"{path}:{line}: 'language' must be a language code such as fr")
        feeds.append(FeedConfig(url=url, name=name, interval=interval, language=language))
    return tuple(feeds)


# --- notify.yaml --------------------------------------------------------------------------


def check_apprise_url(url: str) -> bool:
    from monitor.notify import load_apprise

    return bool(load_apprise().Apprise().add(url))


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
    names: set[str] = set()
    for entry in node.value:
        line = line_of(entry)
        if isinstance(entry, yaml.ScalarNode):
            fields: dict[str, Any] = {"url": node_value(entry)}
        else:
            items = mapping_items(entry, path, "a target")
            check_keys(items, {"url", "tags", "name"}, path, "a target")
            fields = {k: node_value(v) for k, v, _ in items}
        url = fields.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"{path}:{line}: a target needs an apprise 'url'")
        url = url.strip()
        if not check_apprise_url(url):
            raise ConfigError(f"{path}:{line}: apprise does not accept the URL {redact(url)}")
        tags = fields.get("tags", [])
        if isinstance(tags, str):
            tags = [t for t in tags.replace(",", " ").split() if t]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ConfigError(f"{path}:{line}: 'tags' must be a list of topic ids")
        name = fields.get("name")
        if name is not None and (not isinstance(name, str) or name in names):
            raise ConfigError(f"{path}:{line}: 'name' must be unique text")
        if name:
            names.add(name)
        targets.append(Target(url=url, tags=tuple(tags), name=name))
    return tuple(targets)


def redact(url: str) -> str:
    """A URL without its password or token, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url if len(url) < 60 else url[:40] + "…"


# --- environment --------------------------------------------------------------------------


def _env_number(env: Mapping[str, str], name: str, default: float, integer: bool = False) -> Any:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return int(default) if integer else default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError as e:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"environment {name}={raw!r}: must be {kind}") from e
    if value <= 0:
        raise ConfigError(f"environment {name}={raw!r}: must be greater than 0")
    return value


def load_settings(env: Mapping[str, str] | None = None, *, with_feeds: bool = True) -> Settings:
    """Read the config directory and the environment; raise ConfigError on the first problem."""
    env = os.environ if env is None else env
    config_dir = Path(env.get("MONITOR_CONFIG_DIR") or "config")
    if not config_dir.is_dir():
        raise ConfigError(f"{config_dir}: config directory not found (set MONITOR_CONFIG_DIR)")
    poll_interval = _env_number(env, "MONITOR_POLL_INTERVAL", DEFAULT_POLL_INTERVAL, integer=True)
    limits = FetchLimits(
        connect_timeout=_env_number(env, "MONITOR_CONNECT_TIMEOUT", 10.0),
        deadline=_env_number(env, "MONITOR_FETCH_DEADLINE", 30.0),
        max_body_bytes=_env_number(env, "MONITOR_MAX_BODY_BYTES", 10 * 1024 * 1024, integer=True),
        concurrency=_env_number(env, "MONITOR_CONCURRENCY", 100, integer=True),
        per_host=_env_number(env, "MONITOR_PER_HOST", 4, integer=True),
    )
    feeds = load_feeds(config_dir / FEEDS_FILE, poll_interval) if with_feeds else ()
    notify_urls = env.get("MONITOR_NOTIFY_URLS")
    if notify_urls is not None and notify_urls.strip():
        targets = []
        for url in notify_urls.split():
            if not check_apprise_url(url):
                raise ConfigError(
                    f"environment MONITOR_NOTIFY_URLS: apprise does not accept {redact(url)}"
                )
            targets.append(Target(url=url))
        target_tuple = tuple(targets)
    else:
        target_tuple = load_targets(config_dir / NOTIFY_FILE)
    profile = Path(env.get("MONITOR_PROFILE") or config_dir / TOPICS_FILE)
    database_url = env.get("MONITOR_DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        from sqlalchemy.engine import make_url

        make_url(database_url)
    except Exception as e:
        raise ConfigError(f"environment MONITOR_DATABASE_URL: not a database URL: {e}") from e
    return Settings(
        config_dir=config_dir,
        database_url=database_url,
        broker_url=env.get("MONITOR_BROKER_URL") or DEFAULT_BROKER_URL,
        poll_interval=poll_interval,
        feeds=feeds,
        targets=target_tuple,
        profile_path=profile,
        limits=limits,
        delivery_give_up_hours=_env_number(env, "MONITOR_DELIVERY_GIVE_UP_HOURS", 72.0),
        retry_base_seconds=_env_number(env, "MONITOR_RETRY_BASE_SECONDS", 30.0),
        claim_seconds=_env_number(env, "MONITOR_CLAIM_SECONDS", 300.0),
        lease_seconds=_env_number(env, "MONITOR_LEASE_SECONDS", 120.0),
        log_level=(env.get("MONITOR_LOG_LEVEL") or "INFO").upper(),
        poll_batch=_env_number(env, "MONITOR_POLL_BATCH", 50, integer=True),
    )
