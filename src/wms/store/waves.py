"""SQL of waves and the orders they hold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from wms.domain.waves import Allocated, Place, TaskPlan, WaveCandidate
from wms.store import filters
from wms.store.jsonb import dumps


async def insert_wave(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    warehouse_id: int,
    pick_method: str,
    criteria: dict[str, Any] | None,
    actor: str,
) -> int:
    """A new open wave; its id."""
    cursor = await conn.execute(
        "INSERT INTO waves (tenant_id, warehouse_id, pick_method, criteria, created_by) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, warehouse_id, pick_method,
         None if criteria is None else Jsonb(criteria, dumps=dumps), actor),
    )  # fmt: skip
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


_CLAIM_FILTERS = {
    "carrier": "o.carrier = %(carrier)s",
    "before": "o.ship_by < %(before)s::timestamptz",
    "priority": "o.priority <= %(priority)s",
    "zone": (
        "NOT EXISTS (SELECT 1 FROM allocations a "
        "JOIN inventory_balances b ON b.tenant_id = a.tenant_id AND b.id = a.balance_id "
        "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
        "LEFT JOIN zones z ON z.tenant_id = l.tenant_id AND z.id = l.zone_id "
        "WHERE a.order_id = o.id AND z.code IS DISTINCT FROM %(zone)s)"
    ),
}


async def claim_by_filter(
    conn: AsyncConnection,
    warehouse_id: int,
    *,
    carrier: str | None,
    ship_by_before: datetime | None,
    priority_at_most: int | None,
    zone: str | None,
    limit: int,
) -> list[WaveCandidate]:
    """Allocated orders in no open wave matching the filter, most urgent first, locked.

    ``SKIP LOCKED`` leaves orders another wave is claiming right now to that wave, so two
    concurrent waves never wait on each other nor take the same order. ``zone``: every
    unit the order reserved lies in that zone.
    """
    params = {"wh": warehouse_id, "carrier": carrier, "before": ship_by_before,
              "priority": priority_at_most, "zone": zone, "limit": limit}  # fmt: skip
    cursor = await conn.execute(
        "SELECT o.id, o.line_count FROM orders o WHERE o.warehouse_id = %(wh)s "
        "AND o.status = 'allocated' AND " + filters.given(params, _CLAIM_FILTERS) + " "
        "AND NOT EXISTS (SELECT 1 FROM wave_orders wo WHERE wo.order_id = o.id AND wo.active) "
        "ORDER BY o.priority, o.ship_by NULLS LAST, o.id LIMIT %(limit)s "
        "FOR UPDATE OF o SKIP LOCKED",
        params,
    )
    return [WaveCandidate(int(row[0]), int(row[1])) for row in await cursor.fetchall()]


async def lock_orders_by_number(
    conn: AsyncConnection, numbers: Sequence[str]
) -> list[dict[str, Any]]:
    """Orders named in a wave request, locked in id order, with any open wave they are in."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT o.id, o.number, o.warehouse_id, o.status, o.line_count, "
        "(SELECT wo.wave_id FROM wave_orders wo WHERE wo.order_id = o.id AND wo.active) "
        "AS wave FROM orders o WHERE o.number = ANY(%s::text[]) ORDER BY o.id FOR UPDATE OF o",
        (list(numbers),),
    )
    return await cursor.fetchall()


async def add_orders(
    conn: AsyncConnection, tenant_id: int, wave_id: int, order_ids: Sequence[int]
) -> list[int]:
    """Put orders in the wave, in order; those already in an open wave are left out."""
    cursor = await conn.execute(
        "INSERT INTO wave_orders (tenant_id, wave_id, order_id, position) "
        "SELECT %s, %s, v.order_id, v.position FROM unnest(%s::bigint[]) "
        "WITH ORDINALITY AS v(order_id, position) "
        "ON CONFLICT (tenant_id, order_id) WHERE active DO NOTHING RETURNING order_id",
        (tenant_id, wave_id, list(order_ids)),
    )
    added = {int(row[0]) for row in await cursor.fetchall()}
    return [order_id for order_id in order_ids if order_id in added]


async def get_wave(
    conn: AsyncConnection, wave_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    """The wave with its warehouse (locked when ``for_update``)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT v.id, v.warehouse_id, w.code AS warehouse, w.outbound_staging_location, "
        "v.pick_method, v.status, v.criteria, v.task_count, v.created_by, v.created_at, "
        "v.released_by, v.released_at, v.completed_at FROM waves v "
        "JOIN warehouses w ON w.tenant_id = v.tenant_id AND w.id = v.warehouse_id "
        "WHERE v.id = %s" + (" FOR UPDATE OF v" if for_update else ""),
        (wave_id,),
    )
    return await cursor.fetchone()


async def wave_orders(conn: AsyncConnection, wave_id: int) -> list[dict[str, Any]]:
    """The wave's orders in wave order, with status, tote and whether still in it."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT wo.order_id, o.number, o.status, wo.position, wo.tote, wo.active "
        "FROM wave_orders wo JOIN orders o ON o.tenant_id = wo.tenant_id AND o.id = wo.order_id "
        "WHERE wo.wave_id = %s ORDER BY wo.position",
        (wave_id,),
    )
    return await cursor.fetchall()


async def set_totes(conn: AsyncConnection, wave_id: int, totes: dict[int, str]) -> None:
    """Record the tote of each order of a cluster wave."""
    await conn.execute(
        "UPDATE wave_orders wo SET tote = v.tote FROM unnest(%s::bigint[], %s::text[]) "
        "AS v(order_id, tote) WHERE wo.wave_id = %s AND wo.order_id = v.order_id",
        (list(totes), list(totes.values()), wave_id),
    )


