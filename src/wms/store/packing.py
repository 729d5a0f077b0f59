"""SQL of packages and their contents."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row


async def insert_package(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    order_id: int,
    carton: str,
    weight_kg: Decimal,
    contents: dict[tuple[int, str], int],
    actor: str,
) -> int:
    """A package of the order with its contents ((product, lot) → units); its id."""
    cursor = await conn.execute(
        "INSERT INTO packages (tenant_id, order_id, carton, weight_kg, packed_by) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, order_id, carton, weight_kg, actor),
    )
    row = await cursor.fetchone()
    assert row is not None
    package_id = int(row[0])
    await conn.execute(
        "INSERT INTO package_contents (tenant_id, package_id, product_id, lot_code, quantity) "
        "SELECT %s, %s, * FROM unnest(%s::bigint[], %s::text[], %s::bigint[])",
        (tenant_id, package_id, [k[0] for k in contents], [k[1] for k in contents],
         list(contents.values())),
    )  # fmt: skip
    return package_id


async def packages(conn: AsyncConnection, order_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Packages of the orders in id order, with their contents."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT k.id, k.order_id, o.number AS order_number, k.carton, "
        "k.weight_kg::float8 AS weight_kg, k.packed_by, k.packed_at, "
        "(SELECT json_agg(json_build_object('sku', p.sku, 'lot', nullif(c.lot_code, ''), "
        "'quantity', c.quantity) ORDER BY p.sku, c.lot_code) FROM package_contents c "
        "JOIN products p ON p.tenant_id = c.tenant_id AND p.id = c.product_id "
        "WHERE c.tenant_id = k.tenant_id AND c.package_id = k.id) AS contents "
        "FROM packages k JOIN orders o ON o.tenant_id = k.tenant_id AND o.id = k.order_id "
        "WHERE k.order_id = ANY(%s::bigint[]) ORDER BY k.id",
        (list(order_ids),),
    )
    return await cursor.fetchall()
