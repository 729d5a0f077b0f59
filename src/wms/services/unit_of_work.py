"""The unit of work a command runs in: one transaction, plus the audit and events it owes.

A service function receives a ``UnitOfWork``, changes state through ``uow.conn``, and
records what it did with ``audit()`` and ``emit()``; the pipeline writes those rows in
the same transaction before committing, so a change never exists without them.
``observe()`` queues a metric update that the pipeline applies only after the commit,
so a rolled-back or retried attempt (a new ``UnitOfWork``) never counts.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec

import structlog
from psycopg import AsyncConnection

from wms.store import audit, outbox

log = structlog.get_logger(__name__)
P = ParamSpec("P")


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
    _observations: list[Callable[[], None]] = field(default_factory=list)

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

    def observe(self, record: Callable[P, None], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Queue ``record(*args, **kwargs)`` (a metric update) to run once the work commits."""
        # Arguments are bound now: a lambda in a loop would see only the last values.
        self._observations.append(functools.partial(record, *args, **kwargs))

    def committed(self) -> None:
        """Apply the queued observations; call only after the transaction has committed."""
        observations, self._observations = self._observations, []
        for record in observations:
            try:
                record()
            except Exception:  # a metric must never fail a command that has committed
                log.exception("observation_failed")

    async def flush(self) -> None:
        """Write the queued audit rows and events (the pipeline calls this before commit)."""
        await audit.insert_entries(self.conn, self.tenant_id, self._audit)
        await outbox.insert_events(self.conn, self.tenant_id, self._events)
        self._audit.clear()
        self._events.clear()
