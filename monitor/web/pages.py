"""The HTML pages: timeline, story, feeds, deliveries; feedback, retry and the token form."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from monitor import deliver, metrics
from monitor.errors import InputError
from monitor.feed_health import FEED_WINDOW, SILENCE_FACTOR, silence
from monitor.store import browse
from monitor.store.db import Busy, once_more_on_conflict
from monitor.store.split import split_item
from monitor.web import present
from monitor.web.present import delivery_error, display_target, story_state
from monitor.web.window import (
    TOKEN_COOKIE,
    WHO_COOKIE,
    refusal,
    render,
    set_cookie,
    window,
)

PER_PAGE = 50


MAX_ID = browse.MAX_ID


def _id(raw: str) -> int | None:
    """A row id sent by a form or in a path: ASCII digits that fit the id columns, else None
    (no Unicode digit `int` would refuse or read as another, no number the database refuses)."""
    if re.fullmatch(r"[0-9]{1,18}", raw) and int(raw) <= MAX_ID:
        return int(raw)
    return None


def _bad_id(request: Request, what: str, raw: str) -> Response:
    return render(request, "error.html", {"message": f"{what}={raw!r} is not an id"}, 400)


def _who(request: Request, form: Any) -> str:
    """Who gives feedback or splits a story: the form's name, else the remembered one, one
    line of at most 100 characters; "anonymous" when neither says."""
    given = form.get("who") or request.cookies.get(WHO_COOKIE) or ""
    return " ".join(str(given).split())[:100] or "anonymous"


def _htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _page(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


async def _in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


# --- pages ----------------------------------------------------------------------------------


async def timeline(request: Request) -> Response:
    w = window(request)
    topic = request.query_params.get("topic") or None
    since_raw = request.query_params.get("since") or ""
    page = _page(request)
    error = None
    if topic is not None and topic not in w.topics:
        error, topic = f"unknown topic {topic!r}", None
    try:
        since = present.parse_since(since_raw, w.clock())
    except InputError as e:
        error, since = str(e), None

    def load() -> tuple[list[browse.StoryView], int]:
        with w.db.session() as s:
            return browse.story_page(s, topic, since, PER_PAGE, (page - 1) * PER_PAGE)

    stories, total = await _in_thread(load)
    context = {
        "stories": stories,
        "total": total,
        "topic": topic or "",
        "since": since_raw,
        "page": page,
        "more": page * PER_PAGE < total,
        "error": error,
        "state": story_state,
        "display_target": display_target,
        "delivery_error": delivery_error,
    }
    partial = _htmx(request) and request.headers.get("hx-target") == "stories"
    return render(request, "_stories.html" if partial else "timeline.html", context,
                  400 if error else 200)  # fmt: skip


async def story(request: Request) -> Response:
    w = window(request)
    sid = int(request.path_params["story_id"])
    found = await _in_thread(w.load_story, sid)
    if found is None:
        return render(request, "error.html", {"message": f"no story {sid}"}, 404)
    return render(request, "story.html", _story_context(request, found))


def _story_context(request: Request, s: browse.StoryView, **extra: Any) -> dict[str, Any]:
    return {
        "s": s,
        "state": story_state,
        "display_target": display_target,
        "delivery_error": delivery_error,
        "who": request.cookies.get(WHO_COOKIE, ""),
        "message": None,
        "split_message": None,
        "new_story": None,
        "fragment": False,
        **extra,
    }


async def feeds(request: Request) -> Response:
    w = window(request)
    now = w.clock()

    def load() -> list[browse.FeedView]:
        with w.db.session() as s:
            return browse.list_feeds(s, now - FEED_WINDOW)

    rows = [(f, silence(f.arrivals, f.interval, now)) for f in await _in_thread(load)]
    return render(request, "feeds.html", {"feeds": rows, "factor": SILENCE_FACTOR})


def _states(request: Request) -> tuple[list[str], str | None]:
    """The states asked for (else the open ones), and what is wrong with the others."""
    asked = request.query_params.getlist("state")
    wanted = [s for s in asked if s in browse.DELIVERY_STATES]
    unknown = [s for s in asked if s not in browse.DELIVERY_STATES]
    error = (
        f"unknown state {', '.join(map(repr, unknown))}: one of {', '.join(browse.DELIVERY_STATES)}"
        if unknown
        else None
    )
    return wanted or ["pending", "failed", "dead"], error


async def deliveries(request: Request) -> Response:
    w = window(request)
    states, error = _states(request)
    page = _page(request)

    def load() -> tuple[list[browse.DeliveryView], int]:
        with w.db.session() as s:
            return browse.list_deliveries(s, states, PER_PAGE, (page - 1) * PER_PAGE)

    rows, total = await _in_thread(load)
    return render(
        request,
        "deliveries.html",
        {
            "rows": rows,
            "total": total,
            "states": states,
            "all_states": browse.DELIVERY_STATES,
            "page": page,
            "more": page * PER_PAGE < total,
            "display_target": display_target,
            "delivery_error": delivery_error,
            "message": None,
            "error": error,
        },
        400 if error else 200,
    )


# --- changes (POST only) --------------------------------------------------------------------


async def feedback(request: Request) -> Response:
    w = window(request)
    raw_sid = str(request.path_params["story_id"])
    if (sid := _id(raw_sid)) is None:
        return _bad_id(request, "story", raw_sid)
    form = await request.form()
    refused = refusal(request, form)
    why_not = refused
    verdict = str(form.get("verdict") or "")
    topic = str(form.get("topic") or "") or None
    correct = str(form.get("correct_topic") or "") or None
    who = _who(request, form)
    if why_not is None:
        if verdict not in browse.VERDICTS:
            why_not = f"unknown verdict {verdict!r} (relevant, noise, wrong-topic)"
        elif verdict == "wrong-topic" and topic not in w.topics:
            why_not = "say which topic is wrong"
        elif correct is not None and (correct not in w.topics or correct == topic):
            why_not = f"unknown topic {correct!r}"
        elif verdict != "wrong-topic":
            topic = correct = None

    def save() -> list[browse.StoryView]:
        with w.db.session() as s:
            found = browse.load_stories(s, [sid])
            if found and why_not is None:
                browse.add_feedback(s, sid, verdict, topic, correct, who, w.clock())
                found = browse.load_stories(s, [sid])
            return found

    found = await _in_thread(save)
    if not found:
        return render(request, "error.html", {"message": f"no story {sid}"}, 404)
    status = 403 if refused else 400 if why_not else 200
    if not _htmx(request) and why_not is None:
        response: Response = RedirectResponse(f"/stories/{sid}", status_code=303)
    else:
        name = "_feedback.html" if _htmx(request) else "story.html"
        message = why_not or "thank you: feedback saved"
        context = _story_context(request, found[0], message=message, failed=bool(why_not))
        context["who"] = "" if who == "anonymous" else who  # what was typed stays typed
        response = render(request, name, context, status)
    if why_not is None and who != "anonymous":
        set_cookie(response, WHO_COOKIE, who)
    return response


async def split(request: Request) -> Response:
    """ "Another event": an item leaves its story and opens a new one, whose alert is routed to
    the targets as a poll routes a new story's (`deliver.route_new_alerts`), in one transaction."""
    w = window(request)
    raw_sid = str(request.path_params["story_id"])
    if (sid := _id(raw_sid)) is None:
        return _bad_id(request, "story", raw_sid)
    form = await request.form()
    refused = why_not = refusal(request, form)
    who = _who(request, form)
    raw = str(form.get("item") or "")
    item = _id(raw)
    if why_not is None and item is None:
        why_not = f"say which item to split off (item={raw!r} is not an item id)"

    def save() -> tuple[list[browse.StoryView], int | None, str | None]:
        with w.db.session() as s:
            found = browse.load_stories(s, [sid])
            if not found or why_not is not None or item is None:
                return found, None, why_not
            now = w.clock()
            try:
                done = split_item(s, sid, item, who, now, w.aliases, w.params)
            except InputError as e:
                s.rollback()
                return found, None, str(e)
            a = done.alert
            deliver.route_new_alerts(s, [(a.id, a.topics)], w.targets, now)
            return browse.load_stories(s, [sid]), done.story_id, None

    busy = False
    try:  # a PostgreSQL conflict with a poll: once more, then 409
        found, new_id, why_not = await _in_thread(once_more_on_conflict, save)
    except Busy:
        why_not = "busy: a poll was saving this story at the same moment; try again"
        if not _htmx(request):
            return render(request, "error.html", {"message": why_not}, 409)
        now = await _in_thread(w.load_story, sid)  # the story as it is
        found, new_id, busy = [now] if now else [], None, True
    if not found:
        gone = f"no story {sid}"  # htmx swaps #story: the message stands in its place
        name = "_story_gone.html" if _htmx(request) else "error.html"
        return render(request, name, {"message": gone}, 404)
    if new_id is not None:  # committed: counted once, after the transaction
        metrics.count_split()
    status = 409 if busy else 403 if refused else 400 if why_not else 200
    if not _htmx(request):
        if why_not is None:
            return RedirectResponse(f"/stories/{sid}", status_code=303)
        return render(request, "error.html", {"message": why_not}, status)
    message = why_not or f"split off: it is now story {new_id}, with its own alert"
    context = _story_context(
        request,
        found[0],
        split_message=message,
        failed=bool(why_not),
        new_story=new_id,
        fragment=True,  # with the tab's <title>: the story may have been renamed
    )
    return render(request, "_story.html", context, status)  # heading, sources, deliveries


