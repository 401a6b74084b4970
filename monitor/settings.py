"""Config directory + environment, validated once. Every error names its file and line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from monitor.classify.profile import default_profile_path
from monitor.errors import ConfigError, first_line
from monitor.retention import DEFAULT_UNMATCHED_DAYS, Retention
from monitor.targets import load_targets, targets_from_env
from monitor.types import FeedConfig, FetchLimits, Target, strip_secrets
from monitor.yamlconf import check_keys, line_of, load_yaml_nodes, mapping_items, node_value

DATABASE_FILE = "monitor.db"  # the default SQLite database, inside the config directory
DEFAULT_DATABASE_URL = (
    f"sqlite:///<config dir>/{DATABASE_FILE}"  # shown in help; see database_url_for
)
SUPPORTED_DATABASES = ("sqlite", "postgresql")  # SQLAlchemy dialects: the drivers we install
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_BROKER_URL = "redis://localhost:6379/0"
DEFAULT_POLL_INTERVAL = 300
MIN_INTERVAL = 1

FEEDS_FILE = "feeds.yaml"
TOPICS_FILE = "topics.yaml"
NOTIFY_FILE = "notify.yaml"

# Every environment variable the program reads; docker-compose and the README use these.
ENV_VARS: dict[str, str] = {
    "MONITOR_CONFIG_DIR": (
        "config directory (default: the user's config directory when it exists, else ./config)"
    ),
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
    "MONITOR_LOG_LEVEL": f"logging level, one of {', '.join(LOG_LEVELS)} (default INFO)",
    "MONITOR_RETENTION_DAYS": "unmatched items' text is removed after this many days (30)",
    "MONITOR_RETENTION_MATCHED_DAYS": "matched items and stories removed after (default: never)",
    "MONITOR_WEB_TOKEN": "token every change made through `monitor serve` needs (default: none)",
    "MONITOR_PUBLIC_URL": "base URL of `monitor serve` as analysts reach it; alerts link there",
    "MONITOR_METRICS_PORT": "[HOST:]PORT where `monitor run` and each Celery worker serve /metrics",
    "MONITOR_HEALTH_MAX_AGE": "seconds since the last polling cycle before /healthz fails (300)",
    "MONITOR_POLL_BATCH": "feeds in one Celery poll task, fetched concurrently (default 50)",
    "MONITOR_GROUPING": "wide (default), learned (wide + the learned join) or strict (words only)",
}
# How matched items are grouped into stories (monitor.events.grouping_params): `wide` also
# joins by kind of happening, specific name and figure; `learned` also by the learned join;
# `strict` by words and copies only.
Grouping = Literal["wide", "learned", "strict"]
GROUPINGS: tuple[Grouping, ...] = ("wide", "learned", "strict")


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    database_url: str = ""  # load_settings fills it: MONITOR_DATABASE_URL or database_url_for()
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
    retention: Retention = field(default_factory=Retention)
    # The old default (./monitor.db of the working directory) when it exists and the default
    # database does not: `run` refuses to start a second database beside it (issue 10 item 2).
    legacy_database: Path | None = None
    web_token: str | None = None
    public_url: str | None = None
    metrics_address: tuple[str, int] | None = None
    health_max_age: float = 300.0
    poll_batch: int = 50
    grouping: Grouping = "wide"


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
        at: dict[str, int] = {}  # each key's own line (a bare URL entry has none)
        if isinstance(entry, yaml.ScalarNode):
            fields: dict[str, Any] = {"url": node_value(entry)}
        else:
            items = mapping_items(entry, path, "a feed")
            check_keys(items, {"url", "name", "interval", "language"}, path, "a feed")
            fields = {k: node_value(v) for k, v, _ in items}
            at = {k: ln for k, _, ln in items}
            line = at.get("url", line)
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
            raise ConfigError(
                f"{path}:{at.get('interval', line)}: 'interval' must be a whole number of "
                f"seconds ≥ 1, got {interval!r}"
            )
        name = fields.get("name")
        language = fields.get("language", "fr")
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"{path}:{at.get('name', line)}: 'name' must be text, got {name!r}")
        if not isinstance(language, str) or not language:
            raise ConfigError(
                f"{path}:{at.get('language', line)}: 'language' must be a language code such "
                f"as fr, got {language!r}"
            )
        feeds.append(FeedConfig(url=url, name=name, interval=interval, language=language))
    return tuple(feeds)


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


def user_config_dir() -> Path:
    """The per-user config directory (~/.config/monitor on Linux, the platform's own elsewhere)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("monitor", appauthor=False))


def resolve_config_dir(env: Mapping[str, str]) -> Path:
    """MONITOR_CONFIG_DIR; else the user's config directory when it exists; else ./config when
    it exists (the README's start from the repository root). An absolute path, so that what is
    stored beside it does not depend on the working directory."""
    named = env.get("MONITOR_CONFIG_DIR")
    if named:
        config_dir = Path(named).expanduser()
        if not config_dir.is_dir():
            raise ConfigError(
                f"{config_dir}: config directory not found (environment MONITOR_CONFIG_DIR)"
            )
        return config_dir.resolve()
    for candidate in (user_config_dir(), Path("config")):
        if candidate.is_dir():
            return candidate.resolve()
    raise ConfigError(
        f"no config directory: create {user_config_dir()} or ./config (feeds.yaml, topics.yaml, "
        "notify.yaml), or set MONITOR_CONFIG_DIR"
    )


def database_url_for(config_dir: Path) -> str:
    """The default database: a SQLite file inside the config directory, so that one config has
    one database wherever the command is run from."""
    return f"sqlite:///{config_dir.resolve() / DATABASE_FILE}"


def hidden_url(url: str) -> str:
    """A database URL fit for logs and messages: the password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return strip_secrets(url)


def check_database_url(url: str) -> None:
    """A URL whose dialect we can open, or a ConfigError saying which are supported."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception as e:
        raise ConfigError(
            f"environment MONITOR_DATABASE_URL: not a database URL ({first_line(e)}); "
            "supported: sqlite:///path/monitor.db, postgresql://user@host/db"
        ) from e
    dialect = u.get_backend_name()
    dialect = "postgresql" if dialect == "postgres" else dialect
    if dialect not in SUPPORTED_DATABASES:
        raise ConfigError(
            f"environment MONITOR_DATABASE_URL={hidden_url(url)}: {dialect} is not supported "
            "(supported: sqlite:///path/monitor.db, postgresql://user@host/db)"
        )


def resolve_profile_path(env: Mapping[str, str], config_dir: Path) -> Path:
    """MONITOR_PROFILE; else <config dir>/topics.yaml; else the packaged profile when neither
    exists (a missing MONITOR_PROFILE is still an error, reported when it is loaded)."""
    named = env.get("MONITOR_PROFILE")
    if named:
        return Path(named)
    own = config_dir / TOPICS_FILE
    return own if own.exists() else default_profile_path()


def standalone_profile_path(env: Mapping[str, str]) -> Path:
    """The profile of a command that needs no config directory (`monitor classify`): the
    same rules as `run`, and the packaged profile when there is no config directory at all."""
    if env.get("MONITOR_PROFILE"):
        return Path(env["MONITOR_PROFILE"])
    try:
        config_dir = resolve_config_dir(env)
    except ConfigError:
        if env.get("MONITOR_CONFIG_DIR"):
            raise  # a directory named but missing is a mistake, not "no config"
        return default_profile_path()
    return resolve_profile_path(env, config_dir)


def check_log_level(env: Mapping[str, str]) -> str:
    raw = env.get("MONITOR_LOG_LEVEL") or "INFO"
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"environment MONITOR_LOG_LEVEL={raw!r}: not a logging level "
            f"(one of {', '.join(LOG_LEVELS)})"
        )
    return level


