"""Commands only: parse arguments, call one function, print, set the exit status."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from monitor.errors import ConfigError, InputError, MonitorError

F = TypeVar("F", bound=Callable[..., Any])
EXIT_USAGE = 2


def _fail(message: str, status: int = EXIT_USAGE) -> None:
    click.echo(f"monitor: error: {message}", err=True)
    sys.exit(status)


def handles_errors(fn: F) -> F:
    """Project errors become one clear line on stderr: status 2 for configuration and input,
    1 for the rest (a database or network problem)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, InputError) as e:
            _fail(str(e), EXIT_USAGE)
        except MonitorError as e:
            _fail(str(e), 1)

    return wrapper  # type: ignore[return-value]


def _settings(with_feeds: bool = True) -> Any:
    from monitor.settings import load_settings

    return load_settings(with_feeds=with_feeds)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "apprise"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise InputError(f"--since {value!r}: not an ISO 8601 date or time") from e
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="monitor")
def main() -> None:
    """Watch French news feeds and alert on the topics of a profile."""


# --- run ------------------------------------------------------------------------------------


@main.command()
@click.option("--once", is_flag=True, help="One polling cycle over every feed, then exit.")
@handles_errors
def run(once: bool) -> None:
    """Poll the feeds, classify, store and alert (embedded mode: no broker needed)."""
    from monitor.pipeline import Runtime
    from monitor.scheduler import run_forever, run_once

    settings = _settings()
    _setup_logging(settings.log_level)
    if not settings.targets:
        logging.getLogger("monitor").warning(
            "no notification target configured (notify.yaml or MONITOR_NOTIFY_URLS): "
            "matches are stored, alerts are not sent"
        )
    rt = Runtime.build(settings)
    try:
        if once:
            summary = run_once(rt)
            if summary.feeds and summary.errors == summary.feeds:
                sys.exit(1)
        else:
            run_forever(rt)
    finally:
        rt.db.dispose()


# --- classify -------------------------------------------------------------------------------


def _read_lines(path: str) -> Iterator[str]:
    if path == "-":
        yield from sys.stdin
        return
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from f
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from e


def _item_from_json(obj: Any) -> Any:
    from monitor.text import clean_text
    from monitor.types import Item

    if not isinstance(obj, dict):
        raise ValueError("a line must be a JSON object")
    ident = obj.get("id")
    if not isinstance(ident, (str, int)) or isinstance(ident, bool) or ident == "":
        raise ValueError("'id' must be a non-empty string")
    for name in ("title", "summary", "content", "link"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            raise ValueError(f"'{name}' must be a string")
    title = clean_text(obj.get("title"), 500)
    summary = clean_text(obj.get("summary"), 4000)
    if not title and not summary:
        raise ValueError("needs a 'title' or a 'summary'")
    return str(ident), Item(
        key=str(ident),
        guid=None,
        link=obj.get("link"),
        title=title,
        summary=summary,
        content=clean_text(obj.get("content"), 20000),
    )


def classify_stream(lines: Iterator[str], out: TextIO, profile: Any) -> list[str]:
    """Classify JSON Lines; return the error messages (one per malformed line)."""
    from monitor.classify import scorer_for

    scorer = scorer_for(profile)
    errors: list[str] = []
    write = out.write
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            ident, item = _item_from_json(json.loads(line))
        except ValueError as e:  # JSONDecodeError is a ValueError
            errors.append(f"line {n}: {e}")
            write(
                '{"id": null, "match": false, "topics": [], "scores": {}, "evidence": [], '
                f'"error": {json.dumps(f"line {n}: {e}", ensure_ascii=False)}}}\n'
            )
            continue
        c = scorer.classify(item)
        write(
            json.dumps(
                {
                    "id": ident,
                    "match": c.match,
                    "topics": list(c.topics),
                    "scores": c.scores,
                    "evidence": [e.as_dict() for e in c.evidence],
                },
                ensure_ascii=False,
            )
            + "\n"
        )
    return errors


@main.command(name="classify")
@click.argument("path", default="-")
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False), help="Topic profile.")
@handles_errors
def classify_cmd(path: str, profile_path: str | None) -> None:
    """Classify JSON Lines items (id, title, summary[, link, content]) without polling."""
    from monitor.classify import load_profile

    if profile_path is None:
        import os

        config_dir = Path(os.environ.get("MONITOR_CONFIG_DIR") or "config")
        profile_path = os.environ.get("MONITOR_PROFILE") or str(config_dir / "topics.yaml")
    profile = load_profile(profile_path)
    errors = classify_stream(_read_lines(path), sys.stdout, profile)
    sys.stdout.flush()
    for e in errors:
        click.echo(f"monitor: error: {path if path != '-' else 'stdin'}: {e}", err=True)
    if errors:
        sys.exit(1)


# --- matches, feeds -------------------------------------------------------------------------


def _database() -> Any:
    from monitor.pipeline import Runtime

    settings = _settings(with_feeds=False)
    return Runtime.build(settings).db


