"""One exception root, so callers can catch precisely what the project raises."""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(MonitorError):
    """A configuration file or variable is wrong; the message names file and line."""


class ProfileError(ConfigError):
    """The topic profile is invalid."""


class FetchError(MonitorError):
    """A feed could not be fetched. `kind` is a short machine-readable reason."""

    def __init__(self, message: str, kind: str = "network", retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class ParseError(MonitorError):
    """The fetched bytes are not a feed we can read."""


class StorageError(MonitorError):
    """The database refused or lost an operation."""


class NotifyError(MonitorError):
    """A notification target did not accept an alert."""


class InputError(MonitorError):
    """Bad input given on the command line or standard input."""


def first_line(e: BaseException, limit: int = 200) -> str:
    """An exception in one log line (database drivers write several)."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:limit]
