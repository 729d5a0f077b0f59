"""SQL of replenishment levels and of tasks moving stock between two locations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from wms.store import filters


async def upsert_level(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    warehouse_id: int,
    location_id: int,
    product_id: int,
    minimum: int,
    maximum: int,
) -> None:
    """Set the min/max of a product at a pick face."""
    await conn.execute(
        "INSERT INTO replenishment_levels (tenant_id, location_id, product_id, warehouse_id, "
        "min_quantity, max_quantity) VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (tenant_id, location_id, product_id) DO UPDATE SET "
        "min_quantity = excluded.min_quantity, max_quantity = excluded.max_quantity, "
        "updated_at = now()",
        (tenant_id, location_id, product_id, warehouse_id, minimum, maximum),
    )


async def low_faces(
    conn: AsyncConnection, warehouse_id: int, product_ids: Sequence[int]
) -> list[dict[str, Any]]:
    """Pick faces of these products below their minimum with no open replenishment.

    Only active pick locations: a level outlives a face made another type or deactivated,
    and a task into it would bring stock allocation never takes, or that it cannot take.
    """
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT r.location_id, r.product_id, r.min_quantity, r.max_quantity, "
        "coalesce(s.available, 0) AS available, coalesce(s.on_hand, 0) AS on_hand "
        "FROM replenishment_levels r "
        "JOIN locations l ON l.tenant_id = r.tenant_id AND l.id = r.location_id "
        "AND l.active AND l.type = 'pick' "
        "LEFT JOIN LATERAL (SELECT sum(b.on_hand - b.allocated) "
        "AS available, sum(b.on_hand) AS on_hand FROM inventory_balances b "
        "WHERE b.tenant_id = r.tenant_id AND b.location_id = r.location_id "
        "AND b.product_id = r.product_id AND b.status = 'available') s ON true "
        "WHERE r.warehouse_id = %s AND r.product_id = ANY(%s::bigint[]) "
        "AND coalesce(s.available, 0) < r.min_quantity AND NOT EXISTS (SELECT 1 "
        "FROM replenishment_tasks t WHERE t.to_location_id = r.location_id "
        "AND t.product_id = r.product_id AND t.status = 'open' AND t.kind = 'replenishment') "
        "ORDER BY r.location_id, r.product_id",
        (warehouse_id, list(product_ids)),
    )
    return await cursor.fetchall()


async def best_reserve(
    conn: AsyncConnection, warehouse_id: int, product_id: int, *, face_id: int
) -> dict[str, Any] | None:
    """Free available stock in storage to replenish from: earliest expiry, then oldest.

    Units already promised to open tasks from the same place are not offered twice.
    """
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT b.location_id, b.lot_code, b.on_hand - b.allocated - coalesce((SELECT "
        "sum(t.quantity) FROM replenishment_tasks t WHERE t.from_location_id = b.location_id "
        "AND t.product_id = b.product_id AND t.lot_code = b.lot_code AND t.status = 'open'), 0) "
        "AS free FROM inventory_balances b "
        "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
        "LEFT JOIN lots lt ON lt.tenant_id = b.tenant_id AND lt.product_id = b.product_id "
        "AND lt.lot_code = b.lot_code WHERE b.warehouse_id = %s AND b.product_id = %s "
        "AND b.status = 'available' AND b.on_hand > b.allocated AND l.type = 'storage' "
        "AND l.active AND b.location_id <> %s "
        "ORDER BY lt.expiry NULLS LAST, b.first_received_at, b.id",
        (warehouse_id, product_id, face_id),
    )
    for row in await cursor.fetchall():
        if row["free"] > 0:
            return row
    return None


async def insert_task(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    warehouse_id: int,
    kind: str,
    product_id: int,
    lot_code: str,
    quantity: int,
    from_location_id: int,
    to_location_id: int,
    reason: str,
    order_id: int | None = None,
) -> int | None:
    """A new open task; its id (None when the face already has an open replenishment)."""
    cursor = await conn.execute(
        "INSERT INTO replenishment_tasks (tenant_id, warehouse_id, kind, product_id, lot_code, "
        "quantity, from_location_id, to_location_id, reason, order_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (tenant_id, to_location_id, product_id) "
        "WHERE status = 'open' AND kind = 'replenishment' DO NOTHING RETURNING id",
        (tenant_id, warehouse_id, kind, product_id, lot_code, quantity, from_location_id,
         to_location_id, reason, order_id),
    )  # fmt: skip
    row = await cursor.fetchone()
    return int(row[0]) if row else None


async def lock_task(conn: AsyncConnection, task_id: int) -> dict[str, Any] | None:
    """A task with its warehouse and SKU, locked against a concurrent confirmation."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT t.id, t.warehouse_id, w.code AS warehouse, t.kind, t.product_id, p.sku, "
        "t.lot_code, t.quantity, t.from_location_id, t.to_location_id, t.status, t.order_id "
        "FROM replenishment_tasks t "
        "JOIN warehouses w ON w.tenant_id = t.tenant_id AND w.id = t.warehouse_id "
        "JOIN products p ON p.tenant_id = t.tenant_id AND p.id = t.product_id "
        "WHERE t.id = %s FOR NO KEY UPDATE OF t",
        (task_id,),
    )
    return await cursor.fetchone()


