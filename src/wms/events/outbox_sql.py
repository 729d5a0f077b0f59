"""The relay's and the feed's SQL over the outbox (cross-tenant as ``wms_admin``)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from wms.events.cloudevents import EventRow

# Only rows whose transaction is older than every transaction still running: a later
# commit of a lower xid can then never appear behind a position already read.
VISIBLE = "o.xid < pg_snapshot_xmin(pg_current_snapshot())"
# The key shard of a row: one aggregate's events always fall in the same shard.
SHARD = "(hashtext(o.tenant_id::text || '/' || o.aggregate || '/' || o.aggregate_id) & 2147483647)"
_COLUMNS = (
    "t.code AS tenant, o.tenant_id, o.id, o.xid::text::numeric AS xid, o.event_id, o.type, "
    "o.source, o.subject, o.aggregate, o.aggregate_id, o.occurred_at, o.data"
)


def to_row(row: dict[str, Any]) -> EventRow:
    """An ``EventRow`` of a query row."""
    return EventRow(**{**row, "xid": int(row["xid"])})


async def unpublished(
    conn: AsyncConnection, *, shards: list[int], shard_count: int, limit: int
) -> list[EventRow]:
    """The oldest unpublished, visible events of ``shards`` in (xid, id) order."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"SELECT {_COLUMNS} FROM outbox o JOIN tenants t ON t.id = o.tenant_id "
        f"WHERE o.published_at IS NULL AND {VISIBLE} "
        f"AND {SHARD} %% %(n)s = ANY(%(shards)s) ORDER BY o.xid, o.id LIMIT %(limit)s",
        {"n": shard_count, "shards": shards, "limit": limit},
    )
    return [to_row(row) for row in await cursor.fetchall()]


async def mark_published(conn: AsyncConnection, keys: list[tuple[int, int]]) -> None:
    """Record that Kafka acknowledged these (tenant_id, id) rows."""
    await conn.execute(
        "UPDATE outbox SET published_at = now() FROM unnest(%s::bigint[], %s::bigint[]) "
        "AS k(tenant_id, id) WHERE outbox.tenant_id = k.tenant_id AND outbox.id = k.id",
        ([k[0] for k in keys], [k[1] for k in keys]),
    )


async def backlog(conn: AsyncConnection) -> tuple[int, float]:
    """Unpublished events and the age in seconds of the oldest one."""
    cursor = await conn.execute(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(occurred_at)), 0) "
        "FROM outbox WHERE published_at IS NULL"
    )
    row = await cursor.fetchone()
    return (int(row[0]), float(row[1])) if row else (0, 0.0)


async def prune(conn: AsyncConnection, *, retention_hours: float, limit: int) -> int:
    """Delete up to ``limit`` events older than the retention; remember the newest per tenant."""
    cursor = await conn.execute(
        "WITH gone AS (DELETE FROM outbox WHERE (tenant_id, id) IN ("
        "  SELECT tenant_id, id FROM outbox "
        "  WHERE occurred_at < now() - make_interval(secs => %(secs)s) LIMIT %(limit)s) "
        "  RETURNING tenant_id, xid, id), "
        "newest AS (SELECT DISTINCT ON (tenant_id) tenant_id, xid, id FROM gone "
        "  ORDER BY tenant_id, xid DESC, id DESC), "
        "marked AS (INSERT INTO outbox_pruned AS p (tenant_id, xid, id) "
        "  SELECT tenant_id, xid, id FROM newest ON CONFLICT (tenant_id) DO UPDATE "
        "  SET xid = excluded.xid, id = excluded.id, pruned_at = now() "
        "  WHERE (excluded.xid, excluded.id) > (p.xid, p.id)) "
        "SELECT count(*) FROM gone",
        {"secs": retention_hours * 3600, "limit": limit},
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
