"""SQL of tenant settings (a row appears on the first change; defaults until then)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row

_COLUMNS = (
    "allocation_strategy, backorder_policy, allocate_on_create, over_receipt_tolerance_pct, "
    "recount_tolerance_pct, updated_at"
)


_DEFAULTS = (
    "(VALUES ('fifo', 'backorder', false, 0::numeric, 5::numeric, NULL::timestamptz)) "
    "AS d (allocation_strategy, backorder_policy, allocate_on_create, "
    "over_receipt_tolerance_pct, recount_tolerance_pct, updated_at)"
)
# The row when there is one, else the table's defaults: one statement either way.
_CURRENT = (
    "SELECT "
    + ", ".join(f"coalesce(s.{c}, d.{c}) AS {c}" for c in _COLUMNS.split(", "))
    + f" FROM {_DEFAULTS} LEFT JOIN tenant_settings s ON s.tenant_id = %s"
)


async def send_current(conn: AsyncConnection, tenant_id: int) -> AsyncCursor[dict[str, Any]]:
    """Send the read of ``get`` and return its cursor unread (for a pipelined batch)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(_CURRENT, (tenant_id,))
    return cursor


async def get(conn: AsyncConnection, tenant_id: int, *, for_update: bool = False) -> dict[str, Any]:
    """The tenant's settings; the table defaults when it never changed them."""
    if not for_update:
        row = await (await send_current(conn, tenant_id)).fetchone()
        assert row is not None
        return row
    cursor = conn.cursor(row_factory=dict_row)
    # Create the row first so that concurrent PATCHes serialise on it.
    await cursor.execute(
        "INSERT INTO tenant_settings (tenant_id) VALUES (%s) ON CONFLICT DO NOTHING",
        (tenant_id,),
    )
    await cursor.execute(
        f"SELECT {_COLUMNS} FROM tenant_settings WHERE tenant_id = %s FOR UPDATE", (tenant_id,)
    )
    row = await cursor.fetchone()
    assert row is not None
    return row


async def update(conn: AsyncConnection, tenant_id: int, changes: dict[str, Any]) -> None:
    """Apply ``changes`` to the (existing, locked) settings row."""
    await conn.execute(
        "UPDATE tenant_settings SET "
        "allocation_strategy = coalesce(%(allocation_strategy)s, allocation_strategy), "
        "backorder_policy = coalesce(%(backorder_policy)s, backorder_policy), "
        "allocate_on_create = coalesce(%(allocate_on_create)s, allocate_on_create), "
        "over_receipt_tolerance_pct = "
        "coalesce(%(over_receipt_tolerance_pct)s, over_receipt_tolerance_pct), "
        "recount_tolerance_pct = coalesce(%(recount_tolerance_pct)s, recount_tolerance_pct), "
        "updated_at = now() WHERE tenant_id = %(tenant_id)s",
        {
            "tenant_id": tenant_id,
            **{
                key: changes.get(key)
                for key in (
                    "allocation_strategy",
                    "backorder_policy",
                    "allocate_on_create",
                    "over_receipt_tolerance_pct",
                    "recount_tolerance_pct",
                )
            },
        },
    )