async def leave_wave(conn: AsyncConnection, order_id: int) -> None:
    """Take an order out of its open wave (it was cancelled)."""
    await conn.execute(
        "UPDATE wave_orders SET active = false WHERE order_id = %s AND active", (order_id,)
    )


async def allocated_stock(
    conn: AsyncConnection, order_ids: Sequence[int], *, staging: str
) -> list[Allocated]:
    """Where the orders' reserved stock is (never the staging location), as task input."""
    cursor = await conn.execute(
        "SELECT a.order_id, a.line_no, b.location_id, l.code, l.pick_sequence, b.product_id, "
        "p.sku, b.lot_code, a.quantity FROM allocations a "
        "JOIN inventory_balances b ON b.tenant_id = a.tenant_id AND b.id = a.balance_id "
        "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
        "JOIN products p ON p.tenant_id = b.tenant_id AND p.id = b.product_id "
        "WHERE a.order_id = ANY(%s::bigint[]) AND l.code <> %s ORDER BY a.id",
        (list(order_ids), staging),
    )
    return [
        Allocated(
            order_id=row[0],
            line_no=row[1],
            place=Place(row[2], row[3], row[4], row[5], row[6], row[7]),
            quantity=row[8],
        )
        for row in await cursor.fetchall()
    ]


async def insert_tasks(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    wave_id: int,
    warehouse_id: int,
    plans: Sequence[TaskPlan],
) -> list[int]:
    """The release's open tasks, sequence 1, 2, ... in ``plans``' order; their ids.

    Two statements for the whole wave (tasks, then the order lines they serve), not two
    round trips per task: a 5,000-line order took 5 s to release one task at a time.
    """
    if not plans:
        return []
    places = [plan.place for plan in plans]
    cursor = await conn.execute(
        "INSERT INTO pick_tasks (tenant_id, wave_id, warehouse_id, location_id, product_id, "
        "lot_code, quantity, sequence) "
        "SELECT %s, %s, %s, v.location_id, v.product_id, v.lot_code, v.quantity, v.sequence "
        "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::bigint[]) WITH ORDINALITY "
        "AS v(location_id, product_id, lot_code, quantity, sequence) ORDER BY v.sequence "
        "RETURNING id, sequence",
        (tenant_id, wave_id, warehouse_id, [p.location_id for p in places],
         [p.product_id for p in places], [p.lot_code for p in places],
         [plan.quantity for plan in plans]),
    )  # fmt: skip
    by_sequence = {int(row[1]): int(row[0]) for row in await cursor.fetchall()}
    ids = [by_sequence[sequence] for sequence in range(1, len(plans) + 1)]
    shares = [(task_id, share) for task_id, plan in zip(ids, plans, strict=True)
              for share in plan.shares]  # fmt: skip
    await conn.execute(
        "INSERT INTO pick_task_orders (tenant_id, task_id, order_id, line_no, quantity, tote) "
        "SELECT %s, * FROM unnest(%s::bigint[], %s::bigint[], %s::int[], %s::bigint[], "
        "%s::text[])",
        (tenant_id, [t for t, _ in shares], [s.order_id for _, s in shares],
         [s.line_no for _, s in shares], [s.quantity for _, s in shares],
         [s.tote for _, s in shares]),
    )  # fmt: skip
    return ids


async def mark_released(
    conn: AsyncConnection, wave_id: int, *, task_count: int, actor: str
) -> None:
    """The wave is released with ``task_count`` tasks."""
    await conn.execute(
        "UPDATE waves SET status = 'released', task_count = %s, released_by = %s, "
        "released_at = now() WHERE id = %s",
        (task_count, actor, wave_id),
    )


async def add_task_count(conn: AsyncConnection, wave_id: int, added: int) -> None:
    """Count tasks added to a released wave (re-allocations of short picks)."""
    await conn.execute(
        "UPDATE waves SET task_count = task_count + %s WHERE id = %s", (added, wave_id)
    )


async def complete_if_done(conn: AsyncConnection, wave_id: int) -> bool:
    """Complete a released wave with no open task; its orders may join other waves again.

    The wave's row is locked before the tasks are looked at, in a statement of its own: of
    two commands closing the wave's last tasks (two orders' picks, a pick and a cancel),
    the second waits here and then sees the first's task closed. In one statement both
    read the other's task as open and neither completed the wave. Both statements travel
    in one round trip: the second still takes its snapshot after the first's lock.
    """
    async with conn.pipeline():
        await conn.execute(
            "SELECT 1 FROM waves WHERE id = %s AND status = 'released' FOR NO KEY UPDATE",
            (wave_id,),
        )
        cursor = await conn.execute(
            "UPDATE waves v SET status = 'completed', completed_at = now() WHERE v.id = %s "
            "AND v.status = 'released' AND NOT EXISTS (SELECT 1 FROM pick_tasks t "
            "WHERE t.wave_id = v.id AND t.status = 'open') RETURNING v.id",
            (wave_id,),
        )
    if await cursor.fetchone() is None:
        return False
    await conn.execute("UPDATE wave_orders SET active = false WHERE wave_id = %s", (wave_id,))
    return True


async def open_wave_of(conn: AsyncConnection, order_id: int) -> int | None:
    """The open (or released) wave the order is in."""
    cursor = await conn.execute(
        "SELECT wave_id FROM wave_orders WHERE order_id = %s AND active", (order_id,)
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else None