@main.command()
@click.option("--since", help="Only matches at or after this ISO 8601 time.")
@click.option("--topic", help="Only matches of this topic id.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N rows.")
@handles_errors
def matches(since: str | None, topic: str | None, fmt: str, limit: int | None) -> None:
    """Stored matches, newest first."""
    from monitor.views import list_matches, print_table

    since_dt = _parse_since(since)
    if topic is not None:
        from monitor.classify import load_profile

        known = set(load_profile(_settings(with_feeds=False).profile_path).topics)
        if topic not in known:
            raise InputError(
                f"--topic {topic!r}: not a topic of the profile ({', '.join(sorted(known))})"
            )
    db = _database()
    rows = list_matches(db, since_dt, topic, limit)
    if fmt == "jsonl":
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False, default=str))
    else:
        print_table(
            rows,
            [("matched_at", 16), ("topics", 28), ("score", 6), ("title", 70), ("feeds", 30)],
        )


@main.group(invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
@click.pass_context
@handles_errors
def feeds(ctx: click.Context, fmt: str) -> None:
    """Every configured feed with its last poll, status, error and next poll."""
    if ctx.invoked_subcommand is not None:
        return
    from monitor.pipeline import Runtime, sync_feeds
    from monitor.views import list_feeds, print_table

    settings = _settings()
    rt = Runtime.build(settings)
    sync_feeds(rt)
    rows = list_feeds(rt.db)
    if fmt == "jsonl":
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False, default=str))
    else:
        print_table(
            rows,
            [
                ("url", 50),
                ("last_polled", 16),
                ("last_status", 12),
                ("error", 40),
                ("next_poll", 16),
            ],
        )


@feeds.command(name="import-opml")
@click.argument("file", type=click.Path(dir_okay=False))
@handles_errors
def import_opml(file: str) -> None:
    """Add the feeds of an OPML export to feeds.yaml."""
    from monitor.opml import import_into_feeds_file
    from monitor.settings import FEEDS_FILE

    settings = _settings()
    report = import_into_feeds_file(Path(file), settings.config_dir / FEEDS_FILE)
    for line in report.lines():
        click.echo(line)


# --- db, notify -----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command()
@handles_errors
def upgrade() -> None:
    """Create or migrate the schema (Alembic)."""
    from monitor.store import Database
    from monitor.store import upgrade as do_upgrade

    settings = _settings(with_feeds=False)
    database = Database(settings.database_url)
    rev = do_upgrade(database.engine)
    click.echo(f"database at revision {rev}")


@main.group()
def notify() -> None:
    """Notification targets."""


@notify.command(name="test")
@handles_errors
def notify_test() -> None:
    """Send a test alert to every target and say which failed."""
    from monitor.notify import test_targets
    from monitor.settings import redact

    settings = _settings(with_feeds=False)
    if not settings.targets:
        raise ConfigError("no notification target configured (notify.yaml or MONITOR_NOTIFY_URLS)")
    failed = 0
    for target, error in test_targets(settings.targets):
        name = target.name or redact(target.url)
        if error:
            failed += 1
            click.echo(f"FAILED  {name}: {error}")
        else:
            click.echo(f"ok      {name}")
    if failed:
        sys.exit(1)


# --- replay, profile ------------------------------------------------------------------------


@main.command()
@click.option("--since", help="Only items first seen at or after this ISO 8601 time.")
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(dir_okay=False),
    help="The profile to try (default: the current one).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
@handles_errors
def replay(since: str | None, profile_path: str | None, fmt: str) -> None:
    """Re-score stored items with a profile: what it would alert, and what changes."""
    from monitor.classify import load_profile
    from monitor.views import print_table, replay_items

    settings = _settings(with_feeds=False)
    current = load_profile(settings.profile_path)
    candidate = load_profile(profile_path) if profile_path else current
    since_dt = _parse_since(since)  # bad input fails before anything is opened or written
    db = _database()
    rows, totals = replay_items(db, current, candidate, since_dt)
    if fmt == "jsonl":
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False, default=str))
    else:
        print_table(rows, [("change", 8), ("topics", 30), ("was", 30), ("title", 80)])
    click.echo(
        f"{totals['items']} items: {totals['would_alert']} would alert with the new profile "
        f"({totals['current']} with the current one); {totals['added']} added, "
        f"{totals['removed']} removed, {totals['changed']} with other topics",
        err=fmt == "jsonl",
    )


@main.group()
def profile() -> None:
    """Topic profiles."""


@profile.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--background",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Ordinary news (text, RSS or JSONL) to contrast with; repeatable.",
)
@click.option("--top", type=click.IntRange(5, 500), default=60, help="Terms to propose.")
@click.option("--topic", default="new_topic", help="Topic id of the proposed profile.")
@handles_errors
def learn(files: tuple[str, ...], background: tuple[str, ...], top: int, topic: str) -> None:
    """Propose weighted terms, names and phrases from example articles, as YAML to curate."""
    from monitor.classify.learn import learn_profile

    click.echo(learn_profile([Path(f) for f in files], [Path(b) for b in background], top, topic))


if __name__ == "__main__":
    main()
