"""A digest longer than a chat service takes goes out as several posts, every story in one of
them: real apprise to a loopback Mattermost-style webhook (Mattermost takes 4,000 characters)."""

from __future__ import annotations

from monitor.notify import StoryLine, render_group, send
from monitor.targets import make_target
from tests.conftest import Webhook


def _lines(n: int) -> list[StoryLine]:
    return [
        StoryLine(
            story_id=i,
            kind="alert",
            title=f"Histoire numéro {i:03d} : échange de tirs signalé sur la ligne de contact",
            link=f"https://news.example.org/articles/2026/11/24/histoire-{i:03d}-ligne-de-contact",
            topics=("karabakh_ceasefire",),
            scores={"karabakh_ceasefire": 9.0},
            sources=("Agence A", "Journal B"),
        )
        for i in range(60)
    ]


def test_a_long_digest_is_split_into_posts_the_service_takes(webhook: Webhook) -> None:
    message = render_group("digest", _lines(60), "digest de 08:00", html_body=False)
    assert len(message.body) > 4000  # the case: one post would be refused or cut
    send(make_target(f"mmost://127.0.0.1:{webhook.port}/tokentokentoken", "test"), message)
    texts = [str(r["text"]) for r in webhook.received]
    assert len(texts) >= 2
    assert all(len(t) <= 4000 for t in texts)
    joined = "\n".join(texts)
    for i in range(60):
        assert f"Histoire numéro {i:03d}" in joined


def test_a_url_that_sets_its_own_overflow_is_obeyed(webhook: Webhook) -> None:
    message = render_group("digest", _lines(60), "digest de 08:00", html_body=False)
    url = f"mmost://127.0.0.1:{webhook.port}/tokentokentoken?overflow=truncate"
    send(make_target(url, "test"), message)
    assert len(webhook.received) == 1
    assert len(str(webhook.received[0]["text"])) <= 4000
