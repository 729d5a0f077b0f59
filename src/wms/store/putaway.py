"""SQL of putaway: candidate locations with what they store and are promised, and tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from wms.domain.putaway import Candidate, Load
from wms.store import filters
from wms.store.tenancy import planned_for_values

# Stored and promised load per location: units, and volume/weight of the units whose
# product has those measures (litres = cm³ / 1000). ``%(only)s`` narrows to given locations
# (a confirmation, which must also see inactive or non-storage locations); ``%(tasks)s``
# leaves tasks out of the promised units (the tasks being confirmed). The ``{...}`` slots
# take the given ones of these filters (``filters.given``).
_CANDIDATES = """
WITH stored AS (
    SELECT b.location_id, sum(b.on_hand) AS units,
           coalesce(sum(b.on_hand * p.length_cm * p.width_cm * p.height_cm / 1000), 0) AS vol,
           coalesce(sum(b.on_hand * p.weight_kg), 0) AS kg
    FROM inventory_balances b
    JOIN products p ON p.tenant_id = b.tenant_id AND p.id = b.product_id
    WHERE b.warehouse_id = %(wh)s AND b.on_hand > 0
      AND {stored}
    GROUP BY b.location_id
), promised AS (
    SELECT t.suggested_location_id AS location_id, sum(t.quantity) AS units,
           coalesce(sum(t.quantity * p.length_cm * p.width_cm * p.height_cm / 1000), 0) AS vol,
           coalesce(sum(t.quantity * p.weight_kg), 0) AS kg
    FROM putaway_tasks t
    JOIN products p ON p.tenant_id = t.tenant_id AND p.id = t.product_id
    WHERE t.warehouse_id = %(wh)s AND t.status = 'open' AND t.suggested_location_id IS NOT NULL
      AND {promised}
    GROUP BY t.suggested_location_id
)
SELECT l.id, l.code, z.code AS zone, l.type, l.active, l.pick_sequence, l.capacity_units,
       l.capacity_volume_l, l.capacity_weight_kg,
       coalesce(s.units, 0) AS stored_units, coalesce(s.vol, 0) AS stored_vol,
       coalesce(s.kg, 0) AS stored_kg, coalesce(pr.units, 0) AS promised_units,
       coalesce(pr.vol, 0) AS promised_vol, coalesce(pr.kg, 0) AS promised_kg
FROM locations l
LEFT JOIN zones z ON z.tenant_id = l.tenant_id AND z.id = l.zone_id
LEFT JOIN stored s ON s.location_id = l.id
LEFT JOIN promised pr ON pr.location_id = l.id
WHERE l.warehouse_id = %(wh)s
  AND {locations}
ORDER BY l.pick_sequence, l.id
"""
_STORED_FILTERS = {"only": "b.location_id = ANY(%(only)s::bigint[])"}
_PROMISED_FILTERS = {
    "only": "t.suggested_location_id = ANY(%(only)s::bigint[])",
    "tasks": "t.id <> ALL(%(tasks)s::bigint[])",
}
_CANDIDATE_FILTERS = {"only": "l.id = ANY(%(only)s::bigint[])"}

# Which lots of the given products each location stores or is promised.
_HOLDS = """
SELECT location_id, product_id, lot_code FROM inventory_balances
WHERE warehouse_id = %(wh)s AND product_id = ANY(%(products)s::bigint[]) AND on_hand > 0
  AND {stored}
UNION
SELECT suggested_location_id, product_id, lot_code FROM putaway_tasks
WHERE warehouse_id = %(wh)s AND product_id = ANY(%(products)s::bigint[]) AND status = 'open'
  AND suggested_location_id IS NOT NULL
  AND {promised}
