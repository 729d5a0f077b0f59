"""Fulfilment over HTTP: waves, picks in walking order, short picks, packing, shipping."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ApiClient, TenantKeys, until_sessions_wait_for_locks
from tests.event_check import outbox_of
from tests.integration.stock_world import StockWorld, build_world
from tests.integration.test_no_oversell import in_parallel
from tests.integration.test_orders import allocations_match_balances, order_body, stock
from tests.integration.test_stock_invariants import check_invariants
from wms.app import create_app
from wms.config import Settings
from wms.domain.roles import Role


@pytest.fixture
def world(api: ApiClient, tenant: TenantKeys, database_url: str) -> StockWorld:
    return build_world(api, tenant, database_url)


def on_hand(api: ApiClient) -> dict[tuple[str, str, str | None], tuple[int, int]]:
    items = api.get("/inventory", params={"limit": 500}).json()["items"]
    return {(i["location"], i["sku"], i["lot"]): (i["on_hand"], i["allocated"]) for i in items}


def total(api: ApiClient, sku: str) -> int:
    return sum(q for (_, s, _), (q, _) in on_hand(api).items() if s == sku)


def consistent(database_url: str) -> None:
    check_invariants(database_url)
    allocations_match_balances(database_url)


def tasks_of(api: ApiClient, wave: int, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/pick-tasks", params={"wave": wave, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def scan(task: dict[str, Any], quantity: int | None = None) -> dict[str, Any]:
    return {"location": task["location"], "sku": task["sku"], "lot": task["lot"],
            "quantity": task["quantity"] if quantity is None else quantity}  # fmt: skip


def add_barcode(database_url: str, tenant: TenantKeys, sku: str, barcode: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO wms.barcodes (tenant_id, barcode, product_id, uom_code) "
            "SELECT tenant_id, %s, id, NULL FROM wms.products WHERE tenant_id = %s AND sku = %s",
            (barcode, tenant.tenant_id, sku),
        )


def test_stock_flows_from_allocation_through_a_batch_wave_to_a_dispatched_manifest(  # noqa: PLR0915 - one story, checked at every step
    api: ApiClient, world: StockWorld, tenant: TenantKeys, database_url: str
) -> None:
    today = date.today()
    stock(api, "A-02", 6, sku="LOT-1", lot="L-SOON", expiry=str(today + timedelta(days=30)))
    stock(api, "A-01", 10, sku="LOT-1", lot="L-LATE", expiry=str(today + timedelta(days=90)))
    stock(api, "P-01", 4, sku="LOT-1", lot="L-MID", expiry=str(today + timedelta(days=60)))
    stock(api, "P-01", 5)
    add_barcode(database_url, tenant, "SKU-1", "7891234567895")
    assert (total(api, "LOT-1"), total(api, "SKU-1")) == (20, 5)
    api.patch("/settings", json={"allocation_strategy": "fefo"})
    for number, line, priority in [
        ("SO-1", {"sku": "LOT-1", "quantity": 5}, 1),
        ("SO-2", {"sku": "LOT-1", "quantity": 3}, 5),
        ("SO-3", {"sku": "SKU-1", "quantity": 2}, 5),
    ]:
        assert (
            api.post("/orders", json=order_body(number, line, priority=priority)).status_code == 201
        )
        assert api.post(f"/orders/{number}/allocate").json()["status"] == "allocated"
    so2 = api.get("/orders/SO-2").json()["lines"][0]["allocations"]
    assert [(a["lot"], a["quantity"]) for a in so2] == [("L-SOON", 1), ("L-MID", 2)]  # FEFO
    consistent(database_url)

    wave = api.post(
        "/waves", json={"warehouse": "SP1", "orders": ["SO-1", "SO-2", "SO-3"],
                        "pick_method": "batch"},
    )  # fmt: skip
    assert wave.status_code == 201, wave.text
    assert wave.headers["location"] == f"/api/v1/waves/{wave.json()['id']}"
    wave_id = wave.json()["id"]
    released = api.post(f"/waves/{wave_id}/release")
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["task_count"]) == ("released", 3)
    assert api.get("/orders/SO-1").json()["status"] == "released"
    tasks = tasks_of(api, wave_id)
    # Walking order: P-01 (pick sequence 5) before A-02 (20); one batch task per place.
    assert [(t["sequence"], t["location"], t["sku"], t["lot"], t["quantity"]) for t in tasks] == [
        (1, "P-01", "LOT-1", "L-MID", 2),
        (2, "P-01", "SKU-1", None, 2),
        (3, "A-02", "LOT-1", "L-SOON", 6),
    ]
    assert tasks[2]["orders"] == [
        {"order": "SO-1", "line": 1, "quantity": 5, "picked": None, "tote": None},
        {"order": "SO-2", "line": 1, "quantity": 1, "picked": None, "tote": None},
    ]

    # The first two in one batch; SKU-1 scanned by its barcode.
    batch = api.post(
        "/pick-tasks:confirm",
        json={"confirmations": [
            {"task": tasks[0]["id"], **scan(tasks[0])},
            {"task": tasks[1]["id"], "location": "P-01", "barcode": "7891234567895",
             "quantity": 2},
        ]},
    )  # fmt: skip
    assert batch.status_code == 200, batch.text
    assert [t["status"] for t in batch.json()["tasks"]] == ["confirmed", "confirmed"]
    assert batch.json()["tasks"][0]["picker"]
    assert api.get("/orders/SO-3").json()["status"] == "picked"
    assert api.get("/orders/SO-2").json()["status"] == "picking"
    stocks = on_hand(api)
    assert stocks[("OUTBOUND", "LOT-1", "L-MID")] == (2, 2)  # staged, still allocated
    assert stocks[("OUTBOUND", "SKU-1", None)] == (2, 2)
    assert (total(api, "LOT-1"), total(api, "SKU-1")) == (20, 5)
    consistent(database_url)

    # Short pick at A-02: 4 of 6 found. SO-1 (priority 1) is served first.
    short = api.post(f"/pick-tasks/{tasks[2]['id']}/confirm", json=scan(tasks[2], 4))
    assert short.status_code == 200, short.text
    body = short.json()
    assert (body["status"], body["shortage"], body["backordered"]) == ("short", 2, 0)
    assert {(o["order"], o["picked"]) for o in body["orders"]} == {("SO-1", 4), ("SO-2", 0)}
    assert body["cycle_count"] is not None
    assert api.get(f"/cycle-counts/{body['cycle_count']}").json()["status"] == "open"
    new = body["new_tasks"]
    assert [(t["location"], t["lot"], t["quantity"], t["orders"][0]["order"]) for t in new] == [
        ("P-01", "L-MID", 1, "SO-1"),
        ("P-01", "L-MID", 1, "SO-2"),
    ]
    assert all(t["sequence"] > 3 and t["replaces"] == tasks[2]["id"] for t in new)
    stocks = on_hand(api)
    assert stocks[("A-02", "LOT-1", "L-SOON")] == (2, 0)  # the missing 2 wait for the count
    assert stocks[("OUTBOUND", "LOT-1", "L-SOON")] == (4, 4)
    assert stocks[("P-01", "LOT-1", "L-MID")] == (2, 2)
    assert total(api, "LOT-1") == 20
    consistent(database_url)
    for task in new:
        done = api.post(f"/pick-tasks/{task['id']}/confirm", json=scan(task))
        assert done.status_code == 200, done.text
        consistent(database_url)
    assert tasks_of(api, wave_id, status="open") == []
    assert api.get(f"/waves/{wave_id}").json()["status"] == "completed"
    for number in ("SO-1", "SO-2"):
        order = api.get(f"/orders/{number}").json()
        assert order["status"] == "picked"
        assert order["lines"][0]["picked"] == order["lines"][0]["quantity"]

    packs = {
        "SO-1": [{"sku": "LOT-1", "lot": "L-SOON", "quantity": 4},
                 {"sku": "LOT-1", "lot": "L-MID", "quantity": 1}],
        "SO-2": [{"sku": "LOT-1", "lot": "L-MID", "quantity": 3}],
        "SO-3": [{"sku": "SKU-1", "quantity": 2}],
    }  # fmt: skip
    for number, contents in packs.items():
        packed = api.post(
            f"/orders/{number}/packages",
            json={"packages": [{"carton": "BOX-M", "weight_kg": 1.2, "contents": contents}]},
        )
        assert packed.status_code == 201, packed.text
        assert packed.json()["status"] == "packed"
    shipment = api.post(
        "/shipments", json={"orders": ["SO-1", "SO-2", "SO-3"], "carrier": "CORREIOS",
                            "tracking_number": "BR123456789"},
    )  # fmt: skip
    assert shipment.status_code == 201, shipment.text
    dispatched = api.post(f"/shipments/{shipment.json()['id']}/dispatch")
    assert dispatched.status_code == 200, dispatched.text
    assert dispatched.json()["status"] == "dispatched"
    order = api.get("/orders/SO-1").json()
    assert (order["status"], order["lines"][0]["shipped"]) == ("shipped", 5)
    stocks = on_hand(api)
    assert not any(location == "OUTBOUND" for location, _, _ in stocks)
    assert (total(api, "LOT-1"), total(api, "SKU-1")) == (12, 3)
    ships = api.get("/inventory/movements", params={"kind": "ship", "limit": 500}).json()
    assert sum(m["quantity"] for m in ships["items"]) == -10
    consistent(database_url)

    manifest = api.get(
        "/manifests",
        params={"warehouse": "SP1", "carrier": "CORREIOS",
                "date": datetime.now(UTC).date().isoformat()},
    )  # fmt: skip
    assert manifest.status_code == 200, manifest.text
    assert manifest.json()["totals"] == {
        "shipments": 1, "orders": 3, "packages": 3, "weight_kg": 3.6,
    }  # fmt: skip
    assert manifest.json()["shipments"][0]["tracking_number"] == "BR123456789"
    with psycopg.connect(database_url) as conn:
        events = [r[0] for r in conn.execute("SELECT type FROM wms.outbox ORDER BY id")]
    for kind in ("wms.wave.released", "wms.order.released", "wms.inventory.picked",
                 "wms.order.picked", "wms.order.packed", "wms.order.shipped"):  # fmt: skip
        assert kind in events, kind


def test_two_concurrent_waves_with_overlapping_filters_never_share_an_order(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    stock(api, "A-01", 200)
    for n in range(30):
        api.post("/orders", json=order_body(f"C-{n}", {"sku": "SKU-1", "quantity": 1},
                                            priority=1 + n % 5))  # fmt: skip
        assert api.post(f"/orders/C-{n}/allocate").json()["status"] == "allocated"
    for _ in range(3):
        answers = in_parallel(
            [
                lambda: api.post("/waves", json={"warehouse": "SP1", "pick_method": "discrete",
                                                 "filter": {"carrier": "CORREIOS",
                                                            "max_orders": 8}}),
                lambda: api.post("/waves", json={"warehouse": "SP1", "pick_method": "batch",
                                                 "filter": {"priority_at_most": 5,
                                                            "max_lines": 6}}),
            ]
        )  # fmt: skip
        assert {a.status_code for a in answers} <= {201, 409}, [a.text for a in answers]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT order_id, count(*) FROM wms.wave_orders WHERE active GROUP BY order_id"
        ).fetchall()
    assert all(count == 1 for _, count in rows)
    assert len(rows) == 30  # 3 × (8 + 6) = 42 wanted, 30 exist: each taken once
    assert api.post("/waves", json={"warehouse": "SP1", "filter": {}}).status_code == 409


def released_wave(api: ApiClient, *numbers: str) -> list[dict[str, Any]]:
    wave = api.post("/waves", json={"warehouse": "SP1", "orders": list(numbers)}).json()
    assert api.post(f"/waves/{wave['id']}/release").status_code == 200
    return tasks_of(api, wave["id"])


def picked(api: ApiClient, number: str, quantity: int) -> None:
    """Order ``number`` of ``quantity`` SKU-1 taken, allocated, released and picked."""
    api.post("/orders", json=order_body(number, {"sku": "SKU-1", "quantity": quantity}))
    api.post(f"/orders/{number}/allocate")
    (task,) = released_wave(api, number)
    assert api.post(f"/pick-tasks/{task['id']}/confirm", json=scan(task)).status_code == 200


def test_bad_picks_packs_dispatches_and_cancellations_are_clear_errors_that_change_nothing(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    today = date.today()
    stock(api, "A-01", 5, sku="LOT-1", lot="L1", expiry=str(today + timedelta(days=30)))
    stock(api, "A-02", 5, sku="LOT-1", lot="L2", expiry=str(today + timedelta(days=60)))
    api.post("/orders", json=order_body("SO-1", {"sku": "LOT-1", "quantity": 3}))
    api.post("/orders/SO-1/allocate")
    (task,) = released_wave(api, "SO-1")
    before = on_hand(api)

    def refused(response: Any, status: int, slug: str) -> None:
        assert response.status_code == status, response.text
        assert response.json()["type"].endswith("/" + slug), response.text
        assert on_hand(api) == before
        consistent(database_url)

    confirm = f"/pick-tasks/{task['id']}/confirm"
    refused(api.post(confirm, json={**scan(task), "location": "A-02"}), 409, "pick-mismatch")
    refused(api.post(confirm, json={**scan(task), "lot": "L2"}), 409, "pick-mismatch")
    refused(api.post(confirm, json={**scan(task), "sku": "SKU-1"}), 409, "pick-mismatch")
    refused(api.post(confirm, json=scan(task, 4)), 409, "over-pick")
    refused(
        api.post("/pick-tasks:confirm", json={"confirmations": [
            {"task": task["id"], **scan(task, 4)}]}), 409, "over-pick",
    )  # fmt: skip
    refused(api.post("/orders/SO-1/packages", json={"packages": [
        {"carton": "B", "weight_kg": 1, "contents": [{"sku": "LOT-1", "lot": "L1",
                                                      "quantity": 3}]}]}),
            409, "invalid-state")  # fmt: skip
    assert api.post(confirm, json=scan(task)).status_code == 200
    assert api.post(confirm, json=scan(task)).status_code == 409  # confirmed already
    before = on_hand(api)
    wrong = {
        "packages": [
            {
                "carton": "B",
                "weight_kg": 1,
                "contents": [{"sku": "LOT-1", "lot": "L1", "quantity": 2}],
            }
        ]
    }
    refused(api.post("/orders/SO-1/packages", json=wrong), 409, "packing-mismatch")
    wrong["packages"][0]["contents"][0].update(lot="L2", quantity=3)  # type: ignore[index]
    refused(api.post("/orders/SO-1/packages", json=wrong), 409, "packing-mismatch")
    right = {
        "packages": [
            {
                "carton": "B",
                "weight_kg": 1,
                "contents": [{"sku": "LOT-1", "lot": "L1", "quantity": 3}],
            }
        ]
    }
    assert api.post("/orders/SO-1/packages", json=right).status_code == 201
    shipment = api.post("/shipments", json={"orders": ["SO-1"], "carrier": "CORREIOS",
                                            "tracking_number": "T1"}).json()  # fmt: skip
    assert api.post(f"/shipments/{shipment['id']}/dispatch").status_code == 200
    before = on_hand(api)
    again = api.post(f"/shipments/{shipment['id']}/dispatch")
    refused(again, 409, "invalid-state")
    assert again.json()["current_status"] == "dispatched"
    cancel = api.post("/orders/SO-1/cancel")
    refused(cancel, 409, "invalid-state")
    assert cancel.json()["current_status"] == "shipped"


@contextlib.contextmanager
def held_before_commit(
    api: ApiClient, settings: Settings, database_url: str, tenant: TenantKeys
) -> Iterator[tuple[ApiClient, ThreadPoolExecutor, psycopg.Connection[Any]]]:
    """``api``'s credential on an app that waits for locks (20 s), two threads to send
    from, and a session holding the tenant's row: every command's audit entry needs a
    key-share lock on it, so each stops after its changes, before its commit, until the
    session's ``rollback()``."""
    patient = settings.model_copy(update={"lock_timeout_ms": 20_000})
    with (
        TestClient(create_app(patient)) as client,
        psycopg.connect(database_url) as blocker,
        ThreadPoolExecutor(2) as pool,
    ):
        blocker.execute("SELECT 1 FROM wms.tenants WHERE id = %s FOR UPDATE", (tenant.tenant_id,))
        yield ApiClient(client, api.token), pool, blocker


