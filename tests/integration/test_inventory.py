"""Inventory commands through the API: adjustments, moves, status changes, listings."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.integration.stock_world import StockWorld, build_world
from wms.domain.inventory import BalanceKey, Delta, StockStatus
from wms.store import inventory as stock_store


@pytest.fixture
def world(api: ApiClient, tenant: TenantKeys, database_url: str) -> StockWorld:
    return build_world(api, tenant, database_url)


def adjust(api: ApiClient, **fields: Any) -> Any:
    body = {"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "lot": None,
            "quantity": 10, "reason": "found", **fields}  # fmt: skip
    return api.post("/inventory/adjustments", json=body)


def on_hand(api: ApiClient, **filters: str) -> dict[tuple[str, str | None, str], int]:
    items = api.get("/inventory", params={"limit": 500, **filters}).json()["items"]
    return {(i["location"], i["lot"], i["status"]): i["on_hand"] for i in items}


def ledger_matches_balances(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        mismatches = conn.execute(
            "SELECT b.location_id, b.product_id, b.lot_code, b.status, b.on_hand, "
            "coalesce(o.quantity, 0) + coalesce(m.total, 0) "
            "FROM wms.inventory_balances b "
            "LEFT JOIN wms.inventory_openings o USING (tenant_id, warehouse_id, location_id, "
            "product_id, lot_code, status) "
            "LEFT JOIN (SELECT tenant_id, warehouse_id, location_id, product_id, lot_code, "
            "status, sum(quantity) AS total FROM wms.inventory_movements GROUP BY 1, 2, 3, 4, "
            "5, 6) m USING (tenant_id, warehouse_id, location_id, product_id, lot_code, status) "
            "WHERE b.on_hand <> coalesce(o.quantity, 0) + coalesce(m.total, 0)"
        ).fetchall()
    assert mismatches == []


def test_an_adjustment_adds_stock_writes_the_ledger_and_answers_201(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    response = adjust(api, quantity=7)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["balances"] == [
        {"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "lot": None, "expiry": None,
         "status": "available", "on_hand": 7, "allocated": 0, "available": 7}
    ]  # fmt: skip
    movement = api.get(response.headers["location"]).json()
    assert movement["quantity"] == 7
    assert movement["kind"] == "adjustment"
    assert movement["reason"] == "found"
    assert movement["actor"].startswith("apikey:")
    assert on_hand(api) == {("A-01", None, "available"): 7}
    ledger_matches_balances(database_url)


def test_quantities_in_another_unit_are_converted_and_the_original_kept(
    api: ApiClient, world: StockWorld
) -> None:
    response = adjust(api, quantity=2, uom="CASE")
    assert response.json()["balances"][0]["on_hand"] == 24
    movement = api.get("/inventory/movements", params={"sku": "SKU-1"}).json()["items"][0]
    assert (movement["quantity"], movement["uom"], movement["uom_quantity"]) == (24, "CASE", 2)


def test_a_partial_move_splits_the_balance(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    adjust(api, quantity=10)
    response = api.post(
        "/inventory/moves",
        json={"warehouse": "SP1", "sku": "SKU-1", "lot": None, "from_location": "A-01",
              "to_location": "A-02", "quantity": 3},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert on_hand(api) == {("A-01", None, "available"): 7, ("A-02", None, "available"): 3}
    ledger_matches_balances(database_url)


def test_moves_lock_and_create_the_balances_their_caller_did_not_lock(
    api: ApiClient, world: StockWorld, tenant: TenantKeys, database_url: str
) -> None:
    # A pick hands apply_moves the balances it locked up front; any other key (here the
    # destination, which does not exist yet) must still be created and locked.
    adjust(api, quantity=5)

    async def move() -> list[int]:
        async with (
            await psycopg.AsyncConnection.connect(
                database_url, options="-c search_path=wms"
            ) as conn,
            conn.transaction(),
        ):
            cursor = await conn.execute(
                "SELECT w.id, a.id, b.id, p.id FROM warehouses w "
                "JOIN locations a ON a.warehouse_id = w.id AND a.code = 'A-01' "
                "JOIN locations b ON b.warehouse_id = w.id AND b.code = 'A-02' "
                "JOIN products p ON p.tenant_id = w.tenant_id AND p.sku = 'SKU-1' "
                "WHERE w.tenant_id = %s",
                (tenant.tenant_id,),
            )
            row = await cursor.fetchone()
            assert row is not None
            warehouse, source_at, target_at, product = row
            source = BalanceKey(warehouse, source_at, product, "", StockStatus.AVAILABLE)
            target = BalanceKey(warehouse, target_at, product, "", StockStatus.AVAILABLE)
            locked = await stock_store.lock_balances(conn, tenant.tenant_id, [source])
            info = stock_store.MovementInfo(kind="move", actor="test")
            moves = [(Delta(source, -2), info), (Delta(target, 2), info)]
            return await stock_store.apply_moves(conn, tenant.tenant_id, moves, locked=locked)

    assert len(asyncio.run(move())) == 2
    assert on_hand(api) == {("A-01", None, "available"): 3, ("A-02", None, "available"): 2}
    ledger_matches_balances(database_url)


def test_a_status_change_moves_stock_between_statuses_in_place(
    api: ApiClient, world: StockWorld
) -> None:
    adjust(api, quantity=10)
    response = api.post(
        "/inventory/status-changes",
        json={"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "lot": None,
              "quantity": 4, "from_status": "available", "to_status": "quarantine",
              "reason": "damaged"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert on_hand(api) == {("A-01", None, "available"): 6, ("A-01", None, "quarantine"): 4}
    assert on_hand(api, status="quarantine") == {("A-01", None, "quarantine"): 4}


def test_lots_carry_their_expiry_and_a_conflicting_expiry_is_409(
    api: ApiClient, world: StockWorld
) -> None:
    first = adjust(api, sku="LOT-1", lot="L1", expiry="2027-03-01", quantity=5)
    assert first.status_code == 201, first.text
    assert first.json()["balances"][0]["expiry"] == "2027-03-01"
    again = adjust(api, sku="LOT-1", lot="L1", expiry="2027-03-01", quantity=1)
    assert again.status_code == 201
    conflict = adjust(api, sku="LOT-1", lot="L1", expiry="2027-04-01", quantity=1)
    assert conflict.status_code == 409
    assert conflict.json()["type"].endswith("/lot-expiry-conflict")
    assert on_hand(api) == {("A-01", "L1", "available"): 6}


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"sku": "NOPE"}, 422, "/sku"),
        ({"location": "Z-99"}, 422, "/location"),
        ({"warehouse": "XX"}, 422, "/warehouse"),
        ({"uom": "PALLET"}, 422, "/uom"),
        ({"quantity": 0}, 422, "/quantity"),
        ({"reason": "because"}, 422, "/reason"),
        ({"reason": "cycle_count"}, 422, "/reason"),
        ({"sku": "LOT-1"}, 422, "/lot"),
        ({"sku": "LOT-1", "lot": "L9"}, 422, "/expiry"),
        ({"lot": "L1"}, 422, "/lot"),
        ({"quantity": "ten"}, 422, "/quantity"),
    ],
)
def test_bad_adjustments_are_clear_errors_that_change_nothing(
    api: ApiClient, world: StockWorld, fields: dict[str, Any], status: int, field: str
) -> None:
    response = adjust(api, **fields)
    assert response.status_code == status, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert on_hand(api) == {}
    assert api.get("/inventory/movements").json()["items"] == []


def test_removing_more_than_is_there_is_409_with_available_and_requested(
    api: ApiClient, world: StockWorld
) -> None:
    adjust(api, quantity=5)
    removal = adjust(api, quantity=-6, reason="lost")
    assert removal.status_code == 409
    body = removal.json()
    assert body["type"].endswith("/insufficient-stock")
    assert (body["available"], body["requested"]) == (5, 6)
    move = api.post(
        "/inventory/moves",
        json={"warehouse": "SP1", "sku": "SKU-1", "from_location": "A-01",
              "to_location": "A-02", "quantity": 9},
    )  # fmt: skip
    assert move.status_code == 409
    assert (move.json()["available"], move.json()["requested"]) == (5, 9)
    assert on_hand(api) == {("A-01", None, "available"): 5}
    # The move's ledger rows and the receiving side were written before the short take
    # was found (one round trip); its transaction rolled them back.
    assert len(api.get("/inventory/movements").json()["items"]) == 1


def test_moves_into_a_full_or_inactive_location_are_refused(
    api: ApiClient, world: StockWorld
) -> None:
    adjust(api, quantity=20)
    full = api.post(
        "/inventory/moves",
        json={"warehouse": "SP1", "sku": "SKU-1", "from_location": "A-01",
              "to_location": "B-01", "quantity": 11},
    )  # fmt: skip
    assert full.status_code == 409
    assert full.json()["type"].endswith("/location-unavailable")
    assert full.json()["capacity_units"] == 10
    fits = api.post(
        "/inventory/moves",
        json={"warehouse": "SP1", "sku": "SKU-1", "from_location": "A-01",
              "to_location": "B-01", "quantity": 10},
    )  # fmt: skip
    assert fits.status_code == 201
    inactive = api.post(
        "/inventory/moves",
        json={"warehouse": "SP1", "sku": "SKU-1", "from_location": "A-01",
              "to_location": "C-01", "quantity": 1},
    )  # fmt: skip
    assert inactive.status_code == 409
    assert "inactive" in inactive.json()["detail"]
    assert on_hand(api) == {("A-01", None, "available"): 10, ("B-01", None, "available"): 10}


def test_stock_summary_totals_per_sku(api: ApiClient, world: StockWorld) -> None:
    adjust(api, quantity=10)
    adjust(api, location="A-02", quantity=5)
    api.post(
        "/inventory/status-changes",
        json={"warehouse": "SP1", "location": "A-02", "sku": "SKU-1", "quantity": 2,
              "from_status": "available", "to_status": "damaged"},
    )  # fmt: skip
    summary = api.get("/reports/stock-summary", params={"warehouse": "SP1"}).json()
    assert summary["items"] == [
        {"sku": "SKU-1", "description": "Widget", "on_hand": 15, "allocated": 0,
         "available": 13, "quarantine": 0, "damaged": 2, "hold": 0, "locations": 2}
    ]  # fmt: skip
    assert api.get("/reports/stock-summary", params={"warehouse": "NOPE"}).status_code == 404


def test_movement_listing_filters_and_pages(api: ApiClient, world: StockWorld) -> None:
    for quantity in (1, 2, 3, 4, 5):
        adjust(api, quantity=quantity)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "kind": "adjustment"}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/inventory/movements", params=params).json()
        seen += [m["quantity"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [1, 2, 3, 4, 5]
    assert api.get("/inventory/movements", params={"kind": "move"}).json()["items"] == []
    # A reference id alone matched every kind of document numbered so; its type narrows.
    adjust(api, quantity=6, reference="7")
    by_type = {"reference": "7", "reference_type": "adjustment"}
    assert [m["quantity"] for m in api.get("/inventory/movements", params=by_type).json()[
        "items"]] == [6]  # fmt: skip
    other = {"reference": "7", "reference_type": "asn"}
    assert api.get("/inventory/movements", params=other).json()["items"] == []


def test_the_ledger_is_append_only_for_the_runtime_role(
    api: ApiClient, world: StockWorld, database_url: str, tenant: TenantKeys
) -> None:
    adjust(api, quantity=3)
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE wms_app")
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant.tenant_id),))
        for statement in (
            "UPDATE wms.inventory_movements SET quantity = 99",
            "DELETE FROM wms.inventory_movements",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
            conn.execute("SET ROLE wms_app")
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant.tenant_id),))


def test_movements_land_in_monthly_partitions_created_months_ahead(
    api: ApiClient, world: StockWorld, database_url: str
) -> None:
    adjust(api, quantity=3)
    with psycopg.connect(database_url) as conn:
        (partition,) = conn.execute(
            "SELECT tableoid::regclass::text FROM wms.inventory_movements"
        ).fetchone()  # type: ignore[misc]
        months = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'wms.inventory_movements'::regclass ORDER BY 1"
        ).fetchall()
        (current,) = conn.execute(
            'SELECT to_char(now(), \'"inventory_movements_y"YYYY"m"MM\')'
        ).fetchone()  # type: ignore[misc]
        (ahead,) = conn.execute(
            "SELECT to_char(now() + interval '3 months', '\"inventory_movements_y\"YYYY\"m\"MM')"
        ).fetchone()  # type: ignore[misc]
    names = {row[0] for row in months}
    assert partition.endswith(current)
    assert {current, ahead, "inventory_movements_default"} <= names
