"""Times as the API and the command line show and read them: ISO 8601, UTC."""
from __future__ import annotations

from datetime import UTC, datetime


def parse_iso(text: str) -> datetime:
    """An ISO 8601 time (a trailing Z allowed; no zone means UTC); ValueError when it is not one."""
    # ISO 8601 is printable ASCII: fromisoformat alone takes any character between date and time
    # ("2026-01-01\x0012:00") and ignores a trailing NUL
    if not isinstance(text, str) or not text.strip() or not (text.isascii() and text.isprintable()):
        raise ValueError(f"{text!r} is not an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-01T00:00:00Z)") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    try:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC: no datetime (nor psycopg's reading) can hold it
        parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range: a time from year 1 to 9999, UTC") from None
    return parsed


def iso(value: datetime | None) -> str | None:
    """A time as the API shows it: 2026-11-01T00:00:00Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def display(value: datetime | None) -> str | None:
    """A time as the command line's tables show it: 2026-11-01 00:00:00 (UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else None
