"""A command's audit entries and events read back as written, in the order written.

The outbox relay publishes by id, so the ids must follow the order the command emitted its
events in, all under the command's transaction id; the audit log is read newest first by
id. The JSON must survive whatever the store does to send it (quotes, backslashes, braces).
And what commands audit: every place, task and count result they change.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.conftest import ApiClient, TenantKeys
from tests.event_check import outbox_of
from tests.integration.stock_world import build_world
from tests.integration.test_fulfilment import picked
from tests.integration.test_inventory import adjust
from tests.integration.test_orders import order_body, stock
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


# -- what commands audit ---------------------------------------------------------------------


def _audit(api: ApiClient, entity: str, entity_id: object) -> list[dict[str, Any]]:
    answer = api.get("/audit", params={"entity": entity, "id": str(entity_id)})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_a_move_is_audited_under_both_of_its_places(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Was audited under its source only: the destination's history missed what filled it.
    build_world(api, tenant, database_url)
    assert adjust(api, quantity=10).status_code == 201
    move = {"warehouse": "SP1", "sku": "SKU-1", "lot": None, "from_location": "A-01",
            "to_location": "A-02", "quantity": 4}  # fmt: skip
    assert api.post("/inventory/moves", json=move).status_code == 201
    source = _audit(api, "inventory", "SP1/A-01/SKU-1")
    target = _audit(api, "inventory", "SP1/A-02/SKU-1")
    assert [e["action"] for e in source] == ["moved", "adjusted"]
    assert [(e["action"], e["after"]) for e in target] == [("moved", source[0]["after"])]
    assert len(outbox_of(database_url, "wms.inventory.moved")) == 1  # still one event


def test_a_recount_keeps_the_first_result_in_the_audit(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Was {"results": 1}: the recount overwrote the line, and the first result was lost.
    build_world(api, tenant, database_url)
    assert adjust(api, quantity=10).status_code == 201
    count = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"]}).json()
    result = {"location": "A-01", "sku": "SKU-1", "lot": None, "counted": 50}
    for counted in (50, 9):
        answer = api.post(f"/cycle-counts/{count['id']}/results",
                          json={"results": [{**result, "counted": counted}]})  # fmt: skip
        assert answer.status_code == 200, answer.text
    recount, first = [e for e in _audit(api, "cycle_count", count["id"])
                      if e["action"] == "results_recorded"]  # fmt: skip
    place = {"line": 1, "location": "A-01", "sku": "SKU-1", "lot": None}
    assert first["before"] is None
    assert first["after"] == {"results": [{**place, "counted": 50, "status": "recount"}]}
    assert recount["before"] == {
        "results": [{**place, "counted": 50, "counted_by": first["actor"]}]
    }
    # No expected quantity: every role reads the audit, and operators count blind.
    assert recount["after"] == {"results": [{**place, "counted": 9, "status": "counted"}]}


def test_replenishment_tasks_are_audited_when_created(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Was an event only: a task's audit history began with its confirmation.
    build_world(api, tenant, database_url)
    stock(api, "P-01", 3)
    stock(api, "A-01", 20)
    level = {"sku": "SKU-1", "min": 2, "max": 8}
    assert api.put("/warehouses/SP1/locations/P-01/replenishment", json=level).status_code == 200
    strategy = {"allocation_strategy": "pick_face_first"}
    assert api.patch("/settings", json=strategy).status_code == 200
    assert api.post("/orders", json=order_body("SO-1")).status_code == 201
    assert api.post("/orders/SO-1/allocate").status_code == 200
    (task,) = api.get("/replenishment-tasks", params={"status": "open"}).json()["items"]
    (created,) = _audit(api, "replenishment_task", task["id"])
    assert created["action"] == "created"
    assert created["after"] == {
        "task": task["id"], "kind": "replenishment", "sku": "SKU-1", "lot": None,
        "quantity": 5, "from_location": "A-01", "to_location": "P-01", "order": None,
        "reason": "below minimum",
    }  # fmt: skip


def test_put_back_tasks_are_audited_when_created(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Were never audited: neither a cancelled order's put-back nor the rest of a partial one.
    build_world(api, tenant, database_url)
    stock(api, "A-01", 10)
    picked(api, "SO-1", 10)
    assert api.post("/orders/SO-1/cancel").status_code == 200
    (first,) = api.get("/replenishment-tasks", params={"kind": "put_back"}).json()["items"]
    assert [e["after"]["reason"] for e in _audit(api, "replenishment_task", first["id"])] == [
        "order cancelled"
    ]
    moved = api.post(f"/replenishment-tasks/{first['id']}/confirm", json={"quantity": 6})
    assert moved.status_code == 200, moved.text
    (rest,) = api.get("/replenishment-tasks", params={"kind": "put_back", "status": "open"}
                      ).json()["items"]  # fmt: skip
    assert [e["after"]["reason"] for e in _audit(api, "replenishment_task", rest["id"])] == [
        f"rest of put-back task {first['id']}"
    ]
