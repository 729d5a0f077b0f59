"""Orders: intake, allocation strategies, backorders, cancellation, bad inputs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.event_check import outbox_of
from tests.integration.stock_world import StockWorld, build_world


@pytest.fixture
def world(api: ApiClient, tenant: TenantKeys, database_url: str) -> StockWorld:
    return build_world(api, tenant, database_url)


def stock(api: ApiClient, location: str, quantity: int, sku: str = "SKU-1", **extra: Any) -> None:
    response = api.post(
        "/inventory/adjustments",
        json={"warehouse": "SP1", "location": location, "sku": sku, "quantity": quantity,
              "reason": "initial_load", **extra},
    )  # fmt: skip
    assert response.status_code == 201, response.text


def order_body(number: str, *lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "number": number, "warehouse": "SP1", "customer": "ACME Retail", "carrier": "CORREIOS",
        "carrier_service": "SEDEX", "priority": 5, "ship_by": "2026-12-01T18:00:00Z",
        "ship_to": {"name": "Ana", "line1": "Rua A 1", "city": "São Paulo",
                    "postal_code": "01000-000", "country": "BR"},
        "lines": list(lines) or [{"line": 1, "sku": "SKU-1", "quantity": 2}],
        **fields,
    }  # fmt: skip


def allocations_match_balances(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        wrong = conn.execute(
            "SELECT b.id, b.allocated, coalesce(sum(a.quantity), 0) FROM wms.inventory_balances b "
            "LEFT JOIN wms.allocations a ON a.tenant_id = b.tenant_id AND a.balance_id = b.id "
            "GROUP BY b.tenant_id, b.id, b.allocated "
            "HAVING b.allocated <> coalesce(sum(a.quantity), 0)"
        ).fetchall()
        lines = conn.execute(
            "SELECT l.order_id, l.line_no FROM wms.order_lines l LEFT JOIN wms.allocations a "
            "ON a.tenant_id = l.tenant_id AND a.order_id = l.order_id AND a.line_no = l.line_no "
            "GROUP BY l.tenant_id, l.order_id, l.line_no, l.allocated "
            "HAVING l.allocated <> coalesce(sum(a.quantity), 0)"
        ).fetchall()
    assert wrong == []
    assert lines == []


def set_received(database_url: str, location: str, when: datetime) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE wms.inventory_balances b SET first_received_at = %s FROM wms.locations l "
            "WHERE l.id = b.location_id AND l.code = %s",
            (when, location),
        )


def test_intake_is_idempotent_by_number_and_content(api: ApiClient, world: StockWorld) -> None:
    created = api.post("/orders", json=order_body("SO-1"))
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/orders/SO-1"
    order = created.json()
    assert order["status"] == "received"
    assert order["lines"][0]["backordered"] == 2
    again = api.post("/orders", json=order_body("SO-1"))
    assert again.status_code == 200
    assert again.json() == order
    other = api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 3}))
    assert other.status_code == 409
    assert api.get("/orders", params={"status": "received"}).json()["items"][0]["number"] == "SO-1"


def test_fifo_takes_the_oldest_receipts_first_and_reserves_stock(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    stock(api, "A-01", 10)
    stock(api, "A-02", 5)
    set_received(database_url, "A-02", datetime(2026, 1, 1, tzinfo=UTC))
    api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 12}))
    allocated = api.post("/orders/SO-1/allocate")
    assert allocated.status_code == 200, allocated.text
    body = allocated.json()
    assert body["status"] == "allocated"
    assert [(a["location"], a["quantity"]) for a in body["lines"][0]["allocations"]] == [
        ("A-02", 5),
        ("A-01", 7),
    ]
    items = {i["location"]: i for i in api.get("/inventory").json()["items"]}
    assert (items["A-01"]["allocated"], items["A-01"]["available"]) == (7, 3)
    assert items["A-02"]["available"] == 0
    allocations_match_balances(database_url)
    removal = api.post(
        "/inventory/adjustments",
        json={"warehouse": "SP1", "location": "A-02", "sku": "SKU-1", "quantity": -1,
              "reason": "lost"},
    )  # fmt: skip
    assert removal.status_code == 409  # allocated stock cannot be taken away


def test_a_short_order_is_backordered_and_filled_when_stock_arrives(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    stock(api, "A-01", 15)
    api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 20}))
    partial = api.post("/orders/SO-1/allocate").json()
    assert partial["status"] == "partially_allocated"
    assert (partial["lines"][0]["allocated"], partial["lines"][0]["backordered"]) == (15, 5)
    stock(api, "A-02", 8)
    filled = api.get("/orders/SO-1").json()
    assert filled["status"] == "allocated"
    assert filled["lines"][0]["backordered"] == 0
    assert api.get("/inventory", params={"location": "A-02"}).json()["items"][0]["allocated"] == 5
    with psycopg.connect(database_url) as conn:
        events = [r[0] for r in conn.execute("SELECT type FROM wms.outbox ORDER BY id")]
    assert "wms.order.partially_allocated" in events
    assert events[-1] == "wms.order.allocated" or "wms.order.allocated" in events
    allocations_match_balances(database_url)


def test_stock_arriving_is_offered_to_a_backorder_without_waiting_for_others_balances(
    api: ApiClient, world: StockWorld, tenant: TenantKeys, database_url: str
) -> None:
    """An arrival holds its own balance, then the waiting order's head; waiting there for
    a candidate balance another arrival holds (which waits for the same head) would be a
    deadlock. A held candidate is passed over; the arrival's own stock is offered."""
    today = date.today()
    # Free but too short-dated for the order: a candidate the plan then passes over.
    stock(api, "A-02", 5, sku="LOT-1", lot="OLD", expiry=str(today + timedelta(days=5)))
    api.post("/orders", json=order_body(
        "SO-1", {"sku": "LOT-1", "quantity": 3, "min_shelf_life_days": 30}))  # fmt: skip
    assert api.post("/orders/SO-1/allocate").json()["status"] == "backordered"
    with psycopg.connect(database_url) as other:
        # Another transaction (a second arrival, say) holds the A-02 balance.
        other.execute(
            "SELECT 1 FROM wms.inventory_balances b JOIN wms.locations l ON l.id = b.location_id "
            "WHERE b.tenant_id = %s AND l.code = 'A-02' FOR UPDATE OF b",
            (tenant.tenant_id,),
        )
        stock(api, "A-01", 4, sku="LOT-1", lot="NEW", expiry=str(today + timedelta(days=90)))
        other.rollback()
    order = api.get("/orders/SO-1").json()
    assert order["status"] == "allocated"
    assert [(a["location"], a["lot"], a["quantity"])
            for a in order["lines"][0]["allocations"]] == [("A-01", "NEW", 3)]  # fmt: skip
    allocations_match_balances(database_url)


