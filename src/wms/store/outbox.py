"""SQL of the transactional outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from wms.store.jsonb import jsonb


@dataclass(frozen=True)
class OutboxEvent:
    """A domain event waiting to be published."""

    event_id: uuid.UUID
    type: str
    source: str
    subject: str
    aggregate: str
    aggregate_id: str
    data: dict[str, Any]


async def insert_events(conn: AsyncConnection, tenant_id: int, events: list[OutboxEvent]) -> None:
    """Write ``events`` in the caller's transaction (``xid`` defaults to its id)."""
    if not events:
        return
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO outbox (tenant_id, event_id, type, source, subject, aggregate, "
            "aggregate_id, data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    tenant_id,
                    e.event_id,
                    e.type,
                    e.source,
                    e.subject,
                    e.aggregate,
                    e.aggregate_id,
                    jsonb(e.data),
                )
                for e in events
            ],
        )


# The event feed (GET /events): the caller's tenant's events in (xid, id) order, read
# only below the snapshot's xmin, so a transaction that commits late (its xid is below
# the cursor's position) is never skipped.
FeedPosition = tuple[int, int]


async def feed_start(conn: AsyncConnection) -> FeedPosition:
    """Where a feed without a cursor starts: after the newest event retention removed."""
    cursor = await conn.execute("SELECT xid::text, id FROM outbox_pruned")
    row = await cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def feed_page(conn: AsyncConnection, after: FeedPosition, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` events after ``after`` (``xid`` as text, a 64-bit number)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT id, xid::text AS xid, event_id, type, source, subject, occurred_at, data "
        "FROM outbox WHERE (xid, id) > (%s::text::xid8, %s) "
        "AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY xid, id LIMIT %s",
        (str(after[0]), after[1], limit),
    )
    return await cursor.fetchall()


async def pruned_after(conn: AsyncConnection, position: FeedPosition) -> bool:
    """Whether retention removed events after ``position`` (a cursor that cannot go on)."""
    cursor = await conn.execute(
        "SELECT 1 FROM outbox_pruned WHERE (xid, id) > (%s::text::xid8, %s)",
        (str(position[0]), position[1]),
    )
    return await cursor.fetchone() is not None
