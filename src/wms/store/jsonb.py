"""JSON for jsonb columns: timestamps, dates, decimals and UUIDs as JSON values."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb


def _default(value: object) -> object:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    """``json.dumps`` that knows the database's value types."""
    return json.dumps(value, default=_default, separators=(",", ":"))


def jsonb(value: Any) -> Jsonb | None:
    """A jsonb parameter, or None for None."""
    return None if value is None else Jsonb(value, dumps=dumps)
