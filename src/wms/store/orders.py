"""SQL of orders, their lines, and allocations against balances."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from wms.domain.allocation import Candidate, Reservation
from wms.store import filters
from wms.store.jsonb import dumps

LOCK_CHUNK = 1000


@dataclass(frozen=True)
class NewLine:
    """An order line to insert (quantity in base units)."""

    line_no: int
    product_id: int
    quantity: int
    uom: str | None
    uom_quantity: int | None
    lot_code: str
    min_shelf_life_days: int | None


@dataclass(frozen=True)
class OrderProduct:
    """What ordering needs to know of a product."""

    id: int
    sku: str
    lot_tracked: bool
    allocation_strategy: str | None
    min_shelf_life_days: int | None
    factors: dict[str, int]


async def products_by_sku(conn: AsyncConnection, skus: Sequence[str]) -> dict[str, OrderProduct]:
    """Products of ``skus`` (one round trip for a whole order)."""
    cursor = await conn.execute(
        "SELECT p.sku, p.id, p.lot_tracked, p.allocation_strategy, p.min_shelf_life_days, "
        "p.base_uom, coalesce(json_object_agg(u.code, u.factor) "
        "FILTER (WHERE u.code IS NOT NULL), '{}') FROM products p "
        "LEFT JOIN product_uoms u ON u.tenant_id = p.tenant_id AND u.product_id = p.id "
        "WHERE p.sku = ANY(%s) GROUP BY p.tenant_id, p.id",
        (list(set(skus)),),
    )
    found = {}
    for sku, pid, lot_tracked, strategy, shelf, base_uom, uoms in await cursor.fetchall():
        factors = {str(code): int(factor) for code, factor in uoms.items()}
        factors[base_uom] = 1
        found[sku] = OrderProduct(pid, sku, lot_tracked, strategy, shelf, factors)
    return found


async def insert_order(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    number: str,
    warehouse_id: int,
    fields: dict[str, Any],
    content_hash: bytes,
    line_count: int,
) -> int | None:
    """Insert the order head; its id, or None when the number exists."""
    cursor = await conn.execute(
        "INSERT INTO orders (tenant_id, number, warehouse_id, customer, carrier, "
        "carrier_service, priority, ship_by, ship_to, content_hash, line_count) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (tenant_id, number) DO NOTHING RETURNING id",
        (
            tenant_id, number, warehouse_id, fields["customer"], fields["carrier"],
            fields["carrier_service"], fields["priority"], fields["ship_by"],
            Jsonb(fields["ship_to"], dumps=dumps), content_hash, line_count,
        ),
    )  # fmt: skip
    row = await cursor.fetchone()
    return int(row[0]) if row else None


async def insert_lines(
    conn: AsyncConnection, tenant_id: int, order_id: int, lines: list[NewLine]
) -> None:
    """Insert all lines in one statement (a 5,000-line order is one round trip)."""
    await conn.execute(
        "INSERT INTO order_lines (tenant_id, order_id, line_no, product_id, quantity, uom, "
        "uom_quantity, lot_code, min_shelf_life_days) SELECT %s, %s, * FROM unnest("
        "%s::int[], %s::bigint[], %s::bigint[], %s::text[], %s::bigint[], %s::text[], "
        "%s::int[])",
        (
            tenant_id, order_id,
            [line.line_no for line in lines], [line.product_id for line in lines],
            [line.quantity for line in lines], [line.uom for line in lines],
            [line.uom_quantity for line in lines], [line.lot_code for line in lines],
            [line.min_shelf_life_days for line in lines],
        ),
    )  # fmt: skip


_HEAD = (
    "SELECT o.id, o.number, w.code AS warehouse, o.warehouse_id, w.timezone, o.customer, "
    "o.carrier, o.carrier_service, o.priority, o.ship_by, o.ship_to, o.status, "
    "o.content_hash, o.created_at, o.updated_at, o.allocated_at, o.shipped_at, "
    "o.cancelled_at FROM orders o JOIN warehouses w ON w.tenant_id = o.tenant_id "
    "AND w.id = o.warehouse_id "
)


async def get_head(
    conn: AsyncConnection, number: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    """The order head by number (locked for a state change when ``for_update``)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        _HEAD + "WHERE o.number = %s" + (" FOR UPDATE OF o" if for_update else ""),
        (number,),
    )
    return await cursor.fetchone()


