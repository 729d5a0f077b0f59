"""The seeded tenant the contract fuzzer works in, and the explicit examples built from it.

Random data rarely names an object that exists (a warehouse code, an open pick task), so
operations on one object, and state actions deep in a flow (pack, ship, dispatch), would
only ever answer 404 or 409. The seed makes one object per such operation, in the state
the operation needs, and ``examples`` hands each operation its own as an explicit
example: the fuzzer's examples phase then reaches 2xx, while its other phases still send
random and wrong values everywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

WAREHOUSE = "SP1"
SHIP_TO = {"name": "Ana", "line1": "Rua A 1", "city": "São Paulo", "postal_code": "01000-000",
           "country": "BR"}  # fmt: skip
LOCATIONS = [
    {"code": "DOCK-1", "type": "dock"},
    {"code": "A-01-01", "type": "storage", "zone": "A", "pick_sequence": 10},
    {"code": "A-01-02", "type": "storage", "zone": "A", "pick_sequence": 20},
    {"code": "A-02-01", "type": "storage", "zone": "A", "pick_sequence": 30},
    {"code": "P-01", "type": "pick", "zone": "P", "pick_sequence": 5},
    {"code": "P-02", "type": "pick", "zone": "P", "pick_sequence": 6},
]
PRODUCTS = [
    {"sku": "SKU-1", "description": "Widget", "barcodes": ["7891234567895"],
     "uoms": [{"code": "CASE", "factor": 12, "barcodes": ["17891234567892"]}]},
    {"sku": "SKU-2", "description": "Gadget", "barcodes": ["7891234567896"]},
    {"sku": "SKU-3", "description": "Gizmo", "barcodes": ["7891234567897"], "category": "bulk"},
]  # fmt: skip
STOCK = [("A-01-01", "SKU-1", 1000), ("A-01-02", "SKU-2", 500), ("A-02-01", "SKU-3", 300),
         ("P-01", "SKU-1", 100)]  # fmt: skip
# One order per operation that needs an order in a given state.
PICKED_ORDERS = ("SO-PACK", "SO-SHIP", "SO-DISPATCH", "SO-UNSHIP")
OPEN_PICK_ORDERS = ("SO-PICK-ONE", "SO-PICK-BATCH")


class Seeder:
    """Talks to the server as the tenant's admin; every call must succeed."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """Send one request; fail loudly unless it answers 2xx."""
        response = self.http.request(method, path, json=body, params=params or None)
        assert response.is_success, f"seed {method} {path}: {response.status_code} {response.text}"
        return response.json()


def order(number: str, sku: str = "SKU-1", quantity: int = 2) -> dict[str, Any]:
    """An order body of SP1 (the shape of API.md's example)."""
    return {"number": number, "warehouse": WAREHOUSE, "carrier": "CORREIOS", "priority": 5,
            "ship_to": SHIP_TO, "lines": [{"sku": sku, "quantity": quantity}]}  # fmt: skip


