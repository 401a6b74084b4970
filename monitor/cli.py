"""Commands only: parse arguments, call one function, print, set the exit status."""

from __future__ import annotations

import json
import logging
import os
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
    from monitor.redact import redact

    click.echo(f"monitor: error: {redact(message)}", err=True)
    sys.exit(status)


def handles_errors(fn: F) -> F:
    """Project errors become one clear line on stderr: status 2 for configuration and input,
    1 for the rest (a database or network problem)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:
            if not _stdout_closed():
                raise  # a socket or a pool's pipe: a failure, not a reader that had enough
            # `monitor feeds --format jsonl | head -1`: the reader had enough. Not an error:
            # nothing more to write, and nothing flushed at exit to a closed pipe.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except (ConfigError, InputError) as e:
            _fail(str(e), EXIT_USAGE)
        except MonitorError as e:
            _fail(str(e), 1)
        except Exception as e:
            # A database error that no layer turned into a StorageError: still one line.
            from sqlalchemy.exc import SQLAlchemyError

            if not isinstance(e, SQLAlchemyError):
                raise
            from monitor.errors import first_line

            _fail(f"database: {first_line(e, 300)}", 1)

    return wrapper  # type: ignore[return-value]


def _stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader is gone (poll says POLLERR)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no poll here, or stdout is no file
        return False


def _settings(with_feeds: bool = True) -> Any:
    from monitor.redact import install
    from monitor.settings import load_settings

    settings = load_settings(with_feeds=with_feeds)
    install(settings.targets)  # from here on, no log record shows a target's secret
    return settings


# Libraries' own loggers: quiet unless MONITOR_LOG_LEVEL=DEBUG asks for everything (their
# records are redacted like ours: apprise and urllib3 print request URLs that hold tokens).
_LIBRARY_LEVELS = {
    "httpx": ("WARNING", "DEBUG"),
    "httpcore": ("WARNING", "INFO"),
    "apprise": ("WARNING", "DEBUG"),
    "urllib3": ("WARNING", "DEBUG"),
    "alembic": ("WARNING", "INFO"),
}


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name, (usual, debug) in _LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(debug if level == "DEBUG" else usual)


def _legacy_database_message(settings: Any) -> str:
    from monitor.store.db import sqlite_path

    new = sqlite_path(settings.database_url)
    old = settings.legacy_database
    return (
        f"{old} is the database of an earlier version (./monitor.db of the working directory); "
        f"the default is now {new}: move it there (mv {old} {new}) or set "
        f"MONITOR_DATABASE_URL=sqlite:///{old}"
    )


def open_existing_database(settings: Any) -> Any:
    """The database of a command that only reads (matches, feeds, replay, deliveries…): never
    created. A missing one is one line naming it (exit status 1): run `monitor run` or
    `monitor db upgrade` first."""
    from monitor.store.db import NoDatabaseError, open_existing

    try:
        return open_existing(settings.database_url)
    except NoDatabaseError as e:
        if settings.legacy_database:
            raise NoDatabaseError(f"{e}; {_legacy_database_message(settings)}") from e
        raise


def _parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """`--since`: an ISO 8601 date or time (UTC when no offset is given), or a duration back
    from now (`30m`, `24h`, `7d`, `2w`)."""
    from monitor.durations import parse_since

    if value is None:
        return None
    try:
        return parse_since(value, now or datetime.now(UTC))
    except ValueError as e:
        raise InputError(
            f"--since {value!r}: not an ISO 8601 date or time, nor a duration (30m, 24h, 7d)"
        ) from e


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
    from monitor.scheduler import Stopper, run_forever, run_once
    from monitor.settings import FEEDS_FILE, hidden_url
    from monitor.store.db import check_writable

    settings = _settings()
    _setup_logging(settings.log_level)
    log = logging.getLogger("monitor")
    if settings.legacy_database:
        raise ConfigError(_legacy_database_message(settings))
    log.info("config %s, database %s", settings.config_dir, hidden_url(settings.database_url))
    if not settings.feeds:
        log.warning("no feeds in %s: nothing to poll", settings.config_dir / FEEDS_FILE)
    if not settings.targets:
        log.warning(
            "no notification target configured (notify.yaml or MONITOR_NOTIFY_URLS): "
            "matches are stored, alerts are not sent"
        )
    stopper = Stopper.install()  # Ctrl-C from here on stops cleanly; twice exits at once
    rt = Runtime.build(settings)
    if settings.metrics_address:
        from monitor.metrics import serve_http

        serve_http(settings.metrics_address)
    try:
        check_writable(rt.db.engine)
        if once:
            summary = run_once(rt, stopper)
            if summary.feeds and summary.errors == summary.feeds and not stopper.interrupted:
                _fail(
                    f"all {summary.feeds} feeds failed (each one's error is logged above and "
                    "shown by `monitor feeds`)",
                    1,
                )
        else:
            run_forever(rt, stopper.event)
    finally:
        rt.db.dispose()
    if once and stopper.interrupted:
        sys.exit(130)  # the cycle did not finish; `monitor run` stopped by a signal exits 0


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
                '"confidence": {}, '
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
                    "confidence": c.confidence,
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
    import os

    from monitor.classify import load_profile
    from monitor.settings import standalone_profile_path

    profile = load_profile(profile_path or standalone_profile_path(os.environ))
    errors = classify_stream(_read_lines(path), sys.stdout, profile)
    sys.stdout.flush()
    for e in errors:
        click.echo(f"monitor: error: {path if path != '-' else 'stdin'}: {e}", err=True)
    if errors:
        sys.exit(1)


# --- matches, feeds -------------------------------------------------------------------------


def _database() -> Any:
    return open_existing_database(_settings(with_feeds=False))


def _check_topic(topic: str | None) -> None:
    """`--topic` must name a topic of the profile (checked before anything is opened)."""
    if topic is None:
        return
    from monitor.classify import load_profile

    known = set(load_profile(_settings(with_feeds=False).profile_path).topics)
    if topic not in known:
        raise InputError(
            f"--topic {topic!r}: not a topic of the profile ({', '.join(sorted(known))})"
        )


def _print_rows(rows: list[dict[str, Any]], fmt: str, columns: list[tuple[str, int]]) -> None:
    """The rows as JSON Lines (`--format jsonl`) or as a table of these columns."""
    from monitor.views import print_table

    if fmt == "jsonl":
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False, default=str))
    else:
        print_table(rows, columns)


@main.command()
@click.option("--since", help="Only matches at or after this time: ISO 8601, or 30m, 24h, 7d.")
@click.option("--topic", help="Only matches of this topic id.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N rows.")
@handles_errors
def matches(since: str | None, topic: str | None, fmt: str, limit: int | None) -> None:
    """Stored matches, newest first."""
    from monitor.views import list_matches

    since_dt = _parse_since(since)
    _check_topic(topic)
    db = _database()
    rows = list_matches(db, since_dt, topic, limit)
    _print_rows(
        rows,
        fmt,
        [("matched_at", 16), ("topics", 28), ("score", 6), ("title", 70), ("feeds", 30)],
    )


@main.command()
@click.option("--since", help="Only stories an item joined since: ISO 8601, or 30m, 24h, 7d.")
@click.option("--topic", help="Only stories with a match of this topic id.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N stories.")
@handles_errors
def stories(since: str | None, topic: str | None, fmt: str, limit: int | None) -> None:
    """Stories (one per event, one alert each): first and latest item, sources, alerts sent."""
    from monitor.views import list_stories

    since_dt = _parse_since(since)
    _check_topic(topic)
    rows = list_stories(_database(), since_dt, topic, limit)
    if fmt == "table":
        for r in rows:
            r["alerts_by_target"] = [f"{t}:{n}" for t, n in r["alerts"].items()]
            r["first"] = _item_cell(r["first_item"])
            r["latest"] = _item_cell(r["latest_item"])
    _print_rows(
        rows,
        fmt,
        [
            ("id", 6),
            ("last_seen", 16),
            ("items", 5),
            ("source_count", 12),
            ("score", 6),
            ("topics", 24),
            ("title", 50),
            ("first", 28),
            ("latest", 28),
            ("feeds", 30),
            ("alerts_by_target", 30),
        ],
    )


def _item_cell(item: dict[str, Any] | None) -> str:
    """A story's first or latest item in a table cell: when (published, else first seen, UTC)
    and its feeds (the jsonl rows give its title and link too)."""
    if not item:
        return ""
    when = (item["published"] or item["first_seen"] or "")[5:16].replace("T", " ")
    return f"{when} {','.join(item['feeds'])}".strip()


@main.group(invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
@click.pass_context
@handles_errors
def feeds(ctx: click.Context, fmt: str) -> None:
    """Every configured feed with its last poll, status, error and next poll."""
    if ctx.invoked_subcommand is not None:
        return
    from monitor.pipeline import utcnow
    from monitor.store import feeds as feed_store
    from monitor.views import list_feeds

    settings = _settings()
    database = open_existing_database(settings)
    with database.session() as s:  # feeds added to feeds.yaml since the last run are listed too
        feed_store.sync_feeds(s, settings.feeds, utcnow())
    rows = list_feeds(database, utcnow())
    _print_rows(
        rows,
        fmt,
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


# --- deliveries ----------------------------------------------------------------------------


@main.group(invoke_without_command=True)
@click.option(
    "--state",
    type=click.Choice(
        # views.DELIVERY_STATES, spelled out so that `monitor --help` imports no database code
        ["pending", "failed", "dead", "sent", "held", "skipped", "unrouted", "rerouted"]
    ),
    help="Only rows in this state (failed: not delivered yet, the last try failed).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N rows.")
@click.pass_context
@handles_errors
def deliveries(ctx: click.Context, state: str | None, fmt: str, limit: int | None) -> None:
    """The outbox: each alert's row per target, newest first, with its state and why."""
    if ctx.invoked_subcommand is not None:
        return
    from monitor.views import list_deliveries

    rows = list_deliveries(_database(), state, limit)
    _print_rows(rows, fmt, [("id", 6), ("state", 9), ("kind", 6), ("target", 30),
                            ("created", 16), ("attempts", 8), ("title", 50), ("reason", 40),
                            ("last_error", 40)])  # fmt: skip


