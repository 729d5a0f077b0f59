"""Zones, locations, the bulk location import and putaway rules, over HTTP on real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.integration.stock_world import build_world
from tests.integration.test_orders import order_body, stock
from wms.domain.roles import Role
from wms.events.relay import admin_connect
from wms.store import locations as store

WH = "/warehouses/SP1"
PROBLEMS = "https://wms.example/problems/"
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
def warehouse(api: ApiClient) -> ApiClient:
    """``api`` with warehouse SP1 (staging location OUTBOUND) and zones A and B."""
    body = {"code": "SP1", "name": "São Paulo 1", "timezone": "America/Sao_Paulo"}
    assert api.post("/warehouses", json=body).status_code == 201
    for zone in ("A", "B"):
        assert api.post(f"{WH}/zones", json={"code": zone}).status_code == 201
    return api


def scalar(database_url: str, query: str, *params: object) -> Any:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def location(code: str, **fields: Any) -> dict[str, Any]:
    return {"code": code, "type": "storage", **fields}


def all_items(api: ApiClient, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = api.get(path, params=query)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


# -- zones --------------------------------------------------------------------------


def test_a_zone_is_created_with_its_location_header_and_listed(warehouse: ApiClient) -> None:
    created = warehouse.post(f"{WH}/zones", json={"code": "P", "name": "Pick faces"})
    assert created.status_code == 201
    assert created.headers["location"] == "/api/v1/warehouses/SP1/zones/P"
    assert created.json()["code"] == "P"
    assert created.json()["name"] == "Pick faces"
    assert created.json()["warehouse"] == "SP1"
    assert warehouse.get(f"{WH}/zones/P").json() == created.json()
    listed = [zone["code"] for zone in all_items(warehouse, f"{WH}/zones", limit=1)]
    assert listed == ["A", "B", "P"]


def test_a_duplicate_zone_code_is_409(warehouse: ApiClient) -> None:
    again = warehouse.post(f"{WH}/zones", json={"code": "A"})
    assert again.status_code == 409
    assert again.json()["type"] == PROBLEMS + "conflict"


def test_zones_of_an_unknown_warehouse_are_404(api: ApiClient) -> None:
    assert api.post("/warehouses/NOPE/zones", json={"code": "A"}).status_code == 404
    assert api.get("/warehouses/NOPE/zones").status_code == 404


# -- locations ----------------------------------------------------------------------


def test_a_location_is_created_and_read_back_with_codes_not_ids(warehouse: ApiClient) -> None:
    body = {"code": "A-01-01", "type": "storage", "zone": "A", "pick_sequence": 10}
    created = warehouse.post(f"{WH}/locations", json={**body, "capacity_units": 500})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/warehouses/SP1/locations/A-01-01"
    shown = created.json()
    assert shown["warehouse"] == "SP1"
    assert shown["zone"] == "A"
    assert shown["capacity_units"] == 500
    assert shown["capacity_volume_l"] is None
    assert shown["active"] is True
    assert "id" not in shown
    assert "zone_id" not in shown
    assert warehouse.get(f"{WH}/locations/A-01-01").json() == shown


def test_a_location_keeps_decimal_capacities(warehouse: ApiClient) -> None:
    body = location("A-01-02", capacity_volume_l=1.25, capacity_weight_kg=800)
    created = warehouse.post(f"{WH}/locations", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["capacity_volume_l"] == 1.25
    assert created.json()["capacity_weight_kg"] == 800


def test_a_location_naming_an_unknown_zone_is_422_with_the_field(warehouse: ApiClient) -> None:
    answer = warehouse.post(f"{WH}/locations", json=location("X-1", zone="ZZ"))
    assert answer.status_code == 422
    assert answer.json()["type"] == PROBLEMS + "unknown-reference"
    assert answer.json()["errors"][0]["field"] == "/zone"


def test_a_zone_of_another_warehouse_is_unknown_here(warehouse: ApiClient) -> None:
    other = {"code": "RJ1", "name": "Rio", "timezone": "America/Sao_Paulo"}
    assert warehouse.post("/warehouses", json=other).status_code == 201
    assert warehouse.post("/warehouses/RJ1/zones", json={"code": "R"}).status_code == 201
    answer = warehouse.post(f"{WH}/locations", json=location("X-1", zone="R"))
    assert answer.status_code == 422


def test_a_bad_location_type_is_422(warehouse: ApiClient) -> None:
    answer = warehouse.post(f"{WH}/locations", json={"code": "X-1", "type": "roof"})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "/type"


def test_a_duplicate_location_code_is_409(warehouse: ApiClient) -> None:
    assert warehouse.post(f"{WH}/locations", json=location("A-1")).status_code == 201
    again = warehouse.post(f"{WH}/locations", json=location("A-1", type="pick"))
    assert again.status_code == 409
    assert again.json()["type"] == PROBLEMS + "conflict"


def test_the_same_location_code_may_exist_in_two_warehouses(warehouse: ApiClient) -> None:
    other = {"code": "RJ1", "name": "Rio", "timezone": "America/Sao_Paulo"}
    assert warehouse.post("/warehouses", json=other).status_code == 201
    assert warehouse.post(f"{WH}/locations", json=location("A-1")).status_code == 201
    assert warehouse.post("/warehouses/RJ1/locations", json=location("A-1")).status_code == 201


def test_locations_of_an_unknown_warehouse_or_code_are_404(warehouse: ApiClient) -> None:
    assert warehouse.post("/warehouses/NOPE/locations", json=location("A-1")).status_code == 404
    assert warehouse.get("/warehouses/NOPE/locations").status_code == 404
    assert warehouse.get("/warehouses/NOPE/locations/A-1").status_code == 404
    assert warehouse.get(f"{WH}/locations/NOPE").status_code == 404
    missing = warehouse.patch(f"{WH}/locations/NOPE", json={"active": False})
    assert missing.status_code == 404
    assert missing.json()["type"] == PROBLEMS + "not-found"


def test_patch_changes_only_the_given_fields(warehouse: ApiClient) -> None:
    body = location("A-1", zone="A", pick_sequence=5, capacity_units=10, capacity_weight_kg=2)
    assert warehouse.post(f"{WH}/locations", json=body).status_code == 201
    changed = warehouse.patch(f"{WH}/locations/A-1", json={"zone": "B", "capacity_units": None})
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert (after["zone"], after["capacity_units"]) == ("B", None)
    assert (after["pick_sequence"], after["capacity_weight_kg"], after["type"]) == (5, 2, "storage")
    again = warehouse.patch(f"{WH}/locations/A-1", json={"type": "pick", "active": False})
    assert (again.json()["type"], again.json()["active"], again.json()["zone"]) == (
        "pick",
        False,
        "B",
    )
    assert warehouse.get(f"{WH}/locations/A-1").json() == again.json()


def test_patch_refuses_null_for_a_required_field_and_an_unknown_zone(warehouse: ApiClient) -> None:
    assert warehouse.post(f"{WH}/locations", json=location("A-1")).status_code == 201
    null = warehouse.patch(f"{WH}/locations/A-1", json={"pick_sequence": None})
    assert null.status_code == 422
    assert null.json()["errors"][0]["field"] == "/pick_sequence"
    unknown = warehouse.patch(f"{WH}/locations/A-1", json={"zone": "ZZ"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "/zone"


def test_list_filters_by_type_zone_and_active(warehouse: ApiClient) -> None:
    for body in (
        location("A-1", zone="A"),
        location("A-2", zone="A", active=False),
        location("B-1", zone="B", type="pick"),
    ):
        assert warehouse.post(f"{WH}/locations", json=body).status_code == 201

    def codes(**params: Any) -> list[str]:
        return sorted(item["code"] for item in all_items(warehouse, f"{WH}/locations", **params))

    assert codes() == ["A-1", "A-2", "B-1", "OUTBOUND"]
    assert codes(zone="A") == ["A-1", "A-2"]
    assert codes(zone="A", active="false") == ["A-2"]
    assert codes(type="pick") == ["B-1"]
    assert codes(type="staging") == ["OUTBOUND"]
    assert codes(zone="NONE") == []
    assert warehouse.get(f"{WH}/locations", params={"type": "roof"}).status_code == 422


def test_keyset_pages_hold_each_location_once_in_walking_order(warehouse: ApiClient) -> None:
    # Equal pick sequences make the id the tie-breaker the order relies on.
    rows = [location(f"L-{n:03}", pick_sequence=(n * 7) % 5) for n in range(23)]
    imported = warehouse.post(f"{WH}/locations:import", json={"locations": rows})
    assert imported.status_code == 200, imported.text
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        page = warehouse.get(
            f"{WH}/locations", params={"limit": 5, **({"cursor": cursor} if cursor else {})}
        ).json()
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    items = [item for page in pages for item in page]
    codes = [item["code"] for item in items]
    assert len(codes) == len(set(codes)) == 24  # 23 + OUTBOUND
    assert all(len(page) == 5 for page in pages[:-1])
    sequences = [item["pick_sequence"] for item in items]
    assert sequences == sorted(sequences)
    direct = warehouse.get(f"{WH}/locations", params={"limit": 500}).json()["items"]
    assert [item["code"] for item in direct] == codes


def walk_pages(api: ApiClient, limit: int, between: Callable[[int], None]) -> list[str]:
    """Codes of one walk, calling ``between(page_number)`` after each page but the last."""
    codes: list[str] = []
    cursor = None
    number = 0
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"{WH}/locations", params=params)
        assert page.status_code == 200, page.text
        codes += [item["code"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return codes
        between(number)
        number += 1


def patch_sequence(api: ApiClient, code: str, sequence: int) -> None:
    response = api.patch(f"{WH}/locations/{code}", json={"pick_sequence": sequence})
    assert response.status_code == 200, response.text


def test_a_walk_lists_each_location_once_while_locations_are_resequenced(
    warehouse: ApiClient,
) -> None:
    """A walk keeps the order of its first page: moves by PATCH and import mid-walk."""
    rows = [location(f"L-{n:02}", pick_sequence=10 + n * 10) for n in range(20)]
    assert warehouse.post(f"{WH}/locations:import", json={"locations": rows}).status_code == 200
    before = [i["code"] for i in warehouse.get(f"{WH}/locations", params={"limit": 500}).json()[
        "items"]]  # fmt: skip

    def resequence(page: int) -> None:
        if page == 0:
            patch_sequence(warehouse, "L-02", 1000)  # listed already: moves ahead
            patch_sequence(warehouse, "L-15", 1)  # not yet listed: moves behind
            patch_sequence(warehouse, "L-12", 2)  # twice: the walk's place is the first's
            patch_sequence(warehouse, "L-12", 900)
        if page == 1:
            moved = [location("L-10", pick_sequence=3), location("L-04", pick_sequence=5000)]
            imported = warehouse.post(f"{WH}/locations:import", json={"locations": moved})
            assert imported.status_code == 200, imported.text
            created = warehouse.post(f"{WH}/locations", json=location("NEW", pick_sequence=7))
            assert created.status_code == 201, created.text

    walked = walk_pages(warehouse, 5, resequence)
    assert [code for code in walked if code != "NEW"] == before
    # A walk begun now sees the new order.
    after = [i["code"] for i in warehouse.get(f"{WH}/locations", params={"limit": 500}).json()[
        "items"]]  # fmt: skip
    assert after[:4] == ["OUTBOUND", "L-15", "L-10", "NEW"]
    assert after[-3:] == ["L-12", "L-02", "L-04"]


def test_a_resequencing_in_flight_at_the_first_page_is_placed_as_that_page_saw_it(
    warehouse: ApiClient, database_url: str
) -> None:
    rows = [location(f"L-{n:02}", pick_sequence=10 + n) for n in range(6)]
    assert warehouse.post(f"{WH}/locations:import", json={"locations": rows}).status_code == 200
    with psycopg.connect(database_url) as other:  # commits after the first page is read
        other.execute("UPDATE wms.locations SET pick_sequence = 0 WHERE code = 'L-05'")
        other.execute("UPDATE wms.locations SET pick_sequence = 99 WHERE code = 'L-00'")
        first = warehouse.get(f"{WH}/locations", params={"limit": 3}).json()
        assert [i["code"] for i in first["items"]] == ["OUTBOUND", "L-00", "L-01"]
    rest = all_items(warehouse, f"{WH}/locations", limit=3, cursor=first["next_cursor"])
    assert [i["code"] for i in rest] == ["L-02", "L-03", "L-04", "L-05"]


def test_a_walk_with_filters_keeps_its_order_and_an_old_cursor_still_pages(
    warehouse: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    rows = [location(f"L-{n:02}", zone="AB"[n % 2], pick_sequence=100 - n) for n in range(12)]
    assert warehouse.post(f"{WH}/locations:import", json={"locations": rows}).status_code == 200
    zone_a = {"zone": "A", "limit": 2}
    first = warehouse.get(f"{WH}/locations", params=zone_a).json()
    assert [i["code"] for i in first["items"]] == ["L-10", "L-08"]
    patch_sequence(warehouse, "L-00", 0)  # zone A, not listed yet: would be skipped
    rest = all_items(warehouse, f"{WH}/locations", cursor=first["next_cursor"], **zone_a)
    assert [i["code"] for i in rest] == ["L-06", "L-04", "L-02", "L-00"]
    assert rest[-1]["pick_sequence"] == 0  # shown as it is now, placed as it was

    # A cursor issued before walks had versions, (sequence, id), pages on in today's order.
    codec = warehouse.client.app.state.cursors
    l08 = scalar(
        database_url,
        "SELECT id FROM wms.locations WHERE tenant_id = %s AND code = 'L-08'",
        tenant.tenant_id,
    )
    filters = {"wh": "SP1", "type": None, "zone": "A", "active": None}
    legacy = codec.encode(tenant.tenant_id, filters, [92, l08])
    rest = all_items(warehouse, f"{WH}/locations", cursor=legacy, **zone_a)
    assert [i["code"] for i in rest] == ["L-06", "L-04", "L-02"]


def test_a_walk_begun_before_the_pruned_history_answers_410(
    warehouse: ApiClient, database_url: str
) -> None:
    rows = [location(f"L-{n}", pick_sequence=10 + n) for n in range(4)]
    assert warehouse.post(f"{WH}/locations:import", json={"locations": rows}).status_code == 200
    early = warehouse.get(f"{WH}/locations", params={"limit": 2}).json()["next_cursor"]
    patch_sequence(warehouse, "L-3", 0)  # change 1: older than the history kept
    later = warehouse.get(f"{WH}/locations", params={"limit": 2}).json()
    patch_sequence(warehouse, "L-2", 99)  # change 2: kept
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE wms.location_resequencing SET changed_at = now() - interval '8 days' "
            "WHERE previous_sequence = 13"
        )

    async def prune() -> int:
        conn = await admin_connect(database_url)
        try:
            return await store.prune_walk_history(conn, older_than_hours=store.WALK_HISTORY_HOURS)
        finally:
            await conn.close()

    assert asyncio.run(prune()) == 1
    expired = warehouse.get(f"{WH}/locations", params={"limit": 2, "cursor": early})
    assert expired.status_code == 410, expired.text
    assert expired.json()["type"] == PROBLEMS + "cursor-expired"
    # A walk begun after the pruned change goes on, in the order it began with.
    rest = all_items(warehouse, f"{WH}/locations", limit=2, cursor=later["next_cursor"])
    assert [i["code"] for i in later["items"] + rest] == ["OUTBOUND", "L-3", "L-0", "L-1", "L-2"]
    assert asyncio.run(prune()) == 0


def test_a_cursor_reused_with_other_filters_is_422(warehouse: ApiClient) -> None:
    rows = [location(f"L-{n}", zone="A") for n in range(3)]
    assert warehouse.post(f"{WH}/locations:import", json={"locations": rows}).status_code == 200
    first = warehouse.get(f"{WH}/locations", params={"limit": 1, "zone": "A"}).json()
    cursor = first["next_cursor"]
    assert cursor is not None
    same = warehouse.get(f"{WH}/locations", params={"limit": 1, "zone": "A", "cursor": cursor})
    assert same.status_code == 200
    other = warehouse.get(f"{WH}/locations", params={"limit": 1, "zone": "B", "cursor": cursor})
    assert other.status_code == 422
    assert other.json()["type"] == PROBLEMS + "invalid-cursor"


# -- import -------------------------------------------------------------------------


def test_a_json_import_creates_locations_with_one_audit_row_and_one_event(
    warehouse: ApiClient, database_url: str
) -> None:
    audit_before = scalar(database_url, "SELECT count(*) FROM wms.audit_log")
    rows = [
        location("A-1", zone="A", pick_sequence=1, capacity_units=100),
        location("A-2", type="pick", capacity_volume_l=2.5, active=False),
    ]
    answer = warehouse.post(f"{WH}/locations:import", json={"locations": rows})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"created": 2, "updated": 0}
    second = warehouse.get(f"{WH}/locations/A-2").json()
    assert (second["type"], second["capacity_volume_l"], second["active"]) == ("pick", 2.5, False)
    assert warehouse.get(f"{WH}/locations/A-1").json()["zone"] == "A"
    assert scalar(database_url, "SELECT count(*) FROM wms.audit_log") == audit_before + 1
    events = "SELECT count(*) FROM wms.outbox WHERE type = 'wms.locations.imported'"
    assert scalar(database_url, events) == 1


def test_a_csv_import_creates_locations(warehouse: ApiClient) -> None:
    text = (
        "code,type,zone,pick_sequence,capacity_units,capacity_volume_l,capacity_weight_kg,active\n"
        "A-01-01,storage,A,10,500,1.5,,true\n"
        "B-01-01,pick,B,20,,,12.25,false\n"
        "\n"
        "D-1,dock,,,,,,\n"
    )
    answer = warehouse.post(f"{WH}/locations:import", content=text.encode(), headers=CSV)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"created": 3, "updated": 0}
    first = warehouse.get(f"{WH}/locations/A-01-01").json()
    assert (first["zone"], first["pick_sequence"], first["capacity_units"]) == ("A", 10, 500)
    assert first["capacity_volume_l"] == 1.5
    pick = warehouse.get(f"{WH}/locations/B-01-01").json()
    assert (pick["capacity_weight_kg"], pick["active"]) == (12.25, False)
    dock = warehouse.get(f"{WH}/locations/D-1").json()
    assert (dock["type"], dock["zone"], dock["pick_sequence"], dock["active"]) == (
        "dock",
        None,
        0,
        True,
    )


def test_an_import_updates_existing_locations_and_keeps_what_a_row_leaves_out(
    warehouse: ApiClient,
) -> None:
    original = location("A-1", zone="A", pick_sequence=3, capacity_units=50, active=False)
    assert warehouse.post(f"{WH}/locations", json=original).status_code == 201
    rows = [location("A-1", type="pick", capacity_units=None), location("A-2")]
    answer = warehouse.post(f"{WH}/locations:import", json={"locations": rows})
    assert answer.json() == {"created": 1, "updated": 1}
    updated = warehouse.get(f"{WH}/locations/A-1").json()
    assert (updated["type"], updated["capacity_units"]) == ("pick", None)
    assert (updated["zone"], updated["pick_sequence"], updated["active"]) == ("A", 3, False)
    text = "code,type,zone\nA-1,storage,\n"
    csv_answer = warehouse.post(f"{WH}/locations:import", content=text.encode(), headers=CSV)
    assert csv_answer.json() == {"created": 0, "updated": 1}
    again = warehouse.get(f"{WH}/locations/A-1").json()
    assert (again["type"], again["zone"], again["pick_sequence"]) == ("storage", None, 3)


def test_a_csv_with_bad_rows_is_rejected_with_line_numbers_and_nothing_written(
    warehouse: ApiClient, database_url: str
) -> None:
    before = scalar(database_url, "SELECT count(*) FROM wms.locations")
    text = (
        "code,type,zone,pick_sequence\n"
        "A-1,storage,A,1\n"
        "A-2,roof,A,2\n"
        "\n"
        "A-3,storage,ZZ,-1\n"
        "A-1,pick,,\n"
    )
    answer = warehouse.post(f"{WH}/locations:import", content=text.encode(), headers=CSV)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"] == PROBLEMS + "import-rejected"
    found = {(e["line"], e["field"]) for e in problem["row_errors"]}
    assert found == {(3, "type"), (5, "zone"), (5, "pick_sequence"), (6, "code")}
    assert scalar(database_url, "SELECT count(*) FROM wms.locations") == before
    imported = "SELECT count(*) FROM wms.outbox WHERE type = 'wms.locations.imported'"
    assert scalar(database_url, imported) == 0


def test_a_json_import_with_bad_rows_names_each_with_a_pointer(warehouse: ApiClient) -> None:
    rows = [location("A-1"), location("A-2", type="roof"), "nonsense", location("A-4", size=3)]
    answer = warehouse.post(f"{WH}/locations:import", json={"locations": rows})
    assert answer.status_code == 422
    found = {(e["line"], e["field"]) for e in answer.json()["row_errors"]}
    assert found == {(2, "/locations/1/type"), (3, "/locations/2"), (4, "/locations/3/size")}
    assert warehouse.get(f"{WH}/locations/A-1").status_code == 404


def test_a_csv_header_with_an_unknown_column_is_rejected_on_line_1(warehouse: ApiClient) -> None:
    text = "code,type,colour\nA-1,storage,red\n"
    answer = warehouse.post(f"{WH}/locations:import", content=text.encode(), headers=CSV)
    assert answer.status_code == 422
    assert answer.json()["row_errors"][0]["line"] == 1


def test_an_import_body_that_is_not_json_is_400_and_not_a_list_is_422(
    warehouse: ApiClient,
) -> None:
    headers = {"Content-Type": "application/json"}
    broken = warehouse.post(f"{WH}/locations:import", content=b"{oops", headers=headers)
    assert broken.status_code == 400
    assert broken.json()["type"] == PROBLEMS + "malformed-json"
    wrong = warehouse.post(f"{WH}/locations:import", json={"locations": {"code": "A"}})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "/locations"


def test_an_import_body_nested_too_deep_is_400_not_a_500(warehouse: ApiClient) -> None:
    # Past its nesting limit json.loads raises RecursionError, not ValueError: a 500.
    headers = {"Content-Type": "application/json"}
    answer = warehouse.post(f"{WH}/locations:import", content=b"[" * 20_000, headers=headers)
    assert answer.status_code == 400, answer.text[:200]
    assert answer.json()["type"] == PROBLEMS + "malformed-json"


def test_an_import_into_an_unknown_warehouse_is_404(api: ApiClient) -> None:
    answer = api.post("/warehouses/NOPE/locations:import", json={"locations": [location("A")]})
    assert answer.status_code == 404
    bad_header = b"colour\nred\n"
    csv_answer = api.post("/warehouses/NOPE/locations:import", content=bad_header, headers=CSV)
    assert csv_answer.status_code == 404


def test_an_import_of_ten_thousand_locations_succeeds(
    warehouse: ApiClient, database_url: str
) -> None:
    header = "code,type,zone,pick_sequence,capacity_units\n"
    lines = [f"L-{n:05},storage,{'AB'[n % 2]},{n},100" for n in range(10_000)]
    body = (header + "\n".join(lines) + "\n").encode()
    answer = warehouse.post(f"{WH}/locations:import", content=body, headers=CSV)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"created": 10_000, "updated": 0}
    again = warehouse.post(f"{WH}/locations:import", content=body, headers=CSV)
    assert again.json() == {"created": 0, "updated": 10_000}
    stored = "SELECT count(*) FROM wms.locations WHERE code LIKE %s"
    assert scalar(database_url, stored, "L-%") == 10_000


# -- putaway rules ------------------------------------------------------------------


def test_putaway_rules_are_replaced_whole_and_read_back_in_order(warehouse: ApiClient) -> None:
    assert warehouse.get(f"{WH}/putaway-rules").json() == {"rules": []}
    rules = [
        {"sku": "SKU-1", "zone": "B", "allow_mixed_lots": True},
        {"velocity_class": "A", "zone": "A"},
        {"category": "frozen", "zone": "B"},
    ]
    answer = warehouse.put(f"{WH}/putaway-rules", json={"rules": rules})
    assert answer.status_code == 200, answer.text
    stored = warehouse.get(f"{WH}/putaway-rules").json()
    assert stored == answer.json()
    assert [(r["position"], r["zone"]) for r in stored["rules"]] == [(1, "B"), (2, "A"), (3, "B")]
    assert stored["rules"][0]["allow_mixed_lots"] is True
    assert stored["rules"][1]["velocity_class"] == "A"
    shorter = warehouse.put(f"{WH}/putaway-rules", json={"rules": [{"zone": "A"}]})
    assert [r["zone"] for r in shorter.json()["rules"]] == ["A"]


def test_a_putaway_rule_naming_an_unknown_zone_is_422_and_keeps_the_old_list(
    warehouse: ApiClient,
) -> None:
    assert warehouse.put(f"{WH}/putaway-rules", json={"rules": [{"zone": "A"}]}).status_code == 200
    rules = [{"zone": "A"}, {"zone": "B"}, {"zone": "ZZ"}]
    answer = warehouse.put(f"{WH}/putaway-rules", json={"rules": rules})
    assert answer.status_code == 422
    assert answer.json()["type"] == PROBLEMS + "unknown-reference"
    assert answer.json()["errors"][0]["field"] == "/rules/2/zone"
    assert [r["zone"] for r in warehouse.get(f"{WH}/putaway-rules").json()["rules"]] == ["A"]


def test_putaway_rules_of_an_unknown_warehouse_are_404(api: ApiClient) -> None:
    assert api.get("/warehouses/NOPE/putaway-rules").status_code == 404
    assert api.put("/warehouses/NOPE/putaway-rules", json={"rules": []}).status_code == 404


# -- tenancy, audit and events ------------------------------------------------------


def test_another_tenants_warehouse_and_locations_answer_404(
    warehouse: ApiClient, make_tenant: Callable[[], TenantKeys]
) -> None:
    assert warehouse.post(f"{WH}/locations", json=location("A-1")).status_code == 201
    other = warehouse.as_key(make_tenant().keys[Role.ADMIN])
    assert other.get(f"{WH}/locations/A-1").status_code == 404
    assert other.get(f"{WH}/locations").status_code == 404
    assert other.get(f"{WH}/zones").status_code == 404
    assert other.patch(f"{WH}/locations/A-1", json={"active": False}).status_code == 404
    assert other.post(f"{WH}/zones", json={"code": "Q"}).status_code == 404
    imported = other.post(f"{WH}/locations:import", json={"locations": [location("A-1")]})
    assert imported.status_code == 404
    assert other.get(f"{WH}/putaway-rules").status_code == 404
    assert warehouse.get(f"{WH}/locations/A-1").json()["active"] is True


def test_each_command_writes_an_audit_row_and_an_event(
    warehouse: ApiClient, database_url: str
) -> None:
    assert warehouse.post(f"{WH}/locations", json=location("A-1", zone="A")).status_code == 201
    assert warehouse.patch(f"{WH}/locations/A-1", json={"pick_sequence": 4}).status_code == 200
    assert warehouse.put(f"{WH}/putaway-rules", json={"rules": [{"zone": "A"}]}).status_code == 200
    audited = (
        "SELECT count(*) FROM wms.audit_log WHERE entity = %s AND entity_id = %s AND action = %s"
    )
    assert scalar(database_url, audited, "zone", "SP1/A", "created") == 1
    assert scalar(database_url, audited, "location", "SP1/A-1", "created") == 1
    assert scalar(database_url, audited, "location", "SP1/A-1", "updated") == 1
    assert scalar(database_url, audited, "putaway_rules", "SP1", "replaced") == 1
    events = "SELECT count(*) FROM wms.outbox WHERE type = %s AND aggregate_id = %s"
    assert scalar(database_url, events, "wms.zone.created", "SP1/A") == 1
    assert scalar(database_url, events, "wms.location.created", "SP1/A-1") == 1
    assert scalar(database_url, events, "wms.location.updated", "SP1/A-1") == 1
    assert scalar(database_url, events, "wms.putaway_rules.replaced", "SP1") == 1
    data = scalar(database_url, "SELECT data FROM wms.outbox WHERE type = 'wms.location.updated'")
    assert data["zone"] == "A"
    assert data["pick_sequence"] == 4
    assert "id" not in data


def test_an_import_is_idempotent_with_a_key(warehouse: ApiClient, database_url: str) -> None:
    headers = {**CSV, "Idempotency-Key": "import-1"}
    text = b"code,type\nA-1,storage\n"
    first = warehouse.post(f"{WH}/locations:import", content=text, headers=headers)
    again = warehouse.post(f"{WH}/locations:import", content=text, headers=headers)
    assert first.json() == again.json() == {"created": 1, "updated": 0}
    assert again.headers["idempotent-replayed"] == "true"
    imported = "SELECT count(*) FROM wms.outbox WHERE type = 'wms.locations.imported'"
    assert scalar(database_url, imported) == 1


def test_the_import_is_described_in_openapi_for_json_and_csv(api: ApiClient) -> None:
    spec = api.client.get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/warehouses/{wh}/locations:import"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    assert "$defs" not in str(content)
    assert "LocationType" in spec["components"]["schemas"]
    rejected = operation["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert rejected == {"$ref": "#/components/schemas/ImportProblem"}
    assert "row_errors" in spec["components"]["schemas"]["ImportProblem"]["properties"]


# -- what a location's type and state keep from changing ----------------------------


def must(response: Any, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def received_and_put_away(api: ApiClient, quantity: int = 10) -> dict[str, Any]:
    """``quantity`` SKU-1 received at DOCK-1 and put away where suggested; the task."""
    line = {"sku": "SKU-1", "quantity": quantity}
    asn = must(api.post("/asns", json={"reference": "PO-1", "warehouse": "SP1", "supplier": "S",
                                       "expected_at": "2026-12-01T12:00:00Z",
                                       "lines": [line]}))  # fmt: skip
    scan = {"location": "DOCK-1", **line, "condition": "good"}
    receipt = must(api.post(f"/asns/{asn['id']}/receipts", json=scan))
    (task,) = receipt["putaway_tasks"]
    must(api.post(f"/putaway-tasks/{task['id']}/confirm"), 200)
    return dict(task)


def inbound_master_data(api: ApiClient) -> None:
    must(api.post(f"{WH}/locations", json={"code": "DOCK-1", "type": "dock"}))
    must(api.post(f"{WH}/locations", json=location("A-01", pick_sequence=10)))
    must(api.post("/products", json={"sku": "SKU-1", "description": "Widget"}))


def test_the_outbound_staging_location_keeps_its_type(warehouse: ApiClient) -> None:
    # Used to go wrong: an empty OUTBOUND could be made storage (PATCH or import); putaway
    # then filled it first (pick_sequence 0) with stock allocation never takes from there.
    inbound_master_data(warehouse)
    staging = "location OUTBOUND is the warehouse's outbound staging location"
    patched = warehouse.patch(f"{WH}/locations/OUTBOUND", json={"type": "storage"})
    assert patched.status_code == 409, patched.text
    assert patched.json()["type"] == PROBLEMS + "conflict"
    assert staging in patched.json()["detail"]
    imported = warehouse.post(f"{WH}/locations:import", content=b"code,type\nOUTBOUND,pick\n",
                              headers=CSV)  # fmt: skip
    assert imported.status_code == 422, imported.text
    [error] = imported.json()["row_errors"]
    assert (error["line"], error["field"]) == (2, "type")
    assert staging in error["message"]
    assert must(warehouse.get(f"{WH}/locations/OUTBOUND"), 200)["type"] == "staging"
    # What does not change its type still goes through.
    must(warehouse.patch(f"{WH}/locations/OUTBOUND", json={"type": "staging"}), 200)

    task = received_and_put_away(warehouse)
    must(warehouse.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 5})))
    allocated = must(warehouse.post("/orders/SO-1/allocate"), 200)
    assert (task["suggested_location"], allocated["status"]) == ("A-01", "allocated")


def test_putaway_never_suggests_the_outbound_staging_location(
    warehouse: ApiClient, database_url: str
) -> None:
    # Used to go wrong: an OUTBOUND already made storage (before the type lock) came first
    # among the putaway candidates, so received stock went where no order could have it.
    inbound_master_data(warehouse)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE wms.locations SET type = 'storage' WHERE code = 'OUTBOUND'")
    assert received_and_put_away(warehouse)["suggested_location"] == "A-01"


def levels_then_demand(api: ApiClient, tenant: TenantKeys, database_url: str, **change: Any) -> Any:
    """Levels at the empty pick face P-01, ``change`` PATCHed onto it, then an allocation
    of SKU-1 from reserve at A-01; the open replenishment tasks."""
    build_world(api, tenant, database_url)
    must(api.put(f"{WH}/locations/P-01/replenishment", json={"sku": "SKU-1", "min": 2,
                                                               "max": 8}), 200)  # fmt: skip
    must(api.patch(f"{WH}/locations/P-01", json=change), 200)
    stock(api, "A-01", 20)
    must(api.post("/orders", json=order_body("SO-1", {"sku": "SKU-1", "quantity": 2})))
    must(api.post("/orders/SO-1/allocate"), 200)
    return must(api.get("/replenishment-tasks", params={"status": "open"}), 200)["items"]


def test_a_location_that_stops_being_a_pick_face_gets_no_replenishment(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Used to go wrong: the levels outlived the face; P-01 made a shipping location still
    # got reserve stock sent to it, where allocation never takes it.
    assert levels_then_demand(api, tenant, database_url, type="shipping") == []


def test_a_deactivated_pick_face_gets_no_replenishment_it_cannot_take(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Used to go wrong: the deactivated P-01 got a task every confirmation refused (409
    # inactive) while it kept reserve units promised.
    assert levels_then_demand(api, tenant, database_url, active=False) == []


def test_a_location_type_does_not_change_under_a_count_awaiting_approval(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Used to go wrong: the empty A-02, where a count found 5 units, could be made a dock;
    # approval then put the 5 units on a dock with no putaway task to move them on.
    build_world(api, tenant, database_url)
    count = must(api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-02"]}))
    found = {"results": [{"location": "A-02", "sku": "SKU-1", "lot": None, "counted": 5}]}
    must(api.post(f"/cycle-counts/{count['id']}/results", json=found), 200)
    must(api.post(f"/cycle-counts/{count['id']}/results", json=found), 200)  # the recount

    refused = api.patch(f"{WH}/locations/A-02", json={"type": "dock"})
    assert refused.status_code == 409, refused.text
    assert "A-02 is in a cycle count awaiting approval" in refused.json()["detail"]
    imported = api.post(f"{WH}/locations:import", json={"locations": [
        {"code": "A-02", "type": "dock"}]})  # fmt: skip
    assert imported.status_code == 422, imported.text
    assert imported.json()["row_errors"][0]["field"] == "/locations/0/type"
    must(api.post(f"/cycle-counts/{count['id']}/approve"), 200)
    assert must(api.get(f"{WH}/locations/A-02"), 200)["type"] == "storage"
