"""The unit of work a command runs in: one transaction, plus the audit and events it owes.

A service function receives a ``UnitOfWork``, changes state through ``uow.conn``, and
records what it did with ``audit()`` and ``emit()``; the pipeline writes those rows in
the same transaction before committing, so a change never exists without them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection

from wms.store import audit, outbox


@dataclass
class UnitOfWork:
    """State shared by one command's service calls."""

    conn: AsyncConnection
    tenant_id: int
    tenant_code: str
    actor: str
    request_id: str | None
    region: str
    _audit: list[audit.AuditEntry] = field(default_factory=list)
    _events: list[outbox.OutboxEvent] = field(default_factory=list)

    def audit(
        self,
        entity: str,
        entity_id: object,
        action: str,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Record who changed what, with the object before and after."""
        self._audit.append(
            audit.AuditEntry(
                entity=entity,
                entity_id=str(entity_id),
                action=action,
                before=before,
                after=after,
                actor=self.actor,
                request_id=self.request_id,
            )
        )

    def emit(
        self,
        event_type: str,
        aggregate: str,
        aggregate_id: object,
        data: dict[str, Any],
        *,
        warehouse: str | None = None,
    ) -> None:
        """Queue a domain event (CloudEvents ``type`` such as ``wms.warehouse.created``)."""
        self._events.append(
            outbox.OutboxEvent(
                event_id=uuid.uuid4(),
                type=event_type,
                source=f"/wms/{self.region}/{warehouse or '-'}",
                subject=f"{aggregate}/{aggregate_id}",
                aggregate=aggregate,
                aggregate_id=str(aggregate_id),
                data=data,
            )
        )

    async def flush(self) -> None:
        """Write the queued audit rows and events (the pipeline calls this before commit)."""
        await audit.insert_entries(self.conn, self.tenant_id, self._audit)
        await outbox.insert_events(self.conn, self.tenant_id, self._events)
        self._audit.clear()
        self._events.clear()
