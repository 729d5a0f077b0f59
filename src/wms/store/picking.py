"""SQL of pick tasks, their order lines, and moving allocated stock between balances."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row, tuple_row

from wms.domain.waves import Place, Share
from wms.store import filters
from wms.store import inventory as stock_store
from wms.store import orders as order_store


async def insert_task(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    wave_id: int,
    warehouse_id: int,
    place: Place,
    shares: Sequence[Share],
    sequence: int,
    replaces: int | None = None,
) -> int:
    """A new open task with the order lines it serves; its id."""
    cursor = await conn.execute(
        "INSERT INTO pick_tasks (tenant_id, wave_id, warehouse_id, location_id, product_id, "
        "lot_code, quantity, sequence, replaces_task_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, wave_id, warehouse_id, place.location_id, place.product_id, place.lot_code,
         sum(s.quantity for s in shares), sequence, replaces),
    )  # fmt: skip
    row = await cursor.fetchone()
    assert row is not None
    task_id = int(row[0])
    await conn.execute(
        "INSERT INTO pick_task_orders (tenant_id, task_id, order_id, line_no, quantity, tote) "
        "SELECT %s, %s, * FROM unnest(%s::bigint[], %s::int[], %s::bigint[], %s::text[])",
        (tenant_id, task_id, [s.order_id for s in shares], [s.line_no for s in shares],
         [s.quantity for s in shares], [s.tote for s in shares]),
    )  # fmt: skip
    return task_id


async def next_sequence(conn: AsyncConnection, wave_id: int) -> int:
    """The sequence after the wave's last task (tasks added later walk after the rest)."""
    cursor = await conn.execute(
        "SELECT coalesce(max(sequence), 0) + 1 FROM pick_tasks WHERE wave_id = %s", (wave_id,)
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 1


async def send_lock_tasks(
    conn: AsyncConnection, task_ids: Sequence[int]
) -> AsyncCursor[dict[str, Any]]:
    """Send the lock of the tasks, in id order, with what a confirmation checks; its cursor,
    unread (``read_tasks`` reads it). Lets the lock lead a pipeline."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT t.id, t.wave_id, t.warehouse_id, w.code AS warehouse, "
        "w.outbound_staging_location AS staging, t.location_id, l.code AS location, "
        "l.type AS location_type, t.product_id, p.sku, t.lot_code, t.quantity, t.status "
        "FROM pick_tasks t "
        "JOIN warehouses w ON w.tenant_id = t.tenant_id AND w.id = t.warehouse_id "
        "JOIN locations l ON l.tenant_id = t.tenant_id AND l.id = t.location_id "
        "JOIN products p ON p.tenant_id = t.tenant_id AND p.id = t.product_id "
        "WHERE t.id = ANY(%s::bigint[]) ORDER BY t.id FOR NO KEY UPDATE OF t",
        (list(task_ids),),
    )
    return cursor


async def read_tasks(cursor: AsyncCursor[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The tasks a ``send_lock_tasks`` cursor holds, by id."""
    return {row["id"]: row for row in await cursor.fetchall()}


async def send_task_products(conn: AsyncConnection, task_ids: Sequence[int]) -> AsyncCursor[Any]:
    """Send the read of the tasks' products (``inventory.read_products`` reads it)."""
    return await stock_store.send_products_in(
        conn, "SELECT t.product_id FROM pick_tasks t WHERE t.id = ANY(%s::bigint[])",
        (list(task_ids),),
    )  # fmt: skip


async def send_task_order_heads(
    conn: AsyncConnection, task_ids: Sequence[int]
) -> AsyncCursor[dict[str, Any]]:
    """Send the lock of the heads of the orders the tasks pick for (a share left), in id
    order as ``orders.heads_by_id`` locks them; its cursor, unread."""
    return await order_store.send_heads_in(
        conn,
        "SELECT s.order_id FROM pick_task_orders s "
        "WHERE s.task_id = ANY(%s::bigint[]) AND s.quantity > 0",
        (list(task_ids),),
    )


async def shares(conn: AsyncConnection, task_id: int) -> list[dict[str, Any]]:
    """The order lines a task serves, with the order's priority and ship-by."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT s.order_id, o.number, s.line_no, s.quantity, s.tote, o.priority, o.ship_by "
        "FROM pick_task_orders s JOIN orders o ON o.tenant_id = s.tenant_id AND o.id = s.order_id "
        "WHERE s.task_id = %s ORDER BY s.order_id, s.line_no",
        (task_id,),
    )
    return await cursor.fetchall()


async def mark_picked(
    conn: AsyncConnection,
    task_id: int,
    *,
    status: str,
    picked: int,
    actor: str,
    received: dict[tuple[int, int], int],
) -> None:
    """Record a pick: who, when, how much, and how much each order line got."""
    await conn.execute(
        "UPDATE pick_tasks SET status = %s, picked_quantity = %s, picker = %s, "
        "picked_at = now() WHERE id = %s",
        (status, picked, actor, task_id),
    )
    await conn.execute(
        "UPDATE pick_task_orders s SET picked = v.q FROM unnest(%s::bigint[], %s::int[], "
        "%s::bigint[]) AS v(order_id, line_no, q) WHERE s.task_id = %s "
        "AND s.order_id = v.order_id AND s.line_no = v.line_no",
        ([k[0] for k in received], [k[1] for k in received], list(received.values()), task_id),
    )


async def send_shares_of(
    conn: AsyncConnection, task_ids: Sequence[int]
) -> AsyncCursor[dict[str, Any]]:
    """Send the read of ``shares`` of many tasks in one query; its cursor, unread
    (``read_shares`` reads it: task id → its order lines, tasks without any: [])."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT s.task_id, s.order_id, o.number, s.line_no, s.quantity, s.tote, o.priority, "
        "o.ship_by FROM pick_task_orders s "
        "JOIN orders o ON o.tenant_id = s.tenant_id AND o.id = s.order_id "
        "WHERE s.task_id = ANY(%s::bigint[]) ORDER BY s.task_id, s.order_id, s.line_no",
        (list(task_ids),),
    )
    return cursor


