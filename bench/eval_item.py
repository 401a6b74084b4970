"""One item of an event evaluation, shared by bench/eval_events.py and bench/event_blind2.py
(a module of its own so that neither imports the other at load time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class EvalItem:
    id: str
    title: str
    summary: str
    time: datetime
    dated: bool = True  # False: the capture's time stands in for a missing published date
