"""Optional filters of list queries: only the conditions whose value was given.

``(%(sku)s IS NULL OR p.sku = %(sku)s)`` reads well but plans badly. psycopg prepares a
statement after a few runs and PostgreSQL then weighs one generic plan against planning
each run; for such a catch-all the generic plan cannot use an index (a stock lookup's
took 487 ms on the benchmark warehouse against 0.1 ms), so every run is planned again
(about 1 ms a lookup, as much as the rest of the request). A statement per combination
of given filters has a generic plan as good as the custom one, planned once per session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def given(params: Mapping[str, Any], conditions: Mapping[str, str]) -> str:
    """``AND`` of the conditions whose parameter in ``params`` is not None (``TRUE`` if none).

    ``conditions`` maps a parameter name to a condition that uses it, such as
    ``{"sku": "p.sku = %(sku)s"}``; the texts are constants of the caller, values stay
    parameters.
    """
    chosen = [text for name, text in conditions.items() if params.get(name) is not None]
    return " AND ".join(chosen) if chosen else "TRUE"
