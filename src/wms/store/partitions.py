"""Monthly partitions of the ledger, created months ahead (by migrate and the worker)."""

from __future__ import annotations

import psycopg

from wms.store.roles import OWNER, SCHEMA

MONTHS_AHEAD = 3


def ensure_movement_partitions(url: str, months_ahead: int = MONTHS_AHEAD) -> int:
    """Create missing monthly ledger partitions as the schema owner; return how many."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"SET ROLE {OWNER}")
        conn.execute(f"SET search_path = {SCHEMA}")
        row = conn.execute("SELECT ensure_movement_partitions(%s)", (months_ahead,)).fetchone()
    return int(row[0]) if row else 0