def packed_orders(api: ApiClient, *numbers: str) -> None:
    """Orders of 2 × SKU-1 each (stocked at A-01), allocated, picked and packed."""
    stock(api, "A-01", 10)
    for number in numbers:
        assert api.post("/orders", json=order_body(number, {"sku": "SKU-1", "quantity": 2}))
        assert api.post(f"/orders/{number}/allocate").json()["status"] == "allocated"
    for task in released_wave(api, *numbers):
        assert api.post(f"/pick-tasks/{task['id']}/confirm", json=scan(task)).status_code == 200
    for number in numbers:
        packed = api.post(f"/orders/{number}/packages", json={"packages": [{
            "carton": "B", "weight_kg": 1,
            "contents": [{"sku": "SKU-1", "lot": None, "quantity": 2}]}]})  # fmt: skip
        assert packed.status_code == 201, packed.text


def test_an_order_cancelled_while_its_shipment_is_dispatched_is_not_shipped(
    api: ApiClient, world: StockWorld, tenant: TenantKeys, settings: Settings, database_url: str
) -> None:
    """Dispatch reads the shipment's orders, then waits for their locks: an order whose
    cancel held its lock then committed is not shipped, and its stock stays to be put back."""
    packed_orders(api, "SO-1", "SO-2")
    shipment = api.post("/shipments", json={"orders": ["SO-1", "SO-2"], "carrier": "CORREIOS",
                                            "tracking_number": "T1"}).json()  # fmt: skip

    with held_before_commit(api, settings, database_url, tenant) as (admin, pool, blocker):
        # The cancel stops after its changes (the order locked), before its commit.
        cancel = pool.submit(admin.post, "/orders/SO-1/cancel")
        until_sessions_wait_for_locks(database_url, 1, "the cancel")
        dispatch = pool.submit(admin.post, f"/shipments/{shipment['id']}/dispatch")
        # Dispatch has read both orders and waits for SO-1's lock.
        until_sessions_wait_for_locks(database_url, 2, "the dispatch")
        blocker.rollback()
        cancelled, dispatched = cancel.result(), dispatch.result()
    assert cancelled.status_code == 200, cancelled.text
    assert dispatched.status_code == 200, dispatched.text
    assert dispatched.json()["orders"] == ["SO-2"]
    assert api.get("/orders/SO-1").json()["status"] == "cancelled"
    assert api.get("/orders/SO-2").json()["status"] == "shipped"
    # SO-1's two units wait at staging for their put-back; SO-2's left the building.
    assert on_hand(api)[("OUTBOUND", "SKU-1", None)] == (2, 0)
    assert total(api, "SKU-1") == 8
    consistent(database_url)


