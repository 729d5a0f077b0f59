"""SQL of zones, locations and putaway rules (rows show codes, never internal ids)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from wms.domain.allocation import ALLOCATABLE_LOCATION_TYPES
from wms.domain.locations import ImportedLocation, TypeLock
from wms.store import filters
from wms.store.cycle_counts import UNAPPROVED_STATUSES

_ZONE_COLUMNS = "z.id, z.code, z.name, w.code AS warehouse, z.created_at"
_ZONE_FROM = "zones z JOIN warehouses w ON w.tenant_id = z.tenant_id AND w.id = z.warehouse_id"
_LOCATION_COLUMNS = (
    "l.id, l.code, w.code AS warehouse, z.code AS zone, l.type, l.pick_sequence, "
    "l.capacity_units, l.capacity_volume_l::float8 AS capacity_volume_l, "
    "l.capacity_weight_kg::float8 AS capacity_weight_kg, l.active, l.created_at, l.updated_at"
)
_LOCATION_FROM = (
    "locations l JOIN warehouses w ON w.tenant_id = l.tenant_id AND w.id = l.warehouse_id "
    "LEFT JOIN zones z ON z.tenant_id = l.tenant_id AND z.id = l.zone_id"
)
# Columns a PATCH may change; identifiers come from this list only, never from the request.
UPDATABLE = (
    "type",
    "zone_id",
    "pick_sequence",
    "capacity_units",
    "capacity_volume_l",
    "capacity_weight_kg",
    "active",
)


async def insert_zone(
    conn: AsyncConnection, tenant_id: int, warehouse_id: int, code: str, name: str | None
) -> bool:
    """Insert a zone; False when its code is taken in the warehouse."""
    cursor = await conn.execute(
        "INSERT INTO zones (tenant_id, warehouse_id, code, name) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (tenant_id, warehouse_id, code) DO NOTHING RETURNING id",
        (tenant_id, warehouse_id, code, name),
    )
    return await cursor.fetchone() is not None


async def get_zone(conn: AsyncConnection, warehouse_id: int, code: str) -> dict[str, Any] | None:
    """One zone of the warehouse by code."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"SELECT {_ZONE_COLUMNS} FROM {_ZONE_FROM} WHERE z.warehouse_id = %s AND z.code = %s",
        (warehouse_id, code),
    )
    return await cursor.fetchone()


_ZONE_CODE_FILTERS = {"codes": "code = ANY(%(codes)s::text[])"}


async def zone_ids(
    conn: AsyncConnection, warehouse_id: int, codes: Sequence[str] | None = None
) -> dict[str, int]:
    """Zone code → id for the warehouse (only ``codes`` when given)."""
    params = {"wh": warehouse_id, "codes": None if codes is None else list(codes)}
    cursor = await conn.execute(
        "SELECT code, id FROM zones WHERE warehouse_id = %(wh)s "
        "AND " + filters.given(params, _ZONE_CODE_FILTERS),
        params,
    )
    return {str(code): int(zone_id) for code, zone_id in await cursor.fetchall()}


_ZONE_FILTERS = {"after": "z.id > %(after)s"}


async def list_zones(
    conn: AsyncConnection, warehouse_id: int, after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """The warehouse's zones in id order after ``after_id``."""
    params = {"wh": warehouse_id, "after": after_id, "limit": limit}
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"SELECT {_ZONE_COLUMNS} FROM {_ZONE_FROM} WHERE z.warehouse_id = %(wh)s "
        "AND " + filters.given(params, _ZONE_FILTERS) + " ORDER BY z.id LIMIT %(limit)s",
        params,
    )
    return await cursor.fetchall()


