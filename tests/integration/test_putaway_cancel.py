"""Dock stock an open putaway task owes is taken only by that task, until it is reduced.

Before V15 a move, an adjustment or a status change could take those units: the task
then could not be confirmed and kept its destination's room promised. A task can now
be cancelled or reduced, which frees its units at the dock.
"""

from __future__ import annotations

from typing import Any

import psycopg

from tests.conftest import ApiClient, TenantKeys
from tests.integration.test_inbound import (
    build_inbound_world,
    must,
    new_asn,
    promised_within_capacity,
    scan,
    stock,
)
from tests.integration.test_inventory import ledger_matches_balances
from tests.integration.test_no_oversell import in_parallel
from tests.integration.test_putaway import receive
from wms.domain.roles import Role

DOCK = ("DOCK-1", "SKU-1", None, "available")


TAKES = ("move", "adjustment", "status change")


def take_from_dock(api: ApiClient, how: str, quantity: int) -> Any:
    """Take ``quantity`` off DOCK-1 by one of the ways stock leaves without a task."""
    if how == "move":
        return api.post("/inventory/moves", json={
            "warehouse": "SP1", "sku": "SKU-1", "lot": None, "from_location": "DOCK-1",
            "to_location": "S-01", "quantity": quantity})  # fmt: skip
    if how == "adjustment":
        return api.post("/inventory/adjustments", json={
            "warehouse": "SP1", "location": "DOCK-1", "sku": "SKU-1", "quantity": -quantity,
            "reason": "lost"})  # fmt: skip
    return api.post("/inventory/status-changes", json={
        "warehouse": "SP1", "location": "DOCK-1", "sku": "SKU-1", "lot": None,
        "quantity": quantity, "from_status": "available", "to_status": "quarantine",
        "reason": "damaged"})  # fmt: skip


def test_dock_stock_owed_to_a_putaway_task_is_taken_only_by_it_until_the_task_is_reduced(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    build_inbound_world(api)
    asn = must(new_asn(api))
    (task,) = receive(api, asn["id"], scan(quantity=10))
    assert (task["quantity"], task["suggested_location"]) == (10, "A-01")

    for how in TAKES:
        answer = take_from_dock(api, how, 1)
        assert answer.status_code == 409, (how, answer.text)
        assert answer.json()["available"] == 0, how
    assert stock(api, location="DOCK-1")[DOCK] == 10

    operator = api.as_key(tenant.keys[Role.OPERATOR])
    assert operator.post(f"/putaway-tasks/{task['id']}/cancel", json={}).status_code == 403
    too_many = api.post(f"/putaway-tasks/{task['id']}/cancel", json={"quantity": 11})
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "/quantity"

    reduced = api.post(
        f"/putaway-tasks/{task['id']}/cancel", json={"quantity": 4, "reason": "4 short"}
    )
    assert reduced.status_code == 200, reduced.text
    assert {k: reduced.json()[k] for k in ("status", "quantity", "cancelled_quantity")} == {
        "status": "open", "quantity": 6, "cancelled_quantity": 4}  # fmt: skip
    promised_within_capacity(api)
    found_short = take_from_dock(api, "adjustment", 4)
    assert found_short.status_code == 201, found_short.text
    assert take_from_dock(api, "move", 1).status_code == 409  # the 6 left are owed

    must(api.post(f"/putaway-tasks/{task['id']}/confirm"), 200)
    assert DOCK not in stock(api, location="DOCK-1")
    assert stock(api, location="A-01")[("A-01", "SKU-1", None, "available")] == 6

    (second,) = receive(api, asn["id"], scan(quantity=5))
    cancelled = api.post(f"/putaway-tasks/{second['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancelled_by"] is not None
    assert api.post(f"/putaway-tasks/{second['id']}/confirm").status_code == 409
    assert api.post(f"/putaway-tasks/{second['id']}/cancel").status_code == 409
    assert take_from_dock(api, "move", 5).status_code == 201  # free again

    with psycopg.connect(database_url) as conn:
        events = conn.execute(
            "SELECT data->>'cancelled', data->>'remaining', data->>'reason' FROM wms.outbox "
            "WHERE type = 'wms.putaway_task.cancelled' ORDER BY id"
        ).fetchall()
    assert events == [("4", "6", "4 short"), ("5", "0", None)]
    ledger_matches_balances(database_url)


def test_a_cancel_and_a_confirmation_at_once_end_one_way(api: ApiClient, database_url: str) -> None:
    build_inbound_world(api)
    asn = must(new_asn(api))
    tasks = receive(api, asn["id"], *[scan(quantity=2) for _ in range(6)])
    finals = []
    for task in tasks:
        path = f"/putaway-tasks/{task['id']}"
        cancel, confirm = in_parallel([lambda p=path: api.post(f"{p}/cancel"),
                                       lambda p=path: api.post(f"{p}/confirm")])  # fmt: skip
        assert sorted([cancel.status_code, confirm.status_code]) == [200, 409]
        finals.append(must(api.get(path), 200)["status"])
        assert finals[-1] == ("cancelled" if cancel.status_code == 200 else "confirmed")
    assert stock(api, location="DOCK-1").get(DOCK, 0) == 2 * finals.count("cancelled")
    ledger_matches_balances(database_url)
