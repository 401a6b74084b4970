"""monitor: watches French-language news feeds and alerts on the topics analysts follow."""

__version__ = "0.1.0"
USER_AGENT = (
    f"monitor/{__version__} (+https://github.com/monitor-news/monitor; French news topic monitor)"
)
