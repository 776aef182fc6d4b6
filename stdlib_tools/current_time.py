"""The current date and time, in UTC or a named time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def run(timezone: str = "UTC") -> dict[str, str]:
    try:
        zone = UTC if timezone.upper() == "UTC" else ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {timezone!r}; use an IANA name such as Europe/Paris"
        ) from None
    now = datetime.now(zone)
    return {"iso": now.isoformat(timespec="seconds"), "timezone": timezone}