def test_a_cancel_takes_the_order_s_tasks_before_its_head_as_a_pick_does(
    api: ApiClient, world: StockWorld, tenant: TenantKeys, database_url: str
) -> None:
    """A pick locks its tasks, then their orders' heads. A cancel that locked the head
    first, then waited for a task a pick held, deadlocked with that pick's next step."""
    stock(api, "A-01", 5)
    api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 3}))
    api.post("/orders/SO-1/allocate")
    (task,) = released_wave(api, "SO-1")
    with psycopg.connect(database_url) as picker, ThreadPoolExecutor(1) as pool:
        # A pick's first step: its task, held.
        picker.execute("SELECT 1 FROM wms.pick_tasks WHERE id = %s FOR NO KEY UPDATE",
                       (task["id"],))  # fmt: skip
        cancel = pool.submit(api.post, "/orders/SO-1/cancel")
        until_sessions_wait_for_locks(database_url, 1, "the cancel, for the task")
        # Its next step, the order's head: free, as the cancel waits for the task first
        # (was a wait, then a deadlock, with the cancel holding the head).
        picker.execute("SET LOCAL lock_timeout = '500ms'")
        picker.execute("SELECT 1 FROM wms.orders WHERE tenant_id = %s AND number = 'SO-1' "
                       "FOR UPDATE", (tenant.tenant_id,))  # fmt: skip
        picker.commit()
        assert cancel.result().status_code == 200
    assert api.get("/orders/SO-1").json()["status"] == "cancelled"
    consistent(database_url)