"""
_HOLD_STORED_FILTERS = {"only": "location_id = ANY(%(only)s::bigint[])"}
_HOLD_PROMISED_FILTERS = {
    "only": "suggested_location_id = ANY(%(only)s::bigint[])",
    "tasks": "id <> ALL(%(tasks)s::bigint[])",
}


async def candidates(
    conn: AsyncConnection,
    warehouse_id: int,
    product_ids: Sequence[int],
    *,
    only: Sequence[int] | None = None,
    except_tasks: Sequence[int] | None = None,
) -> list[Candidate]:
    """Active storage and pick locations of the warehouse, the outbound staging location
    left out (or just ``only``), loaded.

    ``except_tasks``: open tasks whose promises are left out (those being confirmed).
    """
    params = {"wh": warehouse_id, "only": None if only is None else list(only),
              "tasks": None if except_tasks is None else list(except_tasks),
              "products": list(product_ids)}  # fmt: skip
    cursor = conn.cursor(row_factory=dict_row)
    # Planned for its values: for a few locations (a confirmation) the generic plan, costed
    # for any number, would hash a scan of all products.
    async with planned_for_values(conn):
        await cursor.execute(
            _HOLDS.format(
                stored=filters.given(params, _HOLD_STORED_FILTERS),
                promised=filters.given(params, _HOLD_PROMISED_FILTERS),
            ),
            params,
        )
        holds: dict[int, set[tuple[int, str]]] = {}
        for row in await cursor.fetchall():
            holds.setdefault(row["location_id"], set()).add((row["product_id"], row["lot_code"]))
        await cursor.execute(
            _CANDIDATES.format(
                stored=filters.given(params, _STORED_FILTERS),
                promised=filters.given(params, _PROMISED_FILTERS),
                locations=filters.given(params, _CANDIDATE_FILTERS)
                if only is not None
                # Without ``only``: where a suggestion may go. Never the outbound staging
                # location, whatever its type: allocation takes nothing from there.
                else "l.active AND l.type IN ('storage', 'pick') AND l.code <> "
                "(SELECT outbound_staging_location FROM warehouses WHERE id = %(wh)s)",
            ),
            params,
        )
    return [
        Candidate(
            id=row["id"],
            code=row["code"],
            zone=row["zone"],
            type=row["type"],
            active=row["active"],
            pick_sequence=row["pick_sequence"],
            capacity_units=row["capacity_units"],
            capacity_volume_l=row["capacity_volume_l"],
            capacity_weight_kg=row["capacity_weight_kg"],
            stored=Load(
                int(row["stored_units"]), Decimal(row["stored_vol"]), Decimal(row["stored_kg"])
            ),
            promised=Load(
                int(row["promised_units"]),
                Decimal(row["promised_vol"]),
                Decimal(row["promised_kg"]),
            ),
            holds=frozenset(holds.get(row["id"], ())),
        )
        for row in await cursor.fetchall()
    ]


@dataclass(frozen=True)
class NewTaskRow:
    """One putaway task to insert (the receipt's and warehouse's ids come separately)."""

    receipt_line_no: int
    product_id: int
    lot_code: str
    quantity: int
    from_location_id: int
    suggested_location_id: int | None


async def insert_tasks(
    conn: AsyncConnection,
    tenant_id: int,
    *,
    warehouse_id: int,
    asn_id: int,
    receipt_id: int,
    received_at: datetime,
    rows: Sequence[NewTaskRow],
) -> list[int]:
    """New open putaway tasks, in one pipelined round trip; their ids in ``rows``' order."""
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO putaway_tasks (tenant_id, warehouse_id, asn_id, receipt_id, "
            "receipt_line_no, product_id, lot_code, quantity, from_location_id, "
            "suggested_location_id, received_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [(tenant_id, warehouse_id, asn_id, receipt_id, r.receipt_line_no, r.product_id,
              r.lot_code, r.quantity, r.from_location_id, r.suggested_location_id, received_at)
             for r in rows],
            returning=True,
        )  # fmt: skip
        ids = []
        while True:
            row = await cursor.fetchone()
            assert row is not None
            ids.append(int(row[0]))
            if not cursor.nextset():
                break
    return ids


async def lock_tasks(conn: AsyncConnection, task_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The tasks' ids and state by id, locked in id order against concurrent confirmations."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT t.id, t.warehouse_id, w.code AS warehouse, t.asn_id, t.product_id, p.sku, "
        "t.lot_code, t.quantity, t.from_location_id, t.suggested_location_id, t.status "
        "FROM putaway_tasks t "
        "JOIN warehouses w ON w.tenant_id = t.tenant_id AND w.id = t.warehouse_id "
        "JOIN products p ON p.tenant_id = t.tenant_id AND p.id = t.product_id "
        "WHERE t.id = ANY(%s::bigint[]) ORDER BY t.id FOR NO KEY UPDATE OF t",
        (sorted(task_ids),),
    )
    return {row["id"]: row for row in await cursor.fetchall()}


