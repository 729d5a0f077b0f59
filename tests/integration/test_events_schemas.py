"""Events produced by real commands match the JSON Schemas of docs/events.md."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from tests.conftest import ApiClient
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
        (
            "POST",
            "/orders",
            {"number": "SO-1", "warehouse": "SP1", "carrier": "C",
             "ship_to": {"name": "A", "line1": "R", "city": "SP", "postal_code": "1",
                         "country": "BR"},
             "lines": [{"sku": "SKU-1", "quantity": 2}]},
        ),
        ("POST", "/cycle-counts", {"warehouse": "SP1", "locations": ["A-01"]}),
    ]  # fmt: skip
    for method, path, body in calls:
        response = api.request(method, path, json=body)
        assert response.status_code < 300, (path, response.text)


def test_events_of_real_commands_match_their_schemas(api: ApiClient) -> None:
    drive_commands(api)
    items = api.get("/events", params={"limit": 1000}).json()["items"]
    types = {item["type"] for item in items}
    assert {"wms.warehouse.created", "wms.product.created", "wms.order.received"} <= types
    for item in items:
        assert item["type"] in registry(), f"{item['type']} is not in the schema registry"
        assert item["dataschema"] == dataschema(item["type"])
        jsonschema.validate(item["data"], registry()[item["type"]])