async def mark_confirmed(conn: AsyncConnection, task_id: int, *, quantity: int, actor: str) -> None:
    """The task is done: ``quantity`` moved by ``actor`` now."""
    await conn.execute(
        "UPDATE replenishment_tasks SET status = 'confirmed', confirmed_quantity = %s, "
        "confirmed_by = %s, confirmed_at = now() WHERE id = %s",
        (quantity, actor, task_id),
    )


async def mark_cancelled(
    conn: AsyncConnection, task_id: int, *, actor: str, reason: str | None
) -> None:
    """The task will not be done: cancelled by ``actor`` now, for ``reason``."""
    await conn.execute(
        "UPDATE replenishment_tasks SET status = 'cancelled', cancelled_by = %s, "
        "cancelled_at = now(), cancel_reason = %s WHERE id = %s",
        (actor, reason, task_id),
    )


_TASK_FILTERS = {
    "status": "t.status = %(status)s",
    "kind": "t.kind = %(kind)s",
    "warehouse": "w.code = %(warehouse)s",
    "ids": "t.id = ANY(%(ids)s::bigint[])",
    "after": "t.id > %(after)s",
}


async def tasks(
    conn: AsyncConnection,
    *,
    status: str | None = None,
    kind: str | None = None,
    warehouse: str | None = None,
    ids: Sequence[int] | None = None,
    after_id: int | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Tasks in id order, filtered, joined to their codes."""
    params = {"status": status, "kind": kind, "warehouse": warehouse,
              "ids": None if ids is None else list(ids), "after": after_id,
              "limit": limit}  # fmt: skip
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT t.id, t.kind, w.code AS warehouse, p.sku, nullif(t.lot_code, '') AS lot, "
        "t.quantity, f.code AS from_location, d.code AS to_location, o.number AS order_number, "
        "t.reason, t.status, t.created_at, t.confirmed_by, t.confirmed_at, t.confirmed_quantity, "
        "t.cancelled_by, t.cancelled_at, t.cancel_reason "
        "FROM replenishment_tasks t "
        "JOIN warehouses w ON w.tenant_id = t.tenant_id AND w.id = t.warehouse_id "
        "JOIN products p ON p.tenant_id = t.tenant_id AND p.id = t.product_id "
        "JOIN locations f ON f.tenant_id = t.tenant_id AND f.id = t.from_location_id "
        "JOIN locations d ON d.tenant_id = t.tenant_id AND d.id = t.to_location_id "
        "LEFT JOIN orders o ON o.tenant_id = t.tenant_id AND o.id = t.order_id "
        "WHERE " + filters.given(params, _TASK_FILTERS) + " ORDER BY t.id LIMIT %(limit)s",
        params,
    )
    return await cursor.fetchall()
