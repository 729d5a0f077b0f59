"""SQL of the transactional outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

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
