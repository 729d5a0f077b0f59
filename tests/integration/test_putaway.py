"""Putaway tasks over HTTP: confirmation, capacity under concurrency, no suggestion."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.conftest import ApiClient
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


@pytest.fixture
def world(api: ApiClient) -> None:
    build_inbound_world(api)


def receive(api: ApiClient, asn_id: int, *lines: dict[str, Any]) -> list[dict[str, Any]]:
    """Receive ``lines`` in one request; the putaway tasks it created."""
    receipt = must(api.post(f"/asns/{asn_id}/receipts", json={"lines": list(lines)}))
    tasks: list[dict[str, Any]] = receipt["putaway_tasks"]
    return tasks


def confirm_all_at_once(
    api: ApiClient, confirmations: list[tuple[int, dict[str, Any] | None]]
) -> list[tuple[int, dict[str, Any]]]:
    barrier = threading.Barrier(len(confirmations))
    answers: list[tuple[int, dict[str, Any]]] = []

    def send(task_id: int, body: dict[str, Any] | None) -> None:
        barrier.wait()
        response = api.post(f"/putaway-tasks/{task_id}/confirm", json=body)
        answers.append((response.status_code, response.json()))

    threads = [threading.Thread(target=send, args=c) for c in confirmations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_confirmations_into_one_location_never_exceed_its_capacity(
    api: ApiClient, world: None, database_url: str
) -> None:
    asn = must(new_asn(api, lines=[{"sku": "SKU-1", "quantity": 80}]))
    tasks = receive(api, asn["id"], *[scan(quantity=10) for _ in range(8)])
    assert len(tasks) == 8
    # Every task is overridden into F-01 (capacity 30) at the same moment.
    answers = confirm_all_at_once(api, [(t["id"], {"location": "F-01"}) for t in tasks])
    codes = sorted(status for status, _ in answers)
    assert codes == [200] * 3 + [409] * 5, answers
    for status, body in answers:
        if status == 409:
            assert body["type"].endswith("/location-unavailable"), body
    assert stock(api, location="F-01") == {("F-01", "SKU-1", None, "available"): 30}
    assert stock(api, location="DOCK-1") == {("DOCK-1", "SKU-1", None, "available"): 50}
    ledger_matches_balances(database_url)


def test_confirming_one_task_many_times_at_once_puts_it_away_once(
    api: ApiClient, world: None, database_url: str
) -> None:
    asn = must(new_asn(api))
    (task,) = receive(api, asn["id"], scan(quantity=10))
    answers = confirm_all_at_once(api, [(task["id"], None)] * 6)
    assert sorted(status for status, _ in answers) == [200] + [409] * 5
    for status, body in answers:
        if status == 409:
            assert body["type"].endswith("/invalid-state")
            assert body["current_status"] == "confirmed"
    assert stock(api) == {("A-01", "SKU-1", None, "available"): 10}
    ledger_matches_balances(database_url)


def test_a_second_confirmation_is_409_and_changes_nothing(api: ApiClient, world: None) -> None:
    asn = must(new_asn(api))
    (task,) = receive(api, asn["id"], scan(quantity=10))
    must(api.post(f"/putaway-tasks/{task['id']}/confirm", json={}), 200)
    again = api.post(f"/putaway-tasks/{task['id']}/confirm", json={"location": "A-02"})
    assert again.status_code == 409
    assert again.json()["type"].endswith("/invalid-state")
    assert again.json()["current_status"] == "confirmed"
    assert stock(api) == {("A-01", "SKU-1", None, "available"): 10}
    assert api.get(f"/putaway-tasks/{task['id']}").json()["confirmed_location"] == "A-01"


def test_a_confirmation_counts_units_promised_to_other_open_tasks(
    api: ApiClient, world: None
) -> None:
    asn = must(new_asn(api))
    lot_task, plain_task = receive(
        api, asn["id"], scan(sku="LOT-1", lot="L1", expiry="2030-01-01", quantity=25),
        scan(quantity=10),
    )  # fmt: skip
    assert lot_task["suggested_location"] == "F-01"  # 25 of F-01's 30 promised
    refused = api.post(f"/putaway-tasks/{plain_task['id']}/confirm", json={"location": "F-01"})
    assert refused.status_code == 409
    body = refused.json()
    assert body["type"].endswith("/location-unavailable")
    assert (body["promised_units"], body["requested"]) == (25, 10)
    assert stock(api, location="F-01") == {}
    must(api.post(f"/putaway-tasks/{lot_task['id']}/confirm"), 200)


def test_moves_and_adjustments_leave_the_room_promised_to_open_tasks(
    api: ApiClient, world: None
) -> None:
    # They counted stored units only: a move could fill the room a task was sent to, and
    # the task's operator found the location full.
    asn = must(new_asn(api))
    (task,) = receive(api, asn["id"], scan(sku="LOT-1", lot="L1", expiry="2030-01-01",
                                           quantity=25))  # fmt: skip
    assert task["suggested_location"] == "F-01"  # 25 of F-01's 30 promised
    must(api.post("/inventory/adjustments", json={"warehouse": "SP1", "location": "A-01",
                                                  "sku": "SKU-1", "quantity": 10,
                                                  "reason": "found"}))  # fmt: skip
    move = {"warehouse": "SP1", "sku": "SKU-1", "from_location": "A-01",
            "to_location": "F-01", "quantity": 6}  # fmt: skip
    adjustment = {"warehouse": "SP1", "location": "F-01", "sku": "SKU-1", "quantity": 6,
                  "reason": "found"}  # fmt: skip
    for path, body in (("/inventory/moves", move), ("/inventory/adjustments", adjustment)):
        refused = api.post(path, json=body)
        assert refused.status_code == 409, refused.text
        assert refused.json()["promised_units"] == 25
        assert "25 more promised to putaway tasks" in refused.json()["detail"]
    assert stock(api, location="F-01") == {}
    must(api.post("/inventory/moves", json={**move, "quantity": 5}))  # what is left fits
    must(api.post(f"/putaway-tasks/{task['id']}/confirm"), 200)


def test_without_room_anywhere_a_task_has_no_suggestion_and_needs_a_location(
    api: ApiClient, world: None
) -> None:
    must(api.patch("/warehouses/SP1/locations/S-01", json={"active": False}), 200)
    asn = must(new_asn(api, lines=[{"sku": "SKU-1", "quantity": 200}]))
    (task,) = receive(api, asn["id"], scan(quantity=120))
    assert task["suggested_location"] is None
    listed = api.get("/putaway-tasks", params={"status": "open"}).json()["items"]
    assert listed[0]["suggested_location"] is None
    missing = api.post(f"/putaway-tasks/{task['id']}/confirm")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "/location"
    full = api.post(f"/putaway-tasks/{task['id']}/confirm", json={"location": "A-01"})
    assert full.status_code == 409
    dock = api.post(f"/putaway-tasks/{task['id']}/confirm", json={"location": "DOCK-1"})
    assert dock.status_code == 422
    elsewhere = api.post(f"/putaway-tasks/{task['id']}/confirm", json={"location": "DOCK-9"})
    assert elsewhere.status_code == 422
    assert elsewhere.json()["type"].endswith("/unknown-reference")
    assert stock(api) == {("DOCK-1", "SKU-1", None, "available"): 120}


def test_a_rule_forbidding_mixed_lots_keeps_another_lot_out_even_on_override(
    api: ApiClient, world: None
) -> None:
    asn = must(new_asn(api, lines=[{"sku": "LOT-1", "quantity": 20}]))
    first, second = receive(
        api, asn["id"], scan(sku="LOT-1", lot="L1", expiry="2030-01-01", quantity=5),
        scan(sku="LOT-1", lot="L2", expiry="2030-01-01", quantity=5),
    )  # fmt: skip
    assert first["suggested_location"] == "F-01"
    assert second["suggested_location"] == "A-01"  # F-01 has room, but holds lot L1
    must(api.post(f"/putaway-tasks/{first['id']}/confirm"), 200)
    mixed = api.post(f"/putaway-tasks/{second['id']}/confirm", json={"location": "F-01"})
    assert mixed.status_code == 409
    assert "lot" in mixed.json()["detail"]
    # The same lot again joins its location first.
    (third,) = receive(api, asn["id"], scan(sku="LOT-1", lot="L1", expiry="2030-01-01",
                                            quantity=5))  # fmt: skip
    assert third["suggested_location"] == "F-01"
    promised_within_capacity(api)


def test_putaway_tasks_list_by_status_and_page_with_a_cursor(api: ApiClient, world: None) -> None:
    asn = must(new_asn(api))
    tasks = receive(api, asn["id"], *[scan(quantity=1) for _ in range(3)])
    must(api.post(f"/putaway-tasks/{tasks[0]['id']}/confirm"), 200)
    page = api.get("/putaway-tasks", params={"limit": 2}).json()
    rest = api.get("/putaway-tasks", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [t["id"] for t in page["items"] + rest["items"]] == [t["id"] for t in tasks]
    assert rest["next_cursor"] is None
    open_ids = [
        t["id"] for t in api.get("/putaway-tasks", params={"status": "open"}).json()["items"]
    ]
    assert open_ids == [t["id"] for t in tasks[1:]]
    assert api.get("/putaway-tasks", params={"warehouse": "RJ1"}).json()["items"] == []
    assert api.get("/putaway-tasks/999999").status_code == 404


def test_receipts_at_the_same_moment_never_promise_one_locations_room_twice(
    api: ApiClient, world: None
) -> None:
    # LOT-1 (velocity A) goes to zone F: F-01 holds 30. Six receipts of two 10-unit lines
    # each arrive together; without the location locks each would see F-01 empty.
    asns = [must(new_asn(api, reference=f"PO-{n}", lines=[{"sku": "LOT-1", "quantity": 20}]))
            for n in range(6)]  # fmt: skip
    lines = [scan(sku="LOT-1", lot="L1", expiry="2030-01-01", quantity=10) for _ in range(2)]
    answers = in_parallel(
        [lambda a=asn: api.post(f"/asns/{a['id']}/receipts", json={"lines": lines}) for asn in asns]
    )
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    tasks = api.get("/putaway-tasks", params={"status": "open", "limit": 500}).json()["items"]
    assert sum(t["quantity"] for t in tasks if t["suggested_location"] == "F-01") == 30
    assert sum(t["quantity"] for t in tasks) == 120
    promised_within_capacity(api)


def test_a_batch_confirmation_puts_every_task_away_once(
    api: ApiClient, world: None, database_url: str
) -> None:
    asn = must(new_asn(api))
    tasks = receive(api, asn["id"], *[scan(quantity=10) for _ in range(3)])
    body = {"confirmations": [{"task": tasks[0]["id"]},
                              {"task": tasks[1]["id"], "location": "A-02"},
                              {"task": tasks[2]["id"], "location": None}]}  # fmt: skip
    key = {"Idempotency-Key": "putaway-batch-1"}
    done = must(api.post("/putaway-tasks:confirm", json=body, headers=key), 200)
    assert [t["id"] for t in done["tasks"]] == [t["id"] for t in tasks]
    assert [t["status"] for t in done["tasks"]] == ["confirmed"] * 3
    assert [t["confirmed_location"] for t in done["tasks"]] == ["A-01", "A-02", "A-01"]
    expected = {("A-01", "SKU-1", None, "available"): 20,
                ("A-02", "SKU-1", None, "available"): 10}  # fmt: skip
    assert stock(api) == expected
    # Replayed through the pipeline: the same answer, nothing moved twice.
    again = api.post("/putaway-tasks:confirm", json=body, headers=key)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == done
    assert stock(api) == expected
    # Without a key, a confirmed task in a batch is 409 and nothing changes.
    twice = api.post("/putaway-tasks:confirm", json={"confirmations": [{"task": tasks[0]["id"]}]})
    assert twice.status_code == 409
    assert twice.json()["current_status"] == "confirmed"
    ledger_matches_balances(database_url)


def test_one_bad_confirmation_rolls_back_the_whole_batch(
    api: ApiClient, world: None, database_url: str
) -> None:
    asn = must(new_asn(api))
    first, second = receive(api, asn["id"], scan(quantity=10), scan(quantity=5))
    unknown = api.post("/putaway-tasks:confirm", json={"confirmations": [
        {"task": first["id"]}, {"task": second["id"], "location": "NOWHERE"}]})  # fmt: skip
    assert unknown.status_code == 422
    assert unknown.json()["type"].endswith("/unknown-reference")
    assert unknown.json()["errors"][0]["field"] == "/confirmations/1/location"
    dock = api.post("/putaway-tasks:confirm", json={"confirmations": [
        {"task": first["id"]}, {"task": second["id"], "location": "DOCK-1"}]})  # fmt: skip
    assert dock.status_code == 422
    assert dock.json()["errors"][0]["field"] == "/confirmations/1/location"
    missing = api.post("/putaway-tasks:confirm", json={"confirmations": [
        {"task": first["id"]}, {"task": 999999}]})  # fmt: skip
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "/confirmations/1/task"
    repeated = api.post("/putaway-tasks:confirm", json={"confirmations": [
        {"task": first["id"]}, {"task": first["id"]}]})  # fmt: skip
    assert repeated.status_code == 422
    assert repeated.json()["errors"][0]["field"] == "/confirmations"
    empty = api.post("/putaway-tasks:confirm", json={"confirmations": []})
    assert empty.status_code == 422
    assert stock(api) == {("DOCK-1", "SKU-1", None, "available"): 15}
    statuses = [api.get(f"/putaway-tasks/{t['id']}").json()["status"] for t in (first, second)]
    assert statuses == ["open", "open"]
    ledger_matches_balances(database_url)


def test_a_batch_counts_what_its_earlier_confirmations_put_in_a_location(
    api: ApiClient, world: None, database_url: str
) -> None:
    asn = must(new_asn(api))
    tasks = receive(api, asn["id"], *[scan(quantity=10) for _ in range(4)])
    # F-01 holds 30: three of the four fit, the fourth does not, so none is put away.
    into_f01 = [{"task": t["id"], "location": "F-01"} for t in tasks]
    refused = api.post("/putaway-tasks:confirm", json={"confirmations": into_f01})
    assert refused.status_code == 409
    body = refused.json()
    assert body["type"].endswith("/location-unavailable")
    assert (body["stored_units"], body["requested"]) == (30, 10)
    assert stock(api, location="F-01") == {}
    done = must(api.post("/putaway-tasks:confirm", json={"confirmations": into_f01[:3]}), 200)
    assert [t["confirmed_location"] for t in done["tasks"]] == ["F-01"] * 3
    assert stock(api, location="F-01") == {("F-01", "SKU-1", None, "available"): 30}
    # A task confirmed elsewhere earlier in the batch frees the room it was promised: the
    # plain 10 fit A-01 (capacity 50) only once the lot's 40 went to A-02.
    lot_task, plain_task = receive(
        api, asn["id"], scan(sku="LOT-1", lot="L1", expiry="2030-01-01", quantity=40),
        scan(quantity=10),
    )  # fmt: skip
    # A-01 is promised tasks[3]'s 10 and the lot's 40: the plain 10 were sent to A-02.
    assert [lot_task["suggested_location"], plain_task["suggested_location"]] == ["A-01", "A-02"]
    moved = must(api.post("/putaway-tasks:confirm", json={"confirmations": [
        {"task": lot_task["id"], "location": "A-02"},
        {"task": plain_task["id"], "location": "A-01"},
        {"task": tasks[3]["id"]}]}), 200)  # fmt: skip
    assert [t["confirmed_location"] for t in moved["tasks"]] == ["A-02", "A-01", "A-01"]
    assert stock(api, location="A-01") == {("A-01", "SKU-1", None, "available"): 20}
    promised_within_capacity(api)
    ledger_matches_balances(database_url)
