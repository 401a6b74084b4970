"""apprise, imported on first use, with this project's `console://` target registered.
Both the target loader and the sender use it, so neither imports the other."""

from __future__ import annotations

from typing import Any


def _console_target(body: str, title: str, notify_type: str, *args: object, **kw: object) -> bool:
    print(f"\n=== ALERT: {title}\n{body}\n", flush=True)
    return True


_APPRISE: Any = None


def load_apprise() -> Any:
    """apprise, imported on first use (a fifth of a second that a poll without alerts does
    not need), with the `console://` target registered."""
    global _APPRISE
    if _APPRISE is None:
        import apprise
        from apprise.decorators import notify as apprise_plugin

        apprise_plugin(on="console", name="monitor console (alerts printed on standard output)")(
            _console_target
        )
        _APPRISE = apprise
    return _APPRISE


def privacy_url(url: str) -> str | None:
    """apprise's privacy form of a target URL (tokens and passwords masked), without its
    query string (custom headers such as `+X-Token=…` are not masked by apprise); None when
    apprise does not accept the URL."""
    plugin = load_apprise().Apprise.instantiate(url)
    if not plugin:
        return None
    return str(plugin.url(privacy=True)).split("?", 1)[0]