def test_cancelling_a_picked_order_puts_its_stock_back_from_staging(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    stock(api, "A-01", 5)
    picked(api, "SO-1", 3)
    assert api.post("/orders/SO-1/cancel").json()["status"] == "cancelled"
    assert on_hand(api)[("OUTBOUND", "SKU-1", None)] == (3, 0)
    consistent(database_url)
    (put_back,) = api.get("/replenishment-tasks", params={"kind": "put_back"}).json()["items"]
    assert (put_back["from_location"], put_back["to_location"], put_back["quantity"]) == (
        "OUTBOUND", "A-01", 3,
    )  # fmt: skip
    assert api.post(f"/replenishment-tasks/{put_back['id']}/confirm").status_code == 200
    assert on_hand(api) == {("A-01", "SKU-1", None): (5, 0)}
    consistent(database_url)


def test_a_partial_put_back_leaves_a_task_for_the_rest(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    """Staged stock is never allocated: what a put-back leaves there gets its own task."""
    stock(api, "A-01", 10)
    picked(api, "SO-1", 10)
    assert api.post("/orders/SO-1/cancel").status_code == 200
    (first,) = api.get("/replenishment-tasks", params={"kind": "put_back"}).json()["items"]
    moved = api.post(f"/replenishment-tasks/{first['id']}/confirm", json={"quantity": 6})
    assert moved.status_code == 200, moved.text
    (rest,) = api.get("/replenishment-tasks", params={"kind": "put_back", "status": "open"}
                      ).json()["items"]  # fmt: skip
    assert (rest["from_location"], rest["to_location"], rest["quantity"], rest["order_number"]) == (
        "OUTBOUND", "A-01", 4, "SO-1",
    )  # fmt: skip
    assert on_hand(api)[("OUTBOUND", "SKU-1", None)] == (4, 0)
    assert api.post(f"/replenishment-tasks/{rest['id']}/confirm").status_code == 200
    assert on_hand(api) == {("A-01", "SKU-1", None): (10, 0)}
    assert api.get("/replenishment-tasks", params={"status": "open"}).json()["items"] == []
    consistent(database_url)


def test_a_pick_face_below_its_minimum_is_replenished_from_reserve(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    stock(api, "P-01", 3)
    stock(api, "A-01", 20)
    level = api.put(
        "/warehouses/SP1/locations/P-01/replenishment", json={"sku": "SKU-1", "min": 2, "max": 8}
    )
    assert level.status_code == 200, level.text
    assert api.get("/replenishment-tasks").json()["items"] == []
    api.patch("/settings", json={"allocation_strategy": "pick_face_first"})
    api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 2}))
    api.post("/orders/SO-1/allocate")
    (task,) = api.get("/replenishment-tasks", params={"status": "open"}).json()["items"]
    assert (task["kind"], task["from_location"], task["to_location"], task["quantity"]) == (
        "replenishment", "A-01", "P-01", 5,
    )  # fmt: skip
    done = api.post(f"/replenishment-tasks/{task['id']}/confirm")
    assert done.status_code == 200, done.text
    assert on_hand(api)[("P-01", "SKU-1", None)] == (8, 2)
    moves = api.get("/inventory/movements", params={"kind": "replenishment"}).json()["items"]
    assert sorted(m["quantity"] for m in moves) == [-5, 5]
    consistent(database_url)