def test_backorders_are_served_by_priority_then_age(api: ApiClient, world: StockWorld) -> None:
    api.post("/orders", json=order_body("OLD-5", {"sku": "SKU-1", "quantity": 3}, priority=5))
    api.post("/orders", json=order_body("NEW-1", {"sku": "SKU-1", "quantity": 3}, priority=1))
    api.post("/orders", json=order_body("NEW-5", {"sku": "SKU-1", "quantity": 3}, priority=5))
    for number in ("OLD-5", "NEW-1", "NEW-5"):
        assert api.post(f"/orders/{number}/allocate").json()["status"] == "backordered"
    stock(api, "A-01", 4)
    statuses = {n: api.get(f"/orders/{n}").json()["status"] for n in ("OLD-5", "NEW-1", "NEW-5")}
    assert statuses == {
        "NEW-1": "allocated",
        "OLD-5": "partially_allocated",
        "NEW-5": "backordered",
    }


def test_one_arrival_serves_every_waiting_order_it_can_past_the_first_batch(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    # Arrivals offered stock to the first 50 waiting orders only: urgent orders for a lot
    # that never comes hid the order behind them, and a 51st order stayed backordered
    # beside free stock.
    api.patch("/settings", json={"allocate_on_create": True})
    for n in range(50):
        created = api.post("/orders", json=order_body(
            f"WANT-X-{n}", {"sku": "LOT-1", "quantity": 1, "lot": "X"}, priority=1))  # fmt: skip
        assert created.json()["status"] == "backordered", created.text
    api.post("/orders", json=order_body("ANY-LOT", {"sku": "LOT-1", "quantity": 2}))
    for n in range(51):
        api.post("/orders", json=order_body(f"SO-{n}", {"sku": "SKU-1", "quantity": 1}))
    stock(api, "A-01", 4, sku="LOT-1", lot="Y", expiry=str(date.today() + timedelta(days=90)))
    stock(api, "A-02", 60)
    waiting = [n for n in ["ANY-LOT", *(f"SO-{n}" for n in range(51))]
               if api.get(f"/orders/{n}").json()["status"] != "allocated"]  # fmt: skip
    assert waiting == []
    allocations_match_balances(database_url)


def test_stock_becoming_allocatable_without_arriving_is_offered_to_backorders(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    # A move out of an inactive storage location, re-activating a location, and turning
    # one into storage made free stock allocatable, but no waiting order was offered it.
    def backordered(number: str, quantity: int) -> None:
        api.post("/orders", json=order_body(number, {"sku": "SKU-1", "quantity": quantity}))
        assert api.post(f"/orders/{number}/allocate").json()["status"] == "backordered"

    def active(location: str, active: bool) -> None:
        answer = api.patch(f"/warehouses/SP1/locations/{location}", json={"active": active})
        assert answer.status_code == 200, answer.text

    stock(api, "A-02", 9)
    active("A-02", False)
    backordered("SO-1", 3)
    moved = api.post("/inventory/moves", json={"warehouse": "SP1", "sku": "SKU-1",
                                               "from_location": "A-02", "to_location": "A-01",
                                               "quantity": 3})  # fmt: skip
    assert moved.status_code == 201, moved.text
    assert api.get("/orders/SO-1").json()["status"] == "allocated"
    backordered("SO-2", 2)
    active("A-02", True)
    assert api.get("/orders/SO-2").json()["status"] == "allocated"
    active("A-02", False)
    backordered("SO-3", 4)
    imported = api.post("/warehouses/SP1/locations:import",
                        json={"locations": [{"code": "A-02", "type": "storage",
                                             "active": True}]})  # fmt: skip
    assert imported.status_code == 200, imported.text
    assert api.get("/orders/SO-3").json()["status"] == "allocated"
    allocations_match_balances(database_url)


def test_expired_stock_is_never_allocated(
    api: ApiClient, world: StockWorld, tenant: TenantKeys, database_url: str
) -> None:
    # Without a minimum shelf life any expiry passed: stock that expired on the shelf was
    # reserved, and FEFO took it first.
    today = date.today()
    stock(api, "A-01", 5, sku="LOT-1", lot="OLD", expiry=str(today + timedelta(days=10)))
    stock(api, "A-02", 5, sku="LOT-1", lot="TODAY", expiry=str(today + timedelta(days=11)))
    with psycopg.connect(database_url) as conn:  # time passes: OLD expires, TODAY is due
        for lot, expiry in (("OLD", today - timedelta(days=1)), ("TODAY", today)):
            conn.execute(
                "UPDATE wms.lots SET expiry = %s WHERE tenant_id = %s AND lot_code = %s",
                (expiry, tenant.tenant_id, lot),
            )
    api.patch("/settings", json={"allocation_strategy": "fefo"})
    api.post("/orders", json=order_body("SO-1", {"sku": "LOT-1", "quantity": 7}))
    line = api.post("/orders/SO-1/allocate").json()["lines"][0]
    assert [(a["lot"], a["quantity"]) for a in line["allocations"]] == [("TODAY", 5)]
    assert line["backordered"] == 2


def test_cancelling_releases_allocations_to_waiting_orders(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    stock(api, "A-01", 5)
    api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 5}))
    api.post("/orders/SO-1/allocate")
    api.post("/orders", json=order_body("SO-2", {"sku": "SKU-1", "quantity": 2}))
    assert api.post("/orders/SO-2/allocate").json()["status"] == "backordered"
    cancelled = api.post("/orders/SO-1/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    line = cancelled.json()["lines"][0]
    assert line["allocations"] == []
    # The whole line is cancelled (it kept cancelled 0 beside the order's status).
    assert (line["allocated"], line["cancelled"], line["backordered"]) == (0, 5, 0)
    assert api.get("/orders/SO-2").json()["status"] == "allocated"
    assert api.get("/inventory").json()["items"][0]["allocated"] == 2
    again = api.post("/orders/SO-1/cancel")
    assert again.status_code == 409
    assert again.json()["current_status"] == "cancelled"
    assert api.post("/orders/SO-1/allocate").status_code == 409
    allocations_match_balances(database_url)


def test_stock_on_staging_dock_or_inactive_locations_is_never_allocated(
    api: ApiClient, world: StockWorld, database_url: str, tenant: TenantKeys
) -> None:
    stock(api, "OUTBOUND", 5)
    with psycopg.connect(database_url) as conn:
        (warehouse_id,) = conn.execute(
            "SELECT id FROM wms.warehouses WHERE tenant_id = %s", (tenant.tenant_id,)
        ).fetchone()  # type: ignore[misc]
        conn.execute(
            "INSERT INTO wms.locations (tenant_id, warehouse_id, code, type) "
            "VALUES (%s, %s, 'DOCK-1', 'dock')",
            (tenant.tenant_id, warehouse_id),
        )
    stock(api, "DOCK-1", 5)
    api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 1}))
    assert api.post("/orders/SO-1/allocate").json()["status"] == "backordered"


