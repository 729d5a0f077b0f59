"""A location's type changes only while it holds no stock and no open task.

Before: the dock holding received stock could be made a storage location, and an order
then allocated the stock its putaway task still meant to move.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import ApiClient
from tests.integration.test_inbound import build_inbound_world, must, new_asn, scan
from tests.integration.test_putaway import receive

WH = "/warehouses/SP1"


def received_dock(api: ApiClient) -> dict[str, Any]:
    """10 SKU-1 received at DOCK-1; its open putaway task."""
    build_inbound_world(api)
    asn = must(new_asn(api))
    (task,) = receive(api, asn["id"], scan())
    return task


def test_the_type_of_a_location_with_stock_or_open_tasks_does_not_change(api: ApiClient) -> None:
    task = received_dock(api)
    destination = task["suggested_location"]
    assert destination == "A-01"

    refused = api.patch(f"{WH}/locations/DOCK-1", json={"type": "storage"})
    assert refused.status_code == 409, refused.text
    assert "DOCK-1 holds stock or open tasks" in refused.json()["detail"]
    # The destination holds nothing yet, but the task means to put stock there.
    assert api.patch(f"{WH}/locations/{destination}", json={"type": "dock"}).status_code == 409
    assert must(api.get(f"{WH}/locations/DOCK-1"), 200)["type"] == "dock"
    # Other fields, and the same type again, still change.
    assert api.patch(f"{WH}/locations/DOCK-1", json={"pick_sequence": 3}).status_code == 200
    assert api.patch(f"{WH}/locations/DOCK-1", json={"type": "dock"}).status_code == 200
    assert api.patch(f"{WH}/locations/DOCK-1", json={"active": False}).status_code == 200

    rows = [
        {"code": "S-01", "type": "pick"},  # empty and without tasks: may change
        {"code": "DOCK-1", "type": "storage"},
    ]
    imported = api.post(f"{WH}/locations:import", json={"locations": rows})
    assert imported.status_code == 422, imported.text
    assert imported.json()["row_errors"] == [
        {
            "line": 2,
            "field": "/locations/1/type",
            "message": "location DOCK-1 holds stock or open tasks: its type changes only while "
            "it holds none (move the stock out, finish the tasks)",
        }
    ]
    assert must(api.get(f"{WH}/locations/S-01"), 200)["type"] == "storage"  # nothing imported

    must(api.post(f"/putaway-tasks/{task['id']}/confirm"), 200)
    changed = api.patch(f"{WH}/locations/DOCK-1", json={"type": "storage"})
    assert changed.status_code == 200, changed.text
    # A-01 now holds the stock: still locked.
    assert api.patch(f"{WH}/locations/{destination}", json={"type": "dock"}).status_code == 409
