"""Products over HTTP: create, read, list, patch, barcodes, import (JSON and CSV), tenancy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from tests.conftest import ApiClient, TenantKeys
from tests.integration.stock_world import build_world
from tests.integration.test_inbound import build_inbound_world, new_asn, scan
from tests.integration.test_orders import order_body, stock
from wms.domain.roles import Role

PROBLEM = "https://wms.example/problems/"
WIDGET: dict[str, Any] = {
    "sku": "SKU-1",
    "description": "Widget",
    "barcodes": ["7891234567895"],
    "lot_tracked": False,
    "expiry_tracked": False,
    "uoms": [{"code": "CASE", "factor": 12, "barcodes": ["17891234567892"]}],
}


def product(sku: str, *barcodes: str, **fields: Any) -> dict[str, Any]:
    """A minimal product body."""
    return {"sku": sku, "description": f"Product {sku}", "barcodes": list(barcodes), **fields}


def create(api: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    """POST a product and return it, failing the test unless it was created."""
    response = api.post("/products", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def import_csv(api: ApiClient, text: str) -> Any:
    """POST ``text`` as a CSV import."""
    return api.post("/products:import", content=text.encode(), headers={"Content-Type": "text/csv"})


def all_skus(api: ApiClient) -> list[str]:
    """Every SKU of the tenant, following the cursors."""
    skus: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = api.get("/products", params=params).json()
        skus += [item["sku"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return skus


def test_a_created_product_reads_back_with_its_barcodes_and_units(api: ApiClient) -> None:
    response = api.post("/products", json=WIDGET)

    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/products/SKU-1"
    body = response.json()
    assert body["barcodes"] == ["7891234567895"]
    assert body["uoms"] == [{"code": "CASE", "factor": 12, "barcodes": ["17891234567892"]}]
    assert body["base_uom"] == "EA"
    assert body["active"] is True
    assert "id" not in body
    assert api.get("/products/SKU-1").json() == body


def test_optional_attributes_are_stored_and_shown_as_numbers(api: ApiClient) -> None:
    body = product(
        "SKU-2",
        velocity_class="A",
        category="tools",
        weight_kg=1.25,
        length_cm=10.5,
        width_cm=4,
        height_cm=3,
        allocation_strategy="fefo",
        over_receipt_tolerance_pct=2.5,
        min_shelf_life_days=30,
        lot_tracked=True,
        expiry_tracked=True,
        base_uom="KG",
    )

    created = create(api, body)

    assert created["weight_kg"] == 1.25
    assert created["width_cm"] == 4
    assert created["over_receipt_tolerance_pct"] == 2.5
    assert created["allocation_strategy"] == "fefo"
    assert created["base_uom"] == "KG"


def test_creating_a_sku_that_exists_is_a_conflict(api: ApiClient) -> None:
    create(api, WIDGET)

    response = api.post("/products", json=product("SKU-1"))

    assert response.status_code == 409
    assert response.json()["type"] == PROBLEM + "conflict"


def test_patch_changes_only_the_fields_given(api: ApiClient) -> None:
    create(api, WIDGET)

    response = api.patch("/products/SKU-1", json={"description": "Blue widget", "category": "X"})

    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "Blue widget"
    assert body["category"] == "X"
    assert body["barcodes"] == WIDGET["barcodes"]
    assert body["uoms"][0]["code"] == "CASE"


def test_patch_replaces_the_barcode_and_unit_lists_when_given(api: ApiClient) -> None:
    create(api, WIDGET)

    body = api.patch(
        "/products/SKU-1",
        json={"barcodes": ["111", "222"], "uoms": [{"code": "PAL", "factor": 480}]},
    ).json()

    assert body["barcodes"] == ["111", "222"]
    assert body["uoms"] == [{"code": "PAL", "factor": 480, "barcodes": []}]
    assert api.get("/products", params={"barcode": "17891234567892"}).json()["items"] == []


def test_patch_with_null_clears_an_optional_field_but_not_a_required_one(api: ApiClient) -> None:
    create(api, product("SKU-1", category="tools"))

    cleared = api.patch("/products/SKU-1", json={"category": None})
    refused = api.patch("/products/SKU-1", json={"description": None})

    assert cleared.json()["category"] is None
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["/description"]


def test_a_barcode_can_move_from_a_unit_to_the_product_in_one_patch(api: ApiClient) -> None:
    create(api, WIDGET)

    response = api.patch("/products/SKU-1", json={"barcodes": ["17891234567892"], "uoms": []})

    assert response.status_code == 200
    assert response.json()["barcodes"] == ["17891234567892"]


def test_a_product_is_found_by_its_own_barcode_or_a_unit_barcode(api: ApiClient) -> None:
    create(api, WIDGET)
    create(api, product("SKU-2", "555"))

    by_product = api.get("/products", params={"barcode": "7891234567895"}).json()
    by_unit = api.get("/products", params={"barcode": "17891234567892"}).json()
    unknown = api.get("/products", params={"barcode": "000"}).json()

    assert [p["sku"] for p in by_product["items"]] == ["SKU-1"]
    assert [p["sku"] for p in by_unit["items"]] == ["SKU-1"]
    assert unknown == {"items": [], "next_cursor": None}


def test_a_barcode_of_another_product_is_a_conflict_naming_it(api: ApiClient) -> None:
    create(api, WIDGET)

    response = api.post("/products", json=product("SKU-2", "999", "7891234567895"))

    assert response.status_code == 409
    problem = response.json()
    assert problem["barcode"] == "7891234567895"
    assert problem["field"] == "/barcodes/1"
    assert problem["used_by_sku"] == "SKU-1"
    assert "7891234567895" in problem["detail"]
    assert api.get("/products/SKU-2").status_code == 404


def test_a_barcode_of_another_products_unit_is_a_conflict_too(api: ApiClient) -> None:
    create(api, WIDGET)
    create(api, product("SKU-2"))
    uoms = [{"code": "BOX", "factor": 6, "barcodes": ["7891234567895"]}]

    on_create = api.post("/products", json=product("SKU-3", "17891234567892"))
    on_patch = api.patch("/products/SKU-2", json={"uoms": uoms})

    assert on_create.status_code == 409
    assert on_create.json()["used_by_uom"] == "CASE"
    assert on_patch.status_code == 409
    assert on_patch.json()["field"] == "/uoms/0/barcodes/0"


def test_a_barcode_given_twice_for_one_product_is_invalid(api: ApiClient) -> None:
    body = product("SKU-1", "123", uoms=[{"code": "CASE", "factor": 12, "barcodes": ["123"]}])

    response = api.post("/products", json=body)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["/uoms/0/barcodes/0"]


def test_unit_rules_are_checked_with_json_pointers(api: ApiClient) -> None:
    body = product(
        "SKU-1",
        uoms=[
            {"code": "EA", "factor": 2},
            {"code": "CASE", "factor": 6},
            {"code": "CASE", "factor": 12},
        ],
        expiry_tracked=True,
    )

    response = api.post("/products", json=body)

    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"/uoms/0/code", "/uoms/2/code", "/expiry_tracked"}


def test_schema_errors_point_at_the_field(api: ApiClient) -> None:
    body = {**product("bad sku!"), "colour": "red", "uoms": [{"code": "CS", "factor": 0}]}

    response = api.post("/products", json=body)

    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"/sku", "/colour", "/uoms/0/factor"}


def test_an_unknown_sku_is_not_found(api: ApiClient) -> None:
    assert api.get("/products/NOPE").status_code == 404
    response = api.patch("/products/NOPE", json={"description": "x"})
    assert response.status_code == 404
    assert response.json()["type"] == PROBLEM + "not-found"


def test_lists_filter_by_category_and_active_flag(api: ApiClient) -> None:
    create(api, product("A1", category="tools"))
    create(api, product("A2", category="tools", active=False))
    create(api, product("B1", category="food"))

    def skus(**params: Any) -> list[str]:
        return [p["sku"] for p in api.get("/products", params=params).json()["items"]]

    assert skus(category="tools") == ["A1", "A2"]
    assert skus(category="tools", active="false") == ["A2"]
    assert skus(active="true") == ["A1", "B1"]
    assert skus(sku="B1") == ["B1"]


def test_keyset_paging_returns_each_product_exactly_once(api: ApiClient) -> None:
    for i in range(7):
        create(api, product(f"P{i}", category="c"))
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3, "category": "c"}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/products", params=params).json()
        seen += [p["sku"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [f"P{i}" for i in range(7)]


def test_a_cursor_is_bound_to_its_filters(api: ApiClient) -> None:
    for i in range(3):
        create(api, product(f"P{i}", category="c"))
    cursor = api.get("/products", params={"limit": 1, "category": "c"}).json()["next_cursor"]

    response = api.get("/products", params={"limit": 1, "category": "d", "cursor": cursor})

    assert response.status_code == 422
    assert response.json()["type"] == PROBLEM + "invalid-cursor"


def test_another_tenant_cannot_see_the_products(
    api: ApiClient, make_tenant: Callable[[], TenantKeys]
) -> None:
    create(api, WIDGET)
    other = api.as_key(make_tenant().keys[Role.ADMIN])

    assert other.get("/products/SKU-1").status_code == 404
    assert other.get("/products").json()["items"] == []
    assert other.get("/products", params={"barcode": "7891234567895"}).json()["items"] == []
    assert other.patch("/products/SKU-1", json={"description": "x"}).status_code == 404
    # Barcodes are unique per tenant, not across tenants.
    assert other.post("/products", json=WIDGET).status_code == 201


def test_roles_without_master_data_rights_cannot_create_products(
    api: ApiClient, tenant: TenantKeys
) -> None:
    readonly = api.as_key(tenant.keys[Role.READONLY])
    integration = api.as_key(tenant.keys[Role.INTEGRATION])

    assert readonly.post("/products", json=WIDGET).status_code == 403
    assert integration.post("/products", json=WIDGET).status_code == 201
    assert readonly.get("/products/SKU-1").status_code == 200


def test_a_repeated_post_with_the_same_idempotency_key_is_replayed(api: ApiClient) -> None:
    headers = {"Idempotency-Key": "create-sku-1"}
    first = api.post("/products", json=WIDGET, headers=headers)

    again = api.post("/products", json=WIDGET, headers=headers)

    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def test_commands_write_an_audit_row_and_an_outbox_event(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    create(api, WIDGET)
    api.patch("/products/SKU-1", json={"description": "Changed"})

    with psycopg.connect(database_url) as conn:
        audit = conn.execute(
            "SELECT action, before->>'description', after->>'description', after ? 'id' "
            "FROM wms.audit_log WHERE tenant_id = %s AND entity = 'product' "
            "AND entity_id = 'SKU-1' ORDER BY id",
            (tenant.tenant_id,),
        ).fetchall()
        events = conn.execute(
            "SELECT type, subject, data->>'description' FROM wms.outbox "
            "WHERE tenant_id = %s ORDER BY id",
            (tenant.tenant_id,),
        ).fetchall()

    assert audit == [("created", None, "Widget", False), ("updated", "Widget", "Changed", False)]
    assert events == [
        ("wms.product.created", "product/SKU-1", "Widget"),
        ("wms.product.updated", "product/SKU-1", "Changed"),
    ]


def test_a_patch_that_changes_nothing_writes_nothing(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    created = create(api, WIDGET)

    response = api.patch("/products/SKU-1", json={"description": "Widget"})

    assert response.json()["updated_at"] == created["updated_at"]
    with psycopg.connect(database_url) as conn:
        count = conn.execute(
            "SELECT count(*) FROM wms.outbox WHERE tenant_id = %s", (tenant.tenant_id,)
        ).fetchone()
    assert count == (1,)


# --- import -------------------------------------------------------------------------------


def test_a_json_import_creates_the_products(api: ApiClient) -> None:
    rows = [WIDGET, product("SKU-2", "222"), product("SKU-3", lot_tracked=True)]

    response = api.post("/products:import", json={"products": rows})

    assert response.status_code == 200, response.text
    assert response.json() == {"created": 3, "updated": 0, "unchanged": 0}
    assert api.get("/products/SKU-1").json()["uoms"][0]["barcodes"] == ["17891234567892"]
    assert api.get("/products", params={"barcode": "222"}).json()["items"][0]["sku"] == "SKU-2"


def test_a_csv_import_creates_the_products(api: ApiClient) -> None:
    text = (
        "\ufeffsku,description,base_uom,lot_tracked,expiry_tracked,velocity_class,category,"
        "weight_kg,barcodes,uoms\r\n"
        'SKU-1,"Widget, large",EA,true,true,A,tools,1.5,111|112,"[{""code"": ""CS"", '
        '""factor"": 12, ""barcodes"": [""113""]}]"\r\n'
        "SKU-2,Gadget,,,,,,,,\r\n"
    )

    response = import_csv(api, text)

    assert response.status_code == 200, response.text
    assert response.json() == {"created": 2, "updated": 0, "unchanged": 0}
    widget = api.get("/products/SKU-1").json()
    assert widget["description"] == "Widget, large"
    assert widget["lot_tracked"] is widget["expiry_tracked"] is True
    assert widget["weight_kg"] == 1.5
    assert widget["barcodes"] == ["111", "112"]
    assert widget["uoms"] == [{"code": "CS", "factor": 12, "barcodes": ["113"]}]
    gadget = api.get("/products/SKU-2").json()
    assert (gadget["base_uom"], gadget["barcodes"], gadget["category"]) == ("EA", [], None)


def test_an_import_updates_existing_products_and_keeps_fields_not_given(
    api: ApiClient,
) -> None:
    create(api, WIDGET)
    create(api, product("SKU-2", "222", category="tools"))
    rows = [
        {"sku": "SKU-1", "description": "Widget v2"},
        product("SKU-2", "222", category="tools"),
        product("SKU-3"),
    ]

    response = api.post("/products:import", json={"products": rows})

    assert response.json() == {"created": 1, "updated": 1, "unchanged": 1}
    widget = api.get("/products/SKU-1").json()
    assert widget["description"] == "Widget v2"
    assert widget["barcodes"] == WIDGET["barcodes"]
    assert widget["uoms"][0]["barcodes"] == ["17891234567892"]


def test_an_import_may_move_a_barcode_between_products(api: ApiClient) -> None:
    create(api, product("SKU-1", "111"))
    rows = [product("SKU-1", "999"), product("SKU-2", "111")]

    response = api.post("/products:import", json={"products": rows})

    assert response.status_code == 200, response.text
    assert api.get("/products", params={"barcode": "111"}).json()["items"][0]["sku"] == "SKU-2"


def test_a_json_import_with_bad_rows_is_rejected_with_every_error_and_writes_nothing(
    api: ApiClient,
) -> None:
    create(api, product("OLD", "555", description="Old"))
    rows = [
        product("SKU-1", "111"),
        product("bad sku!"),
        product("SKU-1"),
        product("SKU-4", "111"),
        product("SKU-5", "555"),
        {"sku": "SKU-6"},
        product("SKU-7", lot_tracked=False, expiry_tracked=True),
        {"sku": "OLD", "description": "Renamed"},  # keeps 555: barcodes not given
    ]

    response = api.post("/products:import", json={"products": rows})

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == PROBLEM + "import-rejected"
    errors = {(e["line"], e["field"]) for e in problem["row_errors"]}
    assert errors == {
        (2, "/products/1/sku"),
        (3, "/products/2/sku"),
        (4, "/products/3/barcodes/0"),
        (5, "/products/4/barcodes/0"),
        (6, "/products/5/description"),
        (7, "/products/6/expiry_tracked"),
    }
    assert all_skus(api) == ["OLD"]
    assert api.get("/products/OLD").json()["description"] == "Old"


def test_a_csv_import_reports_physical_line_numbers(api: ApiClient) -> None:
    text = (
        "sku,description,barcodes,weight_kg\n"
        'SKU-1,"two\nlines",111,\n'
        "\n"
        "SKU-2,Fine,111,\n"
        "SKU-3,Heavy,,-1\n"
        "SKU-4,Short\n"
    )

    response = import_csv(api, text)

    assert response.status_code == 422
    errors = [(e["line"], e["field"]) for e in response.json()["row_errors"]]
    assert errors == [(5, "barcodes"), (6, "weight_kg"), (7, "")]
    assert all_skus(api) == []


def test_a_csv_header_with_unknown_or_missing_columns_is_rejected(api: ApiClient) -> None:
    response = import_csv(api, "sku,colour\nSKU-1,red\n")

    assert response.status_code == 422
    errors = {(e["line"], e["field"]) for e in response.json()["row_errors"]}
    assert errors == {(1, "colour"), (1, "description")}


def test_an_import_body_that_is_not_json_or_utf8_is_refused(api: ApiClient) -> None:
    malformed = api.post(
        "/products:import", content=b"{", headers={"Content-Type": "application/json"}
    )
    not_utf8 = api.post(
        "/products:import",
        content=b"sku,description\nA,\xff\n",
        headers={"Content-Type": "text/csv"},
    )
    no_envelope = api.post("/products:import", json=[WIDGET])

    assert malformed.status_code == 400
    assert not_utf8.status_code == 422
    assert not_utf8.json()["row_errors"][0]["line"] == 2
    assert no_envelope.status_code == 422


def test_an_import_body_nested_too_deep_is_malformed_json_not_a_500(api: ApiClient) -> None:
    # Past its nesting limit json.loads raises RecursionError, not ValueError: a 500.
    deep = api.post(
        "/products:import", content=b"[" * 20_000, headers={"Content-Type": "application/json"}
    )
    assert deep.status_code == 400, deep.text[:200]
    assert deep.json()["type"] == PROBLEM + "malformed-json"


def test_a_csv_cell_too_large_or_too_deep_is_a_row_error_not_a_500(api: ApiClient) -> None:
    huge = import_csv(api, "sku,description\nSKU-1," + "x" * 200_000 + "\n")
    assert huge.status_code == 422, huge.text
    assert huge.json()["row_errors"][0]["line"] == 2
    deep = import_csv(api, "sku,description,uoms\nSKU-1,Widget," + "[" * 100_000 + "\n")
    assert deep.status_code == 422, deep.text
    assert [(e["line"], e["field"]) for e in deep.json()["row_errors"]] == [(2, "uoms")]
    assert all_skus(api) == []


def test_an_import_writes_one_audit_row_and_one_event(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    create(api, product("SKU-1"))
    rows = [product("SKU-1", description="New"), product("SKU-2"), product("SKU-3")]

    api.post("/products:import", json={"products": rows})

    with psycopg.connect(database_url) as conn:
        audit = conn.execute(
            "SELECT after FROM wms.audit_log WHERE tenant_id = %s AND action = 'imported'",
            (tenant.tenant_id,),
        ).fetchall()
        events = conn.execute(
            "SELECT data FROM wms.outbox WHERE tenant_id = %s AND type = 'wms.products.imported'",
            (tenant.tenant_id,),
        ).fetchall()
    assert len(audit) == 1
    assert audit[0][0]["created"] == 2
    assert audit[0][0]["updated_skus"] == ["SKU-1"]
    assert events == [({"created": 2, "updated": 1},)]


def test_an_import_of_ten_thousand_products_succeeds(api: ApiClient) -> None:
    header = "sku,description,category,weight_kg,barcodes,uoms\n"
    lines = [
        f'S{i:05d},Product {i},cat{i % 7},0.{i % 9 + 1},B{i}|C{i},"[{{""code"": ""CS"", '
        f'""factor"": 12, ""barcodes"": [""U{i}""]}}]"\n'
        for i in range(10_000)
    ]

    created = import_csv(api, header + "".join(lines))
    again = api.post(
        "/products:import",
        json={"products": [{"sku": f"S{i:05d}", "description": f"v2 {i}"} for i in range(10_000)]},
    )

    assert created.status_code == 200, created.text[:500]
    assert created.json() == {"created": 10_000, "updated": 0, "unchanged": 0}
    assert again.json() == {"created": 0, "updated": 10_000, "unchanged": 0}
    assert len(all_skus(api)) == 10_000
    found = api.get("/products", params={"barcode": "U9999"}).json()["items"]
    assert [(p["sku"], p["description"]) for p in found] == [("S09999", "v2 9999")]


def test_the_import_is_described_in_openapi_for_json_and_csv(api: ApiClient) -> None:
    spec = api.client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/products:import"]["post"]["requestBody"]["content"]
    items = body["application/json"]["schema"]["properties"]["products"]["items"]

    assert set(body) == {"application/json", "text/csv"}
    assert items["$ref"].split("/")[-1] in spec["components"]["schemas"]


def test_an_empty_import_changes_nothing(api: ApiClient) -> None:
    response = api.post("/products:import", json={"products": []})

    assert response.json() == {"created": 0, "updated": 0, "unchanged": 0}


def test_lot_tracking_does_not_change_under_stock(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    """Stock is stored under a lot ('' untracked): flipped under it, every later move or
    adjustment of that stock would have to name a lot it cannot."""
    build_world(api, tenant, database_url)
    stock(api, "A-01", 10)  # SKU-1 is not lot-tracked
    refused = api.patch("/products/SKU-1", json={"lot_tracked": True})
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/conflict")
    imported = api.post("/products:import", json={"products": [
        {"sku": "SKU-1", "description": "Widget", "lot_tracked": True}]})  # fmt: skip
    assert imported.status_code == 422, imported.text
    assert [e["field"] for e in imported.json()["row_errors"]] == ["/products/0/lot_tracked"]
    assert api.get("/products/SKU-1").json()["lot_tracked"] is False
    stock(api, "A-01", -10)  # the stock is still reachable, and once gone the flag may change
    assert api.patch("/products/SKU-1", json={"lot_tracked": True}).status_code == 200


def test_lot_tracking_does_not_change_under_an_order_line_naming_a_lot(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Turned off under SO-1's line for lot L1, the line waited for stock that could never exist.
    build_world(api, tenant, database_url)  # LOT-1: lot- and expiry-tracked, no stock
    line = {"sku": "LOT-1", "quantity": 2, "lot": "L1"}
    assert api.post("/orders", json=order_body("SO-1", line)).status_code == 201
    untracked = {"lot_tracked": False, "expiry_tracked": False}

    refused = api.patch("/products/LOT-1", json=untracked)
    imported = api.post("/products:import", json={"products": [
        {"sku": "LOT-1", "description": "Yoghurt", **untracked}]})  # fmt: skip

    assert refused.status_code == 409, refused.text
    assert "order line" in refused.json()["detail"]
    assert imported.status_code == 422, imported.text
    assert [e["field"] for e in imported.json()["row_errors"]] == ["/products/0/lot_tracked"]
    assert api.get("/products/LOT-1").json()["lot_tracked"] is True
    assert api.post("/orders/SO-1/cancel").status_code == 200
    assert api.patch("/products/LOT-1", json=untracked).status_code == 200


def test_lot_tracking_does_not_change_under_a_count_awaiting_approval(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # The approval added the count's 5 units under no lot to a product turned lot-tracked.
    build_world(api, tenant, database_url)
    count = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-02"]}).json()
    found = {"results": [{"location": "A-02", "sku": "SKU-1", "lot": None, "counted": 5}]}
    for _ in range(2):  # the count and its recount: the count awaits approval
        assert api.post(f"/cycle-counts/{count['id']}/results", json=found).status_code == 200

    refused = api.patch("/products/SKU-1", json={"lot_tracked": True})

    assert refused.status_code == 409, refused.text
    assert "cycle count" in refused.json()["detail"]
    assert api.post(f"/cycle-counts/{count['id']}/approve").status_code == 200
    assert api.get("/products/SKU-1").json()["lot_tracked"] is False


def test_expiry_tracking_turned_on_leaves_known_lots_receivable(api: ApiClient) -> None:
    # Lot L1, stored without an expiry, could never be received once expiry tracking was on.
    build_inbound_world(api)
    create(api, product("LOT-2", lot_tracked=True))
    stock_body = {"warehouse": "SP1", "location": "A-01", "sku": "LOT-2", "lot": "L1",
                  "quantity": 5, "reason": "found"}  # fmt: skip
    assert api.post("/inventory/adjustments", json=stock_body).status_code == 201
    assert api.patch("/products/LOT-2", json={"expiry_tracked": True}).status_code == 200
    asn = new_asn(api, lines=[{"sku": "LOT-2", "quantity": 20}]).json()
    receipts = f"/asns/{asn['id']}/receipts"

    first = api.post(receipts, json=scan(sku="LOT-2", lot="L1", expiry="2031-01-31"))
    again = api.post(receipts, json=scan(sku="LOT-2", lot="L1", expiry="2031-01-31"))
    other = api.post(receipts, json=scan(sku="LOT-2", lot="L1", expiry="2031-02-28"))

    assert (first.status_code, again.status_code) == (201, 201), first.text
    assert other.status_code == 409, other.text
    assert other.json()["type"].endswith("/lot-expiry-conflict")
    items = api.get("/inventory", params={"sku": "LOT-2"}).json()["items"]
    assert {i["lot"]: i["expiry"] for i in items} == {"L1": "2031-01-31"}
    (dated,) = api.get("/audit", params={"entity": "lot"}).json()["items"]
    assert (dated["entity_id"], dated["action"], dated["after"]) == (
        "LOT-2/L1", "expiry_set", {"expiry": "2031-01-31"})  # fmt: skip


def test_a_csv_import_of_bad_rows_is_not_refused_as_too_many_rows(api: ApiClient) -> None:
    # The row limit counted one per bad cell: 25,001 rows were "more than 50000 rows".
    lines = [f"S-{n:05},Widget,maybe,soon" for n in range(25_001)]
    text = "sku,description,lot_tracked,min_shelf_life_days\n" + "\n".join(lines) + "\n"

    answer = import_csv(api, text)

    assert answer.status_code == 422, answer.text[:300]
    assert answer.json()["type"] == PROBLEM + "import-rejected", answer.text[:300]


def test_the_base_unit_does_not_change_under_stock_or_open_lines(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Quantities are stored in base units: 24 EA on hand became 24 cases (PATCH answered 200).
    build_world(api, tenant, database_url)  # SKU-1: base EA, CASE of 12
    stock(api, "A-01", 24)
    in_cases = {"base_uom": "CS", "uoms": []}

    refused = api.patch("/products/SKU-1", json=in_cases)
    imported = api.post("/products:import", json={"products": [
        {"sku": "SKU-1", "description": "Widget", **in_cases}]})  # fmt: skip

    assert refused.status_code == 409, refused.text
    assert refused.json()["field"] == "/base_uom"
    assert imported.status_code == 422, imported.text
    assert [e["field"] for e in imported.json()["row_errors"]] == ["/products/0/base_uom"]
    assert api.get("/products/SKU-1").json()["base_uom"] == "EA"
    stock(api, "A-01", -24)
    # No stock now, but an order line waits for 2 EA.
    assert api.post("/orders", json=order_body("SO-1")).status_code == 201
    assert api.patch("/products/SKU-1", json=in_cases).status_code == 409
    assert api.post("/orders/SO-1/cancel").status_code == 200
    assert api.patch("/products/SKU-1", json=in_cases).json()["base_uom"] == "CS"


def test_the_base_unit_does_not_change_under_an_open_asn_line(api: ApiClient) -> None:
    # An ASN's expected quantity is in base units too.
    build_inbound_world(api)  # SKU-1 on no ASN yet, no stock
    assert new_asn(api).status_code == 201

    refused = api.patch("/products/SKU-1", json={"base_uom": "PC"})

    assert refused.status_code == 409, refused.text
    assert "ASN" in refused.json()["detail"]