async def heads_by_id(conn: AsyncConnection, order_ids: list[int]) -> list[dict[str, Any]]:
    """Order heads by id, locked, in id order (the order backorders lock them in)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        _HEAD + "WHERE o.id = ANY(%s) ORDER BY o.id FOR UPDATE OF o",
        (order_ids,),
    )
    return await cursor.fetchall()


async def lines(conn: AsyncConnection, order_id: int) -> list[dict[str, Any]]:
    """The order's lines with SKUs, in line order."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT l.line_no, l.product_id, p.sku, l.quantity, l.uom, l.uom_quantity, "
        "l.lot_code, nullif(l.lot_code, '') AS lot, l.min_shelf_life_days, l.allocated, "
        "l.picked, l.shipped, l.cancelled, p.allocation_strategy, "
        "p.min_shelf_life_days AS product_shelf_life FROM order_lines l "
        "JOIN products p ON p.tenant_id = l.tenant_id AND p.id = l.product_id "
        "WHERE l.order_id = %s ORDER BY l.line_no",
        (order_id,),
    )
    return await cursor.fetchall()


async def allocations(conn: AsyncConnection, order_id: int) -> list[dict[str, Any]]:
    """Where each line's reserved stock is."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT a.line_no, a.balance_id, a.quantity, l.code AS location, "
        "nullif(b.lot_code, '') AS lot, lt.expiry FROM allocations a "
        "JOIN inventory_balances b ON b.tenant_id = a.tenant_id AND b.id = a.balance_id "
        "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
        "LEFT JOIN lots lt ON lt.tenant_id = b.tenant_id AND lt.product_id = b.product_id "
        "AND lt.lot_code = b.lot_code WHERE a.order_id = %s ORDER BY a.line_no, a.id",
        (order_id,),
    )
    return await cursor.fetchall()


_HEAD_FILTERS = {
    "warehouse": "w.code = %(warehouse)s",
    "status": "o.status = %(status)s",
    "after": "o.id > %(after)s",
}


async def list_heads(
    conn: AsyncConnection,
    *,
    warehouse: str | None,
    status: str | None,
    after_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Order heads in id order."""
    params = {"warehouse": warehouse, "status": status, "after": after_id, "limit": limit}
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        _HEAD + "WHERE " + filters.given(params, _HEAD_FILTERS) + " ORDER BY o.id LIMIT %(limit)s",
        params,
    )
    return await cursor.fetchall()


async def lock_candidates(
    conn: AsyncConnection,
    warehouse_id: int,
    product_ids: list[int],
    *,
    excluded_location: str,
    excluded_balances: Sequence[int] = (),
) -> list[Candidate]:
    """Lock the available balances of ``product_ids`` and return them as candidates.

    Balances are locked in primary-key order, the order every stock change uses, in
    chunks of ``LOCK_CHUNK`` rows so that a large order does not hold one huge lock
    request; two allocators therefore cannot deadlock on each other. ``excluded_balances``
    are left out (a balance a picker has just found short).
    """
    cursor = await conn.execute(
        "SELECT b.id FROM inventory_balances b WHERE b.warehouse_id = %s "
        "AND b.product_id = ANY(%s) AND b.status = 'available' AND b.on_hand > b.allocated "
        "AND NOT b.id = ANY(%s::bigint[]) ORDER BY b.location_id, b.product_id, b.lot_code",
        (warehouse_id, product_ids, list(excluded_balances)),
    )
    ids = [row[0] for row in await cursor.fetchall()]
    candidates: list[Candidate] = []
    for start in range(0, len(ids), LOCK_CHUNK):
        chunk = await conn.execute(
            "SELECT b.id, b.product_id, l.code, l.type, l.pick_sequence, b.lot_code, lt.expiry, "
            "b.first_received_at, b.on_hand - b.allocated FROM inventory_balances b "
            "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
            "LEFT JOIN lots lt ON lt.tenant_id = b.tenant_id AND lt.product_id = b.product_id "
            "AND lt.lot_code = b.lot_code "
            "WHERE b.id = ANY(%s) AND l.active AND l.code <> %s "
            "ORDER BY b.warehouse_id, b.location_id, b.product_id, b.lot_code, b.status "
            "FOR UPDATE OF b",
            (ids[start : start + LOCK_CHUNK], excluded_location),
        )
        candidates.extend(Candidate(*row) for row in await chunk.fetchall())
    return candidates


