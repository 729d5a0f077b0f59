"""SKUs and order numbers may hold ``/``: addressed with ``%2F``, they reach their object."""

from __future__ import annotations

from tests.conftest import ApiClient, TenantKeys
from tests.integration.stock_world import build_world
from tests.integration.test_orders import order_body, stock


def test_a_sku_with_a_slash_is_created_read_and_changed_through_its_encoded_path(
    api: ApiClient,
) -> None:
    created = api.post("/products", json={"sku": "CABLE-1/2", "description": "Half cable"})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/products/CABLE-1%2F2"
    assert api.get(created.headers["location"]).json()["sku"] == "CABLE-1/2"
    changed = api.patch("/products/CABLE-1%2F2", json={"description": "Cable, half"})
    assert changed.status_code == 200, changed.text
    assert api.get("/products/cable-1%2f2").status_code == 404  # SKUs are case-sensitive
    assert api.get("/products/CABLE-1%2f2").json()["description"] == "Cable, half"
    # An unencoded slash separates segments: no route, never the product.
    unrouted = api.get("/products/CABLE-1/2")
    assert unrouted.status_code == 404
    assert unrouted.headers["content-type"] == "application/problem+json"


def test_an_order_numbered_like_an_action_is_told_apart_from_the_action(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    build_world(api, tenant, database_url)
    stock(api, "A-01", 10)
    for number in ("SO", "SO/cancel", "SO/2026/7"):
        created = api.post("/orders", json=order_body(number))
        assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/orders/SO%2F2026%2F7"
    assert api.get("/orders/SO%2F2026%2F7").json()["number"] == "SO/2026/7"

    cancelled = api.post("/orders/SO%2Fcancel/cancel")  # the order "SO/cancel"
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["number"] == "SO/cancel"
    assert api.get("/orders/SO").json()["status"] != "cancelled"
    assert api.post("/orders/SO%2Fcancel").status_code == 405  # GET only at that path

    allocated = api.post("/orders/SO%2F2026%2F7/allocate")
    assert allocated.status_code == 200, allocated.text
    assert allocated.json()["number"] == "SO/2026/7"
    packages = api.get("/orders/SO%2F2026%2F7/packages")
    assert packages.status_code == 200, packages.text
    assert packages.json() == {"order": "SO/2026/7", "status": "allocated", "packages": []}