def test_a_batch_mixing_short_and_exact_picks_keeps_the_ledger_and_the_event_order(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    today = date.today()
    stock(api, "A-01", 5)
    stock(api, "A-02", 4, sku="LOT-1", lot="L1", expiry=str(today + timedelta(days=30)))
    stock(api, "B-01", 5, sku="LOT-1", lot="L2", expiry=str(today + timedelta(days=60)))
    api.post("/orders", json=order_body("SO-1", {"line": 1, "sku": "SKU-1", "quantity": 3},
                                        {"line": 2, "sku": "LOT-1", "quantity": 4}))  # fmt: skip
    api.post("/orders", json=order_body("SO-2", {"sku": "SKU-1", "quantity": 2}))
    for number in ("SO-1", "SO-2"):
        assert api.post(f"/orders/{number}/allocate").status_code == 200
    tasks = {(t["sku"], t["orders"][0]["order"]): t for t in released_wave(api, "SO-1", "SO-2")}
    first, short, last = tasks["SKU-1", "SO-1"], tasks["LOT-1", "SO-1"], tasks["SKU-1", "SO-2"]
    assert len(tasks) == 3
    assert [(t["location"], t["quantity"]) for t in (first, short, last)] == [
        ("A-01", 3), ("A-02", 4), ("A-01", 2),
    ]  # fmt: skip
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM wms.outbox").fetchone()
    assert row is not None

    # Exact picks (two from one balance) around a short one: all settle, in the batch's order.
    batch = api.post(
        "/pick-tasks:confirm",
        json={"confirmations": [{"task": first["id"], **scan(first)},
                                {"task": short["id"], **scan(short, 1)},
                                {"task": last["id"], **scan(last)}]},
    )  # fmt: skip
    assert batch.status_code == 200, batch.text
    assert [t["status"] for t in batch.json()["tasks"]] == ["confirmed", "short", "confirmed"]
    stocks = on_hand(api)
    assert stocks[("OUTBOUND", "SKU-1", None)] == (5, 5)
    assert stocks[("OUTBOUND", "LOT-1", "L1")] == (1, 1)
    assert stocks[("A-02", "LOT-1", "L1")] == (3, 0)  # the missing 3 wait for the count
    assert stocks[("B-01", "LOT-1", "L2")] == (5, 3)  # re-allocated
    assert ("A-01", "SKU-1", None) not in stocks
    consistent(database_url)
    for task, units in ((first, 3), (short, 1), (last, 2)):
        moves = api.get(
            "/inventory/movements", params={"kind": "pick", "reference": str(task["id"])}
        ).json()["items"]
        assert [(m["location"], m["quantity"]) for m in moves] == [
            (task["location"], -units), ("OUTBOUND", units),
        ]  # fmt: skip
    with psycopg.connect(database_url) as conn:
        events = [
            (kind, data.get("task"))
            for kind, data in conn.execute(
                "SELECT type, data FROM wms.outbox WHERE id > %s ORDER BY id", (row[0],)
            )
        ]
    picking = [e for e in events if e[0].startswith(("wms.inventory", "wms.pick", "wms.cycle"))]
    assert picking == [
        ("wms.inventory.picked", first["id"]), ("wms.cycle_count.created", short["id"]),
        ("wms.pick.shorted", short["id"]), ("wms.inventory.picked", short["id"]),
        ("wms.inventory.picked", last["id"]),
    ]  # fmt: skip

    (new,) = tasks_of(api, short["wave"], status="open")
    assert (new["location"], new["lot"], new["quantity"]) == ("B-01", "L2", 3)
    assert api.post(f"/pick-tasks/{new['id']}/confirm", json=scan(new)).status_code == 200
    for number in ("SO-1", "SO-2"):
        assert api.get(f"/orders/{number}").json()["status"] == "picked"
    consistent(database_url)


def test_an_order_whose_last_two_tasks_are_confirmed_at_once_is_picked_exactly_once(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    # The head lock each confirmation takes first makes the second wait for the first to
    # commit; without it, each saw the other's task still open and the order stayed
    # 'picking' for ever.
    stock(api, "A-01", 20)
    stock(api, "A-02", 20, sku="LOT-1", lot="L1", expiry=str(date.today() + timedelta(days=90)))
    numbers = [f"TWO-{n}" for n in range(6)]
    for number in numbers:
        lines = [{"line": 1, "sku": "SKU-1", "quantity": 1},
                 {"line": 2, "sku": "LOT-1", "quantity": 1}]  # fmt: skip
        assert api.post("/orders", json=order_body(number, *lines)).status_code == 201
        assert api.post(f"/orders/{number}/allocate").json()["status"] == "allocated"
    wave = api.post("/waves", json={"warehouse": "SP1", "orders": numbers,
                                    "pick_method": "discrete"}).json()  # fmt: skip
    assert api.post(f"/waves/{wave['id']}/release").status_code == 200
    by_order: dict[str, list[dict[str, Any]]] = {}
    for task in tasks_of(api, wave["id"], limit=100):
        by_order.setdefault(task["orders"][0]["order"], []).append(task)
    assert sorted(len(tasks) for tasks in by_order.values()) == [2] * 6
    for tasks in by_order.values():
        answers = in_parallel(
            [lambda t=t: api.post(f"/pick-tasks/{t['id']}/confirm", json=scan(t)) for t in tasks]
        )
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert {api.get(f"/orders/{n}").json()["status"] for n in numbers} == {"picked"}
    assert api.get(f"/waves/{wave['id']}").json()["status"] == "completed"
    with psycopg.connect(database_url) as conn:
        (events,) = conn.execute(
            "SELECT count(*) FROM wms.outbox WHERE type = 'wms.order.picked'"
        ).fetchone()  # type: ignore[misc]
    assert events == 6
    consistent(database_url)


def test_an_order_whose_tasks_all_end_short_with_nothing_picked_waits_for_stock_again(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    # Before, it became 'picked' with nothing to pack: packing refused it, arrivals never
    # offered it stock, and only a cancel got it out.
    stock(api, "A-01", 4)
    assert api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 4})).is_success
    assert api.post("/orders/SO-1/allocate").json()["status"] == "allocated"
    (task,) = released_wave(api, "SO-1")
    short = api.post(f"/pick-tasks/{task['id']}/confirm", json=scan(task, 0))
    assert short.status_code == 200, short.text
    assert (short.json()["backordered"], short.json()["new_tasks"]) == (4, [])
    order = api.get("/orders/SO-1").json()
    assert order["status"] == "backordered"
    assert api.get(f"/waves/{task['wave']}").json()["status"] == "completed"
    with psycopg.connect(database_url) as conn:
        types = [r[0] for r in conn.execute(
            "SELECT type FROM wms.outbox WHERE subject = 'order/SO-1' ORDER BY id"
        ).fetchall()]  # fmt: skip
    assert types[-1] == "wms.order.backordered"
    assert "wms.order.picked" not in types
    # Stock found elsewhere goes to it, and it can be waved again.
    stock(api, "A-02", 4)
    assert api.get("/orders/SO-1").json()["status"] == "allocated"
    (again,) = released_wave(api, "SO-1")
    assert api.post(f"/pick-tasks/{again['id']}/confirm", json=scan(again)).status_code == 200
    assert api.get("/orders/SO-1").json()["status"] == "picked"
    consistent(database_url)


