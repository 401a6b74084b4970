"""Stories: the recent ones, read for assignment, and new ones saved."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from monitor.store.common import is_postgres, table
from monitor.store.models import Story
from monitor.text import jaccard, signature
from monitor.types import Item as ParsedItem

STORY_WINDOW = timedelta(days=3)  # near-identical stories are looked for this far back
TITLE_SIMILAR = 0.7
BODY_SIMILAR = 0.6
_STORY_LOCK = 7_246_002  # PostgreSQL advisory lock: one story assignment at a time


class StoryIndex:
    """The recent stories, read once per batch: an item joins a recent one with near-identical
    text, or starts a new one. On PostgreSQL an advisory lock held to the end of the
    transaction makes assignments one at a time across workers."""

    def __init__(self, session: Session, now: datetime):
        if is_postgres(session):
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _STORY_LOCK})
        self.session = session
        self.now = now
        self.stories: list[tuple[int, frozenset[str], frozenset[str]]] = [
            (int(sid), frozenset(ts.split()), frozenset(bs.split()))
            for sid, ts, bs in session.execute(
                select(Story.id, Story.title_signature, Story.body_signature).where(
                    Story.first_seen >= now - STORY_WINDOW
                )
            )
        ]

    def story_for(self, item: ParsedItem) -> int:
        tsig = signature(item.title)
        bsig = signature(item.summary[:600])
        for sid, ts, bs in self.stories:
            t_sim = jaccard(tsig, ts)
            if (len(tsig) >= 4 and t_sim >= TITLE_SIMILAR) or (
                t_sim >= 0.4 and jaccard(bsig, bs) >= BODY_SIMILAR
            ):
                return sid
        stories_t = table(Story)
        sid = self.session.execute(
            stories_t.insert().returning(stories_t.c.id),
            dict(
                title=item.title[:500],
                title_signature=" ".join(sorted(tsig)),
                body_signature=" ".join(sorted(bsig)),
                first_seen=self.now,
            ),
        ).scalar_one()
        self.stories.append((int(sid), tsig, bsig))
        return int(sid)