def legacy_database(database_url: str) -> Path | None:
    """./monitor.db of the working directory (the default before the database moved into the
    config directory) when it exists and the default database does not."""
    old = Path(DATABASE_FILE).resolve()
    new = Path(database_url.removeprefix("sqlite:///"))
    if old != new and old.is_file() and not new.exists():
        return old
    return None


def load_settings(env: Mapping[str, str] | None = None, *, with_feeds: bool = True) -> Settings:
    """Read the config directory and the environment; raise ConfigError on the first problem."""
    env = os.environ if env is None else env
    config_dir = resolve_config_dir(env)
    log_level = check_log_level(env)
    database_url = env.get("MONITOR_DATABASE_URL") or database_url_for(config_dir)
    check_database_url(database_url)
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
        target_tuple = targets_from_env(notify_urls)
    else:
        target_tuple = load_targets(config_dir / NOTIFY_FILE)
    return Settings(
        config_dir=config_dir,
        database_url=database_url,
        broker_url=env.get("MONITOR_BROKER_URL") or DEFAULT_BROKER_URL,
        poll_interval=poll_interval,
        feeds=feeds,
        targets=target_tuple,
        profile_path=resolve_profile_path(env, config_dir),
        limits=limits,
        delivery_give_up_hours=_env_number(env, "MONITOR_DELIVERY_GIVE_UP_HOURS", 72.0),
        retry_base_seconds=_env_number(env, "MONITOR_RETRY_BASE_SECONDS", 30.0),
        claim_seconds=_env_number(env, "MONITOR_CLAIM_SECONDS", 300.0),
        lease_seconds=_env_number(env, "MONITOR_LEASE_SECONDS", 120.0),
        log_level=log_level,
        retention=Retention(
            unmatched_days=_env_number(env, "MONITOR_RETENTION_DAYS", DEFAULT_UNMATCHED_DAYS),
            matched_days=(
                _env_number(env, "MONITOR_RETENTION_MATCHED_DAYS", 1.0)
                if env.get("MONITOR_RETENTION_MATCHED_DAYS", "").strip()
                else None
            ),
        ),
        legacy_database=(
            None if env.get("MONITOR_DATABASE_URL") else legacy_database(database_url)
        ),
        web_token=env.get("MONITOR_WEB_TOKEN") or None,
        public_url=_public_url(env.get("MONITOR_PUBLIC_URL")),
        metrics_address=_metrics_address(env.get("MONITOR_METRICS_PORT")),
        health_max_age=_env_number(env, "MONITOR_HEALTH_MAX_AGE", 300.0),
        poll_batch=_env_number(env, "MONITOR_POLL_BATCH", 50, integer=True),
        grouping=_grouping(env.get("MONITOR_GROUPING")),
    )


def _grouping(raw: str | None) -> Grouping:
    value = (raw or "").strip() or "wide"
    for known in GROUPINGS:
        if value == known:
            return known
    raise ConfigError(
        f"environment MONITOR_GROUPING={raw!r}: must be one of {', '.join(GROUPINGS)}"
    )


def _public_url(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"environment MONITOR_PUBLIC_URL={raw!r}: must be an http(s) URL")
    return raw.strip().rstrip("/")


def _metrics_address(raw: str | None) -> tuple[str, int] | None:
    """MONITOR_METRICS_PORT: `9100` (on 127.0.0.1) or `HOST:PORT`."""
    if raw is None or not raw.strip():
        return None
    host, _, port = raw.strip().rpartition(":")
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"environment MONITOR_METRICS_PORT={raw!r}: must be PORT or HOST:PORT")
    return (host.strip("[]") or "127.0.0.1", int(port))