async def insert_location(
    conn: AsyncConnection, tenant_id: int, warehouse_id: int, values: dict[str, Any]
) -> bool:
    """Insert a location (``values``: code, type, zone_id, pick_sequence, capacity_*, active).

    False when its code is taken in the warehouse.
    """
    cursor = await conn.execute(
        "INSERT INTO locations (tenant_id, warehouse_id, code, type, zone_id, pick_sequence, "
        "capacity_units, capacity_volume_l, capacity_weight_kg, active) "
        "VALUES (%(tenant)s, %(wh)s, %(code)s, %(type)s, %(zone_id)s, %(pick_sequence)s, "
        "%(capacity_units)s, %(capacity_volume_l)s, %(capacity_weight_kg)s, %(active)s) "
        "ON CONFLICT (tenant_id, warehouse_id, code) DO NOTHING RETURNING id",
        {"tenant": tenant_id, "wh": warehouse_id, **values},
    )
    return await cursor.fetchone() is not None


async def get_location(
    conn: AsyncConnection, warehouse_id: int, code: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    """One location of the warehouse by code."""
    cursor = conn.cursor(row_factory=dict_row)
    lock = " FOR UPDATE OF l" if for_update else ""
    await cursor.execute(
        f"SELECT {_LOCATION_COLUMNS} FROM {_LOCATION_FROM} "
        f"WHERE l.warehouse_id = %s AND l.code = %s{lock}",
        (warehouse_id, code),
    )
    return await cursor.fetchone()


_LOCATION_FILTERS = {
    "type": "l.type = %(type)s",
    "zone": "z.code = %(zone)s",
    "active": "l.active = %(active)s",
}
# A location re-sequenced since the walk's first page: placed by the sequence it had then.
_MOVED_SINCE = (
    "SELECT DISTINCT ON (c.location_id) c.location_id, c.previous_sequence "
    "FROM location_resequencing c, walk WHERE c.warehouse_id = %(wh)s "
    "AND c.walk_version > walk.version ORDER BY c.location_id, c.walk_version"
)


# How long a walk of locations may last: older re-sequencing history is pruned (V17).
WALK_HISTORY_HOURS = 7 * 24


@dataclass(frozen=True)
class WalkPosition:
    """Where a walk of locations stands: the version it began at, the last (sequence, id)."""

    version: int | None
    sequence: int
    id: int


async def list_locations(
    conn: AsyncConnection,
    warehouse_id: int,
    *,
    type_: str | None,
    zone: str | None,
    active: bool | None,
    after: WalkPosition | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The warehouse's locations in walking order (pick_sequence, id) after ``after``.

    The order is the one of the walk's first page (V17): each row carries
    ``walk_version`` and ``walk_sequence``, its position for the next page's cursor.
    Locations not re-sequenced since come in index order; the few that were are merged in
    by the sequence they had.
    """
    params = {
        "wh": warehouse_id,
        "type": type_,
        "zone": zone,
        "active": active,
        "version": after.version if after else None,
        "limit": limit,
    }
    conditions = filters.given(params, _LOCATION_FILTERS)
    seek = ["TRUE", "TRUE"]
    if after is not None:
        params |= {"seq": after.sequence, "id": after.id}
        seek = [
            "(l.pick_sequence, l.id) > (%(seq)s::integer, %(id)s)",
            "(m.previous_sequence, l.id) > (%(seq)s::integer, %(id)s)",
        ]
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        # One statement, one snapshot: the version read is the one the rows are read at.
        "WITH walk AS (SELECT coalesce(%(version)s::bigint, w.location_walk_version) AS version "
        "FROM warehouses w WHERE w.id = %(wh)s), "
        f"moved AS MATERIALIZED ({_MOVED_SINCE}) "
        "SELECT page.*, (SELECT version FROM walk) AS walk_version FROM ("
        f"(SELECT {_LOCATION_COLUMNS}, l.pick_sequence AS walk_sequence FROM {_LOCATION_FROM} "
        f"WHERE l.warehouse_id = %(wh)s AND {conditions} AND {seek[0]} AND NOT EXISTS ("
        "SELECT 1 FROM moved m WHERE m.location_id = l.id) "
        "ORDER BY l.pick_sequence, l.id LIMIT %(limit)s) "
        "UNION ALL "
        f"(SELECT {_LOCATION_COLUMNS}, m.previous_sequence FROM {_LOCATION_FROM} "
        f"JOIN moved m ON m.location_id = l.id WHERE {conditions} AND {seek[1]} "
        "ORDER BY m.previous_sequence, l.id LIMIT %(limit)s)"
        ") page ORDER BY walk_sequence, id LIMIT %(limit)s",
        params,
    )
    return await cursor.fetchall()


async def walk_pruned_version(conn: AsyncConnection, warehouse_id: int) -> int:
    """The newest re-sequencing number pruned: a walk begun before it cannot go on."""
    cursor = await conn.execute(
        "SELECT location_walk_pruned_version FROM warehouses WHERE id = %s", (warehouse_id,)
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def prune_walk_history(conn: AsyncConnection, *, older_than_hours: float) -> int:
    """Delete re-sequencing history older than that, every tenant's (the worker's admin
    session); note the newest number pruned per warehouse. Rows removed."""
    cursor = await conn.execute(
        "WITH gone AS (DELETE FROM location_resequencing "
        "  WHERE changed_at < now() - make_interval(secs => %s) "
        "  RETURNING tenant_id, warehouse_id, walk_version), "
        "newest AS (SELECT tenant_id, warehouse_id, max(walk_version) AS version FROM gone "
        "  GROUP BY tenant_id, warehouse_id), "
        "noted AS (UPDATE warehouses w SET location_walk_pruned_version = "
        "  greatest(w.location_walk_pruned_version, n.version) FROM newest n "
        "  WHERE w.tenant_id = n.tenant_id AND w.id = n.warehouse_id) "
        "SELECT count(*) FROM gone",
        (older_than_hours * 3600,),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def update_location(conn: AsyncConnection, location_id: int, changes: dict[str, Any]) -> None:
    """Set the ``changes`` (keys from ``UPDATABLE``) of one location."""
    assignments = [
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
        for column in UPDATABLE
        if column in changes
    ]
    if not assignments:
        return
    query = sql.SQL("UPDATE locations SET {}, updated_at = now() WHERE id = {}").format(
        sql.SQL(", ").join(assignments), sql.Placeholder("id")
    )
    await conn.execute(query, {**changes, "id": location_id})


# One statement for the whole file: the rows travel as arrays and ``unnest`` turns them
# back into a table, so 10,000 rows are one round trip and no temporary table (DDL) is
# needed. Optional fields a row does not state keep the stored value (``cur``); a new
# location gets the column defaults. Rows go in code order so that two imports touching
# the same codes lock them in the same order.
_UPSERT = """
INSERT INTO locations AS l (tenant_id, warehouse_id, code, type, zone_id, pick_sequence,
                            capacity_units, capacity_volume_l, capacity_weight_kg, active)
SELECT %(tenant)s, %(wh)s, s.code, s.type,
       CASE WHEN s.zone_given THEN z.id ELSE cur.zone_id END,
       coalesce(s.pick_sequence, cur.pick_sequence, 0),
       CASE WHEN s.units_given THEN s.capacity_units ELSE cur.capacity_units END,
       CASE WHEN s.volume_given THEN s.capacity_volume_l ELSE cur.capacity_volume_l END,
       CASE WHEN s.weight_given THEN s.capacity_weight_kg ELSE cur.capacity_weight_kg END,
       coalesce(s.active, cur.active, true)
FROM unnest(%(code)s::text[], %(type)s::text[], %(zone)s::text[], %(zone_given)s::boolean[],
            %(pick_sequence)s::integer[], %(capacity_units)s::integer[],
            %(units_given)s::boolean[], %(capacity_volume_l)s::numeric[],
            %(volume_given)s::boolean[], %(capacity_weight_kg)s::numeric[],
            %(weight_given)s::boolean[], %(active)s::boolean[])
     AS s (code, type, zone, zone_given, pick_sequence, capacity_units, units_given,
           capacity_volume_l, volume_given, capacity_weight_kg, weight_given, active)
LEFT JOIN zones z ON z.warehouse_id = %(wh)s AND z.code = s.zone
LEFT JOIN locations cur ON cur.warehouse_id = %(wh)s AND cur.code = s.code
ORDER BY s.code
ON CONFLICT (tenant_id, warehouse_id, code) DO UPDATE SET
    type = excluded.type, zone_id = excluded.zone_id, pick_sequence = excluded.pick_sequence,
    capacity_units = excluded.capacity_units, capacity_volume_l = excluded.capacity_volume_l,
    capacity_weight_kg = excluded.capacity_weight_kg, active = excluded.active,
    updated_at = now()
RETURNING l.code, (l.xmax = 0) AS created
"""


async def upsert_locations(
    conn: AsyncConnection, tenant_id: int, warehouse_id: int, rows: Sequence[ImportedLocation]
) -> tuple[list[str], list[str]]:
    """Create or update ``rows`` by code in one statement; (created codes, updated codes)."""
    if not rows:
        return [], []
    cursor = await conn.execute(
        _UPSERT,
        {
            "tenant": tenant_id,
            "wh": warehouse_id,
            "code": [r.code for r in rows],
            "type": [r.type.value for r in rows],
            "zone": [r.zone for r in rows],
            "zone_given": ["zone" in r.given for r in rows],
            "pick_sequence": [r.pick_sequence for r in rows],
            "capacity_units": [r.capacity_units for r in rows],
            "units_given": ["capacity_units" in r.given for r in rows],
            "capacity_volume_l": [r.capacity_volume_l for r in rows],
            "volume_given": ["capacity_volume_l" in r.given for r in rows],
            "capacity_weight_kg": [r.capacity_weight_kg for r in rows],
            "weight_given": ["capacity_weight_kg" in r.given for r in rows],
            "active": [r.active for r in rows],
        },
    )
    created: list[str] = []
    updated: list[str] = []
    for code, was_created in await cursor.fetchall():
        (created if was_created else updated).append(code)
    return created, updated


async def lock_warehouse(conn: AsyncConnection, warehouse_id: int) -> None:
    """Serialise changes to a warehouse's putaway rules.

    ``FOR NO KEY UPDATE`` rather than ``FOR UPDATE``: it still lets other transactions
    insert rows that reference the warehouse (their foreign-key checks take KEY SHARE).
    """
    await conn.execute("SELECT 1 FROM warehouses WHERE id = %s FOR NO KEY UPDATE", (warehouse_id,))


async def list_putaway_rules(conn: AsyncConnection, warehouse_id: int) -> list[dict[str, Any]]:
    """The warehouse's putaway rules in order."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT r.position, r.sku, r.category, r.velocity_class, z.code AS zone, "
        "r.allow_mixed_lots FROM putaway_rules r "
        "JOIN zones z ON z.tenant_id = r.tenant_id AND z.id = r.zone_id "
        "WHERE r.warehouse_id = %s ORDER BY r.position",
        (warehouse_id,),
    )
    return await cursor.fetchall()