async def retry(request: Request) -> Response:
    w = window(request)
    did = int(request.path_params["delivery_id"])
    form = await request.form()
    refused = why_not = refusal(request, form)

    def save() -> tuple[bool, browse.DeliveryView | None]:
        if did > MAX_ID:  # no such row, and PostgreSQL would refuse the number (500)
            return False, None
        with w.db.session() as s:
            done = why_not is None and browse.retry_delivery(s, did, w.clock())
            return done, browse.delivery(s, did)

    done, row = await _in_thread(save)
    if row is None:
        return render(request, "error.html", {"message": f"no delivery {did}"}, 404)
    if why_not is None and not done:
        why_not = f"delivery {did} was already sent"
    status = 403 if refused else 409 if why_not else 200
    if not _htmx(request):
        if why_not is None:
            return RedirectResponse("/deliveries", status_code=303)
        return render(request, "error.html", {"message": why_not}, status)
    message = why_not or "queued: sent at the next delivery round"
    return render(
        request,
        "_delivery_row.html",
        {
            "d": row,
            "display_target": display_target,
            "delivery_error": delivery_error,
            "message": message,
            "failed": bool(why_not),
        },
        status,
    )


async def token(request: Request) -> Response:
    """The token form: a correct MONITOR_WEB_TOKEN is kept in an HttpOnly cookie."""
    w = window(request)
    form = await request.form()
    back = present.local_path(str(form.get("next") or "/"))
    why_not = refusal(request, form)
    if why_not:
        return render(request, "error.html", {"message": why_not}, 403)
    response = RedirectResponse(back, status_code=303)
    if w.token:
        set_cookie(response, TOKEN_COOKIE, w.token)
    return response
