"""SQL of stock: balances, lots, the ledger, and the master data a stock change reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row

from wms.domain.allocation import ALLOCATABLE_LOCATION_TYPES
from wms.domain.inventory import (
    BalanceKey,
    Delta,
    InsufficientStockError,
    StockStatus,
    lock_order,
)
from wms.store import cache, filters


@dataclass(frozen=True)
class StockProduct:
    """What a stock change needs to know of a product."""

    id: int
    sku: str
    lot_tracked: bool
    expiry_tracked: bool
    factors: dict[str, int]


@dataclass(frozen=True)
class StockLocation:
    """What a stock change needs to know of a location."""

    id: int
    code: str
    type: str
    active: bool
    capacity_units: int | None


@dataclass(frozen=True)
class MovementInfo:
    """What every ledger row of one command shares."""

    kind: str
    actor: str
    reason: str | None = None
    reference_type: str | None = None
    reference_id: str | None = None
    uom: str | None = None
    uom_quantity: int | None = None
    request_id: str | None = None


_PRODUCT_COLUMNS = (
    "SELECT p.id, p.sku, p.lot_tracked, p.expiry_tracked, p.base_uom, "
    "coalesce(json_object_agg(u.code, u.factor) FILTER (WHERE u.code IS NOT NULL), "
    "'{}') FROM products p LEFT JOIN product_uoms u "
    "ON u.tenant_id = p.tenant_id AND u.product_id = p.id "
)


def _stock_product(row: Sequence[Any]) -> StockProduct:
    factors = {str(code): int(factor) for code, factor in row[5].items()}
    factors[row[4]] = 1
    return StockProduct(row[0], row[1], row[2], row[3], factors)


async def product_by_sku(conn: AsyncConnection, sku: str) -> StockProduct | None:
    """The product ``sku`` with its unit factors (base unit = 1); cached per tenant."""

    async def load() -> list[Any] | None:
        cursor = await conn.execute(
            _PRODUCT_COLUMNS + "WHERE p.sku = %s GROUP BY p.tenant_id, p.id", (sku,)
        )
        row = await cursor.fetchone()
        return list(row) if row else None

    row = await cache.lookup("product", (sku,), load)
    return None if row is None else _stock_product(row)


async def send_products_in(
    conn: AsyncConnection, ids_query: str, params: Sequence[Any]
) -> AsyncCursor[Any]:
    """Send the read of the products whose ids ``ids_query`` (a subquery) selects; its
    cursor, unread (``read_products`` reads it). Lets the read join a pipeline.

    The ids are gathered first (``= ANY(ARRAY(…))``), then each product is found by its
    key: as a semi-join, a generic plan may hash the whole table.
    """
    return await conn.execute(
        _PRODUCT_COLUMNS + f"WHERE p.id = ANY(ARRAY({ids_query})) GROUP BY p.tenant_id, p.id",
        params,
    )


async def read_products(cursor: AsyncCursor[Any]) -> dict[str, StockProduct]:
    """The products a ``send_products_in`` cursor holds, by SKU."""
    return {row[1]: _stock_product(row) for row in await cursor.fetchall()}


async def products_by_sku(conn: AsyncConnection, skus: Iterable[str]) -> dict[str, StockProduct]:
    """``product_by_sku`` for many SKUs in one statement (a large document's lines); unknown
    SKUs are left out. Read from the database, not the cache: one round trip either way."""
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    cursor = await conn.execute(
        _PRODUCT_COLUMNS + "WHERE p.sku = ANY(%s::text[]) GROUP BY p.tenant_id, p.id", (wanted,)
    )
    return {row[1]: _stock_product(row) for row in await cursor.fetchall()}


@dataclass(frozen=True)
class BarcodeOwner:
    """The product (and unit, None for the base unit) a barcode names."""

    product_id: int
    sku: str
    uom: str | None


async def barcode_owner(conn: AsyncConnection, barcode: str) -> BarcodeOwner | None:
    """Who ``barcode`` belongs to; cached per tenant (products invalidate on change)."""

    async def load() -> list[Any] | None:
        cursor = await conn.execute(
            "SELECT p.id, p.sku, b.uom_code FROM barcodes b "
            "JOIN products p ON p.tenant_id = b.tenant_id AND p.id = b.product_id "
            "WHERE b.barcode = %s",
            (barcode,),
        )
        row = await cursor.fetchone()
        return list(row) if row else None

    row = await cache.lookup("barcode", (barcode,), load)
    return BarcodeOwner(int(row[0]), str(row[1]), row[2]) if row else None


async def location_by_code(
    conn: AsyncConnection, warehouse_id: int, code: str
) -> StockLocation | None:
    """Location ``code`` of a warehouse; cached per tenant."""

    async def load() -> list[Any] | None:
        cursor = await conn.execute(
            "SELECT id, code, type, active, capacity_units FROM locations "
            "WHERE warehouse_id = %s AND code = %s",
            (warehouse_id, code),
        )
        row = await cursor.fetchone()
        return list(row) if row else None

    row = await cache.lookup("location", (warehouse_id, code), load)
    return StockLocation(*row) if row else None


async def locations_by_code(
    conn: AsyncConnection, wanted: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], StockLocation]:
    """``location_by_code`` for many (warehouse id, code) pairs in one statement; unknown
    pairs are left out."""
    pairs = sorted(set(wanted))
    if not pairs:
        return {}
    cursor = await conn.execute(
        "SELECT l.warehouse_id, l.id, l.code, l.type, l.active, l.capacity_units "
        "FROM locations l JOIN unnest(%s::bigint[], %s::text[]) AS w(warehouse_id, code) "
        "ON l.warehouse_id = w.warehouse_id AND l.code = w.code",
        ([p[0] for p in pairs], [p[1] for p in pairs]),
    )
    return {(row[0], row[2]): StockLocation(*row[1:]) for row in await cursor.fetchall()}


async def lock_location(conn: AsyncConnection, location_id: int) -> tuple[int, int]:
    """Lock a location against concurrent filling; return the units stored in it now and
    those promised to its open putaway tasks."""
    await conn.execute("SELECT 1 FROM locations WHERE id = %s FOR NO KEY UPDATE", (location_id,))
    cursor = await conn.execute(
        "SELECT (SELECT coalesce(sum(on_hand), 0) FROM inventory_balances "
        "WHERE location_id = %(id)s), (SELECT coalesce(sum(quantity), 0) FROM putaway_tasks "
        "WHERE suggested_location_id = %(id)s AND status = 'open')",
        {"id": location_id},
    )
    row = await cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def lock_locations(conn: AsyncConnection, location_ids: Sequence[int]) -> None:
    """Lock locations against concurrent filling, in id order (no deadlock between two)."""
    await conn.execute(
        "SELECT 1 FROM locations WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE",
        (sorted(location_ids),),
    )


async def find_lot(
    conn: AsyncConnection, product_id: int, lot_code: str
) -> tuple[bool, date | None]:
    """Whether the lot exists, and its expiry."""
    cursor = await conn.execute(
        "SELECT expiry FROM lots WHERE product_id = %s AND lot_code = %s",
        (product_id, lot_code),
    )
    row = await cursor.fetchone()
    return (row is not None, row[0] if row else None)


async def insert_lot(
    conn: AsyncConnection, tenant_id: int, product_id: int, lot_code: str, expiry: date | None
) -> tuple[bool, date | None]:
    """Create the lot unless it exists; return (created, the expiry it has)."""
    cursor = await conn.execute(
        "INSERT INTO lots (tenant_id, product_id, lot_code, expiry) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING expiry",
        (tenant_id, product_id, lot_code, expiry),
    )
    row = await cursor.fetchone()
    if row is not None:
        return True, row[0]
    _, existing = await find_lot(conn, product_id, lot_code)
    return False, existing


async def set_lot_expiry(
    conn: AsyncConnection, product_id: int, lot_code: str, expiry: date
) -> bool:
    """Give a lot without an expiry ``expiry``; False when it has one (set meanwhile too)."""
    cursor = await conn.execute(
        "UPDATE lots SET expiry = %s WHERE product_id = %s AND lot_code = %s AND expiry IS NULL",
        (expiry, product_id, lot_code),
    )
    return cursor.rowcount == 1


# Available stock an open putaway task will move off its dock (V15): not free for any
# other take. The balance row is locked before a take reads this, and a receipt adds to
# that same row in the transaction that creates its tasks, so none is missed.
OWED_TO_PUTAWAY = (
    "coalesce((SELECT sum(t.quantity)::bigint FROM putaway_tasks t WHERE t.status = 'open' "
    "AND t.tenant_id = b.tenant_id AND t.warehouse_id = b.warehouse_id "
    "AND t.product_id = b.product_id AND t.from_location_id = b.location_id "
    "AND t.lot_code = b.lot_code "
    "AND b.status = 'available'), 0)"
)


async def free_quantity(conn: AsyncConnection, key: BalanceKey) -> int:
    """On-hand stock at ``key`` neither allocated nor owed to an open putaway task."""
    cursor = await conn.execute(
        f"SELECT coalesce(sum(b.on_hand - b.allocated - {OWED_TO_PUTAWAY}), 0) "
        "FROM inventory_balances b "
        "WHERE b.warehouse_id = %s AND b.location_id = %s AND b.product_id = %s "
        "AND b.lot_code = %s AND b.status = %s",
        (key.warehouse_id, key.location_id, key.product_id, key.lot_code, key.status.value),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


Place = tuple[int, int, str]  # location, product, lot code


async def lock_free_by_status(
    conn: AsyncConnection, warehouse_id: int, places: Sequence[Place]
) -> dict[Place, dict[StockStatus, int]]:
    """Lock the balances of ``places`` (every status, in key order, as every stock change
    locks) and return what each status could give up: neither allocated nor owed."""
    if not places:
        return {}
    cursor = await conn.execute(
        "SELECT b.location_id, b.product_id, b.lot_code, b.status, "
        f"b.on_hand - b.allocated - {OWED_TO_PUTAWAY} FROM inventory_balances b "
        "JOIN unnest(%s::bigint[], %s::bigint[], %s::text[]) AS p(location_id, product_id, "
        "lot_code) ON b.location_id = p.location_id AND b.product_id = p.product_id "
        "AND b.lot_code = p.lot_code WHERE b.warehouse_id = %s "
        'ORDER BY b.warehouse_id, b.location_id, b.product_id, b.lot_code COLLATE "C", '
        'b.status COLLATE "C" FOR UPDATE OF b',
        ([p[0] for p in places], [p[1] for p in places], [p[2] for p in places], warehouse_id),
    )
    free: dict[Place, dict[StockStatus, int]] = {}
    for location_id, product_id, lot_code, status, units in await cursor.fetchall():
        free.setdefault((location_id, product_id, lot_code), {})[StockStatus(status)] = int(units)
    return free


async def apply_deltas(
    conn: AsyncConnection, tenant_id: int, deltas: list[Delta], info: MovementInfo
) -> list[int]:
    """Apply the deltas and write a ledger row each, in the order given; the movement ids.

    A negative delta takes only unallocated stock, so two commands can never take the
    same unit; the CHECK constraints are the last wall. The set-based ``apply_moves`` does
    it: a 5,000-line dispatch was 10,000 round trips one delta at a time.
    """
    return await apply_moves(conn, tenant_id, [(delta, info) for delta in deltas])


# On-hand change of each balance key (columns of ``_key_columns``, then the signed q).
_SHIFT_ON_HAND = (
    "UPDATE inventory_balances b SET on_hand = b.on_hand + v.q, updated_at = now() "
    "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], "
    "%s::bigint[]) AS v(warehouse_id, location_id, product_id, lot_code, status, q) "
    "WHERE b.warehouse_id = v.warehouse_id AND b.location_id = v.location_id "
    "AND b.product_id = v.product_id AND b.lot_code = v.lot_code AND b.status = v.status"
)


async def apply_moves(
    conn: AsyncConnection,
    tenant_id: int,
    moves: Sequence[tuple[Delta, MovementInfo]],
    *,
    locked: Mapping[BalanceKey, int] | None = None,
) -> list[int]:
    """Deltas, each with its own ledger row, in a few statements whatever their number.

    Every balance is locked first, all in lock order (missing ones that receive stock are
    created empty), except those in ``locked`` (what ``lock_balances`` returned to a
    caller that locked them already in this transaction: a pick locks its source and
    staging balances up front); each key's units taken are then one conditional update
    (only stock neither allocated nor owed to an open putaway task: what it held before
    this call's additions, which never name a key they also take from), the units added
    another, and the ledger rows one insert
    in the order given. Returns the movement ids in that order.
    """
    if not moves:
        return []
    taken: dict[BalanceKey, int] = {}
    added: dict[BalanceKey, int] = {}
    for delta, _ in moves:
        totals = taken if delta.quantity < 0 else added
        totals[delta.key] = totals.get(delta.key, 0) + delta.quantity
    unlocked = [key for key in [*taken, *added] if locked is None or key not in locked]
    if unlocked:
        await lock_balances(conn, tenant_id, unlocked)
    taken_keys, taking = sorted(taken), None
    # One round trip for the updates and the ledger rows. A short take updates nothing
    # and is reported after them: the command then fails and its transaction rolls back.
    async with conn.pipeline():
        if taken_keys:
            taking = await conn.execute(
                _SHIFT_ON_HAND + f" AND b.on_hand - b.allocated - {OWED_TO_PUTAWAY} >= -v.q "
                "RETURNING b.warehouse_id, b.location_id, b.product_id, b.lot_code, b.status",
                (*_key_columns(taken_keys), [taken[key] for key in taken_keys]),
            )
        if added:
            keys = sorted(added)
            await conn.execute(_SHIFT_ON_HAND, (*_key_columns(keys), [added[key] for key in keys]))
        movements = await _send_many_movements(conn, tenant_id, moves)
    if taking is not None:
        done = {
            BalanceKey(row[0], row[1], row[2], row[3], StockStatus(row[4]))
            for row in await taking.fetchall()
        }
        for key in taken_keys:
            if key not in done:  # the first short key in lock order is reported
                available = await free_quantity(conn, key)
                raise InsufficientStockError(
                    f"only {available} free unit(s) there (neither allocated nor owed to a "
                    f"putaway task); {-taken[key]} requested",
                    available=available,
                    requested=-taken[key],
                )
    # One session draws the ids from one sequence in insertion order.
    return sorted(int(row[0]) for row in await movements.fetchall())


async def lock_balances(
    conn: AsyncConnection, tenant_id: int, keys: Sequence[BalanceKey]
) -> dict[BalanceKey, int]:
    """Create missing balances (empty), then lock them all in key order; key → balance id.

    Large commands (a batch of picks or putaways, a receipt) take every balance lock up
    front in one statement, in the order ``sorted`` gives (text compared as bytes, as
    Python does), so two of them never wait on each other in opposite orders.
    """
    unique = lock_order(keys)
    columns = _key_columns(unique)
    # One round trip: the lock runs after the insert (a pipeline keeps the order).
    async with conn.pipeline():
        await conn.execute(
            "INSERT INTO inventory_balances (tenant_id, warehouse_id, location_id, product_id, "
            "lot_code, status, on_hand) SELECT %s, v.*, 0 FROM unnest(%s::bigint[], "
            "%s::bigint[], %s::bigint[], %s::text[], %s::text[]) AS v ON CONFLICT DO NOTHING",
            (tenant_id, *columns),
        )
        cursor = await conn.execute(
            "SELECT b.id, b.warehouse_id, b.location_id, b.product_id, b.lot_code, b.status "
            "FROM inventory_balances b JOIN unnest(%s::bigint[], %s::bigint[], %s::bigint[], "
            "%s::text[], %s::text[]) AS k(wh, loc, product, lot, status) "
            "ON b.warehouse_id = k.wh AND b.location_id = k.loc AND b.product_id = k.product "
            "AND b.lot_code = k.lot AND b.status::text = k.status "
            'ORDER BY b.warehouse_id, b.location_id, b.product_id, b.lot_code COLLATE "C", '
            'b.status::text COLLATE "C" FOR NO KEY UPDATE OF b',
            columns,
        )
    return {
        BalanceKey(row[1], row[2], row[3], row[4], StockStatus(row[5])): int(row[0])
        for row in await cursor.fetchall()
    }


def _key_columns(keys: Sequence[BalanceKey]) -> tuple[list[Any], ...]:
    return (
        [k.warehouse_id for k in keys], [k.location_id for k in keys],
        [k.product_id for k in keys], [k.lot_code for k in keys],
        [str(k.status.value) for k in keys],
    )  # fmt: skip


async def _send_many_movements(
    conn: AsyncConnection, tenant_id: int, moves: Sequence[tuple[Delta, MovementInfo]]
) -> AsyncCursor[Any]:
    """Send the insert of ``moves``' ledger rows; its cursor (ids), unread."""
    keys = [delta.key for delta, _ in moves]
    infos = [info for _, info in moves]
    signed = [
        None if info.uom_quantity is None else (1 if delta.quantity > 0 else -1) * info.uom_quantity
        for delta, info in moves
    ]
    return await conn.execute(
        "INSERT INTO inventory_movements (tenant_id, warehouse_id, location_id, product_id, "
        "lot_code, status, quantity, kind, reason, reference_type, reference_id, uom, "
        "uom_quantity, actor, request_id) "
        "SELECT %s, v.warehouse_id, v.location_id, v.product_id, v.lot_code, v.status, v.q, "
        "v.kind, v.reason, v.reference_type, v.reference_id, v.uom, v.uom_quantity, v.actor, "
        "v.request_id FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], "
        "%s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
        "%s::bigint[], %s::text[], %s::text[]) WITH ORDINALITY AS v(warehouse_id, location_id, "
        "product_id, lot_code, status, q, kind, reason, reference_type, reference_id, uom, "
        "uom_quantity, actor, request_id, n) ORDER BY v.n RETURNING id",
        (
            tenant_id, *_key_columns(keys), [delta.quantity for delta, _ in moves],
            [str(i.kind) for i in infos], [i.reason for i in infos],
            [i.reference_type for i in infos], [i.reference_id for i in infos],
            [i.uom for i in infos], signed, [i.actor for i in infos],
            [i.request_id for i in infos],
        ),
    )  # fmt: skip


# What a take at a place can use: at a dock, the units owed to open putaway tasks are
# not (a move of them is refused); elsewhere nothing is owed, and CASE skips the subquery.
_FREE_AT_PLACE = (
    f"b.on_hand - b.allocated - CASE WHEN l.type = 'dock' THEN {OWED_TO_PUTAWAY} ELSE 0 END"
)
_BALANCE_COLUMNS = (
    "b.id, w.code AS warehouse, l.code AS location, p.sku, nullif(b.lot_code, '') AS lot, "
    f"lt.expiry, b.status, b.on_hand, b.allocated, {_FREE_AT_PLACE} AS available "
    "FROM inventory_balances b "
    "JOIN warehouses w ON w.tenant_id = b.tenant_id AND w.id = b.warehouse_id "
    "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
    "JOIN products p ON p.tenant_id = b.tenant_id AND p.id = b.product_id "
    "LEFT JOIN lots lt ON lt.tenant_id = b.tenant_id AND lt.product_id = b.product_id "
    "AND lt.lot_code = b.lot_code "
)

_BALANCE_FILTERS = {
    "warehouse": "w.code = %(warehouse)s",
    "location": "l.code = %(location)s",
    "sku": "p.sku = %(sku)s",
    # A scan: the barcode's product in the same statement (no round trip of its own).
    "barcode": "b.product_id = (SELECT bc.product_id FROM barcodes bc "
    "WHERE bc.barcode = %(barcode)s)",
    "lot": "b.lot_code = %(lot)s",
    "status": "b.status = %(status)s",
    "after": "b.id > %(after)s",
}


async def balances(
    conn: AsyncConnection,
    *,
    warehouse: str | None = None,
    location: str | None = None,
    sku: str | None = None,
    barcode: str | None = None,
    lot: str | None = None,
    status: str | None = None,
    keys: list[BalanceKey] | None = None,
    after_id: int | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Balances with stock on hand (or exactly ``keys``), by id, joined to their codes."""
    params: dict[str, Any] = {
        "warehouse": warehouse, "location": location, "sku": sku, "barcode": barcode,
        "lot": lot, "status": status, "after": after_id, "limit": limit,
    }  # fmt: skip
    where = filters.given(params, _BALANCE_FILTERS)
    if keys is None:
        where += " AND b.on_hand > 0"
    else:
        where += (
            " AND (b.location_id, b.product_id, b.lot_code, b.status) IN "
            "(SELECT * FROM unnest(%(loc)s::bigint[], %(prod)s::bigint[], %(lots)s::text[], "
            "%(statuses)s::text[]))"
        )
        params.update(
            loc=[k.location_id for k in keys],
            prod=[k.product_id for k in keys],
            lots=[k.lot_code for k in keys],
            statuses=[k.status.value for k in keys],
        )
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT " + _BALANCE_COLUMNS + "WHERE " + where + " ORDER BY b.id LIMIT %(limit)s",
        params,
    )
    return await cursor.fetchall()


_MOVEMENT_FILTERS = {
    "warehouse": "w.code = %(warehouse)s",
    "location": "l.code = %(location)s",
    "sku": "p.sku = %(sku)s",
    "lot": "m.lot_code = %(lot)s",
    "kind": "m.kind = %(kind)s",
    "reference": "m.reference_id = %(reference)s",
    "reference_type": "m.reference_type = %(reference_type)s",
    "id": "m.id = %(id)s",
    "after": "m.id > %(after)s",
}


async def movements(
    conn: AsyncConnection,
    *,
    warehouse: str | None,
    location: str | None,
    sku: str | None,
    lot: str | None,
    kind: str | None,
    reference: str | None,
    reference_type: str | None = None,
    movement_id: int | None = None,
    after_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Ledger rows in id order (the order they were written), joined to their codes."""
    params = {
        "warehouse": warehouse, "location": location, "sku": sku, "lot": lot,
        "kind": kind, "reference": reference, "reference_type": reference_type,
        "id": movement_id, "after": after_id,
        "limit": limit,
    }  # fmt: skip
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT m.id, m.occurred_at, w.code AS warehouse, l.code AS location, p.sku, "
        "nullif(m.lot_code, '') AS lot, m.status, m.quantity, m.kind, m.reason, "
        "m.reference_type, m.reference_id, m.uom, m.uom_quantity, m.actor, m.request_id "
        "FROM inventory_movements m "
        "JOIN warehouses w ON w.tenant_id = m.tenant_id AND w.id = m.warehouse_id "
        "JOIN locations l ON l.tenant_id = m.tenant_id AND l.id = m.location_id "
        "JOIN products p ON p.tenant_id = m.tenant_id AND p.id = m.product_id "
        "WHERE " + filters.given(params, _MOVEMENT_FILTERS) + " ORDER BY m.id LIMIT %(limit)s",
        params,
    )
    return await cursor.fetchall()


async def stock_summary(conn: AsyncConnection, warehouse_id: int) -> list[dict[str, Any]]:
    """Per product in one warehouse: on hand by status, allocated, available, locations."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT p.sku, p.description, "
        "sum(b.on_hand) AS on_hand, sum(b.allocated) AS allocated, "
        f"sum({_FREE_AT_PLACE}) FILTER (WHERE b.status = 'available') AS available, "
        "coalesce(sum(b.on_hand) FILTER (WHERE b.status = 'quarantine'), 0) AS quarantine, "
        "coalesce(sum(b.on_hand) FILTER (WHERE b.status = 'damaged'), 0) AS damaged, "
        "coalesce(sum(b.on_hand) FILTER (WHERE b.status = 'hold'), 0) AS hold, "
        "count(DISTINCT b.location_id) AS locations "
        "FROM inventory_balances b JOIN products p ON p.tenant_id = b.tenant_id "
        "AND p.id = b.product_id JOIN locations l ON l.tenant_id = b.tenant_id "
        "AND l.id = b.location_id WHERE b.warehouse_id = %s AND b.on_hand > 0 "
        "GROUP BY p.sku, p.description ORDER BY p.sku",
        (warehouse_id,),
    )
    rows = await cursor.fetchall()
    for row in rows:
        row["available"] = row["available"] or 0
    return rows


async def products_with_free_stock(
    conn: AsyncConnection,
    warehouse_id: int,
    *,
    product_ids: Sequence[int] | None = None,
    location_ids: Sequence[int] | None = None,
) -> list[int]:
    """Products (of ``product_ids``, at ``location_ids``: None means any) with unallocated
    available stock allocation may take: at active storage or pick locations, the
    outbound staging location left out."""
    cursor = await conn.execute(
        "SELECT DISTINCT b.product_id FROM inventory_balances b "
        "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
        "JOIN warehouses w ON w.tenant_id = b.tenant_id AND w.id = b.warehouse_id "
        "WHERE b.warehouse_id = %(wh)s AND b.status = 'available' AND b.on_hand > b.allocated "
        "AND (%(products)s::bigint[] IS NULL OR b.product_id = ANY(%(products)s)) "
        "AND (%(locations)s::bigint[] IS NULL OR b.location_id = ANY(%(locations)s)) "
        "AND l.active AND l.type = ANY(%(types)s) AND l.code <> w.outbound_staging_location "
        "ORDER BY b.product_id",
        {
            "wh": warehouse_id,
            "types": sorted(ALLOCATABLE_LOCATION_TYPES),
            "products": None if product_ids is None else list(product_ids),
            "locations": None if location_ids is None else list(location_ids),
        },
    )
    return [int(row[0]) for row in await cursor.fetchall()]
