"""SQL of orders, their lines, and allocations against balances."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from wms.domain.allocation import Candidate, Reservation
from wms.store import filters, settings, warehouses
from wms.store.jsonb import dumps
from wms.store.tenancy import planned_for_values


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


async def send_products(conn: AsyncConnection, skus: Sequence[str]) -> AsyncCursor[Any]:
    """Send the read of the products of ``skus``; its cursor, unread (shaped by ``products``)."""
    return await conn.execute(
        "SELECT p.sku, p.id, p.lot_tracked, p.allocation_strategy, p.min_shelf_life_days, "
        "p.base_uom, coalesce(json_object_agg(u.code, u.factor) "
        "FILTER (WHERE u.code IS NOT NULL), '{}') FROM products p "
        "LEFT JOIN product_uoms u ON u.tenant_id = p.tenant_id AND u.product_id = p.id "
        "WHERE p.sku = ANY(%s) GROUP BY p.tenant_id, p.id",
        (list(set(skus)),),
    )


def products(rows: Sequence[Any]) -> dict[str, OrderProduct]:
    """The rows ``send_products`` read, by SKU."""
    found = {}
    for sku, pid, lot_tracked, strategy, shelf, base_uom, uoms in rows:
        factors = {str(code): int(factor) for code, factor in uoms.items()}
        factors[base_uom] = 1
        found[sku] = OrderProduct(pid, sku, lot_tracked, strategy, shelf, factors)
    return found


@dataclass(frozen=True)
class ToReceive:
    """What taking in an order starts from, read in one round trip."""

    existing: dict[str, Any] | None
    warehouse_id: int | None
    products: dict[str, OrderProduct]
    settings: dict[str, Any]


async def to_receive(
    conn: AsyncConnection, tenant_id: int, number: str, warehouse: str, skus: Sequence[str]
) -> ToReceive:
    """Order ``number`` if it exists, the warehouse's id, the products and the settings."""
    async with conn.pipeline():
        head = await send_head(conn, number)
        warehouse_row = await warehouses.send_id_of(conn, warehouse)
        product_rows = await send_products(conn, skus)
        current = await settings.send_current(conn, tenant_id)
    found_warehouse = await warehouse_row.fetchone()
    found_settings = await current.fetchone()
    assert found_settings is not None
    return ToReceive(
        existing=await head.fetchone(),
        warehouse_id=int(found_warehouse[0]) if found_warehouse else None,
        products=products(await product_rows.fetchall()),
        settings=found_settings,
    )


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
    "o.cancelled_at, w.outbound_staging_location AS staging_location FROM orders o "
    "JOIN warehouses w ON w.tenant_id = o.tenant_id AND w.id = o.warehouse_id "
)
# An order named by number inside another statement (its lines, its allocations): lets
# those be sent with the head's read instead of after it.
_ORDER_ID = "(SELECT n.id FROM orders n WHERE n.number = %s)"


@dataclass(frozen=True)
class OrderRows:
    """An order's head (None: no such order), lines and allocations, read together."""

    head: dict[str, Any] | None
    lines: list[dict[str, Any]]
    allocations: list[dict[str, Any]]