@deliveries.command(name="retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--dead", "all_dead", is_flag=True, help="Every dead delivery.")
@handles_errors
def deliveries_retry(ids: tuple[int, ...], all_dead: bool) -> None:
    """Send again: the given deliveries (dead or failed), or every dead one (--dead)."""
    from monitor.pipeline import utcnow
    from monitor.store import outbox

    if bool(ids) == all_dead:
        raise InputError("give delivery ids or --dead (one of them)")
    db = _database()
    with db.session() as s:
        if ids:
            unknown = outbox.unknown_deliveries(s, ids)
            if unknown:
                raise InputError(
                    f"no delivery {', '.join(map(str, unknown))} (see monitor deliveries)"
                )
        n = outbox.retry(s, list(ids) if ids else None, utcnow())
        if ids and n < len(ids):  # nothing is written (the transaction rolls back)
            raise InputError(
                f"{len(ids) - n} of the given deliveries are neither dead nor failed "
                "(see monitor deliveries --state failed|dead)"
            )
    click.echo(f"{n} deliveries will be sent again by the next delivery pass")


# --- db, notify -----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command()
@handles_errors
def upgrade() -> None:
    """Create or migrate the schema (Alembic)."""
    from monitor.settings import hidden_url
    from monitor.store import Database
    from monitor.store import upgrade as do_upgrade

    settings = _settings(with_feeds=False)
    _setup_logging(settings.log_level)
    if settings.legacy_database:
        raise ConfigError(_legacy_database_message(settings))
    database = Database(settings.database_url)
    rev = do_upgrade(database.engine)
    click.echo(f"database {hidden_url(settings.database_url)} at revision {rev}")


