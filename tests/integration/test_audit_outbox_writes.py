"""A command's audit entries and events read back as written, in the order written.

The outbox relay publishes by id, so the ids must follow the order the command emitted its
events in, all under the command's transaction id; the audit log is read newest first by
id. The JSON must survive whatever the store does to send it (quotes, backslashes, braces).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.conftest import TenantKeys
from wms.store import audit, outbox
from wms.store.audit import AuditEntry
from wms.store.database import create_pool
from wms.store.outbox import OutboxEvent
from wms.store.tenancy import tenant_transaction

# JSON that must arrive intact: quotes, backslashes, braces and commas, the word
# NULL, non-ASCII, nesting, a JSON null inside an object, an empty object.
AWKWARD: list[dict[str, Any]] = [
    {"note": 'say "hi"', "path": "C:\\tmp\\x", "set": "{a,b}", "word": "NULL"},
    {"sku": "AÇÚCAR-1", "lines": [{"n": 1, "q": 2}, {"n": 2, "q": None}]},
    {},
]
COUNT = 120  # enough rows that an unordered write would be likely to show it


def _entries(request_id: str | None) -> list[AuditEntry]:
    return [
        AuditEntry(
            entity="pick_task",
            entity_id=str(n),
            action="confirmed",
            before=None if n % 2 else {"status": "open"},
            after=AWKWARD[n % 3],
            actor="apikey:tester",
            request_id=request_id,
        )
        for n in range(COUNT)
    ]


def _events() -> list[OutboxEvent]:
    return [
        OutboxEvent(
            event_id=uuid.uuid4(),
            type="wms.test.written",
            source="/wms/test",
            subject=f"W1/SKU-{n}",
            aggregate="inventory",
            aggregate_id=f"W1/SKU-{n}",
            data=AWKWARD[n % 3],
        )
        for n in range(COUNT)
    ]


def test_entries_and_events_read_back_in_their_order(database_url: str, tenant: TenantKeys) -> None:
    entries, events = _entries("req-1"), _events()

    async def write_and_read() -> tuple[list[tuple[Any, ...]], ...]:
        pool = create_pool(database_url, min_size=1, max_size=1, statement_timeout_ms=5000,
                           lock_timeout_ms=2000)  # fmt: skip
        async with pool:
            async with tenant_transaction(pool, tenant.tenant_id, statement_timeout_ms=5000,
                                          lock_timeout_ms=2000) as conn:  # fmt: skip
                await audit.insert_entries(conn, tenant.tenant_id, entries)
                await outbox.insert_events(conn, tenant.tenant_id, events)
            async with tenant_transaction(pool, tenant.tenant_id, statement_timeout_ms=5000,
                                          lock_timeout_ms=2000) as conn:  # fmt: skip
                logged = await conn.execute(
                    "SELECT entity, entity_id, action, before, after, actor, request_id "
                    "FROM audit_log WHERE entity = 'pick_task' ORDER BY id"
                )
                queued = await conn.execute(
                    "SELECT event_id, type, source, subject, aggregate, aggregate_id, data "
                    "FROM outbox WHERE type = 'wms.test.written' ORDER BY id"
                )
                xids = await conn.execute(
                    "SELECT count(DISTINCT xid) FROM outbox WHERE type = 'wms.test.written'"
                )
                return await logged.fetchall(), await queued.fetchall(), await xids.fetchall()

    logged, queued, xids = asyncio.run(write_and_read())
    assert logged == [
        (e.entity, e.entity_id, e.action, e.before, e.after, e.actor, e.request_id) for e in entries
    ]
    assert queued == [
        (e.event_id, e.type, e.source, e.subject, e.aggregate, e.aggregate_id, e.data)
        for e in events
    ]
    assert xids == [(1,)]  # all of the command's events carry its transaction's id
