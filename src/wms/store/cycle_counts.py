"""SQL of cycle counts and their lines."""

from __future__ import annotations

import hashlib
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from wms.store import filters


async def insert_count(
    conn: AsyncConnection, tenant_id: int, warehouse_id: int, created_by: str
) -> int:
    """A new open count; its id."""
    cursor = await conn.execute(
        "INSERT INTO cycle_counts (tenant_id, warehouse_id, created_by) VALUES (%s, %s, %s) "
        "RETURNING id",
        (tenant_id, warehouse_id, created_by),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


UNAPPROVED_STATUSES = "('open', 'counted')"  # a count not yet approved, as SQL
# A stock key (location, product, lot) is in at most one count not yet approved: two
# such counts would each measure the same difference and approval would apply it twice.
_UNAPPROVED_LINE = (
    "SELECT n.count_id FROM cycle_count_lines n JOIN cycle_counts c ON c.tenant_id = n.tenant_id "
    "AND c.id = n.count_id WHERE c.status IN " + UNAPPROVED_STATUSES + " "
    "AND n.location_id = {location} AND n.product_id = {product} AND n.lot_code = {lot}"
)


_LINE_SCOPE_FILTERS = {
    "locations": "b.location_id = ANY(%(locations)s::bigint[])",
    "products": "b.product_id = ANY(%(products)s::bigint[])",
}


def _counting_key(warehouse_id: int) -> int:
    digest = hashlib.blake2b(f"cycle-count\0{warehouse_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_counting(conn: AsyncConnection, warehouse_id: int) -> None:
    """Serialise, per warehouse, the commands that put stock keys into counts (so the
    check that a key is in no other unapproved count holds until they commit)."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_counting_key(warehouse_id),))


async def first_counted_elsewhere(
    conn: AsyncConnection,
    warehouse_id: int,
    *,
    location_ids: list[int] | None,
    product_ids: list[int] | None,
) -> dict[str, Any] | None:
    """The first stock key of the scope already in an unapproved count, with that count."""
    params = {"warehouse": warehouse_id, "locations": location_ids, "products": product_ids}
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT counted.count_id AS count, l.code AS location, p.sku, b.lot_code "
        "FROM inventory_balances b "
        "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
        "JOIN products p ON p.tenant_id = b.tenant_id AND p.id = b.product_id "
        "JOIN LATERAL ("
        + _UNAPPROVED_LINE.format(
            location="b.location_id", product="b.product_id", lot="b.lot_code"
        )
        + " LIMIT 1) counted ON true "
        "WHERE b.warehouse_id = %(warehouse)s AND b.on_hand > 0 "
        "AND " + filters.given(params, _LINE_SCOPE_FILTERS) + " "
        "ORDER BY l.pick_sequence, l.code, p.sku, b.lot_code LIMIT 1",
        params,
    )
    return await cursor.fetchone()


async def count_holding(
    conn: AsyncConnection, location_id: int, product_id: int, lot_code: str
) -> int | None:
    """The unapproved count that has a line for this stock key, if any."""
    cursor = await conn.execute(
        _UNAPPROVED_LINE.format(location="%s", product="%s", lot="%s") + " LIMIT 1",
        (location_id, product_id, lot_code),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else None


async def insert_lines(
    conn: AsyncConnection,
    tenant_id: int,
    count_id: int,
    warehouse_id: int,
    *,
    location_ids: list[int] | None,
    product_ids: list[int] | None,
) -> None:
    """One line per (location, product, lot) holding stock of any status in the scope, but
    for the keys already in another unapproved count (callers hold ``lock_counting``)."""
    params = {
        "tenant": tenant_id,
        "count": count_id,
        "warehouse": warehouse_id,
        "locations": location_ids,
        "products": product_ids,
    }
    await conn.execute(
        "INSERT INTO cycle_count_lines (tenant_id, count_id, line_no, location_id, product_id, "
        "lot_code) SELECT %(tenant)s, %(count)s, "
        "row_number() OVER (ORDER BY l.pick_sequence, l.code, b.product_id, b.lot_code), "
        "b.location_id, b.product_id, b.lot_code FROM inventory_balances b "
        "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
        "WHERE b.warehouse_id = %(warehouse)s AND b.on_hand > 0 "
        "AND NOT EXISTS ("
        + _UNAPPROVED_LINE.format(location="b.location_id", product="b.product_id",
                                  lot="b.lot_code")
        + ") AND " + filters.given(params, _LINE_SCOPE_FILTERS)
        # One line per place, whatever statuses its stock is split into.
        + " GROUP BY b.location_id, b.product_id, b.lot_code, l.pick_sequence, l.code",
        params,
    )  # fmt: skip


async def get_count(
    conn: AsyncConnection, count_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    """The count with its warehouse code (locked when ``for_update``)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT c.id, c.warehouse_id, w.code AS warehouse, c.status, c.blind, c.created_by, "
        "c.created_at, c.approved_by, c.approved_at, c.accuracy_pct, c.cancelled_by, "
        "c.cancelled_at, c.cancel_reason FROM cycle_counts c "
        "JOIN warehouses w ON w.tenant_id = c.tenant_id AND w.id = c.warehouse_id "
        "WHERE c.id = %s" + (" FOR UPDATE OF c" if for_update else ""),
        (count_id,),
    )
    return await cursor.fetchone()


async def lines(conn: AsyncConnection, count_id: int) -> list[dict[str, Any]]:
    """The count's lines in walking order, with location codes and SKUs."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT n.line_no, n.location_id, l.code AS location, n.product_id, p.sku, "
        "n.lot_code, nullif(n.lot_code, '') AS lot, n.status, n.expected, n.counted, "
        "n.attempts, n.counted_by, n.counted_at FROM cycle_count_lines n "
        "JOIN locations l ON l.tenant_id = n.tenant_id AND l.id = n.location_id "
        "JOIN products p ON p.tenant_id = n.tenant_id AND p.id = n.product_id "
        "WHERE n.count_id = %s ORDER BY n.line_no",
        (count_id,),
    )
    return await cursor.fetchall()


async def add_line(
    conn: AsyncConnection,
    tenant_id: int,
    count_id: int,
    *,
    location_id: int,
    product_id: int,
    lot_code: str,
) -> int:
    """A line for stock found where the count expected none; its number."""
    cursor = await conn.execute(
        "INSERT INTO cycle_count_lines (tenant_id, count_id, line_no, location_id, product_id, "
        "lot_code) SELECT %s, %s, coalesce(max(line_no), 0) + 1, %s, %s, %s "
        "FROM cycle_count_lines WHERE count_id = %s RETURNING line_no",
        (tenant_id, count_id, location_id, product_id, lot_code, count_id),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def record(
    conn: AsyncConnection,
    count_id: int,
    line_no: int,
    *,
    status: str,
    expected: int,
    counted: int,
    counted_by: str,
) -> None:
    """Store one counting of a line."""
    await conn.execute(
        "UPDATE cycle_count_lines SET status = %s, expected = %s, counted = %s, "
        "attempts = attempts + 1, counted_by = %s, counted_at = now() "
        "WHERE count_id = %s AND line_no = %s",
        (status, expected, counted, counted_by, count_id, line_no),
    )


async def mark_cancelled(
    conn: AsyncConnection, count_id: int, *, actor: str, reason: str | None
) -> None:
    """The count will not be approved: its keys are free for other counts again."""
    await conn.execute(
        "UPDATE cycle_counts SET status = 'cancelled', cancelled_by = %s, cancelled_at = now(), "
        "cancel_reason = %s WHERE id = %s",
        (actor, reason, count_id),
    )


async def set_status(
    conn: AsyncConnection,
    count_id: int,
    status: str,
    *,
    approved_by: str | None = None,
    accuracy_pct: float | None = None,
) -> None:
    """Move the count to ``status`` (recording approval and accuracy when given)."""
    await conn.execute(
        "UPDATE cycle_counts SET status = %s, approved_by = coalesce(%s, approved_by), "
        "approved_at = CASE WHEN %s::text IS NULL THEN approved_at ELSE now() END, "
        "accuracy_pct = coalesce(%s, accuracy_pct) WHERE id = %s",
        (status, approved_by, approved_by, accuracy_pct, count_id),
    )


async def on_hand_at(
    conn: AsyncConnection, location_id: int, product_id: int, lot_code: str
) -> int:
    """Every unit on hand at one place now, whatever its status: what a counter finds."""
    cursor = await conn.execute(
        "SELECT coalesce(sum(on_hand), 0) FROM inventory_balances WHERE location_id = %s "
        "AND product_id = %s AND lot_code = %s",
        (location_id, product_id, lot_code),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
