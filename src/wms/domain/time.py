"""Time zones and local times of warehouses (IANA names through zoneinfo + tzdata)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def is_time_zone(name: str) -> bool:
    """True for an IANA time zone name such as ``America/Sao_Paulo`` that zoneinfo loads.

    The form only: whether PostgreSQL knows the name too is asked of the database.
    """
    if not name or name.startswith(("/", ".")) or ".." in name:
        return False
    # OSError: a folder of the tzdata (``America``) is no zone; opening it fails so.
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
