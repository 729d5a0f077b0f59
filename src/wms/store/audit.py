"""SQL of the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from wms.store import filters
from wms.store.jsonb import jsonb


@dataclass(frozen=True)
class AuditEntry:
    """One audited change."""

    entity: str
    entity_id: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    actor: str
    request_id: str | None


async def insert_entries(conn: AsyncConnection, tenant_id: int, entries: list[AuditEntry]) -> None:
    """Append ``entries`` to the log."""
    if not entries:
        return
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO audit_log (tenant_id, actor, entity, entity_id, action, before, after, "
            "request_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    tenant_id,
                    e.actor,
                    e.entity,
                    e.entity_id,
                    e.action,
                    jsonb(e.before),
                    jsonb(e.after),
                    e.request_id,
                )
                for e in entries
            ],
        )


_ENTRY_FILTERS = {
    "entity": "entity = %(entity)s",
    "entity_id": "entity_id = %(entity_id)s",
    "after_id": "id < %(after_id)s",
}


async def list_entries(
    conn: AsyncConnection,
    *,
    entity: str | None,
    entity_id: str | None,
    after_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Audit rows, newest first, filtered by entity (and id), after a keyset cursor."""
    params = {"entity": entity, "entity_id": entity_id, "after_id": after_id, "limit": limit}
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "SELECT id, occurred_at, actor, entity, entity_id, action, before, after, request_id "
        "FROM audit_log "
        "WHERE " + filters.given(params, _ENTRY_FILTERS) + " ORDER BY id DESC LIMIT %(limit)s",
        params,
    )
    return await cursor.fetchall()