def test_a_short_pick_counts_the_short_key_even_when_a_count_holds_its_location(
    api: ApiClient, world: StockWorld
) -> None:
    stock(api, "A-01", 5)
    stock(api, "A-01", 5, sku="LOT-1", lot="L1", expiry=str(date.today() + timedelta(days=90)))
    lot_count = api.post("/cycle-counts", json={"warehouse": "SP1", "skus": ["LOT-1"]})
    assert lot_count.status_code == 201, lot_count.text
    assert api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 5})).is_success
    assert api.post("/orders/SO-1/allocate").json()["status"] == "allocated"
    (task,) = released_wave(api, "SO-1")
    short = api.post(f"/pick-tasks/{task['id']}/confirm", json=scan(task, 2))
    assert short.status_code == 200, short.text
    count_id = short.json()["cycle_count"]
    assert count_id != lot_count.json()["id"]  # that count would never write SKU-1 off
    lines = api.get(f"/cycle-counts/{count_id}").json()["lines"]
    assert [(line["location"], line["sku"]) for line in lines] == [("A-01", "SKU-1")]
    # A second short pick of the same key reuses the count that now holds it.
    assert api.post("/orders", json=order_body("SO-2", {"sku": "SKU-1", "quantity": 3})).is_success
    assert api.post("/orders/SO-2/allocate").json()["status"] == "allocated"
    (again,) = released_wave(api, "SO-2")
    second = api.post(f"/pick-tasks/{again['id']}/confirm", json=scan(again, 1))
    assert second.status_code == 200, second.text
    assert second.json()["cycle_count"] == count_id


