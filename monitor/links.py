"""Where a story can be read in the web window (`monitor serve`), for alerts and feeds."""

from __future__ import annotations


def story_url(public_url: str | None, story_id: int) -> str | None:
    """The story page under MONITOR_PUBLIC_URL (`https://monitor.example.org/stories/42`), or
    None when no public URL is configured."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/stories/{int(story_id)}"
