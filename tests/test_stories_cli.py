"""`--since` everywhere: ISO 8601 or a duration back from now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.cli import _parse_since
from monitor.errors import InputError

NOW = datetime(2024, 2, 13, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        (" 2w ", NOW - timedelta(weeks=2)),
        ("2024-02-01", datetime(2024, 2, 1, tzinfo=UTC)),
        ("2024-02-01T10:30", datetime(2024, 2, 1, 10, 30, tzinfo=UTC)),
        ("2024-02-01T10:30:00Z", datetime(2024, 2, 1, 10, 30, tzinfo=UTC)),
        ("2024-02-01T11:30:00+01:00", datetime(2024, 2, 1, 10, 30, tzinfo=UTC)),
    ],
)
def test_since_accepts_iso_and_durations(value: str, expected: datetime) -> None:
    assert _parse_since(value, NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "24", "h24", "-3d", "7 days", ""])
def test_since_refuses_anything_else_in_one_line(value: str) -> None:
    with pytest.raises(InputError) as e:
        _parse_since(value, NOW)
    assert "--since" in str(e.value) and "\n" not in str(e.value)