@db.command()
@click.option(
    "--older-than",
    default=None,
    help="Remove the text of unmatched items first seen longer ago than this (e.g. 30d; "
    "default MONITOR_RETENTION_DAYS).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; write nothing.")
@handles_errors
def prune(older_than: str | None, dry_run: bool) -> None:
    """Apply retention now: empty old unmatched items, forget those gone from their feeds,
    and give the space back."""
    from monitor.durations import parse_duration
    from monitor.maintenance import describe
    from monitor.maintenance import prune as do_prune
    from monitor.retention import plan

    age = None
    if older_than is not None:
        try:
            age = parse_duration(older_than)
        except ValueError as e:
            raise InputError(f"--older-than: {e}") from e
    settings = _settings(with_feeds=False)
    database = _database()
    now = datetime.now(UTC)
    report = do_prune(database, plan(settings.retention, now, age), now, dry_run, full_vacuum=True)
    click.echo(describe(report))


@main.group()
def notify() -> None:
    """Notification targets."""


@notify.command(name="test")
@handles_errors
def notify_test() -> None:
    """Send a test alert to every target and say which failed."""
    from monitor.notify import test_targets
    from monitor.redact import capture_reasons, redact

    settings = _settings(with_feeds=False)
    _setup_logging(settings.log_level)
    if not settings.targets:
        raise ConfigError("no notification target configured (notify.yaml or MONITOR_NOTIFY_URLS)")
    failed = 0
    for target in settings.targets:
        with capture_reasons() as reasons:  # apprise says why only in its log
            [(_, error)] = test_targets([target])
        name = target.key
        if error:
            failed += 1
            error = error.replace(f"target {name!r} did not accept the message", "not accepted")
            why = f" (apprise: {'; '.join(reasons)})" if reasons else ""
            click.echo(redact(f"FAILED  {name}: {error}{why}"))
        else:
            click.echo(redact(f"ok      {name}"))
    if failed:
        sys.exit(1)


