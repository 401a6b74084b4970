"""The window's routes: one table from paths to the pages (pages.py) and the feeds, API,
health and metrics (api.py). What every handler shares lives in window.py."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.web import api, pages
from monitor.web.window import CSRF_COOKIE, HERE, SecurityHeaders, Window

__all__ = ["CSRF_COOKIE", "Window", "create_app"]


def create_app(w: Window) -> Starlette:
    routes = [
        Route("/", pages.timeline),
        Route("/stories/{story_id:int}", pages.story),
        Route("/stories/{story_id}/feedback", pages.feedback, methods=["POST"]),
        Route("/stories/{story_id}/split", pages.split, methods=["POST"]),
        Route("/feeds", pages.feeds),
        Route("/deliveries", pages.deliveries),
        Route("/deliveries/{delivery_id:int}/retry", pages.retry, methods=["POST"]),
        Route("/token", pages.token, methods=["POST"]),
        Route("/topics/{topic}.atom", api.topic_atom),
        Route("/topics/{topic}.json", api.topic_json),
        Route("/api/stories", api.stories),
        Route("/api/stories/{story_id:int}", api.story),
        Route("/api/feeds", api.feeds),
        Route("/healthz", api.healthz),
        Route("/metrics", api.metrics),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    app.state.window = w
    return app