def test_a_wave_whose_orders_all_left_before_its_release_completes_at_release(
    api: ApiClient, world: StockWorld
) -> None:
    stock(api, "A-01", 5)
    assert api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 1})).is_success
    assert api.post("/orders/SO-1/allocate").json()["status"] == "allocated"
    wave = api.post("/waves", json={"warehouse": "SP1", "orders": ["SO-1"]}).json()
    assert api.post("/orders/SO-1/cancel").status_code == 200
    released = api.post(f"/waves/{wave['id']}/release")
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["task_count"]) == ("completed", 0)
    assert api.get(f"/waves/{wave['id']}").json()["status"] == "completed"


def test_a_wave_whose_last_tasks_of_two_orders_are_confirmed_at_once_completes(
    api: ApiClient, world: StockWorld, *, settings: Settings, database_url: str,
    tenant: TenantKeys,
) -> None:  # fmt: skip
    # Two orders, two products: neither a head nor a balance makes one confirmation wait
    # for the other, so each saw the other's task open and the wave stayed 'released'.
    stock(api, "A-01", 5)
    stock(api, "A-02", 5, sku="LOT-1", lot="L1", expiry=str(date.today() + timedelta(days=90)))
    for number, sku in (("SO-1", "SKU-1"), ("SO-2", "LOT-1")):
        assert api.post("/orders", json=order_body(number, {"sku": sku, "quantity": 1})).is_success
        assert api.post(f"/orders/{number}/allocate").json()["status"] == "allocated"
    tasks = released_wave(api, "SO-1", "SO-2")
    assert len(tasks) == 2
    with held_before_commit(api, settings, database_url, tenant) as (picker, pool, blocker):
        # Both wait just before their commit: each has closed its task before the other
        # commits.
        futures = [
            pool.submit(picker.post, f"/pick-tasks/{t['id']}/confirm", json=scan(t)) for t in tasks
        ]
        until_sessions_wait_for_locks(database_url, 2, "both confirmations")
        blocker.rollback()
        assert [f.result().status_code for f in futures] == [200, 200]
    wave = api.get(f"/waves/{tasks[0]['wave']}").json()
    assert wave["status"] == "completed", wave
    assert wave["completed_at"] is not None