async def send_head(
    conn: AsyncConnection, number: str, *, for_update: bool = False
) -> AsyncCursor[dict[str, Any]]:
    """Send the head's read (locked when ``for_update``); its cursor, unread."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        _HEAD + "WHERE o.number = %s" + (" FOR UPDATE OF o" if for_update else ""),
        (number,),
    )
    return cursor


async def get_head(
    conn: AsyncConnection, number: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    """The order head by number (locked for a state change when ``for_update``)."""
    return await (await send_head(conn, number, for_update=for_update)).fetchone()


async def heads_by_id(conn: AsyncConnection, order_ids: list[int]) -> list[dict[str, Any]]:
    """Order heads by id, locked, in id order (the order backorders lock them in)."""
    return await (await send_heads_by_id(conn, order_ids)).fetchall()


async def send_heads_by_id(
    conn: AsyncConnection, order_ids: list[int]
) -> AsyncCursor[dict[str, Any]]:
    """Send ``heads_by_id``; its cursor, unread. Lets the read join a pipeline."""
    return await _send_locked_heads(conn, "o.id = ANY(%s)", (order_ids,))


async def send_heads_in(
    conn: AsyncConnection, ids_query: str, params: Sequence[Any]
) -> AsyncCursor[dict[str, Any]]:
    """Send ``heads_by_id`` for the orders ``ids_query`` (a subquery) selects; its cursor,
    unread. Lets the read join a pipeline; the ids are gathered first, then each head found
    by its key (as ``inventory.send_products_in``)."""
    return await _send_locked_heads(conn, f"o.id = ANY(ARRAY({ids_query}))", params)


async def _send_locked_heads(
    conn: AsyncConnection, condition: str, params: Sequence[Any]
) -> AsyncCursor[dict[str, Any]]:
    # Locked in id order: the order every command locks order heads in.
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(_HEAD + "WHERE " + condition + " ORDER BY o.id FOR UPDATE OF o", params)
    return cursor


def _order(order: int | str) -> str:
    """The condition on ``order_id`` for an order given by id or by number."""
    return "%s" if isinstance(order, int) else _ORDER_ID


async def send_lines(conn: AsyncConnection, order: int | str) -> AsyncCursor[dict[str, Any]]:
    """Send the read of ``lines`` (the order by id or number); its cursor, unread."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT l.line_no, l.product_id, p.sku, l.quantity, l.uom, l.uom_quantity, "
        "l.lot_code, nullif(l.lot_code, '') AS lot, l.min_shelf_life_days, l.allocated, "
        "l.picked, l.shipped, l.cancelled, p.allocation_strategy, "
        "p.min_shelf_life_days AS product_shelf_life FROM order_lines l "
        "JOIN products p ON p.tenant_id = l.tenant_id AND p.id = l.product_id "
        f"WHERE l.order_id = {_order(order)} ORDER BY l.line_no",
        (order,),
    )
    return cursor


async def lines(conn: AsyncConnection, order_id: int) -> list[dict[str, Any]]:
    """The order's lines with SKUs, in line order."""
    return await (await send_lines(conn, order_id)).fetchall()


async def send_allocations(conn: AsyncConnection, order: int | str) -> AsyncCursor[dict[str, Any]]:
    """Send the read of ``allocations`` (the order by id or number); its cursor, unread."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT a.line_no, a.balance_id, a.quantity, l.code AS location, "
        "nullif(b.lot_code, '') AS lot, lt.expiry FROM allocations a "
        "JOIN inventory_balances b ON b.tenant_id = a.tenant_id AND b.id = a.balance_id "
        "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
        "LEFT JOIN lots lt ON lt.tenant_id = b.tenant_id AND lt.product_id = b.product_id "
        f"AND lt.lot_code = b.lot_code WHERE a.order_id = {_order(order)} "
        "ORDER BY a.line_no, a.id",
        (order,),
    )
    return cursor


async def allocations(conn: AsyncConnection, order_id: int) -> list[dict[str, Any]]:
    """Where each line's reserved stock is."""
    return await (await send_allocations(conn, order_id)).fetchall()


async def order_rows(conn: AsyncConnection, number: str, *, allocations: bool = True) -> OrderRows:
    """Head, lines and allocations of order ``number``, in one round trip; without
    ``allocations`` (an order this transaction created has none), not read."""
    async with conn.pipeline():
        head = await send_head(conn, number)
        line_rows = await send_lines(conn, number)
        allocation_rows = await send_allocations(conn, number) if allocations else None
    return OrderRows(
        await head.fetchone(),
        await line_rows.fetchall(),
        await allocation_rows.fetchall() if allocation_rows is not None else [],
    )


