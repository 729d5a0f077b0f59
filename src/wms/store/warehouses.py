"""SQL of warehouses and their carrier cut-offs."""

from __future__ import annotations

from datetime import time
from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row

from wms.store import filters

_COLUMNS = (
    "w.id, w.code, w.name, w.timezone, w.outbound_staging_location, w.active, "
    "w.created_at, w.updated_at, coalesce((SELECT json_agg(json_build_object("
    "'carrier', c.carrier, 'time', to_char(c.cutoff_time, 'HH24:MI')) ORDER BY c.carrier) "
    "FROM carrier_cutoffs c WHERE c.tenant_id = w.tenant_id AND c.warehouse_id = w.id), "
    "'[]') AS carrier_cutoffs"
)


async def insert(
    conn: AsyncConnection, tenant_id: int, *, code: str, name: str, timezone: str, staging: str
) -> int | None:
    """Insert a warehouse; its id, or None when the code is taken."""
    cursor = await conn.execute(
        "INSERT INTO warehouses (tenant_id, code, name, timezone, outbound_staging_location) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant_id, code) DO NOTHING RETURNING id",
        (tenant_id, code, name, timezone, staging),
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else None


async def get(
    conn: AsyncConnection, code: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    """One warehouse by code, with its cut-offs."""
    cursor = conn.cursor(row_factory=dict_row)
    lock = " FOR UPDATE OF w" if for_update else ""
    await cursor.execute(
        f"SELECT {_COLUMNS} FROM warehouses w WHERE w.code = %s{lock}",
        (code,),
    )
    return await cursor.fetchone()


async def id_and_timezone(conn: AsyncConnection, code: str) -> tuple[int, str] | None:
    """A warehouse's id and time zone by code."""
    cursor = await conn.execute("SELECT id, timezone FROM warehouses WHERE code = %s", (code,))
    row = await cursor.fetchone()
    return (int(row[0]), str(row[1])) if row else None


async def send_id_of(conn: AsyncConnection, code: str) -> AsyncCursor[Any]:
    """Send the read of ``id_of``; its cursor, unread (for a pipelined batch)."""
    return await conn.execute("SELECT id FROM warehouses WHERE code = %s", (code,))


async def id_of(conn: AsyncConnection, code: str) -> int | None:
    """The id of warehouse ``code``."""
    row = await (await send_id_of(conn, code)).fetchone()
    return int(row[0]) if row else None


_WAREHOUSE_FILTERS = {"after": "w.id > %(after)s"}


async def list_page(
    conn: AsyncConnection, after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Warehouses in id order after ``after_id``."""
    params = {"after": after_id, "limit": limit}
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"SELECT {_COLUMNS} FROM warehouses w "
        "WHERE " + filters.given(params, _WAREHOUSE_FILTERS) + " ORDER BY w.id LIMIT %(limit)s",
        params,
    )
    return await cursor.fetchall()


async def knows_time_zone(conn: AsyncConnection, name: str) -> bool:
    """True when PostgreSQL knows time zone ``name`` (``AT TIME ZONE`` takes it)."""
    cursor = await conn.execute("SELECT 1 FROM pg_timezone_names WHERE name = %s", (name,))
    return await cursor.fetchone() is not None


async def update(conn: AsyncConnection, warehouse_id: int, changes: dict[str, Any]) -> None:
    """Apply ``changes`` (name, timezone, active) to one warehouse."""
    await conn.execute(
        "UPDATE warehouses SET name = coalesce(%(name)s, name), "
        "timezone = coalesce(%(timezone)s, timezone), active = coalesce(%(active)s, active), "
        "updated_at = now() WHERE id = %(id)s",
        {
            "id": warehouse_id,
            "name": changes.get("name"),
            "timezone": changes.get("timezone"),
            "active": changes.get("active"),
        },
    )


async def replace_cutoffs(
    conn: AsyncConnection, tenant_id: int, warehouse_id: int, cutoffs: list[tuple[str, time]]
) -> None:
    """Replace the warehouse's carrier cut-off times."""
    await conn.execute("DELETE FROM carrier_cutoffs WHERE warehouse_id = %s", (warehouse_id,))
    if cutoffs:
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO carrier_cutoffs (tenant_id, warehouse_id, carrier, cutoff_time) "
                "VALUES (%s, %s, %s, %s)",
                [(tenant_id, warehouse_id, carrier, at) for carrier, at in cutoffs],
            )


async def insert_staging_location(
    conn: AsyncConnection, tenant_id: int, warehouse_id: int, code: str
) -> None:
    """The warehouse's outbound staging location, where picked stock waits for dispatch."""
    await conn.execute(
        "INSERT INTO locations (tenant_id, warehouse_id, code, type) "
        "VALUES (%s, %s, %s, 'staging')",
        (tenant_id, warehouse_id, code),
    )