async def read_shares(
    cursor: AsyncCursor[dict[str, Any]], task_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """The shares a ``send_shares_of`` cursor holds: task id → its order lines."""
    found: dict[int, list[dict[str, Any]]] = {task_id: [] for task_id in task_ids}
    for row in await cursor.fetchall():
        found[row.pop("task_id")].append(row)
    return found


async def mark_many_picked(
    conn: AsyncConnection,
    picks: Sequence[tuple[int, str, int]],
    *,
    actor: str,
    received: dict[tuple[int, int, int], int],
) -> None:
    """``mark_picked`` for many tasks: (task, status, picked) each; (task, order, line) → units."""
    if not picks:
        return
    await conn.execute(
        "UPDATE pick_tasks t SET status = v.status, picked_quantity = v.picked, picker = %s, "
        "picked_at = now() FROM unnest(%s::bigint[], %s::text[], %s::bigint[]) "
        "AS v(id, status, picked) WHERE t.id = v.id",
        (actor, [p[0] for p in picks], [str(p[1]) for p in picks], [p[2] for p in picks]),
    )
    if not received:
        return
    await conn.execute(
        "UPDATE pick_task_orders s SET picked = v.q FROM unnest(%s::bigint[], %s::bigint[], "
        "%s::int[], %s::bigint[]) AS v(task_id, order_id, line_no, q) WHERE s.task_id = v.task_id "
        "AND s.order_id = v.order_id AND s.line_no = v.line_no",
        ([k[0] for k in received], [k[1] for k in received], [k[2] for k in received],
         list(received.values())),
    )  # fmt: skip


async def release_many(conn: AsyncConnection, parts: dict[tuple[int, int, int], int]) -> None:
    """``orders.release_at`` over many locked balances: (balance, order, line) → units."""
    parts = {key: q for key, q in parts.items() if q > 0}
    if not parts:
        return
    columns = ([k[0] for k in parts], [k[1] for k in parts], [k[2] for k in parts],
               list(parts.values()))  # fmt: skip
    await conn.execute(
        "DELETE FROM allocations a USING unnest(%s::bigint[], %s::bigint[], %s::int[], "
        "%s::bigint[]) AS v(balance_id, order_id, line_no, q) WHERE a.balance_id = v.balance_id "
        "AND a.order_id = v.order_id AND a.line_no = v.line_no AND a.quantity = v.q",
        columns,
    )
    await conn.execute(
        "UPDATE allocations a SET quantity = a.quantity - v.q FROM unnest(%s::bigint[], "
        "%s::bigint[], %s::int[], %s::bigint[]) AS v(balance_id, order_id, line_no, q) "
        "WHERE a.balance_id = v.balance_id AND a.order_id = v.order_id "
        "AND a.line_no = v.line_no AND a.quantity > v.q",
        columns,
    )
    await _add_allocated(conn, parts, sign=-1)


async def reserve_many(
    conn: AsyncConnection, tenant_id: int, parts: dict[tuple[int, int, int], int]
) -> None:
    """``orders.reserve_at`` over many locked balances: (balance, order, line) → units."""
    parts = {key: q for key, q in parts.items() if q > 0}
    if not parts:
        return
    await _add_allocated(conn, parts, sign=1)
    await conn.execute(
        "INSERT INTO allocations (tenant_id, order_id, line_no, balance_id, quantity) "
        "SELECT %s, v.order_id, v.line_no, v.balance_id, v.q FROM unnest(%s::bigint[], "
        "%s::bigint[], %s::int[], %s::bigint[]) AS v(balance_id, order_id, line_no, q) "
        "ON CONFLICT (tenant_id, order_id, line_no, balance_id) "
        "DO UPDATE SET quantity = allocations.quantity + excluded.quantity",
        (tenant_id, [k[0] for k in parts], [k[1] for k in parts], [k[2] for k in parts],
         list(parts.values())),
    )  # fmt: skip


async def _add_allocated(
    conn: AsyncConnection, parts: dict[tuple[int, int, int], int], *, sign: int
) -> None:
    totals: dict[int, int] = {}
    for (balance_id, _, _), q in parts.items():
        totals[balance_id] = totals.get(balance_id, 0) + sign * q
    balance_ids = sorted(totals)  # locked already; the order keeps it obvious
    await conn.execute(
        "UPDATE inventory_balances b SET allocated = b.allocated + v.q, updated_at = now() "
        "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, q) WHERE b.id = v.id",
        (balance_ids, [totals[i] for i in balance_ids]),
    )


async def lock_open_tasks_of(conn: AsyncConnection, order_id: int) -> list[tuple[int, int]]:
    """The order's open tasks with something to pick for it, as (task, wave), locked in
    id order (as a pick locks them, before their orders' heads)."""
    cursor = await conn.execute(
        "SELECT DISTINCT t.id, t.wave_id FROM pick_tasks t JOIN pick_task_orders s "
        "ON s.tenant_id = t.tenant_id AND s.task_id = t.id WHERE s.order_id = %s "
        "AND t.status = 'open' AND s.quantity > 0 ORDER BY t.id",
        (order_id,),
    )
    rows = [(int(row[0]), int(row[1])) for row in await cursor.fetchall()]
    if rows:
        await conn.execute(
            "SELECT 1 FROM pick_tasks WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE",
            ([task for task, _wave in rows],),
        )
    return rows


async def withdraw_order(conn: AsyncConnection, order_id: int) -> list[int]:
    """Take a cancelled order out of its open tasks; return the waves touched.

    A task left with nothing to pick is cancelled.
    """
    rows = await lock_open_tasks_of(conn, order_id)
    task_ids = [task for task, _wave in rows]
    if not task_ids:
        return []
    await conn.execute(
        "UPDATE pick_tasks t SET quantity = t.quantity - s.q, "
        "status = CASE WHEN t.quantity = s.q THEN 'cancelled' ELSE t.status END "
        "FROM (SELECT task_id, sum(quantity) AS q FROM pick_task_orders WHERE order_id = %s "
        "AND task_id = ANY(%s::bigint[]) GROUP BY task_id) s WHERE t.id = s.task_id",
        (order_id, task_ids),
    )
    await conn.execute(
        "UPDATE pick_task_orders SET quantity = 0 WHERE order_id = %s "
        "AND task_id = ANY(%s::bigint[])",
        (order_id, task_ids),
    )
    return sorted({wave for _task, wave in rows})


async def send_orders_with_open_tasks(
    conn: AsyncConnection, order_ids: Sequence[int]
) -> AsyncCursor[tuple[int]]:
    """Send the question: which of these orders does an open task still pick for? Its
    cursor, unread (one order id per row).

    Driven from each order's shares, each task looked up by its key: freshly released
    tasks have no statistics yet, and a join let the planner scan every task instead.
    """
    cursor = conn.cursor(row_factory=tuple_row)
    await cursor.execute(
        "SELECT o.id FROM unnest(%s::bigint[]) AS o(id) WHERE EXISTS (SELECT 1 "
        "FROM pick_task_orders s WHERE s.order_id = o.id AND s.quantity > 0 AND "
        "(SELECT t.status FROM pick_tasks t "
        "WHERE t.tenant_id = s.tenant_id AND t.id = s.task_id) = 'open')",
        (list(order_ids),),
    )
    return cursor


async def picked_by_place(conn: AsyncConnection, order_id: int) -> list[dict[str, Any]]:
    """What was picked for the order, per pick location, product and lot (for put-back)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT t.warehouse_id, t.location_id, t.product_id, t.lot_code, sum(s.picked) AS picked "
        "FROM pick_task_orders s JOIN pick_tasks t ON t.tenant_id = s.tenant_id "
        "AND t.id = s.task_id WHERE s.order_id = %s AND s.picked > 0 "
        "GROUP BY t.warehouse_id, t.location_id, t.product_id, t.lot_code "
        "ORDER BY t.location_id, t.product_id, t.lot_code",
        (order_id,),
    )
    return await cursor.fetchall()


_TASK_VIEW = (
    "SELECT t.id, t.wave_id AS wave, w.code AS warehouse, l.code AS location, p.sku, "
    "nullif(t.lot_code, '') AS lot, t.quantity, t.sequence, t.status, t.picked_quantity, "
    "t.picker, t.picked_at, t.replaces_task_id AS replaces, t.created_at, "
    "coalesce((SELECT json_agg(json_build_object('order', o.number, 'line', s.line_no, "
    "'quantity', s.quantity, 'picked', s.picked, 'tote', s.tote) ORDER BY o.number, s.line_no) "
    "FROM pick_task_orders s JOIN orders o ON o.tenant_id = s.tenant_id AND o.id = s.order_id "
    "WHERE s.tenant_id = t.tenant_id AND s.task_id = t.id AND s.quantity > 0), '[]') AS orders "
    "FROM pick_tasks t "
    "JOIN warehouses w ON w.tenant_id = t.tenant_id AND w.id = t.warehouse_id "
    "JOIN locations l ON l.tenant_id = t.tenant_id AND l.id = t.location_id "
    "JOIN products p ON p.tenant_id = t.tenant_id AND p.id = t.product_id "
)

_TASK_FILTERS = {
    "wave": "t.wave_id = %(wave)s",
    "status": "t.status = %(status)s",
    "warehouse": "w.code = %(warehouse)s",
    "ids": "t.id = ANY(%(ids)s::bigint[])",
    "seq": "(t.sequence, t.id) > (%(seq)s::int, %(after)s)",
}


async def tasks(
    conn: AsyncConnection,
    *,
    wave: int | None = None,
    status: str | None = None,
    warehouse: str | None = None,
    ids: Sequence[int] | None = None,
    after: tuple[int, int] | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Pick tasks in walking order (sequence, id), filtered, with their order lines."""
    params = {"wave": wave, "status": status, "warehouse": warehouse,
              "ids": None if ids is None else list(ids), "seq": after[0] if after else None,
              "after": after[1] if after else None, "limit": limit}  # fmt: skip
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        _TASK_VIEW + "WHERE " + filters.given(params, _TASK_FILTERS) + " "
        "ORDER BY t.sequence, t.id LIMIT %(limit)s",
        params,
    )
    return await cursor.fetchall()


async def places_of(conn: AsyncConnection, balance_ids: Sequence[int]) -> dict[int, Place]:
    """The place (location with its walking position, product, lot) of each balance."""
    cursor = await conn.execute(
        "SELECT b.id, b.location_id, l.code, l.pick_sequence, b.product_id, p.sku, b.lot_code "
        "FROM inventory_balances b "
        "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
        "JOIN products p ON p.tenant_id = b.tenant_id AND p.id = b.product_id "
        "WHERE b.id = ANY(%s::bigint[])",
        (list(balance_ids),),
    )
    return {row[0]: Place(*row[1:]) for row in await cursor.fetchall()}