async def lines_and_allocations(
    conn: AsyncConnection, order_id: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The order's lines and allocations, in one round trip."""
    async with conn.pipeline():
        line_rows = await send_lines(conn, order_id)
        allocation_rows = await send_allocations(conn, order_id)
    return await line_rows.fetchall(), await allocation_rows.fetchall()


@dataclass(frozen=True)
class ToAllocate:
    """What allocating an order starts from, read in one round trip."""

    head: dict[str, Any] | None
    lines: list[dict[str, Any]]
    settings: dict[str, Any]


async def to_allocate(conn: AsyncConnection, tenant_id: int, number: str) -> ToAllocate:
    """Lock order ``number``'s head; read its lines and the tenant's settings with it.

    The lines' read runs after the lock is held (statements of a pipeline run in order),
    so it sees every change committed before.
    """
    async with conn.pipeline():
        head = await send_head(conn, number, for_update=True)
        line_rows = await send_lines(conn, number)
        current = await settings.send_current(conn, tenant_id)
    found = await current.fetchone()
    assert found is not None
    return ToAllocate(await head.fetchone(), await line_rows.fetchall(), found)


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
    skip_locked: bool = False,
) -> list[Candidate]:
    """Lock the available balances of ``product_ids`` and return them as candidates.

    One statement: the rows are sorted by the balance key before any is locked (the
    locking step sits above the sort), the order every stock change locks in, so two
    allocators cannot deadlock on each other. A balance whose free stock another
    transaction took while this one waited is re-checked and left out.
    ``excluded_balances`` are left out (a balance a picker has just found short).
    ``skip_locked``: balances another transaction holds are left out, not waited for.
    """
    # Planned for its values: its generic plan, costed for any number of products, hashes
    # a scan of every location of the warehouse (tests/integration/test_query_plans.py).
    async with planned_for_values(conn):
        cursor = await conn.execute(
            "SELECT b.id, b.product_id, l.code, l.type, l.pick_sequence, b.lot_code, "
            "lt.expiry, b.first_received_at, b.on_hand - b.allocated FROM inventory_balances b "
            "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
            "LEFT JOIN lots lt ON lt.tenant_id = b.tenant_id AND lt.product_id = b.product_id "
            "AND lt.lot_code = b.lot_code "
            "WHERE b.warehouse_id = %s AND b.product_id = ANY(%s) AND b.status = 'available' "
            "AND b.on_hand > b.allocated AND NOT b.id = ANY(%s::bigint[]) "
            "AND l.active AND l.code <> %s "
            'ORDER BY b.warehouse_id, b.location_id, b.product_id, b.lot_code COLLATE "C", '
            'b.status COLLATE "C" '
            "FOR UPDATE OF b" + (" SKIP LOCKED" if skip_locked else ""),
            (warehouse_id, product_ids, list(excluded_balances), excluded_location),
        )
    return [Candidate(*row) for row in await cursor.fetchall()]


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


async def cancel_lines(conn: AsyncConnection, order_id: int) -> None:
    """Cancel what the order's lines did not ship (their allocations released already)."""
    await conn.execute(
        "UPDATE order_lines SET cancelled = quantity - shipped WHERE order_id = %s", (order_id,)
    )


async def release_all(conn: AsyncConnection, order_id: int) -> list[int]:
    """Release every allocation of the order; return the products whose stock came free."""
    cursor = await conn.execute(
        "SELECT b.id, b.product_id FROM inventory_balances b WHERE b.id IN "
        "(SELECT balance_id FROM allocations WHERE order_id = %s) "
        'ORDER BY b.warehouse_id, b.location_id, b.product_id, b.lot_code COLLATE "C", '
        'b.status COLLATE "C" '
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


@dataclass(frozen=True)
class WaitingOrder:
    """A backordered order's place in the queue: priority, then age, then id."""

    id: int
    priority: int
    created_at: datetime


async def waiting_orders(
    conn: AsyncConnection,
    warehouse_id: int,
    product_ids: list[int],
    limit: int,
    *,
    after: WaitingOrder | None = None,
) -> list[WaitingOrder]:
    """Backordered orders wanting these products, by priority then age (oldest first),
    from just past ``after``."""
    position = "AND (o.priority, o.created_at, o.id) > (%s, %s, %s) " if after else ""
    cursor = await conn.execute(
        "SELECT o.id, o.priority, o.created_at FROM orders o WHERE o.warehouse_id = %s "
        "AND o.status IN ('backordered', 'partially_allocated') AND EXISTS ("
        "SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.product_id = ANY(%s) "
        f"AND l.allocated + l.cancelled < l.quantity) {position}"
        "ORDER BY o.priority, o.created_at, o.id LIMIT %s",
        (
            warehouse_id,
            product_ids,
            *((after.priority, after.created_at, after.id) if after else ()),
            limit,
        ),
    )
    return [WaitingOrder(int(row[0]), int(row[1]), row[2]) for row in await cursor.fetchall()]


async def lock_allocated_balances(conn: AsyncConnection, order_ids: Sequence[int]) -> None:
    """Lock every balance the orders hold allocations at, in primary-key order."""
    await conn.execute(
        "SELECT 1 FROM inventory_balances b WHERE b.id IN (SELECT balance_id FROM allocations "
        "WHERE order_id = ANY(%s::bigint[])) "
        'ORDER BY b.warehouse_id, b.location_id, b.product_id, b.lot_code COLLATE "C", '
        'b.status COLLATE "C" '
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
