"""JSON API, topic feeds (Atom, JSON Feed), /healthz and /metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from monitor import metrics as pipeline_metrics
from monitor.errors import InputError, first_line
from monitor.feed_health import FEED_WINDOW, feed_row
from monitor.links import story_url
from monitor.store import Database, browse, heartbeat
from monitor.web import present, syndication
from monitor.web.present import delivery_error, display_target, story_state
from monitor.web.window import Window, window

log = logging.getLogger("monitor.serve")
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
FEED_ENTRIES = 50


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def story_json(s: browse.StoryView, site: str, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.id,
        "url": story_url(site, s.id),
        "title": s.title,
        "link": s.link,
        "first_seen": _iso(s.first_seen),
        "topics": list(s.topics),
        "scores": s.scores,
        "score": s.score,
        "why": s.why,
        "sources": [{"feed": src.feed, "feed_url": src.feed_url} for src in s.sources],
        "alert": {
            "state": story_state(s),
            "created_at": _iso(s.alerted_at),
            "deliveries": [
                {
                    "id": d.id,
                    "target": display_target(d.target),
                    "state": d.state,
                    "attempts": d.attempts,
                    "last_error": delivery_error(d) or None,
                    "sent_at": _iso(d.sent_at),
                }
                for d in s.deliveries
            ],
        },
        "feedback": [
            {
                "verdict": f.verdict,
                "topic": f.topic,
                "correct_topic": f.correct_topic,
                "who": f.who,
                "at": _iso(f.created_at),
            }
            for f in s.feedback
        ],
    }
    if detail:
        out["items"] = [
            {
                "id": i.id,
                "title": i.title,
                "link": i.link,
                "published": _iso(i.published),
                "first_seen": _iso(i.first_seen),
                "feeds": [src.feed for src in i.sources],
                "topics": list(i.topics),
                "scores": i.scores,
                "evidence": list(i.evidence),
                "why": i.why,
            }
            for i in s.items
        ]
    return out


def _filters(request: Request, w: Window) -> tuple[str | None, datetime | None, int, int]:
    q = request.query_params
    topic = q.get("topic") or None
    if topic is not None and topic not in w.topics:
        raise InputError(f"topic={topic!r}: not a topic of the profile ({', '.join(w.topics)})")
    since = present.parse_since(q.get("since"), w.clock())
    try:
        page = int(q.get("page", "1"))
        per_page = int(q.get("per_page", str(DEFAULT_PER_PAGE)))
    except ValueError as e:
        raise InputError("page and per_page must be whole numbers") from e
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise InputError(f"page must be ≥ 1 and per_page between 1 and {MAX_PER_PAGE}")
    return topic, since, page, per_page


def _next_url(request: Request, page: int) -> str:
    params = dict(request.query_params)
    params["page"] = str(page + 1)
    return f"{request.url.path}?{urlencode(params)}"


async def stories(request: Request) -> Response:
    w = window(request)
    try:
        topic, since, page, per_page = _filters(request, w)
    except InputError as e:
        return _error(str(e))

    def load() -> tuple[list[browse.StoryView], int]:
        with w.db.session() as s:
            return browse.story_page(s, topic, since, per_page, (page - 1) * per_page)

    rows, total = await asyncio.to_thread(load)
    site = w.site(request)
    return JSONResponse(
        {
            "stories": [story_json(s, site) for s in rows],
            "page": page,
            "per_page": per_page,
            "total": total,
            "next": _next_url(request, page) if page * per_page < total else None,
        }
    )


async def story(request: Request) -> Response:
    w = window(request)
    sid = int(request.path_params["story_id"])
    found = await asyncio.to_thread(w.load_story, sid)
    if found is None:
        return _error(f"no story {sid}", 404)
    return JSONResponse(story_json(found, w.site(request), detail=True))


async def feeds(request: Request) -> Response:
    w = window(request)
    now = w.clock()
    try:
        page = int(request.query_params.get("page", "1"))
        per_page = int(request.query_params.get("per_page", str(MAX_PER_PAGE)))
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError
    except ValueError:
        return _error(f"page must be ≥ 1 and per_page between 1 and {MAX_PER_PAGE}")

    def load() -> list[browse.FeedView]:
        with w.db.session() as s:
            return browse.list_feeds(s, now - FEED_WINDOW)

    rows = await asyncio.to_thread(load)
    out = [feed_row(f, now) for f in rows[(page - 1) * per_page : page * per_page]]
    more = page * per_page < len(rows)
    return JSONResponse(
        {
            "feeds": out,
            "page": page,
            "per_page": per_page,
            "total": len(rows),
            "next": _next_url(request, page) if more else None,
        }
    )


# --- topic feeds ----------------------------------------------------------------------------


async def _topic_stories(request: Request) -> tuple[str, list[browse.StoryView]] | Response:
    w = window(request)
    topic = str(request.path_params["topic"])
    if topic not in w.topics:
        return _error(f"no topic {topic!r} in the profile ({', '.join(w.topics)})", 404)

    def load() -> list[browse.StoryView]:
        with w.db.session() as s:
            return browse.story_page(s, topic, None, FEED_ENTRIES, 0)[0]

    return topic, await asyncio.to_thread(load)


async def topic_atom(request: Request) -> Response:
    return await _topic_feed(request, "atom")


async def topic_json(request: Request) -> Response:
    return await _topic_feed(request, "json")


_FEEDS = {
    "atom": (syndication.atom_feed, "application/atom+xml; charset=utf-8"),
    "json": (syndication.json_feed, "application/feed+json; charset=utf-8"),
}


async def _topic_feed(request: Request, kind: str) -> Response:
    found = await _topic_stories(request)
    if isinstance(found, Response):
        return found
    topic, rows = found
    w = window(request)
    site = w.site(request)
    render, media_type = _FEEDS[kind]
    body = render(topic, rows, site, f"{site}/topics/{topic}.{kind}", w.clock())
    return Response(body, media_type=media_type)


# --- health and metrics ---------------------------------------------------------------------


def health(w: Window) -> tuple[bool, dict[str, Any]]:
    """200 when the database answers and a polling loop finished a cycle recently."""
    now = w.clock()
    try:
        with w.db.session() as s:
            s.execute(text("SELECT 1"))
            beats = heartbeat.latest(s)
    except Exception as e:
        return False, {"status": "fail", "reason": f"database: {first_line(e)}"}
    if not beats:
        return False, {
            "status": "fail",
            "reason": "no polling cycle recorded yet (is `monitor run` or Celery beat running?)",
        }
    source, at, detail = beats[0]
    age = (now - at).total_seconds()
    info = {"last_cycle": _iso(at), "source": source, "age_seconds": round(age, 1)}
    if age > w.health_max_age:
        reason = (
            f"last polling cycle ({source}) {age:.0f} s ago, more than "
            f"MONITOR_HEALTH_MAX_AGE={w.health_max_age:g} s"
        )
        return False, {"status": "fail", "reason": reason, **info}
    return True, {"status": "ok", **info, "detail": detail}


async def healthz(request: Request) -> Response:
    ok, body = await asyncio.to_thread(health, window(request))
    return JSONResponse(body, status_code=200 if ok else 503)


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time: the outbox by state, the age of the
    last polling cycle."""

    def __init__(self, db: Database, clock: Any):
        self.db, self.clock = db, clock

    def describe(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("monitor_outbox_deliveries", "", labels=["state"]),
            GaugeMetricFamily("monitor_last_cycle_age_seconds", "", labels=["source"]),
        ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        outbox = GaugeMetricFamily(
            "monitor_outbox_deliveries",
            "Outbox rows by state (pending, failed: retried later, dead, sent)",
            labels=["state"],
        )
        age = GaugeMetricFamily(
            "monitor_last_cycle_age_seconds",
            "Seconds since each polling loop (run, celery) last finished a cycle",
            labels=["source"],
        )
        try:
            with self.db.session() as s:
                counts = browse.delivery_counts(s)
                beats = heartbeat.latest(s)
        except Exception as e:  # /healthz says why; a scrape still returns the counters
            log.warning("metrics: the database did not answer: %s", first_line(e))
            return
        now = self.clock()
        for state, n in counts.items():
            outbox.add_metric([state], n)
        for source, at, _ in beats:
            age.add_metric([source], (now - at).total_seconds())
        yield outbox
        yield age


def database_registry(w: Window) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(DatabaseCollector(w.db, w.clock))
    return reg


async def metrics(request: Request) -> Response:
    w = window(request)
    if w.metrics_registry is None:
        w.metrics_registry = database_registry(w)
    body = await asyncio.to_thread(pipeline_metrics.exposition, w.metrics_registry)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