async def replace_putaway_rules(
    conn: AsyncConnection, tenant_id: int, warehouse_id: int, rules: Sequence[dict[str, Any]]
) -> None:
    """Replace the warehouse's rules with ``rules`` (sku, category, velocity_class, zone_id,
    allow_mixed_lots), numbered 1..n in the given order."""
    await conn.execute("DELETE FROM putaway_rules WHERE warehouse_id = %s", (warehouse_id,))
    if rules:
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO putaway_rules (tenant_id, warehouse_id, position, sku, category, "
                "velocity_class, zone_id, allow_mixed_lots) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        tenant_id,
                        warehouse_id,
                        position,
                        rule["sku"],
                        rule["category"],
                        rule["velocity_class"],
                        rule["zone_id"],
                        rule["allow_mixed_lots"],
                    )
                    for position, rule in enumerate(rules, start=1)
                ],
            )


async def lock_by_code(conn: AsyncConnection, warehouse_id: int, codes: Sequence[str]) -> list[int]:
    """Lock the existing locations of ``codes`` FOR UPDATE, in code order (as the upsert);
    the ids of those allocation may not take stock from (inactive, or another type)."""
    cursor = await conn.execute(
        "SELECT id, active AND type = ANY(%s) FROM locations WHERE warehouse_id = %s "
        "AND code = ANY(%s::text[]) ORDER BY code FOR UPDATE",
        (sorted(ALLOCATABLE_LOCATION_TYPES), warehouse_id, list(codes)),
    )
    return [int(row[0]) for row in await cursor.fetchall() if not row[1]]


