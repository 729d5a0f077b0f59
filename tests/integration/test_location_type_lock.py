"""A location's type changes only while it holds no stock and no open task.

Before: the dock holding received stock could be made a storage location, and an order
then allocated the stock its putaway task still meant to move.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from tests.conftest import ApiClient, until_sessions_wait_for_locks
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


def test_a_receipt_in_flight_when_its_dock_stops_being_one_receives_nothing(
    api: ApiClient, database_url: str
) -> None:
    build_inbound_world(api)
    asn = must(new_asn(api))
    assert must(api.get(f"{WH}/locations/DOCK-1"), 200)["type"] == "dock"  # cached as a dock
    # A type change, locked and not yet committed, as PATCH holds it: the receipt reads
    # DOCK-1 as a dock, then must wait for that lock and read the type again.
    with psycopg.connect(database_url) as change:
        change.execute("UPDATE wms.locations SET type = 'storage' WHERE code = 'DOCK-1'")
        answers: list[Any] = []
        receiving = threading.Thread(
            target=lambda: answers.append(
                api.post(f"/asns/{asn['id']}/receipts", json={"lines": [scan()]})
            )
        )
        receiving.start()
        until_sessions_wait_for_locks(database_url, 1, "the receipt")
        change.commit()
    receiving.join()
    assert answers[0].status_code == 409, answers[0].text  # before: 201, tasks from storage
    assert "stopped being a dock" in answers[0].json()["detail"]
    assert must(api.get("/putaway-tasks"), 200)["items"] == []
