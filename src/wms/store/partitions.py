"""Monthly partitions of the ledger, created months ahead (by migrate and the worker)."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

from wms.store.roles import OWNER, SCHEMA

MONTHS_AHEAD = 3


def ensure_movement_partitions(url: str, months_ahead: int = MONTHS_AHEAD) -> int:
    """Create missing monthly ledger partitions as the schema owner; return how many."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        return create_missing_partitions(conn, months_ahead)


def create_missing_partitions(
    conn: psycopg.Connection[Any], months_ahead: int = MONTHS_AHEAD
) -> int:
    """Create missing monthly ledger partitions on an autocommit connection; return how many.

    Another session (a second migrate, the worker) may create a month meanwhile: ours
    then fails with DuplicateTable and is retried, and finds that month made.
    """
    # The function creates months_ahead + 2 months; each failed try found one more made.
    for _ in range(months_ahead + 2):
        with contextlib.suppress(psycopg.errors.DuplicateTable):
            return _create_missing(conn, months_ahead)
    return _create_missing(conn, months_ahead)


def _create_missing(conn: psycopg.Connection[Any], months_ahead: int) -> int:
    with conn.transaction():
        conn.execute(f"SET LOCAL ROLE {OWNER}")
        conn.execute(f"SET LOCAL search_path = {SCHEMA}")
        row = conn.execute("SELECT ensure_movement_partitions(%s)", (months_ahead,)).fetchone()
    return int(row[0]) if row else 0
