"""SQL of ASNs, their lines, and receipts (rows show codes and SKUs next to ids)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from wms.domain.inbound import AsnLine
from wms.store import filters

_ASN_COLUMNS = (
    "a.id, a.reference, a.warehouse_id, w.code AS warehouse, w.timezone, a.supplier, "
    "a.expected_at, a.status, a.created_by, a.created_at, a.closed_by, a.closed_at"
)
_ASN_FROM = "asns a JOIN warehouses w ON w.tenant_id = a.tenant_id AND w.id = a.warehouse_id"


@dataclass(frozen=True)
class ReceiptLine:
    """One scan as stored: product, lot, quantities, condition and dock."""

    line_no: int
    asn_line_no: int | None
    product_id: int
    lot_code: str
    expiry: date | None
    quantity: int
    uom: str | None
    uom_quantity: int
    scanned: str
    condition: str
    location_id: int


async def insert_asn(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    reference: str,
    warehouse_id: int,
    supplier: str,
    expected_at: datetime | None,
    created_by: str,
) -> int | None:
    """Insert an ASN; its id, or None when the reference is taken."""
    cursor = await conn.execute(
        "INSERT INTO asns (tenant_id, reference, warehouse_id, supplier, expected_at, "
        "created_by) VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (tenant_id, reference) DO NOTHING RETURNING id",
        (tenant_id, reference, warehouse_id, supplier, expected_at, created_by),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else None


async def id_by_reference(conn: AsyncConnection, reference: str) -> int | None:
    """The id of the ASN with ``reference``."""
    cursor = await conn.execute("SELECT id FROM asns WHERE reference = %s", (reference,))
    row = await cursor.fetchone()
    return int(row[0]) if row else None


async def insert_lines(
    conn: AsyncConnection, tenant_id: int, asn_id: int, lines: Sequence[AsnLine]
) -> None:
    """Insert the ASN's expected lines."""
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO asn_lines (tenant_id, asn_id, line_no, product_id, lot_code, expiry, "
            "expected) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (tenant_id, asn_id, ln.line_no, ln.product_id, ln.lot_code, ln.expiry, ln.expected)
                for ln in lines
            ],
        )


async def get_asn(
    conn: AsyncConnection, asn_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    """One ASN with its warehouse code and time zone (locked when ``for_update``)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"SELECT {_ASN_COLUMNS} FROM {_ASN_FROM} WHERE a.id = %s"
        + (" FOR NO KEY UPDATE OF a" if for_update else ""),
        (asn_id,),
    )
    return await cursor.fetchone()


async def lines(conn: AsyncConnection, asn_id: int) -> list[dict[str, Any]]:
    """The ASN's lines in line order, with SKUs."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT n.line_no, n.product_id, p.sku, n.lot_code, nullif(n.lot_code, '') AS lot, "
        "n.expiry, n.expected FROM asn_lines n "
        "JOIN products p ON p.tenant_id = n.tenant_id AND p.id = n.product_id "
        "WHERE n.asn_id = %s ORDER BY n.line_no",
        (asn_id,),
    )
    return await cursor.fetchall()


async def received(conn: AsyncConnection, asn_id: int) -> list[dict[str, Any]]:
    """Base units received per (ASN line, product, lot, condition), with SKUs."""
    cursor = conn.cursor(row_factory=dict_row)
    # The sum stays numeric: many large receipts may add up past bigint, and an ASN must
    # stay readable and closable then (the balances themselves are bigint, checked).
    await cursor.execute(
        "SELECT r.asn_line_no, r.product_id, p.sku, r.lot_code, r.condition, "
        "sum(r.quantity) AS quantity FROM receipt_lines r "
        "JOIN products p ON p.tenant_id = r.tenant_id AND p.id = r.product_id "
        "WHERE r.asn_id = %s GROUP BY r.asn_line_no, r.product_id, p.sku, r.lot_code, "
        "r.condition",
        (asn_id,),
    )
    return [{**row, "quantity": int(row["quantity"])} for row in await cursor.fetchall()]


_ASN_FILTERS = {
    "reference": "a.reference = %(reference)s",
    "status": "a.status = %(status)s",
    "warehouse": "w.code = %(warehouse)s",
    "after": "a.id > %(after)s",
}