def test_fefo_takes_the_earliest_expiry_that_meets_the_minimum_shelf_life(
    api: ApiClient, world: StockWorld
) -> None:
    today = date.today()
    stock(api, "A-01", 5, sku="LOT-1", lot="SOON", expiry=str(today + timedelta(days=10)))
    stock(api, "A-02", 5, sku="LOT-1", lot="LATER", expiry=str(today + timedelta(days=100)))
    stock(api, "P-01", 5, sku="LOT-1", lot="MID", expiry=str(today + timedelta(days=40)))
    api.patch("/settings", json={"allocation_strategy": "fefo"})
    api.post("/orders", json=order_body(
        "SO-1", {"sku": "LOT-1", "quantity": 7, "min_shelf_life_days": 30}))  # fmt: skip
    lines = api.post("/orders/SO-1/allocate").json()["lines"]
    assert [(a["lot"], a["quantity"]) for a in lines[0]["allocations"]] == [
        ("MID", 5),
        ("LATER", 2),
    ]


def test_ship_complete_allocates_nothing_unless_everything_fits(
    api: ApiClient, world: StockWorld
) -> None:
    stock(api, "A-01", 5)
    api.patch("/settings", json={"backorder_policy": "ship_complete"})
    api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 6}))
    order = api.post("/orders/SO-1/allocate").json()
    assert order["status"] == "backordered"
    assert order["lines"][0]["allocated"] == 0
    assert api.get("/inventory").json()["items"][0]["allocated"] == 0