async def reserve(
    conn: AsyncConnection, tenant_id: int, order_id: int, reservations: list[Reservation]
) -> None:
    """Apply a plan: balances, allocation rows and line totals, one statement each.

    The balances are locked already; the CHECK ``allocated <= on_hand`` is the last wall.
    """
    if not reservations:
        return
    per_balance: dict[int, int] = {}
    per_line: dict[int, int] = {}
    for r in reservations:
        per_balance[r.balance_id] = per_balance.get(r.balance_id, 0) + r.quantity
        per_line[r.line_no] = per_line.get(r.line_no, 0) + r.quantity
    await conn.execute(
        "UPDATE inventory_balances b SET allocated = b.allocated + v.q, updated_at = now() "
        "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, q) WHERE b.id = v.id",
        (list(per_balance), list(per_balance.values())),
    )
    await conn.execute(
        "INSERT INTO allocations (tenant_id, order_id, line_no, balance_id, quantity) "
        "SELECT %s, %s, * FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) "
        "ON CONFLICT (tenant_id, order_id, line_no, balance_id) "
        "DO UPDATE SET quantity = allocations.quantity + excluded.quantity",
        (
            tenant_id, order_id, [r.line_no for r in reservations],
            [r.balance_id for r in reservations], [r.quantity for r in reservations],
        ),
    )  # fmt: skip
    await conn.execute(
        "UPDATE order_lines l SET allocated = l.allocated + v.q FROM unnest(%s::int[], "
        "%s::bigint[]) AS v(line_no, q) WHERE l.order_id = %s AND l.line_no = v.line_no",
        (list(per_line), list(per_line.values()), order_id),
    )


async def cancel_remainders(conn: AsyncConnection, order_id: int, short: dict[int, int]) -> None:
    """Cancel what lines could not get (backorder policy ``cancel_remainder``)."""
    await conn.execute(
        "UPDATE order_lines l SET cancelled = l.cancelled + v.q FROM unnest(%s::int[], "
        "%s::bigint[]) AS v(line_no, q) WHERE l.order_id = %s AND l.line_no = v.line_no",
        (list(short), list(short.values()), order_id),
    )


async def release_all(conn: AsyncConnection, order_id: int) -> list[int]:
    """Release every allocation of the order; return the products whose stock came free."""
    cursor = await conn.execute(
        "SELECT b.id, b.product_id FROM inventory_balances b WHERE b.id IN "
        "(SELECT balance_id FROM allocations WHERE order_id = %s) "
        "ORDER BY b.warehouse_id, b.location_id, b.product_id, b.lot_code, b.status "
        "FOR UPDATE OF b",
        (order_id,),
    )
    locked = await cursor.fetchall()
    await conn.execute(
        "UPDATE inventory_balances b SET allocated = b.allocated - a.q, updated_at = now() "
        "FROM (SELECT balance_id, sum(quantity) AS q FROM allocations WHERE order_id = %s "
        "GROUP BY balance_id) a WHERE b.id = a.balance_id",
        (order_id,),
    )
    await conn.execute("DELETE FROM allocations WHERE order_id = %s", (order_id,))
    await conn.execute("UPDATE order_lines SET allocated = 0 WHERE order_id = %s", (order_id,))
    return sorted({int(row[1]) for row in locked})


async def set_status(
    conn: AsyncConnection, order_id: int, status: str, *, stamp: str | None = None
) -> None:
    """Change the order's status (and stamp ``allocated_at``/``cancelled_at``...)."""
    stamps = {"allocated": "allocated_at", "cancelled": "cancelled_at", "shipped": "shipped_at"}
    column = stamps.get(stamp or "")
    extra = f", {column} = coalesce({column}, now())" if column else ""
    await conn.execute(
        f"UPDATE orders SET status = %s, updated_at = now(){extra} WHERE id = %s",
        (status, order_id),
    )


async def waiting_orders(
    conn: AsyncConnection, warehouse_id: int, product_ids: list[int], limit: int
) -> list[int]:
    """Backordered orders wanting these products, by priority then age (oldest first)."""
    cursor = await conn.execute(
        "SELECT o.id FROM orders o WHERE o.warehouse_id = %s "
        "AND o.status IN ('backordered', 'partially_allocated') AND EXISTS ("
        "SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.product_id = ANY(%s) "
        "AND l.allocated + l.cancelled < l.quantity) "
        "ORDER BY o.priority, o.created_at, o.id LIMIT %s",
        (warehouse_id, product_ids, limit),
    )
    return [int(row[0]) for row in await cursor.fetchall()]


async def lock_allocated_balances(conn: AsyncConnection, order_ids: Sequence[int]) -> None:
    """Lock every balance the orders hold allocations at, in primary-key order."""
    await conn.execute(
        "SELECT 1 FROM inventory_balances b WHERE b.id IN (SELECT balance_id FROM allocations "
        "WHERE order_id = ANY(%s::bigint[])) "
        "ORDER BY b.warehouse_id, b.location_id, b.product_id, b.lot_code, b.status "
        "FOR UPDATE OF b",
        (list(order_ids),),
    )


