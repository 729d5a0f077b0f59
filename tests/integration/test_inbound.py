"""Inbound over HTTP: ASNs, receiving by scan, putaway tasks, closing with a report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.integration.test_inventory import ledger_matches_balances
from wms.domain.roles import Role

WAREHOUSE = "SP1"
TIME_ZONE = "America/Sao_Paulo"
# code, type, zone, pick_sequence, capacity_units
LOCATIONS = [
    ("DOCK-1", "dock", None, 0, None),
    ("F-01", "storage", "F", 5, 30),
    ("A-01", "storage", "A", 10, 50),
    ("A-02", "storage", "A", 20, 50),
    ("S-01", "storage", None, 100, None),
]
PLAIN_BARCODE = "7890000000011"
CASE_BARCODE = "17890000000018"


def must(response: Any, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def build_inbound_world(api: ApiClient) -> None:
    """SP1 with a dock, zones F (fast movers, one lot per location) and A, a fallback
    location; RJ1 with its own dock; SKU-1 (CASE of 12, barcodes) and LOT-1 (velocity A,
    lot- and expiry-tracked)."""
    must(api.post("/warehouses", json={"code": WAREHOUSE, "name": "SP", "timezone": TIME_ZONE}))
    must(api.post("/warehouses", json={"code": "RJ1", "name": "RJ", "timezone": "UTC"}))
    must(api.post("/warehouses/RJ1/locations", json={"code": "DOCK-9", "type": "dock"}))
    for zone in ("F", "A"):
        must(api.post(f"/warehouses/{WAREHOUSE}/zones", json={"code": zone}))
    for code, kind, zone, sequence, capacity in LOCATIONS:
        body = {"code": code, "type": kind, "zone": zone, "pick_sequence": sequence,
                "capacity_units": capacity}  # fmt: skip
        must(api.post(f"/warehouses/{WAREHOUSE}/locations", json=body))
    must(
        api.post(
            "/products",
            json={
                "sku": "SKU-1",
                "description": "Widget",
                "barcodes": [PLAIN_BARCODE],
                "uoms": [{"code": "CASE", "factor": 12, "barcodes": [CASE_BARCODE]}],
            },
        )
    )
    must(
        api.post(
            "/products",
            json={
                "sku": "LOT-1",
                "description": "Yoghurt",
                "lot_tracked": True,
                "expiry_tracked": True,
                "velocity_class": "A",
            },
        )
    )
    must(
        api.put(
            f"/warehouses/{WAREHOUSE}/putaway-rules",
            json={
                "rules": [
                    {"velocity_class": "A", "zone": "F", "allow_mixed_lots": False},
                    {"zone": "A"},
                ]
            },
        ),
        200,
    )


@pytest.fixture
def world(api: ApiClient) -> None:
    build_inbound_world(api)


def new_asn(api: ApiClient, reference: str = "PO-77", **fields: Any) -> Any:
    body = {"reference": reference, "warehouse": WAREHOUSE, "supplier": "ACME",
            "expected_at": "2026-12-01T12:00:00Z",
            "lines": [{"sku": "SKU-1", "quantity": 100}, {"sku": "LOT-1", "quantity": 60}],
            **fields}  # fmt: skip
    return api.post("/asns", json=body)


def scan(**fields: Any) -> dict[str, Any]:
    return {"location": "DOCK-1", "sku": "SKU-1", "quantity": 10, "lot": None, "expiry": None,
            "condition": "good", **fields}  # fmt: skip


def stock(api: ApiClient, **filters: str) -> dict[tuple[str, str, str | None, str], int]:
    items = api.get("/inventory", params={"limit": 500, **filters}).json()["items"]
    return {(i["location"], i["sku"], i["lot"], i["status"]): i["on_hand"] for i in items}


def promised_within_capacity(api: ApiClient) -> None:
    """Open tasks never promise a location more than its capacity, counting its stock."""
    capacities = {code: capacity for code, _, _, _, capacity in LOCATIONS}
    used: dict[str, int] = {}
    for task in api.get("/putaway-tasks", params={"status": "open", "limit": 500}).json()["items"]:
        if task["suggested_location"]:
            used[task["suggested_location"]] = (
                used.get(task["suggested_location"], 0) + task["quantity"]
            )
    for (location, *_), on_hand in stock(api).items():
        used[location] = used.get(location, 0) + on_hand
    for location, units in used.items():
        capacity = capacities[location]
        assert capacity is None or units <= capacity, (location, units, capacity)


def outbox_types(database_url: str, tenant: TenantKeys) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT type FROM wms.outbox WHERE tenant_id = %s ORDER BY id", (tenant.tenant_id,)
        ).fetchall()
    return [row[0] for row in rows]


def test_an_asn_is_received_in_parts_put_away_and_closed_with_a_discrepancy_report(
    api: ApiClient, world: None, tenant: TenantKeys, database_url: str
) -> None:
    created = new_asn(api)
    asn = must(created)
    assert created.headers["location"] == f"/api/v1/asns/{asn['id']}"
    assert asn["status"] == "open"

    # First receipt: one scan of 3 cases by the case barcode (36 units).
    first = api.post(f"/asns/{asn['id']}/receipts",
                     json=scan(sku=None, barcode=CASE_BARCODE, quantity=3))  # fmt: skip
    receipt = must(first)
    assert first.headers["location"] == f"/api/v1/asns/{asn['id']}/receipts/{receipt['id']}"
    (line,) = receipt["lines"]
    assert (line["sku"], line["quantity"], line["uom"], line["uom_quantity"]) == (
        "SKU-1", 36, "CASE", 3,
    )  # fmt: skip
    (task_plain,) = receipt["putaway_tasks"]
    assert task_plain["suggested_location"] == "A-01"

    # Second receipt, several lines: two lots of LOT-1, more SKU-1, and damaged SKU-1.
    expiry = "2030-01-31"
    second = must(
        api.post(
            f"/asns/{asn['id']}/receipts",
            json={
                "lines": [
                    scan(sku="LOT-1", lot="L1", expiry=expiry, quantity=20),
                    scan(sku="LOT-1", lot="L2", expiry=expiry, quantity=20),
                    scan(quantity=30),
                    scan(quantity=4, condition="damaged"),
                ]
            },
        )
    )
    tasks = {(t["sku"], t["lot"], t["quantity"]): t for t in second["putaway_tasks"]}
    assert len(tasks) == 3  # damaged stock gets no putaway task
    assert second["lines"][3]["putaway_task"] is None
    # L1 goes to the fast zone; L2 may not join it there (one lot per location) and F-01
    # has no room left, so it falls back; 30 more SKU-1 no longer fit in A-01 (36 promised).
    assert tasks[("LOT-1", "L1", 20)]["suggested_location"] == "F-01"
    assert tasks[("LOT-1", "L2", 20)]["suggested_location"] == "A-02"
    assert tasks[("SKU-1", None, 30)]["suggested_location"] == "A-02"
    promised_within_capacity(api)

    listed = api.get("/putaway-tasks", params={"asn": asn["id"], "status": "open"}).json()
    assert [t["id"] for t in listed["items"]] == sorted(
        [task_plain["id"], *(t["id"] for t in tasks.values())]
    )
    assert {"id", "asn", "sku", "lot", "quantity", "from_location", "suggested_location",
            "status"} <= set(listed["items"][0])  # fmt: skip

    # Confirm one as suggested (empty body), one overridden to S-01.
    confirmed = must(api.post(f"/putaway-tasks/{task_plain['id']}/confirm"), 200)
    assert (confirmed["status"], confirmed["confirmed_location"]) == ("confirmed", "A-01")
    assert confirmed["dock_to_stock_seconds"] >= 0
    override = tasks[("LOT-1", "L2", 20)]
    moved = must(api.post(f"/putaway-tasks/{override['id']}/confirm", json={"location": "S-01"}),
                 200)  # fmt: skip
    assert moved["confirmed_location"] == "S-01"
    assert moved["suggested_location"] == "A-02"

    assert stock(api) == {
        ("A-01", "SKU-1", None, "available"): 36,
        ("S-01", "LOT-1", "L2", "available"): 20,
        ("DOCK-1", "LOT-1", "L1", "available"): 20,
        ("DOCK-1", "SKU-1", None, "available"): 30,
        ("DOCK-1", "SKU-1", None, "damaged"): 4,
    }
    ledger_matches_balances(database_url)
    kinds = [
        m["kind"] for m in api.get("/inventory/movements", params={"limit": 500}).json()["items"]
    ]
    assert kinds.count("receipt") == 5
    assert kinds.count("putaway") == 4  # two confirmations, each out of the dock and in
    audit = api.get("/audit", params={"entity": "asn", "id": str(asn["id"])}).json()["items"]
    assert [entry["action"] for entry in audit] == ["received", "received", "created"]
    task_audit = api.get("/audit", params={"entity": "putaway_task"}).json()["items"]
    assert len(task_audit) == 2

    closed = must(api.post(f"/asns/{asn['id']}/close"), 200)
    assert closed["status"] == "closed"
    report = {d["sku"]: d for d in closed["discrepancies"]}
    assert report["SKU-1"] == {"line": 1, "sku": "SKU-1", "lot": None, "expected": 100,
                               "received_good": 66, "received_damaged": 4, "short": 30,
                               "over": 0}  # fmt: skip
    assert report["LOT-1"] == {"line": 2, "sku": "LOT-1", "lot": None, "expected": 60,
                               "received_good": 40, "received_damaged": 0, "short": 20,
                               "over": 0}  # fmt: skip
    refused = api.post(f"/asns/{asn['id']}/receipts", json=scan(quantity=1))
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/invalid-state")
    assert refused.json()["current_status"] == "closed"

    types = outbox_types(database_url, tenant)
    for event in ("wms.asn.received", "wms.inventory.received", "wms.inventory.putaway",
                  "wms.asn.closed"):  # fmt: skip
        assert event in types


def test_creating_the_same_asn_again_returns_it_unchanged_and_other_content_is_409(
    api: ApiClient, world: None
) -> None:
    first = new_asn(api)
    assert first.status_code == 201
    again = new_asn(api)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    # The same content in other words (units converted, lines reordered) is the same ASN.
    same = new_asn(api, lines=[{"sku": "LOT-1", "quantity": 60},
                               {"sku": "SKU-1", "quantity": 100}])  # fmt: skip
    assert same.status_code == 200
    different = new_asn(api, lines=[{"sku": "SKU-1", "quantity": 99}])
    assert different.status_code == 409
    assert different.json()["id"] == first.json()["id"]
    listed = api.get("/asns", params={"reference": "PO-77"}).json()["items"]
    assert len(listed) == 1
    assert listed[0]["line_count"] == 2


def test_asns_list_by_status_and_page_with_a_cursor(api: ApiClient, world: None) -> None:
    ids = [must(new_asn(api, f"PO-{n}"))["id"] for n in range(3)]
    must(api.post(f"/asns/{ids[1]}/close"), 200)
    page = api.get("/asns", params={"limit": 2}).json()
    rest = api.get("/asns", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [a["id"] for a in page["items"] + rest["items"]] == ids
    assert rest["next_cursor"] is None
    assert [a["id"] for a in api.get("/asns", params={"status": "closed"}).json()["items"]] == [
        ids[1]
    ]


def test_another_tenant_cannot_see_or_receive_an_asn(
    api: ApiClient, world: None, make_tenant: Callable[[], TenantKeys]
) -> None:
    asn = must(new_asn(api))
    intruder = api.as_key(make_tenant().keys[Role.ADMIN])
    assert intruder.get(f"/asns/{asn['id']}").status_code == 404
    assert intruder.get("/asns").json()["items"] == []
    assert intruder.post(f"/asns/{asn['id']}/receipts", json=scan()).status_code == 404
    assert intruder.post(f"/asns/{asn['id']}/close").status_code == 404
    assert intruder.get("/putaway-tasks").json()["items"] == []
    # The reference is free in the other tenant.
    must(intruder.post("/warehouses", json={"code": WAREHOUSE, "name": "x", "timezone": "UTC"}))
    must(intruder.post("/products", json={"sku": "SKU-1", "description": "x"}))
    assert new_asn(intruder, lines=[{"sku": "SKU-1", "quantity": 1}]).status_code == 201
    assert api.get(f"/asns/{asn['id']}").json()["lines"][0]["expected"] == 100


def local_today() -> datetime:
    return datetime.now(ZoneInfo(TIME_ZONE))


@pytest.mark.parametrize(
    ("body", "status", "slug", "field"),
    [
        (scan(sku=None, barcode="0000000000"), 422, "unknown-reference", "/barcode"),
        (scan(sku="LOT-1", expiry="2030-01-01"), 422, "validation-error", "/lot"),
        (scan(sku="LOT-1", lot="L9"), 422, "validation-error", "/expiry"),
        (scan(location="DOCK-9"), 422, "unknown-reference", "/location"),
        (scan(location="A-01"), 422, "validation-error", "/location"),
        (scan(sku="NOPE"), 422, "unknown-reference", "/sku"),
        (scan(uom="PALLET"), 422, "validation-error", "/uom"),
        ({"lines": [scan(), scan(sku="LOT-1", lot="L1")]}, 422, "validation-error",
         "/lines/1/expiry"),
        (scan(quantity=101), 409, "over-receipt", None),
    ],
)  # fmt: skip
def test_a_bad_scan_is_refused_with_a_clear_error_and_changes_nothing(
    api: ApiClient,
    world: None,
    database_url: str,
    *,
    body: dict[str, Any],
    status: int,
    slug: str,
    field: str | None,
) -> None:
    asn = must(new_asn(api))
    response = api.post(f"/asns/{asn['id']}/receipts", json=body)
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["type"].endswith("/" + slug)
    if field is not None:
        assert [e["field"] for e in problem["errors"]] == [field]
    assert stock(api) == {}
    assert api.get("/putaway-tasks").json()["items"] == []
    assert api.get(f"/asns/{asn['id']}").json()["status"] == "open"
    ledger_matches_balances(database_url)


def test_an_expired_lot_is_refused_by_the_warehouse_calendar(api: ApiClient, world: None) -> None:
    asn = must(new_asn(api))
    yesterday = (local_today() - timedelta(days=1)).date().isoformat()
    today = local_today().date().isoformat()
    expired = api.post(f"/asns/{asn['id']}/receipts",
                       json=scan(sku="LOT-1", lot="OLD", expiry=yesterday))  # fmt: skip
    assert expired.status_code == 422
    assert expired.json()["errors"][0]["field"] == "/expiry"
    assert "past" in expired.json()["errors"][0]["message"]
    assert stock(api) == {}
    fresh = api.post(f"/asns/{asn['id']}/receipts",
                     json=scan(sku="LOT-1", lot="NEW", expiry=today))  # fmt: skip
    assert fresh.status_code == 201, fresh.text


def test_over_receipt_is_allowed_up_to_the_tolerance_then_409_with_the_numbers(
    api: ApiClient, world: None
) -> None:
    must(api.patch("/settings", json={"over_receipt_tolerance_pct": 10}), 200)
    asn = must(new_asn(api))
    must(api.post(f"/asns/{asn['id']}/receipts", json=scan(quantity=60)))
    must(api.post(f"/asns/{asn['id']}/receipts", json=scan(quantity=50)))  # 110: at the limit
    refused = api.post(f"/asns/{asn['id']}/receipts", json=scan(quantity=1))
    assert refused.status_code == 409
    body = refused.json()
    assert body["type"].endswith("/over-receipt")
    assert (body["expected"], body["received"], body["requested"], body["allowed"]) == (
        100, 110, 1, 110,
    )  # fmt: skip
    # A product's own tolerance overrides the tenant's.
    must(api.patch("/products/SKU-1", json={"over_receipt_tolerance_pct": 20}), 200)
    must(api.post(f"/asns/{asn['id']}/receipts", json=scan(quantity=10)))
    line = api.get(f"/asns/{asn['id']}").json()["discrepancies"][0]
    assert (line["received_good"], line["over"], line["short"]) == (120, 20, 0)


def test_a_product_not_on_the_asn_is_409_unless_allowed(api: ApiClient, world: None) -> None:
    asn = must(new_asn(api, lines=[{"sku": "SKU-1", "quantity": 10}]))
    body = scan(sku="LOT-1", lot="L1", expiry="2030-01-01", quantity=5)
    refused = api.post(f"/asns/{asn['id']}/receipts", json=body)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/not-on-asn")
    allowed = api.post(f"/asns/{asn['id']}/receipts", json={**body, "allow_unexpected": True})
    assert allowed.status_code == 201, allowed.text
    closed = must(api.post(f"/asns/{asn['id']}/close"), 200)
    assert closed["discrepancies"][1] == {"line": None, "sku": "LOT-1", "lot": "L1",
                                          "expected": 0, "received_good": 5,
                                          "received_damaged": 0, "short": 0, "over": 5}  # fmt: skip


def test_a_product_barcode_receives_base_units_and_a_known_lot_keeps_its_expiry(
    api: ApiClient, world: None
) -> None:
    asn = must(new_asn(api))
    plain = must(api.post(f"/asns/{asn['id']}/receipts",
                          json=scan(sku=None, barcode=PLAIN_BARCODE, quantity=7)))  # fmt: skip
    assert plain["lines"][0]["quantity"] == 7
    assert plain["lines"][0]["scanned"] == PLAIN_BARCODE
    must(api.post(f"/asns/{asn['id']}/receipts",
                  json=scan(sku="LOT-1", lot="L1", expiry="2030-01-01", quantity=1)))  # fmt: skip
    other_expiry = scan(sku="LOT-1", lot="L1", expiry="2030-02-01", quantity=1)
    conflict = api.post(f"/asns/{asn['id']}/receipts", json=other_expiry)
    assert conflict.status_code == 409
    assert conflict.json()["type"].endswith("/lot-expiry-conflict")


def test_an_asn_is_closed_once_and_a_timestamp_without_offset_is_422(
    api: ApiClient, world: None
) -> None:
    asn = must(new_asn(api))
    must(api.post(f"/asns/{asn['id']}/close"), 200)
    again = api.post(f"/asns/{asn['id']}/close")
    assert again.status_code == 409
    assert again.json()["current_status"] == "closed"
    naive = new_asn(api, "PO-2", expected_at="2026-12-01T12:00:00")
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "/expected_at"
    assert api.get("/asns/999999").status_code == 404
    assert datetime.fromisoformat(asn["created_at"]) <= datetime.now(UTC)


def test_dock_stock_owed_to_putaway_is_not_listed_as_available(api: ApiClient, world: None) -> None:
    # The listing said 40 available at the dock, while a move of 1 was refused with
    # available 0: the units are the open putaway task's.
    asn = must(new_asn(api))
    must(api.post(f"/asns/{asn['id']}/receipts", json=scan(quantity=40)))
    (item,) = api.get("/inventory", params={"location": "DOCK-1"}).json()["items"]
    assert (item["on_hand"], item["allocated"], item["available"]) == (40, 0, 0)
    move = {"warehouse": WAREHOUSE, "sku": "SKU-1", "from_location": "DOCK-1",
            "to_location": "A-01", "quantity": 1}  # fmt: skip
    refused = api.post("/inventory/moves", json=move)
    assert (refused.status_code, refused.json()["available"]) == (409, 0)
    summary = api.get("/reports/stock-summary", params={"warehouse": WAREHOUSE}).json()
    (summary,) = summary["items"]
    assert (summary["on_hand"], summary["available"]) == (40, 0)


def test_a_receipt_of_more_than_500_good_lines_lists_every_putaway_task(
    api: ApiClient, world: None
) -> None:
    # The receipt view read its tasks with the task listing's default page of 500.
    lines = 501
    asn = must(new_asn(api, lines=[{"sku": "SKU-1", "quantity": lines}]))
    receipt = must(api.post(f"/asns/{asn['id']}/receipts",
                            json={"lines": [scan(quantity=1) for _ in range(lines)]}))  # fmt: skip
    task_ids = sorted(line["putaway_task"] for line in receipt["lines"])
    assert len(set(task_ids)) == lines
    assert sorted(t["id"] for t in receipt["putaway_tasks"]) == task_ids
    again = must(api.get(f"/asns/{asn['id']}/receipts/{receipt['id']}"), 200)
    assert sorted(t["id"] for t in again["putaway_tasks"]) == task_ids


def test_a_condition_next_to_lines_is_refused_not_ignored(api: ApiClient, world: None) -> None:
    # condition has a default, so the "one scan's fields or lines" check never saw it:
    # the lines were stocked as good, available stock.
    asn = must(new_asn(api))
    body = {"condition": "damaged", "lines": [{"location": "DOCK-1", "sku": "SKU-1",
                                               "quantity": 5}]}  # fmt: skip
    refused = api.post(f"/asns/{asn['id']}/receipts", json=body)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["/condition"]
    assert stock(api) == {}


def test_quantities_past_what_a_balance_or_an_asn_holds_are_refused(
    api: ApiClient, world: None, database_url: str
) -> None:
    # 10^9 units of a unit of 2^31-1: five such scans came to more than bigint holds,
    # and the ASN's received totals then failed to read (500 on GET, receipts, close).
    must(api.post("/products", json={"sku": "BIG-1", "description": "Bulk",
                                      "uoms": [{"code": "PAL", "factor": 2**31 - 1}]}))  # fmt: skip
    asn = must(new_asn(api))
    big = {"location": "DOCK-1", "sku": "BIG-1", "uom": "PAL", "quantity": 10**9}
    body = {"lines": [scan(quantity=1), big], "allow_unexpected": True}
    refused = api.post(f"/asns/{asn['id']}/receipts", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "/lines/1/uom"
    assert "at most 1000000000000" in refused.json()["errors"][0]["message"]
    assert stock(api) == {}
    # A balance at bigint's limit (10^7 receipts of 10^12 units): more is a 409, not a 500.
    must(api.post(f"/asns/{asn['id']}/receipts", json=scan(quantity=1)))
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE wms.inventory_balances SET on_hand = 9223372036854775807")
    full = api.post(f"/asns/{asn['id']}/receipts", json=scan(quantity=1))
    assert full.status_code == 409, full.text
    assert "largest the database holds" in full.json()["detail"]
    assert must(api.get(f"/asns/{asn['id']}"), 200)["lines"][0]["received_good"] == 1
    must(api.post(f"/asns/{asn['id']}/close"), 200)