def test_a_replenishment_task_whose_reserve_was_sold_is_cancelled_and_replaced(
    api: ApiClient, world: StockWorld, *, tenant: TenantKeys, database_url: str
) -> None:
    # The task reserved nothing; once its source was allocated every confirmation was a
    # 409 and the one-open-task-per-face rule kept any other task out, for good.
    stock(api, "A-01", 20)
    level = api.put("/warehouses/SP1/locations/P-01/replenishment",
                    json={"sku": "SKU-1", "min": 2, "max": 8})  # fmt: skip
    assert level.status_code == 200, level.text
    (task,) = api.get("/replenishment-tasks", params={"status": "open"}).json()["items"]
    assert (task["from_location"], task["quantity"]) == ("A-01", 8)
    assert api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 20})).is_success
    assert api.post("/orders/SO-1/allocate").json()["status"] == "allocated"
    stock(api, "A-02", 50)
    assert api.post(f"/replenishment-tasks/{task['id']}/confirm").status_code == 409

    operator = api.as_key(tenant.keys[Role.OPERATOR])
    assert operator.post(f"/replenishment-tasks/{task['id']}/cancel").status_code == 403
    cancelled = api.post(f"/replenishment-tasks/{task['id']}/cancel",
                         json={"reason": "reserve sold"})  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["cancel_reason"]) == (
        "cancelled", "reserve sold")  # fmt: skip
    assert api.post(f"/replenishment-tasks/{task['id']}/cancel").status_code == 409
    (replacement,) = api.get("/replenishment-tasks", params={"status": "open"}).json()["items"]
    assert (replacement["from_location"], replacement["quantity"]) == ("A-02", 8)
    confirmed = api.post(f"/replenishment-tasks/{replacement['id']}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert on_hand(api)[("P-01", "SKU-1", None)] == (8, 0)
    (data,) = outbox_of(database_url, "wms.replenishment.cancelled")
    assert (data["task"], data["reason"]) == (task["id"], "reserve sold")
    consistent(database_url)


def test_a_put_back_task_cannot_be_cancelled(api: ApiClient, world: StockWorld) -> None:
    stock(api, "A-01", 5)
    assert api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 2})).is_success
    assert api.post("/orders/SO-1/allocate").json()["status"] == "allocated"
    (task,) = released_wave(api, "SO-1")
    assert api.post(f"/pick-tasks/{task['id']}/confirm", json=scan(task)).status_code == 200
    assert api.post("/orders/SO-1/cancel").status_code == 200
    (put_back,) = api.get("/replenishment-tasks", params={"kind": "put_back"}).json()["items"]
    refused = api.post(f"/replenishment-tasks/{put_back['id']}/cancel")
    assert refused.status_code == 409
    assert "staging" in refused.json()["detail"]


def test_a_shipment_is_cancelled_before_dispatch_and_frees_its_orders_and_tracking_number(
    api: ApiClient, world: StockWorld, *, tenant: TenantKeys, database_url: str
) -> None:
    # Before, a shipment whose orders were all cancelled stayed 'created' with nothing to
    # dispatch, and its tracking number could never be used again.
    packed_orders(api, "SO-1", "SO-2")
    first = api.post("/shipments", json={"orders": ["SO-1"], "carrier": "CORREIOS",
                                         "tracking_number": "T1"}).json()  # fmt: skip
    # Its orders are cancelled: nothing left to dispatch.
    assert api.post("/orders/SO-1/cancel").status_code == 200
    assert api.post(f"/shipments/{first['id']}/dispatch").status_code == 409
    taken = api.post("/shipments", json={"orders": ["SO-2"], "carrier": "CORREIOS",
                                         "tracking_number": "T1"})  # fmt: skip
    assert taken.status_code == 409
    assert f"shipment {first['id']}" in taken.json()["detail"]

    operator = api.as_key(tenant.keys[Role.OPERATOR])
    assert operator.post(f"/shipments/{first['id']}/cancel").status_code == 403
    cancelled = api.post(f"/shipments/{first['id']}/cancel", json={"reason": "order cancelled"})
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert (body["status"], body["orders"], body["cancel_reason"]) == (
        "cancelled", [], "order cancelled")  # fmt: skip
    assert api.post(f"/shipments/{first['id']}/cancel").status_code == 409
    assert api.post(f"/shipments/{first['id']}/dispatch").status_code == 409

    # The tracking number is free again; a cancelled shipment lets its packed orders go.
    second = api.post("/shipments", json={"orders": ["SO-2"], "carrier": "CORREIOS",
                                          "tracking_number": "T1"})  # fmt: skip
    assert second.status_code == 201, second.text
    assert api.post(f"/shipments/{second.json()['id']}/cancel").status_code == 200
    assert api.get("/orders/SO-2").json()["status"] == "packed"
    third = api.post("/shipments", json={"orders": ["SO-2"], "carrier": "CORREIOS",
                                         "tracking_number": "T2"})  # fmt: skip
    assert third.status_code == 201, third.text
    assert api.post(f"/shipments/{third.json()['id']}/dispatch").status_code == 200
    shipped = api.get("/orders/SO-2").json()
    assert shipped["status"] == "shipped"
    # Dispatch leaves nothing allocated: the shipped units read as backordered before.
    line = shipped["lines"][0]
    assert (line["allocated"], line["shipped"], line["backordered"]) == (0, 2, 0)
    events = outbox_of(database_url, "wms.shipment.cancelled")
    assert [(e["shipment"], e["orders"]) for e in events] == [
        (first["id"], []), (second.json()["id"], ["SO-2"])]  # fmt: skip
    consistent(database_url)
