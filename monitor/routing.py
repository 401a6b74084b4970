"""Who receives an alert: targets tagged with one of its topics, and every untagged target.
Pure; the alert policy (bursts, quiet hours, digests) decides when."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.types import Target


def route(topics: Sequence[str], targets: Sequence[Target]) -> list[Target]:
    wanted = set(topics)
    return [t for t in targets if not t.tags or wanted.intersection(t.tags)]
