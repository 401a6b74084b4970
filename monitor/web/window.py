"""What every handler of `monitor serve` shares: the window (database, settings),
templates, cookies, CSRF and token checks, security headers.

Security, since feed text is hostile and the window can change state:
* templates autoescape everything; links from feeds are kept only when http/https;
  a Content-Security-Policy allows scripts from this site only (the vendored htmx);
* no state changes on GET; every POST needs a CSRF token (double-submit cookie, SameSite=Strict)
  and, when MONITOR_WEB_TOKEN is set, that token (a cookie set through the token form, or an
  `Authorization: Bearer` header for scripts);
* `monitor serve` binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.events import Params
from monitor.store import Database, browse
from monitor.types import Target
from monitor.web import present

HERE = Path(__file__).parent
CSRF_COOKIE = "monitor_csrf"
TOKEN_COOKIE = "monitor_token"
WHO_COOKIE = "monitor_who"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


@dataclass
class Window:
    """What every handler needs: the database, the profile's topics, the settings."""

    db: Database
    topics: list[str]
    # The profile's entity aliases and the grouping's knobs (MONITOR_GROUPING): a split
    # computes the stories' features as the pipeline does, with them (required: a default
    # would split with other features than the pollers', silently).
    aliases: Mapping[str, str]
    params: Params
    token: str | None = None
    public_url: str | None = None
    health_max_age: float = 300.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    metrics_registry: CollectorRegistry | None = None
    targets: Sequence[Target] = ()  # where a split's new alert goes

    def load_story(self, sid: int) -> browse.StoryView | None:
        """One story as the pages and the API show it (blocking: run it in a thread); None
        when there is none, ids past MAX_ID included (PostgreSQL would refuse the number)."""
        if sid > browse.MAX_ID:
            return None
        with self.db.session() as s:
            found = browse.load_stories(s, [sid])
        return found[0] if found else None

    def site(self, request: Request) -> str:
        """Base URL of story pages: MONITOR_PUBLIC_URL, else the URL this request came to."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")


def window(request: Request) -> Window:
    w: Window = request.app.state.window
    return w


# --- templates ------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped, whatever the file name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["href"] = present.safe_href
    env.filters["duration"] = present.duration
    env.filters["utc"] = lambda dt: dt.strftime("%Y-%m-%d %H:%M") if dt else "—"
    env.filters["g"] = lambda x: f"{x:g}"
    return env


TEMPLATES = _environment()


def csrf_value(request: Request) -> str:
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf", None)
    if not token:
        token = secrets.token_urlsafe(24)
        request.state.csrf = token
    return str(token)


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    w = window(request)
    now = w.clock()
    base = {
        "request": request,
        "csrf": csrf_value(request),
        "token_needed": bool(w.token) and not has_token(request),
        "topics": w.topics,
        "now": now,
        "ago": lambda dt: present.ago(dt, now),
        "path": request.url.path + (("?" + request.url.query) if request.url.query else ""),
    }
    html = TEMPLATES.get_template(name).render({**base, **context})
    response = HTMLResponse(html, status_code=status)
    # Pages change with every poll and every split: Back asks again (and static/fresh.js
    # reloads a page the browser restores from its back-forward cache).
    response.headers["cache-control"] = "no-store"
    if not request.cookies.get(CSRF_COOKIE):
        set_cookie(response, CSRF_COOKIE, csrf_value(request))
    return response


def set_cookie(response: Response, name: str, value: str, http_only: bool = True) -> None:
    response.set_cookie(name, value, httponly=http_only, samesite="strict", path="/")


# --- the checks every change goes through ---------------------------------------------------


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def has_token(request: Request) -> bool:
    w = window(request)
    return not w.token or _same(request.cookies.get(TOKEN_COOKIE), w.token)


def refusal(request: Request, form: Any) -> str | None:
    """Why this state-changing request is refused, or None when it may go ahead."""
    w = window(request)
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        # A header a page on another site cannot set without CORS: no CSRF check needed.
        if w.token and not _same(auth[7:].strip(), w.token):
            return "wrong token in the Authorization header"
        return None
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        return "request from another site refused"
    if not _same(form.get("csrf"), request.cookies.get(CSRF_COOKIE)):
        return "the form has expired (missing or wrong CSRF token): reload the page and try again"
    if w.token and not (
        _same(request.cookies.get(TOKEN_COOKIE), w.token) or _same(form.get("token"), w.token)
    ):
        return (
            "changes need the web token (MONITOR_WEB_TOKEN): enter it in the form at the top "
            "of the page, or send it as 'Authorization: Bearer <token>'"
        )
    return None


class SecurityHeaders:
    """Adds the security headers to every response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


# --- the application ------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]
