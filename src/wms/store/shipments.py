"""SQL of shipments, the orders they carry, and manifests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from wms.store import filters


async def insert_shipment(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    warehouse_id: int,
    carrier: str,
    tracking_number: str,
    order_ids: Sequence[int],
    actor: str,
) -> int:
    """A new shipment of the orders; its id."""
    cursor = await conn.execute(
        "INSERT INTO shipments (tenant_id, warehouse_id, carrier, tracking_number, created_by) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, warehouse_id, carrier, tracking_number, actor),
    )
    row = await cursor.fetchone()
    assert row is not None
    shipment_id = int(row[0])
    await conn.execute(
        "INSERT INTO shipment_orders (tenant_id, shipment_id, order_id) "
        "SELECT %s, %s, unnest(%s::bigint[])",
        (tenant_id, shipment_id, list(order_ids)),
    )
    return shipment_id


async def shipment_of(conn: AsyncConnection, order_ids: Sequence[int]) -> dict[int, int]:
    """The shipment each of these orders is already in."""
    cursor = await conn.execute(
        "SELECT order_id, shipment_id FROM shipment_orders WHERE order_id = ANY(%s::bigint[])",
        (list(order_ids),),
    )
    return {int(row[0]): int(row[1]) for row in await cursor.fetchall()}


async def leave_shipment(conn: AsyncConnection, order_id: int) -> None:
    """Take a cancelled order out of a shipment not yet dispatched."""
    await conn.execute(
        "DELETE FROM shipment_orders so USING shipments s WHERE so.order_id = %s "
        "AND s.tenant_id = so.tenant_id AND s.id = so.shipment_id AND s.status = 'created'",
        (order_id,),
    )


async def get(
    conn: AsyncConnection, shipment_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    """The shipment with its warehouse and order numbers."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT s.id, s.warehouse_id, w.code AS warehouse, w.outbound_staging_location, "
        "s.carrier, s.tracking_number, s.status, s.created_by, s.created_at, s.dispatched_by, "
        "s.dispatched_at, s.cancelled_by, s.cancelled_at, s.cancel_reason, "
        "coalesce((SELECT array_agg(so.order_id ORDER BY so.order_id) "
        "FROM shipment_orders so WHERE so.tenant_id = s.tenant_id AND so.shipment_id = s.id), "
        "'{}') AS order_ids, coalesce((SELECT array_agg(o.number ORDER BY o.number) "
        "FROM shipment_orders so JOIN orders o ON o.tenant_id = so.tenant_id "
        "AND o.id = so.order_id WHERE so.tenant_id = s.tenant_id AND so.shipment_id = s.id), "
        "'{}') AS orders FROM shipments s "
        "JOIN warehouses w ON w.tenant_id = s.tenant_id AND w.id = s.warehouse_id "
        "WHERE s.id = %s" + (" FOR UPDATE OF s" if for_update else ""),
        (shipment_id,),
    )
    return await cursor.fetchone()


async def tracking_number_user(
    conn: AsyncConnection, carrier: str, tracking_number: str
) -> int | None:
    """The shipment not cancelled that holds this carrier's tracking number, if any."""
    cursor = await conn.execute(
        "SELECT id FROM shipments WHERE carrier = %s AND tracking_number = %s "
        "AND status <> 'cancelled'",
        (carrier, tracking_number),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else None


async def cancel(
    conn: AsyncConnection, shipment_id: int, *, actor: str, reason: str | None
) -> None:
    """The shipment will not leave: its orders leave it (still packed), its tracking
    number is free again."""
    async with conn.pipeline():
        await conn.execute("DELETE FROM shipment_orders WHERE shipment_id = %s", (shipment_id,))
        await conn.execute(
            "UPDATE shipments SET status = 'cancelled', cancelled_by = %s, cancelled_at = now(), "
            "cancel_reason = %s WHERE id = %s",
            (actor, reason, shipment_id),
        )


async def mark_dispatched(conn: AsyncConnection, shipment_id: int, actor: str) -> None:
    """The shipment left the building now."""
    await conn.execute(
        "UPDATE shipments SET status = 'dispatched', dispatched_by = %s, dispatched_at = now() "
        "WHERE id = %s",
        (actor, shipment_id),
    )


_MANIFEST_FILTERS = {"carrier": "s.carrier = %(carrier)s"}


async def manifest(
    conn: AsyncConnection,
    warehouse_id: int,
    *,
    carrier: str | None,
    start: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    """Shipments dispatched in [start, end), with their orders' package counts and weights."""
    params = {"wh": warehouse_id, "carrier": carrier, "start": start, "end": end}
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT s.id, s.carrier, s.tracking_number, s.dispatched_at, s.dispatched_by, "
        "(SELECT json_agg(json_build_object('number', o.number, 'customer', o.customer, "
        "'ship_to', o.ship_to, 'packages', (SELECT count(*) FROM packages k "
        "WHERE k.tenant_id = o.tenant_id AND k.order_id = o.id), "
        "'weight_kg', (SELECT coalesce(sum(k.weight_kg), 0)::float8 FROM packages k "
        "WHERE k.tenant_id = o.tenant_id AND k.order_id = o.id)) ORDER BY o.number) "
        "FROM shipment_orders so JOIN orders o ON o.tenant_id = so.tenant_id "
        "AND o.id = so.order_id WHERE so.tenant_id = s.tenant_id AND so.shipment_id = s.id) "
        "AS orders FROM shipments s WHERE s.warehouse_id = %(wh)s "
        "AND s.status = 'dispatched' AND " + filters.given(params, _MANIFEST_FILTERS) + " "
        "AND s.dispatched_at >= %(start)s AND s.dispatched_at < %(end)s "
        "ORDER BY s.dispatched_at, s.id",
        params,
    )
    return await cursor.fetchall()
