"""Cycle counts: blind lines, recount above tolerance, approval into adjustments."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.event_check import outbox_of
from tests.integration.stock_world import StockWorld, build_world
from tests.integration.test_orders import order_body
from tests.integration.test_stock_invariants import check_invariants
from wms.domain.roles import Role


@pytest.fixture
def world(api: ApiClient, tenant: TenantKeys, database_url: str) -> StockWorld:
    return stocked_world(api, tenant, database_url)


def stocked_world(api: ApiClient, tenant: TenantKeys, database_url: str) -> StockWorld:
    """``build_world`` with SKU-1 stocked at A-01 (10) and A-02 (5)."""
    world = build_world(api, tenant, database_url)
    for location, quantity in (("A-01", 10), ("A-02", 5)):
        response = api.post(
            "/inventory/adjustments",
            json={"warehouse": "SP1", "location": location, "sku": "SKU-1",
                  "quantity": quantity, "reason": "initial_load"},
        )  # fmt: skip
        assert response.status_code == 201
    return world


def results(*rows: tuple[str, int]) -> dict[str, Any]:
    return {"results": [{"location": loc, "sku": "SKU-1", "counted": n} for loc, n in rows]}


def test_a_count_is_blind_for_counters_recounts_big_variances_and_approval_adjusts(
    api: ApiClient, tenant: TenantKeys, world: StockWorld
) -> None:
    operator = api.as_key(tenant.keys[Role.OPERATOR])
    created = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01", "A-02"]})
    assert created.status_code == 201, created.text
    count = created.json()
    assert created.headers["location"] == f"/api/v1/cycle-counts/{count['id']}"
    assert [(line["location"], line["status"]) for line in count["lines"]] == [
        ("A-01", "pending"),
        ("A-02", "pending"),
    ]
    path = f"/cycle-counts/{count['id']}"

    first = operator.post(f"{path}/results", json=results(("A-01", 10), ("A-02", 4)))
    assert first.status_code == 200, first.text
    lines = {line["location"]: line for line in first.json()["lines"]}
    assert lines["A-01"]["status"] == "counted"
    assert lines["A-02"]["status"] == "recount"  # 1 of 5 is 20%, over the 5% tolerance
    assert all(line["expected"] is None for line in lines.values())  # blind
    assert first.json()["status"] == "open"

    assert operator.post(f"{path}/approve").status_code == 403
    early = api.post(f"{path}/approve")
    assert early.status_code == 409
    assert early.json()["current_status"] == "open"

    recount = operator.post(f"{path}/results", json=results(("A-02", 4)))
    assert recount.json()["status"] == "counted"

    supervisor = api.as_key(tenant.keys[Role.SUPERVISOR])
    approved = supervisor.post(f"{path}/approve")
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved"
    assert body["accuracy_pct"] == 50.0
    assert {line["location"]: line["variance"] for line in body["lines"]} == {
        "A-01": 0,
        "A-02": -1,
    }
    stock = api.get("/inventory", params={"sku": "SKU-1"}).json()["items"]
    assert {item["location"]: item["on_hand"] for item in stock} == {"A-01": 10, "A-02": 4}
    movement = api.get("/inventory/movements", params={"kind": "cycle_count"}).json()["items"]
    assert [(m["quantity"], m["reason"], m["reference_id"]) for m in movement] == [
        (-1, "cycle_count", str(count["id"]))
    ]
    again = supervisor.post(f"{path}/approve")
    assert again.status_code == 409


def test_a_variance_within_tolerance_needs_no_recount(api: ApiClient, world: StockWorld) -> None:
    api.patch("/settings", json={"recount_tolerance_pct": 50})
    count = api.post("/cycle-counts", json={"warehouse": "SP1", "skus": ["SKU-1"]}).json()
    answer = api.post(
        f"/cycle-counts/{count['id']}/results", json=results(("A-01", 9), ("A-02", 5))
    ).json()
    assert answer["status"] == "counted"
    assert api.post(f"/cycle-counts/{count['id']}/approve").json()["accuracy_pct"] == 50.0


def test_stock_found_where_none_was_expected_gets_its_own_line(
    api: ApiClient, world: StockWorld
) -> None:
    api.patch("/settings", json={"recount_tolerance_pct": 100})
    count = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["P-01"]}).json()
    assert count["lines"] == []
    answer = api.post(f"/cycle-counts/{count['id']}/results", json=results(("P-01", 3))).json()
    assert [(line["location"], line["status"]) for line in answer["lines"]] == [
        ("P-01", "recount")  # 3 against 0 is always beyond any tolerance
    ]
    api.post(f"/cycle-counts/{count['id']}/results", json=results(("P-01", 3)))
    api.post(f"/cycle-counts/{count['id']}/approve")
    stock = api.get("/inventory", params={"location": "P-01"}).json()["items"]
    assert [item["on_hand"] for item in stock] == [3]


def test_bad_count_requests_are_clear_errors(api: ApiClient, world: StockWorld) -> None:
    both = api.post(
        "/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"], "skus": ["SKU-1"]}
    )
    assert both.status_code == 422
    unknown = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01", "ZZ"]})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "/locations/1"
    assert api.get("/cycle-counts/999999").status_code == 404
    count = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"]}).json()
    negative = api.post(f"/cycle-counts/{count['id']}/results", json=results(("A-01", -1)))
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["field"] == "/results/0/counted"


def on_hand_at(api: ApiClient, location: str) -> int:
    items = api.get("/inventory", params={"location": location, "sku": "SKU-1"}).json()["items"]
    return sum(item["on_hand"] for item in items)


def test_stock_already_in_an_unapproved_count_is_refused_by_another_and_counted_once(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    """Two counts of A-01 would each measure 10 → 7 and approval would apply -3 twice
    (A-01 ending at 4): the second is refused until the first is approved."""
    api.patch("/settings", json={"recount_tolerance_pct": 100})
    first = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"]}).json()
    counts_before = api.get("/audit", params={"entity": "cycle_count"}).json()["items"]
    overlapping = api.post("/cycle-counts", json={"warehouse": "SP1", "skus": ["SKU-1"]})
    assert overlapping.status_code == 409, overlapping.text
    problem = overlapping.json()
    assert problem["type"].endswith("/conflict")
    assert (problem["cycle_count"], problem["location"], problem["sku"]) == (
        first["id"], "A-01", "SKU-1",
    )  # fmt: skip
    assert api.get("/audit", params={"entity": "cycle_count"}).json()["items"] == counts_before
    # A count of elsewhere may not take A-01's stock in as a line found there either.
    other = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-02"]}).json()
    found = api.post(f"/cycle-counts/{other['id']}/results", json=results(("A-01", 7)))
    assert found.status_code == 409, found.text
    assert found.json()["cycle_count"] == first["id"]
    assert [
        line["location"] for line in api.get(f"/cycle-counts/{other['id']}").json()["lines"]
    ] == ["A-02"]
    path = f"/cycle-counts/{first['id']}"
    assert api.post(f"{path}/results", json=results(("A-01", 7))).status_code == 200
    # Counted, not yet approved: still in the way.
    assert (
        api.post("/cycle-counts", json={"warehouse": "SP1", "skus": ["SKU-1"]}).status_code == 409
    )
    assert api.post(f"{path}/approve").status_code == 200
    assert on_hand_at(api, "A-01") == 7
    # Approved: A-01 may be counted again (A-02 is still in the other count).
    again = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"]})
    assert again.status_code == 201, again.text
    check_invariants(database_url)


def test_approval_publishes_each_adjustment_as_an_adjustment_does(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    api.patch("/settings", json={"recount_tolerance_pct": 100})
    count = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01", "A-02"]})
    assert count.status_code == 201, count.text
    number = count.json()["id"]
    assert api.post(f"/cycle-counts/{number}/results", json=results(("A-01", 7), ("A-02", 5)))
    before = len(outbox_of(database_url, "wms.inventory.adjusted"))
    assert api.post(f"/cycle-counts/{number}/approve").status_code == 200
    published = outbox_of(database_url, "wms.inventory.adjusted")[before:]
    assert published == [
        {"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "lot": None,
         "status": "available", "quantity": -3, "reason": "cycle_count", "cycle_count": number}
    ]  # fmt: skip


def test_a_count_surplus_is_offered_to_waiting_orders(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    # Approval made the surplus available but never offered it to backorders.
    api.patch("/settings", json={"recount_tolerance_pct": 100})
    api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 18}))
    assert api.post("/orders/SO-1/allocate").json()["status"] == "partially_allocated"
    number = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"]}).json()[
        "id"]  # fmt: skip
    assert api.post(f"/cycle-counts/{number}/results", json=results(("A-01", 13)))
    assert api.post(f"/cycle-counts/{number}/approve").status_code == 200
    order = api.get("/orders/SO-1").json()
    assert (order["status"], order["lines"][0]["backordered"]) == ("allocated", 0)
    check_invariants(database_url)


def test_a_count_short_of_allocated_stock_says_so_and_can_be_cancelled(
    api: ApiClient, tenant: TenantKeys, world: StockWorld, database_url: str
) -> None:
    """Approval never takes allocated units: such a count was stuck, its keys held."""
    api.patch("/settings", json={"recount_tolerance_pct": 100})
    order = order_body("SO-1", {"sku": "SKU-1", "quantity": 15})
    assert api.post("/orders", json=order).status_code == 201
    assert api.post("/orders/SO-1/allocate").json()["status"] == "allocated"
    count = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"]}).json()
    recorded = api.post(f"/cycle-counts/{count['id']}/results", json=results(("A-01", 9)))
    assert recorded.status_code == 200, recorded.text
    refused = api.post(f"/cycle-counts/{count['id']}/approve")
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/insufficient-stock")
    assert f"/cycle-counts/{count['id']}/cancel" in refused.json()["detail"]

    operator = api.as_key(tenant.keys[Role.OPERATOR])
    assert operator.post(f"/cycle-counts/{count['id']}/cancel").status_code == 403
    cancelled = api.post(f"/cycle-counts/{count['id']}/cancel", json={"reason": "recount later"})
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert (body["status"], body["cancel_reason"]) == ("cancelled", "recount later")
    assert body["cancelled_at"] is not None
    assert on_hand_at(api, "A-01") == 10  # nothing adjusted
    again = api.post(f"/cycle-counts/{count['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["current_status"] == "cancelled"
    assert outbox_of(database_url, "wms.cycle_count.cancelled") == [
        {"count": count["id"], "status": "cancelled", "reason": "recount later"}
    ]
    # Its key is free for a new count.
    fresh = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"]})
    assert fresh.status_code == 201, fresh.text
    check_invariants(database_url)


def statuses_at(api: ApiClient, location: str) -> dict[str, tuple[int, int]]:
    items = api.get("/inventory", params={"location": location, "sku": "SKU-1"}).json()["items"]
    return {item["status"]: (item["on_hand"], item["allocated"]) for item in items}


def test_a_count_compares_every_unit_at_a_place_whatever_its_status(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    """A counter sees the bin: 3 of A-01's 10 units in quarantine are still there. Before,
    the line expected 7 and approval added 3 phantom available units."""
    api.patch("/settings", json={"recount_tolerance_pct": 100})
    quarantined = api.post(
        "/inventory/status-changes",
        json={"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "lot": None, "quantity": 3,
              "from_status": "available", "to_status": "quarantine", "reason": "damaged"},
    )  # fmt: skip
    assert quarantined.status_code == 201, quarantined.text
    count = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"]}).json()
    assert [(line["location"], line["sku"]) for line in count["lines"]] == [("A-01", "SKU-1")]
    assert api.post(f"/cycle-counts/{count['id']}/results", json=results(("A-01", 10))).is_success
    approved = api.post(f"/cycle-counts/{count['id']}/approve").json()
    assert [(line["expected"], line["variance"]) for line in approved["lines"]] == [(10, 0)]
    assert statuses_at(api, "A-01") == {"available": (7, 0), "quarantine": (3, 0)}

    # Short by 2 while every available unit is allocated: the quarantined units give.
    order = order_body("SO-1", {"sku": "SKU-1", "quantity": 12})  # A-01's 7 and A-02's 5
    assert api.post("/orders", json=order).status_code == 201
    assert api.post("/orders/SO-1/allocate").json()["status"] == "allocated"
    again = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"]}).json()
    assert api.post(f"/cycle-counts/{again['id']}/results", json=results(("A-01", 8))).is_success
    approve = api.post(f"/cycle-counts/{again['id']}/approve")
    assert approve.status_code == 200, approve.text
    assert statuses_at(api, "A-01") == {"available": (7, 7), "quarantine": (1, 0)}
    assert outbox_of(database_url, "wms.inventory.adjusted")[-1] == {
        "warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "lot": None,
        "status": "quarantine", "quantity": -2, "reason": "cycle_count",
        "cycle_count": again["id"],
    }  # fmt: skip
    check_invariants(database_url)
