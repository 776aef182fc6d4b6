"""The current date and time, in UTC or a named time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def run(timezone: str = "UTC") -> dict[str, str]:
    """Now, as ISO 8601 with the zone's offset, in ``timezone`` (an IANA name)."""
    try:
        zone = UTC if timezone.strip().upper() in ("UTC", "Z") else ZoneInfo(timezone.strip())
    # a folder of the zone database ("America") or a very long name are OSErrors
    except (ZoneInfoNotFoundError, ValueError, OSError):
        shown = timezone if len(timezone) <= 60 else timezone[:60] + "…"
        raise ValueError(
            f"unknown time zone {shown!r}; use an IANA name such as Europe/Paris, "
            "America/New_York or UTC"
        ) from None
    now = datetime.now(zone)
    return {"iso": now.isoformat(timespec="seconds"), "timezone": timezone}