# --- replay, profile ------------------------------------------------------------------------


@main.command()
@click.option(
    "--since", help="Only items first seen at or after this time: ISO 8601, or 30m, 24h, 7d."
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(dir_okay=False),
    help="The profile to try (default: the current one).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
@click.option(
    "--feedback",
    "on_feedback",
    is_flag=True,
    help="Only the stories analysts gave feedback on: what the profile does to each.",
)
@handles_errors
def replay(since: str | None, profile_path: str | None, fmt: str, on_feedback: bool) -> None:
    """Re-score stored items with a profile: what it would alert, and what changes."""
    from monitor.classify import load_profile
    from monitor.views import replay_items

    settings = _settings(with_feeds=False)
    current = load_profile(settings.profile_path)
    candidate = load_profile(profile_path) if profile_path else current
    since_dt = _parse_since(since)  # bad input fails before anything is opened or written
    db = _database()
    if on_feedback:
        _replay_feedback(db, current, candidate, fmt)
        return
    rows, totals = replay_items(db, current, candidate, since_dt)
    _print_rows(rows, fmt, [("change", 8), ("topics", 30), ("was", 30), ("title", 80)])
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
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False),
              help="The profile to judge (default: the current one).")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@handles_errors
def evaluate(profile_path: str | None, fmt: str) -> None:
    """Precision and recall of a profile against the feedback given in the web window."""
    from monitor.classify import load_profile
    from monitor.web.feedback import evaluate_profile

    settings = _settings(with_feeds=False)
    chosen = load_profile(profile_path or settings.profile_path)
    report = evaluate_profile(_database(), chosen)
    if fmt == "json":
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    if not report["stories"]:
        click.echo("no feedback yet: give some on the story pages of `monitor serve`")
        return
    click.echo(
        f"profile {report['profile']}: {report['stories']} stories with feedback "
        f"({report['relevant']} relevant to some topic, {report['noise']} noise)"
    )
    click.echo(f"{'topic':<24} {'precision':>9} {'recall':>7} {'tp':>4} {'fp':>4} {'fn':>4}")
    for r in report["scores"]:
        p = "—" if r["precision"] is None else f"{r['precision']:.3f}"
        rc = "—" if r["recall"] is None else f"{r['recall']:.3f}"
        click.echo(f"{r['name']:<24} {p:>9} {rc:>7} {r['tp']:>4} {r['fp']:>4} {r['fn']:>4}")


def _replay_feedback(db: Any, current: Any, candidate: Any, fmt: str) -> None:
    from monitor.web.feedback import replay_feedback

    rows = replay_feedback(db, current, candidate)
    _print_rows(rows, fmt, [("change", 9), ("feedback", 30), ("was", 30), ("topics", 30),
                            ("title", 60)])  # fmt: skip
    counts = {k: sum(r["change"] == k for r in rows) for k in ("better", "worse", "different")}
    click.echo(
        f"{len(rows)} stories with feedback: {counts['better']} closer to the feedback with the "
        f"new profile, {counts['worse']} further from it, {counts['different']} otherwise changed",
        err=fmt == "jsonl",
    )