async def release_at(
    conn: AsyncConnection, balance_id: int, parts: dict[tuple[int, int], int]
) -> None:
    """Release ``parts`` ((order, line) → units) of their allocations at one locked balance.

    Line totals are left to the caller: a pick moves the allocation, a shortage drops it.
    """
    parts = {key: q for key, q in parts.items() if q > 0}
    if not parts:
        return
    orders_, lines_, quantities = (
        [k[0] for k in parts], [k[1] for k in parts], list(parts.values()),
    )  # fmt: skip
    await conn.execute(
        "DELETE FROM allocations a USING unnest(%s::bigint[], %s::int[], %s::bigint[]) "
        "AS v(order_id, line_no, q) WHERE a.balance_id = %s AND a.order_id = v.order_id "
        "AND a.line_no = v.line_no AND a.quantity = v.q",
        (orders_, lines_, quantities, balance_id),
    )
    await conn.execute(
        "UPDATE allocations a SET quantity = a.quantity - v.q FROM unnest(%s::bigint[], "
        "%s::int[], %s::bigint[]) AS v(order_id, line_no, q) WHERE a.balance_id = %s "
        "AND a.order_id = v.order_id AND a.line_no = v.line_no AND a.quantity > v.q",
        (orders_, lines_, quantities, balance_id),
    )
    await conn.execute(
        "UPDATE inventory_balances SET allocated = allocated - %s, updated_at = now() "
        "WHERE id = %s",
        (sum(quantities), balance_id),
    )


async def reserve_at(
    conn: AsyncConnection, tenant_id: int, balance_id: int, parts: dict[tuple[int, int], int]
) -> None:
    """Allocate ``parts`` ((order, line) → units) at one locked balance (line totals aside)."""
    parts = {key: q for key, q in parts.items() if q > 0}
    if not parts:
        return
    await conn.execute(
        "UPDATE inventory_balances SET allocated = allocated + %s, updated_at = now() "
        "WHERE id = %s",
        (sum(parts.values()), balance_id),
    )
    await conn.execute(
        "INSERT INTO allocations (tenant_id, order_id, line_no, balance_id, quantity) "
        "SELECT %s, v.order_id, v.line_no, %s, v.q FROM unnest(%s::bigint[], %s::int[], "
        "%s::bigint[]) AS v(order_id, line_no, q) "
        "ON CONFLICT (tenant_id, order_id, line_no, balance_id) "
        "DO UPDATE SET quantity = allocations.quantity + excluded.quantity",
        (tenant_id, balance_id, [k[0] for k in parts], [k[1] for k in parts],
         list(parts.values())),
    )  # fmt: skip


async def add_to_lines(
    conn: AsyncConnection, column: str, changes: dict[tuple[int, int], int]
) -> None:
    """Add signed ``changes`` ((order, line) → units) to ``allocated`` or ``picked``."""
    assert column in {"allocated", "picked"}
    changes = {key: q for key, q in changes.items() if q != 0}
    if not changes:
        return
    await conn.execute(
        f"UPDATE order_lines l SET {column} = l.{column} + v.q FROM unnest(%s::bigint[], "
        "%s::int[], %s::bigint[]) AS v(order_id, line_no, q) "
        "WHERE l.order_id = v.order_id AND l.line_no = v.line_no",
        ([k[0] for k in changes], [k[1] for k in changes], list(changes.values())),
    )


async def staged(conn: AsyncConnection, order_id: int, staging_location_id: int) -> list[Any]:
    """The order's allocations at the staging location: (line, balance, product, lot, units)."""
    cursor = await conn.execute(
        "SELECT a.line_no, a.balance_id, b.product_id, b.lot_code, a.quantity "
        "FROM allocations a "
        "JOIN inventory_balances b ON b.tenant_id = a.tenant_id AND b.id = a.balance_id "
        "WHERE a.order_id = %s AND b.location_id = %s ORDER BY a.line_no, a.id",
        (order_id, staging_location_id),
    )
    return await cursor.fetchall()


async def ship_lines(conn: AsyncConnection, order_id: int) -> None:
    """Dispatched: each line shipped what was picked; any unpicked remainder is cancelled."""
    await conn.execute(
        "UPDATE order_lines SET shipped = picked, cancelled = quantity - picked, allocated = 0 "
        "WHERE order_id = %s",
        (order_id,),
    )