async def list_page(
    conn: AsyncConnection,
    *,
    reference: str | None,
    status: str | None,
    warehouse: str | None,
    after_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """ASNs in id order after ``after_id``, filtered, with their line counts."""
    params = {"reference": reference, "status": status, "warehouse": warehouse,
              "after": after_id, "limit": limit}  # fmt: skip
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"SELECT {_ASN_COLUMNS}, (SELECT count(*) FROM asn_lines n WHERE n.tenant_id = "
        f"a.tenant_id AND n.asn_id = a.id) AS line_count FROM {_ASN_FROM} "
        "WHERE " + filters.given(params, _ASN_FILTERS) + " ORDER BY a.id LIMIT %(limit)s",
        params,
    )
    return await cursor.fetchall()


async def set_status(
    conn: AsyncConnection, asn_id: int, status: str, *, closed_by: str | None = None
) -> None:
    """Move the ASN to ``status`` (recording who closed it when it closes)."""
    await conn.execute(
        "UPDATE asns SET status = %(status)s, "
        "closed_by = CASE WHEN %(status)s = 'closed' THEN %(by)s::text ELSE closed_by END, "
        "closed_at = CASE WHEN %(status)s = 'closed' THEN now() ELSE closed_at END "
        "WHERE id = %(id)s",
        {"status": status, "by": closed_by, "id": asn_id},
    )


async def product_attributes(
    conn: AsyncConnection, product_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """What receiving and putaway read of products: category, velocity, tolerance, measures.

    ``unit_volume_l`` is length × width × height in litres, null unless all three are known.
    """
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT id, sku, category, velocity_class, over_receipt_tolerance_pct, "
        "weight_kg AS unit_weight_kg, length_cm * width_cm * height_cm / 1000 AS unit_volume_l "
        "FROM products WHERE id = ANY(%s::bigint[])",
        (list(product_ids),),
    )
    return {row["id"]: row for row in await cursor.fetchall()}


async def insert_receipt(
    conn: AsyncConnection, tenant_id: int, asn_id: int, *, actor: str, request_id: str | None
) -> tuple[int, datetime]:
    """A new receipt of the ASN: its id and time."""
    cursor = await conn.execute(
        "INSERT INTO receipts (tenant_id, asn_id, received_by, request_id) "
        "VALUES (%s, %s, %s, %s) RETURNING id, received_at",
        (tenant_id, asn_id, actor, request_id),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), row[1]


async def insert_receipt_lines(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    receipt_id: int,
    asn_id: int,
    actor: str,
    received_at: datetime,
    lines: Sequence[ReceiptLine],
) -> None:
    """Insert the receipt's scans."""
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO receipt_lines (tenant_id, receipt_id, line_no, asn_id, asn_line_no, "
            "product_id, lot_code, expiry, quantity, uom, uom_quantity, scanned, condition, "
            "location_id, received_by, received_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    tenant_id, receipt_id, ln.line_no, asn_id, ln.asn_line_no, ln.product_id,
                    ln.lot_code, ln.expiry, ln.quantity, ln.uom, ln.uom_quantity, ln.scanned,
                    ln.condition, ln.location_id, actor, received_at,
                )
                for ln in lines
            ],
        )  # fmt: skip


async def receipt(conn: AsyncConnection, asn_id: int, receipt_id: int) -> dict[str, Any] | None:
    """One receipt of the ASN with its lines and the putaway task of each good line."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT id, asn_id AS asn, received_by, received_at FROM receipts "
        "WHERE id = %s AND asn_id = %s",
        (receipt_id, asn_id),
    )
    head = await cursor.fetchone()
    if head is None:
        return None
    await cursor.execute(
        "SELECT r.line_no AS line, r.asn_line_no AS asn_line, p.sku, "
        "nullif(r.lot_code, '') AS lot, r.expiry, r.quantity, r.uom, r.uom_quantity, "
        "r.scanned, r.condition, l.code AS location, t.id AS putaway_task "
        "FROM receipt_lines r "
        "JOIN products p ON p.tenant_id = r.tenant_id AND p.id = r.product_id "
        "JOIN locations l ON l.tenant_id = r.tenant_id AND l.id = r.location_id "
        # Each line's task by its full key (LATERAL, fenced by LIMIT so it stays a lookup):
        # a plain join, planned on a just-written receipt's missing statistics, compared
        # every line with every task of the receipt (1 to 1.5 s for 5,000 lines).
        "LEFT JOIN LATERAL (SELECT t.id FROM putaway_tasks t WHERE t.tenant_id = r.tenant_id "
        "AND t.receipt_id = r.receipt_id AND t.receipt_line_no = r.line_no LIMIT 1) t ON true "
        "WHERE r.receipt_id = %s ORDER BY r.line_no",
        (receipt_id,),
    )
    head["lines"] = await cursor.fetchall()
    return head
