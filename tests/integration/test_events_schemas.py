"""Events produced by real commands match the JSON Schemas of docs/events.md."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ApiClient, TenantKeys
from tests.event_check import check_outbox
from tests.integration import test_cycle_counts, test_fulfilment, test_inbound, test_putaway_cancel
from tests.integration.stock_world import build_world
from wms.domain.roles import Role
from wms.events.cloudevents import dataschema
from wms.events.schemas import registry, render_docs

ROOT = Path(__file__).resolve().parents[2]


def test_docs_events_md_is_rendered_from_the_registry() -> None:
    assert (ROOT / "docs" / "events.md").read_text() == render_docs(), (
        "run: .venv/bin/python -m wms.events.schemas > docs/events.md"
    )


@pytest.mark.parametrize("event_type", sorted(registry()))
def test_every_registered_schema_is_a_valid_json_schema(event_type: str) -> None:
    jsonschema.Draft202012Validator.check_schema(registry()[event_type])


def order(number: str, sku: str, quantity: int) -> dict[str, object]:
    """A one-line order body."""
    return {"number": number, "warehouse": "SP1", "carrier": "C",
            "ship_to": {"name": "A", "line1": "R", "city": "SP", "postal_code": "1",
                        "country": "BR"},
            "lines": [{"sku": sku, "quantity": quantity}]}  # fmt: skip


def drive_commands(api: ApiClient) -> None:
    """Commands touching every aggregate the services emit events for."""
    calls = [
        ("POST", "/warehouses", {"code": "SP1", "name": "S", "timezone": "UTC"}),
        ("PATCH", "/warehouses/SP1", {"name": "Renamed"}),
        ("PATCH", "/settings", {"over_receipt_tolerance_pct": 10}),
        ("POST", "/warehouses/SP1/zones", {"code": "A"}),
        ("POST", "/warehouses/SP1/locations", {"code": "DOCK-1", "type": "dock"}),
        ("POST", "/warehouses/SP1/locations", {"code": "A-01", "type": "storage", "zone": "A"}),
        ("PATCH", "/warehouses/SP1/locations/A-01", {"pick_sequence": 5}),
        ("PUT", "/warehouses/SP1/putaway-rules", {"rules": [{"zone": "A"}]}),
        ("POST", "/products", {"sku": "SKU-1", "description": "W", "barcodes": ["7891234567895"]}),
        ("PATCH", "/products/SKU-1", {"description": "Widget"}),
        ("POST", "/products:import", {"products": [{"sku": "SKU-2", "description": "Bolt"}]}),
        ("POST", "/warehouses/SP1/locations:import",
         {"locations": [{"code": "B-01", "type": "storage", "zone": "A"}]}),
        (
            "POST",
            "/inventory/adjustments",
            {"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "quantity": 10,
             "reason": "found"},
        ),
        (
            "POST",
            "/asns",
            {"reference": "PO-1", "warehouse": "SP1", "supplier": "ACME",
             "expected_at": "2026-12-01T12:00:00Z", "lines": [{"sku": "SKU-1", "quantity": 5}]},
        ),
        ("POST", "/inventory/moves",
         {"warehouse": "SP1", "sku": "SKU-1", "lot": None, "from_location": "A-01",
          "to_location": "B-01", "quantity": 1}),
        ("POST", "/inventory/status-changes",
         {"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "lot": None, "quantity": 1,
          "from_status": "available", "to_status": "quarantine", "reason": "damaged"}),
        # Allocated (2 of 8), partially allocated (the other 6 of 50), backordered (none).
        *[call for number, sku, quantity in (("SO-1", "SKU-1", 2), ("SO-2", "SKU-1", 50),
                                              ("SO-3", "SKU-2", 1))
          for call in (("POST", "/orders", order(number, sku, quantity)),
                       ("POST", f"/orders/{number}/allocate", None))],
        ("POST", "/cycle-counts", {"warehouse": "SP1", "locations": ["A-01"]}),
    ]  # fmt: skip
    for method, path, body in calls:
        response = api.request(method, path, json=body)
        assert response.status_code < 300, (path, response.text)


def test_events_of_real_commands_match_their_schemas(api: ApiClient) -> None:
    drive_commands(api)
    wanted = {"wms.warehouse.created", "wms.product.created", "wms.order.received"}
    # The feed shows an event once every older transaction has ended, the server's over:
    # on a server shared with other test workers, one of theirs may hold it a moment.
    deadline = time.monotonic() + 30
    while True:
        items = api.get("/events", params={"limit": 500}).json()["items"]
        types = {item["type"] for item in items}
        if wanted <= types or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert wanted <= types
    for item in items:
        assert item["type"] in registry(), f"{item['type']} is not in the schema registry"
        assert item["dataschema"] == dataschema(item["type"])
        jsonschema.validate(item["data"], registry()[item["type"]])


def test_every_registered_type_is_emitted_by_real_commands_and_matches_its_schema(
    test_client: TestClient, make_tenant: Callable[[], TenantKeys], database_url: str
) -> None:
    # The stories of other test files, each as its own tenant; then every registered
    # type must have been seen: a schema that no real event exercises proves nothing.
    def as_admin(tenant: TenantKeys) -> ApiClient:
        return ApiClient(test_client, tenant.keys[Role.ADMIN])

    drive_commands(as_admin(make_tenant()))
    for story in (
        test_fulfilment.test_stock_flows_from_allocation_through_a_batch_wave_to_a_dispatched_manifest,
        test_fulfilment.test_cancelling_a_picked_order_puts_its_stock_back_from_staging,
        test_fulfilment.test_a_pick_face_below_its_minimum_is_replenished_from_reserve,
        test_fulfilment.test_a_replenishment_task_whose_reserve_was_sold_is_cancelled_and_replaced,
        test_fulfilment.test_a_shipment_is_cancelled_before_dispatch_and_frees_its_orders_and_tracking_number,
    ):
        tenant = make_tenant()
        api = as_admin(tenant)
        given = {"api": api, "world": build_world(api, tenant, database_url), "tenant": tenant,
                 "database_url": database_url}  # fmt: skip
        story(**{name: given[name] for name in inspect.signature(story).parameters})
    tenant = make_tenant()
    api = as_admin(tenant)
    test_inbound.build_inbound_world(api)
    test_inbound.test_an_asn_is_received_in_parts_put_away_and_closed_with_a_discrepancy_report(
        api=api, world=None, tenant=tenant, database_url=database_url
    )
    tenant = make_tenant()
    api = as_admin(tenant)
    test_putaway_cancel.test_dock_stock_owed_to_a_putaway_task_is_taken_only_by_it_until_the_task_is_reduced(
        api=api, tenant=tenant, database_url=database_url
    )
    tenant = make_tenant()
    api = as_admin(tenant)
    test_cycle_counts.test_a_count_is_blind_for_counters_recounts_big_variances_and_approval_adjusts(
        api=api, tenant=tenant, world=test_cycle_counts.stocked_world(api, tenant, database_url)
    )
    tenant = make_tenant()
    api = as_admin(tenant)
    test_cycle_counts.test_a_count_short_of_allocated_stock_says_so_and_can_be_cancelled(
        api=api, tenant=tenant, database_url=database_url,
        world=test_cycle_counts.stocked_world(api, tenant, database_url),
    )  # fmt: skip
    check_outbox(database_url)
    with psycopg.connect(database_url) as conn:
        seen = {row[0] for row in conn.execute("SELECT DISTINCT type FROM wms.outbox")}
    missing = sorted(set(registry()) - seen)
    assert missing == [], missing


@pytest.mark.parametrize(
    ("event_type", "data", "why"),
    [
        ("wms.zone.created", {"code": "A", "created_at": "t", "name": None, "warehouse": "W",
                              "secret": 1}, "secret"),
        ("wms.zone.created", {"code": "A", "created_at": "t", "name": None}, "warehouse"),
        ("wms.zone.renamed", {}, "not in schemas.json"),
    ],
)  # fmt: skip
def test_the_suite_wide_outbox_check_catches_bad_events(
    database_url: str, tenant: TenantKeys, event_type: str, data: dict[str, object], why: str
) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO wms.outbox (tenant_id, event_id, type, source, subject, aggregate, "
            "aggregate_id, data) VALUES (%s, gen_random_uuid(), %s, '/t', 'zone/A', 'zone', "
            "'A', %s)",
            (tenant.tenant_id, event_type, psycopg.types.json.Jsonb(data)),
        )
    with pytest.raises(AssertionError, match=why):
        check_outbox(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM wms.outbox WHERE type = %s", (event_type,))