async def lock_types(conn: AsyncConnection, location_ids: Sequence[int]) -> dict[int, str]:
    """Lock locations against a type change (and filling), in id order; their types now."""
    cursor = await conn.execute(
        "SELECT id, type FROM locations WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE",
        (sorted(location_ids),),
    )
    return {int(row[0]): str(row[1]) for row in await cursor.fetchall()}


async def type_changes_locked(
    conn: AsyncConnection, warehouse_id: int, types: Sequence[tuple[str, str]]
) -> dict[str, TypeLock]:
    """Of the ``(code, new type)`` pairs, the existing locations whose type would change
    while something depends on it (``TypeLock``), each with the reason.

    Read under the locations' locks (``lock_by_code``, or PATCH's): a receipt locks its
    docks (``lock_types``) before it adds stock or tasks there.
    """
    if not types:
        return {}
    cursor = await conn.execute(
        # The locations in counts awaiting approval, found once (few counts are open).
        "WITH counted AS MATERIALIZED (SELECT DISTINCT n.location_id FROM cycle_counts c "
        "JOIN cycle_count_lines n ON n.tenant_id = c.tenant_id AND n.count_id = c.id "
        f"WHERE c.warehouse_id = %(wh)s AND c.status IN {UNAPPROVED_STATUSES}) "
        "SELECT code, reason FROM (SELECT l.code, CASE "
        "WHEN l.code = w.outbound_staging_location THEN %(staging)s "
        "WHEN EXISTS (SELECT 1 FROM inventory_balances b WHERE b.location_id = l.id "
        "AND b.on_hand > 0) "
        "OR EXISTS (SELECT 1 FROM putaway_tasks t WHERE t.status = 'open' "
        "AND t.from_location_id = l.id) "
        "OR EXISTS (SELECT 1 FROM putaway_tasks t WHERE t.status = 'open' "
        "AND t.suggested_location_id = l.id) "
        "OR EXISTS (SELECT 1 FROM pick_tasks t WHERE t.status = 'open' AND t.location_id = l.id) "
        "OR EXISTS (SELECT 1 FROM replenishment_tasks t WHERE t.status = 'open' "
        "AND t.from_location_id = l.id) "
        "OR EXISTS (SELECT 1 FROM replenishment_tasks t WHERE t.status = 'open' "
        "AND t.to_location_id = l.id) THEN %(in_use)s "
        "WHEN l.id IN (SELECT location_id FROM counted) THEN %(counted)s END AS reason "
        "FROM unnest(%(codes)s::text[], %(types)s::text[]) AS s(code, type) "
        "JOIN locations l ON l.warehouse_id = %(wh)s AND l.code = s.code AND l.type <> s.type "
        "JOIN warehouses w ON w.tenant_id = l.tenant_id AND w.id = l.warehouse_id) AS found "
        "WHERE reason IS NOT NULL",
        {
            "wh": warehouse_id,
            "codes": [code for code, _ in types],
            "types": [kind for _, kind in types],
            "staging": TypeLock.OUTBOUND_STAGING.value,
            "in_use": TypeLock.IN_USE.value,
            "counted": TypeLock.COUNTED.value,
        },
    )
    return {str(row[0]): TypeLock(row[1]) for row in await cursor.fetchall()}
