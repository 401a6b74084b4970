"""Secrets of notification targets kept out of everything printed or logged.

A target's URL carries its secrets (a bot token, an SMTP password, a webhook key); apprise's
privacy form masks them. What the URL holds that its privacy form does not show is a secret,
and so are custom header values (`+X-Token=…`, which apprise does not mask) and the password of
the URL. `Redactor.redact` replaces the raw URL by the target's key (its name or privacy form)
and every secret by `****`; `install` makes every log record go through it, apprise's and
urllib3's own records at DEBUG included (they print request URLs that hold tokens).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from monitor.types import Target

MASK = "****"
MIN_SECRET = 3  # shorter pieces are not masked: they would mangle every log line
_PIECES = re.compile(r"[^/:@?&=#,;+\s]+")


def _pieces(text: str) -> set[str]:
    return {p for p in _PIECES.findall(unquote(text)) if p}


def _privacy_form(url: str) -> str | None:
    """apprise's privacy form with its query (the target key drops the query; here every
    argument apprise shows must count as shown, or ordinary words would be masked)."""
    from monitor.apprise_setup import load_apprise

    plugin = load_apprise().Apprise.instantiate(url)
    return str(plugin.url(privacy=True)) if plugin else None


def secrets_of(target: Target) -> set[str]:
    """The substrings of a target's URL that must never be shown."""
    url = target.url
    secrets: set[str] = set()
    try:
        parts = urlsplit(url)
        if parts.password:
            secrets.add(parts.password)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key.startswith(("+", " ")) or key.lower() in {"token", "pass", "password", "key"}:
                secrets.add(value)  # custom headers and the usual secret arguments
    except ValueError:
        pass
    shown = _pieces(_privacy_form(url) or target.safe_url or "")
    secrets |= {p for p in _pieces(url) if p not in shown}
    out: set[str] = set()
    for s in secrets:
        if len(s) >= MIN_SECRET:
            out.update({s, unquote(s)})
    return out


class Redactor:
    """Replace targets' URLs by their keys and their secrets by ****, in any text."""

    def __init__(self, targets: Sequence[Target] = ()):
        self.lock = threading.Lock()
        self.urls: dict[str, str] = {}
        self.secrets: set[str] = set()
        self.pattern: re.Pattern[str] | None = None
        self.add(targets)

    def add(self, targets: Iterable[Target]) -> None:
        with self.lock:
            for t in targets:
                for form in {t.url, unquote(t.url)}:
                    self.urls[form] = t.key
                self.secrets |= secrets_of(t)
            # Longest first, so that a secret inside a longer one is not half-masked.
            self.pattern = (
                re.compile("|".join(re.escape(s) for s in sorted(self.secrets, key=len)[::-1]))
                if self.secrets
                else None
            )

    def redact(self, text: str) -> str:
        if not text:
            return text
        for url in sorted(self.urls, key=len, reverse=True):
            if url in text:
                text = text.replace(url, self.urls[url])
        if self.pattern is not None:
            text = self.pattern.sub(MASK, text)
        return text


REDACTOR = Redactor()
_installed = False
_formatter = logging.Formatter()


def install(targets: Sequence[Target]) -> Redactor:
    """Redact these targets' secrets from every log record made in this process (and in the
    processes it forks) from now on, whichever logger or handler it goes to."""
    global _installed
    REDACTOR.add(targets)
    if not _installed:
        _installed = True
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: logging reports it as usual
                return record
            record.msg, record.args = REDACTOR.redact(message), None
            if record.exc_info and not record.exc_text:
                record.exc_text = REDACTOR.redact(_formatter.formatException(record.exc_info))
            if record.stack_info:
                record.stack_info = REDACTOR.redact(record.stack_info)
            return record

        logging.setLogRecordFactory(factory)
    return REDACTOR


def redact(text: str) -> str:
    return REDACTOR.redact(text)


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = REDACTOR.redact(record.getMessage()).strip()
        if message and message not in self.messages:
            self.messages.append(message)


@contextmanager
def capture_reasons(logger: str = "apprise", level: int = logging.WARNING) -> Iterator[list[str]]:
    """The warnings and errors a library logs during the block (apprise says why a target
    refused a message only in its log), redacted. The logger's records still go where they
    went before."""
    log = logging.getLogger(logger)
    handler = _Collect(level)
    previous = log.level
    if log.getEffectiveLevel() > level:
        log.setLevel(level)
    log.addHandler(handler)
    try:
        yield handler.messages
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)