async def location_code(conn: AsyncConnection, location_id: int) -> str:
    """The code of a location."""
    cursor = await conn.execute("SELECT code FROM locations WHERE id = %s", (location_id,))
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def mark_many_confirmed(
    conn: AsyncConnection, task_ids: Sequence[int], location_ids: Sequence[int], *, actor: str
) -> None:
    """Confirm each task into its location now, recording the dock-to-stock time."""
    await conn.execute(
        "UPDATE putaway_tasks t SET status = 'confirmed', confirmed_location_id = v.location, "
        "confirmed_by = %s, confirmed_at = now(), "
        "dock_to_stock_seconds = extract(epoch FROM now() - t.received_at) "
        "FROM unnest(%s::bigint[], %s::bigint[]) AS v(task, location) WHERE t.id = v.task",
        (actor, list(task_ids), list(location_ids)),
    )


async def reduce(
    conn: AsyncConnection, task_id: int, quantity: int, *, cancel: bool, actor: str
) -> None:
    """Take ``quantity`` units off an open task; with ``cancel`` the task ends cancelled."""
    await conn.execute(
        "UPDATE putaway_tasks SET cancelled_quantity = cancelled_quantity + %(q)s, "
        "quantity = CASE WHEN %(cancel)s THEN quantity ELSE quantity - %(q)s END, "
        "status = CASE WHEN %(cancel)s THEN 'cancelled' ELSE status END, "
        "cancelled_by = CASE WHEN %(cancel)s THEN %(actor)s END, "
        "cancelled_at = CASE WHEN %(cancel)s THEN now() END "
        "WHERE id = %(id)s AND status = 'open'",
        {"q": quantity, "cancel": cancel, "actor": actor, "id": task_id},
    )


_TASK_COLUMNS = (
    "t.id, t.asn_id AS asn, t.receipt_id AS receipt, w.code AS warehouse, p.sku, "
    "nullif(t.lot_code, '') AS lot, lt.expiry, t.quantity, f.code AS from_location, "
    "s.code AS suggested_location, c.code AS confirmed_location, t.status, t.received_at, "
    "t.created_at, t.confirmed_by, t.confirmed_at, "
    "t.dock_to_stock_seconds::float8 AS dock_to_stock_seconds, t.cancelled_quantity, "
    "t.cancelled_by, t.cancelled_at "
    "FROM putaway_tasks t "
    "JOIN warehouses w ON w.tenant_id = t.tenant_id AND w.id = t.warehouse_id "
    "JOIN products p ON p.tenant_id = t.tenant_id AND p.id = t.product_id "
    "JOIN locations f ON f.tenant_id = t.tenant_id AND f.id = t.from_location_id "
    "LEFT JOIN locations s ON s.tenant_id = t.tenant_id AND s.id = t.suggested_location_id "
    "LEFT JOIN locations c ON c.tenant_id = t.tenant_id AND c.id = t.confirmed_location_id "
    "LEFT JOIN lots lt ON lt.tenant_id = t.tenant_id AND lt.product_id = t.product_id "
    "AND lt.lot_code = t.lot_code "
)


_TASK_FILTERS = {
    "status": "t.status = %(status)s",
    "warehouse": "w.code = %(warehouse)s",
    "asn": "t.asn_id = %(asn)s",
    "ids": "t.id = ANY(%(ids)s::bigint[])",
    "after": "t.id > %(after)s",
}


async def tasks(
    conn: AsyncConnection,
    *,
    status: str | None = None,
    warehouse: str | None = None,
    asn: int | None = None,
    ids: Sequence[int] | None = None,
    after_id: int | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Putaway tasks in id order after ``after_id``, filtered, joined to their codes."""
    params = {"status": status, "warehouse": warehouse, "asn": asn,
              "ids": None if ids is None else list(ids), "after": after_id,
              "limit": limit}  # fmt: skip
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT " + _TASK_COLUMNS + "WHERE " + filters.given(params, _TASK_FILTERS) + " "
        "ORDER BY t.id LIMIT %(limit)s",
        params,
    )
    return await cursor.fetchall()