def test_cancel_remainder_allocates_what_there_is_and_cancels_the_rest(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    stock(api, "A-01", 5)
    api.patch("/settings", json={"backorder_policy": "cancel_remainder"})
    api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 8}))
    line = api.post("/orders/SO-1/allocate").json()["lines"][0]
    assert (line["allocated"], line["cancelled"], line["backordered"]) == (5, 3, 0)

    # With nothing at all, the order is cancelled: the cancellation's event, whose schema
    # the fixture checks (it got the allocation's data, breaking its schema).
    api.post("/orders", json=order_body("SO-2", {"sku": "LOT-1", "quantity": 1}))
    assert api.post("/orders/SO-2/allocate").json()["status"] == "cancelled"
    (event,) = outbox_of(database_url, "wms.order.cancelled")
    assert event == {"number": "SO-2", "put_back_tasks": []}


def test_allocate_on_create_when_the_tenant_says_so(api: ApiClient, world: StockWorld) -> None:
    stock(api, "A-01", 5)
    api.patch("/settings", json={"allocate_on_create": True})
    created = api.post(
        "/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 2, "uom": "EA"})
    )
    assert created.json()["status"] == "allocated"


def test_order_quantities_in_another_unit_are_converted(api: ApiClient, world: StockWorld) -> None:
    created = api.post(
        "/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 2, "uom": "CASE"})
    )
    line = created.json()["lines"][0]
    assert (line["quantity"], line["uom"], line["uom_quantity"]) == (24, "CASE", 2)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lines": [{"sku": "NOPE", "quantity": 1}]}, "/lines/0/sku"),
        ({"lines": [{"sku": "SKU-1", "quantity": 0}]}, "/lines/0/quantity"),
        ({"lines": [{"sku": "SKU-1", "quantity": -3}]}, "/lines/0/quantity"),
        ({"lines": [{"line": 1, "sku": "SKU-1", "quantity": 1},
                    {"line": 1, "sku": "SKU-1", "quantity": 2}]}, "/lines"),
        ({"ship_by": "2026-12-01T18:00:00"}, "/ship_by"),
        ({"warehouse": "NOPE"}, "/warehouse"),
        ({"lines": [{"sku": "SKU-1", "quantity": 1, "uom": "PALLET"}]}, "/lines/0/uom"),
        ({"lines": []}, "/lines"),
        ({"priority": 0}, "/priority"),
    ],
)  # fmt: skip
def test_bad_orders_are_422_with_a_pointer_and_change_nothing(
    api: ApiClient, world: StockWorld, change: dict[str, Any], field: str
) -> None:
    response = api.post("/orders", json={**order_body("SO-BAD"), **change})
    assert response.status_code == 422, response.text
    fields = [error["field"] for error in response.json()["errors"]]
    assert any(f.startswith(field) for f in fields), fields
    assert api.get("/orders").json()["items"] == []


def test_unknown_orders_are_404(api: ApiClient, world: StockWorld) -> None:
    assert api.get("/orders/NOPE").status_code == 404
    assert api.post("/orders/NOPE/allocate").status_code == 404
    assert api.post("/orders/NOPE/cancel").status_code == 404