# --- serve ----------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@handles_errors
def serve(host: str, port: int) -> None:
    """The web window: timeline, stories, feedback, feeds, deliveries, API, health, metrics."""
    import uvicorn

    from monitor.classify import load_profile
    from monitor.events import grouping_params, profile_aliases
    from monitor.web.app import Window, create_app

    settings = _settings(with_feeds=False)
    _setup_logging(settings.log_level)
    log = logging.getLogger("monitor.serve")
    profile = load_profile(settings.profile_path)
    topics = list(profile.topics)
    db = _database()
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.web_token:
        log.warning("listening on %s without MONITOR_WEB_TOKEN: anyone who reaches it can give "
                    "feedback and retry deliveries", host)  # fmt: skip
    app = create_app(
        Window(
            db=db,
            topics=topics,
            token=settings.web_token,
            public_url=settings.public_url,
            health_max_age=settings.health_max_age,
            aliases=profile_aliases(profile),
            params=grouping_params(settings.grouping),
            targets=settings.targets,
        )
    )
    log.info("serving http://%s:%d/ (database %s)", host, port, db.engine.url.render_as_string())
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)


@profile.command()
@click.option("--data", "data", multiple=True, type=click.Path(dir_okay=False),
              help="Labelled JSON Lines (title, summary, topics); repeatable.")  # fmt: skip
@click.option("--feedback", is_flag=True, help="Also the feedback given in the web window.")
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False),
              help="The profile the model serves (default: the current one).")  # fmt: skip
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Model file (default: beside the profile, NAME.model.json).")  # fmt: skip
@click.option("--cv", is_flag=True, help="First print cross-validated figures, rules alone "
              "against rules + model (five times the training time).")  # fmt: skip
@handles_errors
def train(
    data: tuple[str, ...], feedback: bool, profile_path: str | None, out_path: str | None, cv: bool
) -> None:
    """Train the statistical second stage of a profile from labelled items."""
    import os

    from monitor.classify import load_profile
    from monitor.classify.model import model_path_for, save_model
    from monitor.classify.train import (
        cross_validate,
        read_examples,
        score_predictions,
        train_model,
    )
    from monitor.settings import standalone_profile_path

    if not data and not feedback:
        raise InputError("nothing to train on: give --data FILE.jsonl and/or --feedback")
    try:
        import sklearn  # noqa: F401
    except ImportError as e:
        raise InputError(
            "training needs scikit-learn: pip install 'monitor[train]' (running a trained "
            "model does not)"
        ) from e
    settings = _settings(with_feeds=False) if feedback else None
    if profile_path:
        path = Path(profile_path)
    elif settings is not None:
        path = Path(settings.profile_path)
    else:
        path = standalone_profile_path(os.environ)
    chosen = load_profile(path, with_model=False)
    examples = [ex for f in data for ex in read_examples(Path(f))]
    if feedback:
        from monitor.web.feedback import feedback_examples

        found = feedback_examples(_database())
        click.echo(f"{len(found)} items of stories with feedback", err=True)
        examples += found
    unknown = sorted({t for ex in examples for t in ex.topics} - set(chosen.topics))
    if unknown:
        raise InputError(f"labels name topics the profile does not have: {', '.join(unknown)}")
    if not examples:
        raise InputError("no labelled items found")
    topics = list(chosen.topics)
    if cv:
        v, rules, combined = cross_validate(chosen, examples)
        r_all = score_predictions(v.labels, rules, topics)
        c_all = score_predictions(v.labels, combined, topics)
        click.echo(f"{'cross-validated':<24} {'rules P':>8} {'R':>6} {'+model P':>9} {'R':>6}")
        for t in (*topics, "relevance"):
            a, b = r_all[t], c_all[t]
            click.echo(f"{t:<24} {a.precision:>8.3f} {a.recall:>6.3f} {b.precision:>9.3f} "
                       f"{b.recall:>6.3f}")  # fmt: skip
    model = train_model(
        chosen,
        examples,
        trained_on={"data": [Path(f).name for f in data] + (["feedback"] if feedback else [])},
    )
    out = Path(out_path) if out_path else model_path_for(path)
    try:
        save_model(model, out)
    except OSError as e:
        raise InputError(f"{out}: {e.strerror}") from e
    counts = {t: sum(t in ex.topics for ex in examples) for t in topics}
    click.echo(
        f"wrote {out}: {len(examples)} items ({', '.join(f'{t} {n}' for t, n in counts.items())}"
        f", none {sum(not ex.topics for ex in examples)}), {len(model.table)} features"
    )


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