def seed(base_url: str, key: str) -> dict[str, dict[str, Any]]:
    """Build the world; return ``{"METHOD /path": {"path"|"query"|"body": example}}``."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base_url + "/api/v1", headers=headers, timeout=30) as http:
        return _seed(Seeder(http))


def _seed(api: Seeder) -> dict[str, dict[str, Any]]:
    api.call("POST", "/warehouses", {"code": WAREHOUSE, "name": "São Paulo 1",
                                     "timezone": "America/Sao_Paulo"})  # fmt: skip
    api.call("POST", "/warehouses", {"code": "WH-PATCH", "name": "Patched", "timezone": "UTC"})
    for zone in ("A", "P"):
        api.call("POST", f"/warehouses/{WAREHOUSE}/zones", {"code": zone, "name": f"Zone {zone}"})
    for location in LOCATIONS:
        api.call("POST", f"/warehouses/{WAREHOUSE}/locations", location)
    for product in PRODUCTS:
        api.call("POST", "/products", product)
    for location, sku, quantity in STOCK:
        api.call("POST", "/inventory/adjustments", {"warehouse": WAREHOUSE, "location": location,
                 "sku": sku, "quantity": quantity, "reason": "initial_load"})  # fmt: skip
    movement = api.call("GET", "/inventory/movements", limit=1)["items"][0]["id"]
    # Orders are allocated on request, so each example finds its order as the seed left it.
    api.call("PATCH", "/settings", {"allocate_on_create": False})

    # Inbound: an ASN to receive against, one to close, and receipts with a putaway task for
    # the single and the batch confirmation.
    asn_body = {"warehouse": WAREHOUSE, "supplier": "ACME",
                "lines": [{"sku": "SKU-2", "quantity": 1000}]}  # fmt: skip
    receiving = api.call("POST", "/asns", {"reference": "PO-RECEIVE", **asn_body})["id"]
    closing = api.call("POST", "/asns", {"reference": "PO-CLOSE", **asn_body})["id"]
    receipt = api.call("POST", f"/asns/{receiving}/receipts",
                       {"location": "DOCK-1", "sku": "SKU-2", "quantity": 10})  # fmt: skip
    putaway_task = receipt["putaway_tasks"][0]["id"]
    batch_receipt = api.call("POST", f"/asns/{receiving}/receipts",
                             {"location": "DOCK-1", "sku": "SKU-2", "quantity": 10})  # fmt: skip
    putaway_batch_task = batch_receipt["putaway_tasks"][0]["id"]

    # Fulfilment: a discrete wave of six orders; four picked, three packed, one shipped.
    for number in (*PICKED_ORDERS, *OPEN_PICK_ORDERS, "SO-WAVE", "SO-RELEASE", "SO-ALLOCATE",
                   "SO-CANCEL", "SO-GET"):  # fmt: skip
        api.call("POST", "/orders", order(number))
    for number in (*PICKED_ORDERS, *OPEN_PICK_ORDERS, "SO-WAVE", "SO-RELEASE"):
        api.call("POST", f"/orders/{number}/allocate")
    in_wave = [*PICKED_ORDERS, *OPEN_PICK_ORDERS]
    wave = api.call("POST", "/waves", {"warehouse": WAREHOUSE, "orders": in_wave})["id"]
    api.call("POST", f"/waves/{wave}/release")
    tasks = {t["orders"][0]["order"]: t for t in api.call("GET", "/pick-tasks", wave=wave)["items"]}

    def scan(number: str) -> dict[str, Any]:
        task = tasks[number]
        return {"location": task["location"], "sku": task["sku"], "lot": task["lot"],
                "quantity": task["quantity"]}  # fmt: skip

    for number in PICKED_ORDERS:
        api.call("POST", f"/pick-tasks/{tasks[number]['id']}/confirm", scan(number))
    contents = [{"sku": "SKU-1", "lot": None, "quantity": 2}]
    packages = {"packages": [{"carton": "BOX-M", "weight_kg": 1.2, "contents": contents}]}
    for number in ("SO-SHIP", "SO-DISPATCH", "SO-UNSHIP"):
        api.call("POST", f"/orders/{number}/packages", packages)
    shipment = api.call("POST", "/shipments", {"orders": ["SO-DISPATCH"], "carrier": "CORREIOS",
                                               "tracking_number": "BR000000001"})["id"]  # fmt: skip
    unshipment = api.call("POST", "/shipments", {
        "orders": ["SO-UNSHIP"], "carrier": "CORREIOS", "tracking_number": "BR000000002",
    })["id"]  # fmt: skip
    open_wave = api.call("POST", "/waves", {"warehouse": WAREHOUSE, "orders": ["SO-RELEASE"]})["id"]

    # Counts: one to record results against, one counted and waiting for approval.
    counting = api.call("POST", "/cycle-counts",
                        {"warehouse": WAREHOUSE, "locations": ["A-01-02"]})["id"]  # fmt: skip
    approving = api.call("POST", "/cycle-counts",
                         {"warehouse": WAREHOUSE, "locations": ["A-02-01"]})["id"]  # fmt: skip
    api.call("POST", f"/cycle-counts/{approving}/results",
             {"results": [{"location": "A-02-01", "sku": "SKU-3", "counted": 300}]})  # fmt: skip
    # One to cancel, its own: a cancel of the count above would leave results no 2xx.
    cancelling = api.call("POST", "/cycle-counts",
                          {"warehouse": WAREHOUSE, "locations": ["P-01"]})["id"]  # fmt: skip

    # Replenishment: SKU-2 has no stock at pick face P-02, so a level opens a task at once.
    api.call("PUT", f"/warehouses/{WAREHOUSE}/locations/P-02/replenishment",
             {"sku": "SKU-2", "min": 10, "max": 40})  # fmt: skip
    replenishment = api.call("GET", "/replenishment-tasks", status="open")["items"][0]["id"]
    api.call("PUT", f"/warehouses/{WAREHOUSE}/locations/P-02/replenishment",
             {"sku": "SKU-3", "min": 10, "max": 40})  # fmt: skip
    to_cancel = next(t["id"] for t in api.call("GET", "/replenishment-tasks", status="open")[
        "items"] if t["id"] != replenishment)  # fmt: skip
    today = datetime.now(ZoneInfo("America/Sao_Paulo")).date().isoformat()

    wh = {"wh": WAREHOUSE}
    return {
        "GET /api/v1/warehouses/{code}": {"path": {"code": WAREHOUSE}},
        "PATCH /api/v1/warehouses/{code}": {"path": {"code": "WH-PATCH"}},
        "PUT /api/v1/warehouses/{code}/carrier-cutoffs": {"path": {"code": WAREHOUSE}},
        "POST /api/v1/warehouses/{wh}/zones": {"path": wh},
        "GET /api/v1/warehouses/{wh}/zones": {"path": wh},
        "GET /api/v1/warehouses/{wh}/zones/{code}": {"path": {**wh, "code": "A"}},
        "POST /api/v1/warehouses/{wh}/locations": {
            "path": wh, "body": {"code": "A-09-01", "type": "storage", "zone": "A"}},
        "GET /api/v1/warehouses/{wh}/locations": {"path": wh},
        "GET /api/v1/warehouses/{wh}/locations/{code}": {"path": {**wh, "code": "A-01-01"}},
        "PATCH /api/v1/warehouses/{wh}/locations/{code}": {"path": {**wh, "code": "A-01-01"}},
        "POST /api/v1/warehouses/{wh}/locations:import": {
            "path": wh, "body": {"locations": [{"code": "IMP-01", "type": "storage"}]}},
        "GET /api/v1/warehouses/{wh}/putaway-rules": {"path": wh},
        "PUT /api/v1/warehouses/{wh}/putaway-rules": {"path": wh},
        "PUT /api/v1/warehouses/{wh}/locations/{code}/replenishment": {
            "path": {**wh, "code": "P-01"}},
        "POST /api/v1/products": {"body": {"sku": "SKU-NEW", "description": "New widget"}},
        "GET /api/v1/products/{sku}": {"path": {"sku": "SKU-1"}},
        "PATCH /api/v1/products/{sku}": {"path": {"sku": "SKU-3"}},
        "POST /api/v1/products:import": {
            "body": {"products": [{"sku": "SKU-IMP", "description": "Imported"}]}},
        "GET /api/v1/inventory/movements/{id}": {"path": {"id": movement}},
        "GET /api/v1/asns/{id}": {"path": {"id": receiving}},
        "POST /api/v1/asns/{id}/receipts": {
            "path": {"id": receiving},
            "body": {"location": "DOCK-1", "sku": "SKU-2", "quantity": 5}},
        "GET /api/v1/asns/{id}/receipts/{receipt_id}": {
            "path": {"id": receiving, "receipt_id": receipt["id"]}},
        "POST /api/v1/asns/{id}/close": {"path": {"id": closing}},
        "GET /api/v1/putaway-tasks/{id}": {"path": {"id": putaway_task}},
        "POST /api/v1/putaway-tasks/{id}/confirm": {"path": {"id": putaway_task}, "body": {}},
        "POST /api/v1/putaway-tasks:confirm": {
            "body": {"confirmations": [{"task": putaway_batch_task}]}},
        "GET /api/v1/orders/{number}": {"path": {"number": "SO-GET"}},
        "POST /api/v1/orders/{number}/allocate": {"path": {"number": "SO-ALLOCATE"}},
        "POST /api/v1/orders/{number}/cancel": {"path": {"number": "SO-CANCEL"}},
        "POST /api/v1/orders/{number}/packages": {"path": {"number": "SO-PACK"},
                                                  "body": packages},
        "GET /api/v1/orders/{number}/packages": {"path": {"number": "SO-SHIP"}},
        "POST /api/v1/waves": {"body": {"warehouse": WAREHOUSE, "orders": ["SO-WAVE"]}},
        "GET /api/v1/waves/{id}": {"path": {"id": wave}},
        "POST /api/v1/waves/{id}/release": {"path": {"id": open_wave}},
        "GET /api/v1/pick-tasks/{id}": {"path": {"id": tasks["SO-PICK-ONE"]["id"]}},
        "POST /api/v1/pick-tasks/{id}/confirm": {
            "path": {"id": tasks["SO-PICK-ONE"]["id"]}, "body": scan("SO-PICK-ONE")},
        "POST /api/v1/pick-tasks:confirm": {"body": {"confirmations": [
            {"task": tasks["SO-PICK-BATCH"]["id"], **scan("SO-PICK-BATCH")}]}},
        "POST /api/v1/shipments": {"body": {"orders": ["SO-SHIP"], "carrier": "CORREIOS",
                                            "tracking_number": "BR123456789"}},
        "GET /api/v1/shipments/{id}": {"path": {"id": shipment}},
        "POST /api/v1/shipments/{id}/dispatch": {"path": {"id": shipment}},
        "POST /api/v1/shipments/{id}/cancel": {"path": {"id": unshipment}},
        "GET /api/v1/manifests": {"query": {"warehouse": WAREHOUSE, "date": today}},
        "GET /api/v1/cycle-counts/{id}": {"path": {"id": counting}},
        "POST /api/v1/cycle-counts/{id}/results": {
            "path": {"id": counting},
            "body": {"results": [{"location": "A-01-02", "sku": "SKU-2", "counted": 500}]}},
        "POST /api/v1/cycle-counts/{id}/approve": {"path": {"id": approving}},
        "POST /api/v1/cycle-counts/{id}/cancel": {"path": {"id": cancelling}},
        "POST /api/v1/replenishment-tasks/{id}/cancel": {"path": {"id": to_cancel}},
        "GET /api/v1/replenishment-tasks/{id}": {"path": {"id": replenishment}},
        "POST /api/v1/replenishment-tasks/{id}/confirm": {"path": {"id": replenishment}},
        "GET /api/v1/reports/kpis": {"query": {"warehouse": WAREHOUSE}},
        "GET /api/v1/reports/stock-summary": {"query": {"warehouse": WAREHOUSE}},
        "POST /api/v1/warehouses": {"body": {"code": "SP2", "name": "São Paulo 2",
                                             "timezone": "America/Sao_Paulo"}},
    }  # fmt: skip
