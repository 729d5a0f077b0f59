"""Regressions found by contract fuzzing (tests/fuzz), and the OpenAPI document's promises."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import ApiClient

WAREHOUSE = {"code": "SP1", "name": "São Paulo 1", "timezone": "America/Sao_Paulo"}


def openapi(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def test_a_carrier_cutoff_with_an_offset_is_422_not_500(api: ApiClient) -> None:
    # Was a 500: "23:28:05.5-16:45" reached PostgreSQL, which refused the offset.
    assert api.post("/warehouses", json=WAREHOUSE).status_code == 201
    for bad in ("23:28:05.5-16:45", "13:09:47Z", "24:00", "7:30", "08:15:30"):
        answer = api.put(
            "/warehouses/SP1/carrier-cutoffs", json={"cutoffs": [{"carrier": "C", "time": bad}]}
        )
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["errors"][0]["field"] == "/cutoffs/0/time"
    good = api.put(
        "/warehouses/SP1/carrier-cutoffs",
        json={"cutoffs": [{"carrier": "C", "time": "17:30"}, {"carrier": "D", "time": "08:15"}]},
    )
    assert good.status_code == 200, good.text
    assert good.json()["carrier_cutoffs"] == [
        {"carrier": "C", "time": "17:30"},
        {"carrier": "D", "time": "08:15"},
    ]


def test_kpi_hours_are_rfc3339_with_the_warehouse_offset(api: ApiClient) -> None:
    # Was a response-schema violation: "2026-11-29T19:00:00" is no date-time.
    assert api.post("/warehouses", json=WAREHOUSE).status_code == 201
    api.post("/products", json={"sku": "SKU-1", "description": "Widget"})
    order = {"number": "SO-1", "warehouse": "SP1", "carrier": "C",
             "ship_to": {"name": "A", "line1": "L", "city": "C", "postal_code": "1",
                         "country": "BR"},
             "lines": [{"sku": "SKU-1", "quantity": 1}]}  # fmt: skip
    assert api.post("/orders", json=order).status_code in (200, 201)
    hours = api.get("/reports/kpis", params={"warehouse": "SP1"}).json()["orders_received_per_hour"]
    assert len(hours) == 1
    assert hours[0]["hour"].endswith("-03:00")


def test_a_repeated_asn_answers_200_and_the_contract_says_so(api: ApiClient) -> None:
    # Was an undocumented status: the idempotent re-send of an ASN answers 200.
    assert api.post("/warehouses", json=WAREHOUSE).status_code == 201
    api.post("/products", json={"sku": "SKU-1", "description": "Widget"})
    asn = {"reference": "PO-1", "warehouse": "SP1", "supplier": "ACME",
           "lines": [{"sku": "SKU-1", "quantity": 5}]}  # fmt: skip
    assert api.post("/asns", json=asn).status_code == 201
    assert api.post("/asns", json=asn).status_code == 200
    responses = openapi(api.client)["paths"]["/api/v1/asns"]["post"]["responses"]
    assert {"200", "201"} <= set(responses)


def test_405_allows_every_method_of_the_path_not_only_the_first_route(api: ApiClient) -> None:
    # Was `Allow: POST` for /asns, which also serves GET (one route per method).
    answer = api.request("OPTIONS", "/asns")
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"
    assert {m.strip() for m in answer.headers["allow"].split(",")} >= {"GET", "POST"}
    single = api.request("DELETE", "/settings")
    assert {m.strip() for m in single.headers["allow"].split(",")} >= {"GET", "PATCH"}


def test_control_characters_and_impossible_ids_are_422_before_any_lookup(api: ApiClient) -> None:
    for path, params in [
        ("/products", {"barcode": "78\x0091"}),
        ("/inventory", {"sku": "SKU\x01"}),
        ("/audit", {"entity": "warehouse\x7f"}),
    ]:
        answer = api.get(path, params=params)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["errors"][0]["location"] == "query"
    assert api.get(f"/asns/{2**63}").status_code == 422  # beyond int64
    assert api.get("/asns/0").status_code == 422
    bad_name = api.post("/warehouses", json={**WAREHOUSE, "name": "São\x00Paulo"})
    assert bad_name.status_code == 422
    assert bad_name.json()["errors"][0]["field"] == "/name"


def test_the_openapi_document_describes_errors_headers_links_and_examples(
    test_client: TestClient,
) -> None:
    document = openapi(test_client)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not path.startswith("/api/v1"):
                continue  # /health/ready's 503 is its own JSON body (API.md)
            responses = operation["responses"]
            for status, response in responses.items():
                if status[0] in "45":
                    assert set(response["content"]) == {"application/problem+json"}, (path, status)
            assert operation["security"] == [{"HTTPBearer": []}], path
            assert "**Roles:**" in operation["description"], path
            assert {"401", "403", "422", "429"} <= set(responses), (method, path)
            assert responses["429"]["headers"]["Retry-After"]["required"] is True
            if "201" in responses:
                assert responses["201"]["headers"]["Location"]["required"] is True, path
            if "requestBody" in operation and method != "get":
                assert {"400", "413", "415"} <= set(responses), (method, path)
    orders = document["paths"]["/api/v1/orders"]["post"]["responses"]["201"]["links"]
    assert orders["GetOrder"]["parameters"] == {"number": "$response.body#/number"}
    assert orders["GetOrder"]["operationRef"] == "#/paths/~1api~1v1~1orders~1{number}/get"
    schemas = document["components"]["schemas"]
    assert schemas["NewWarehouse"]["examples"][0]["code"] == "SP1"
    assert schemas["NewOrder"]["additionalProperties"] is False
    assert "410" in document["paths"]["/api/v1/events"]["get"]["responses"]


def test_response_statuses_are_enums_and_addresses_are_objects(test_client: TestClient) -> None:
    """API.md: strict response models (enums for statuses, no free-form objects)."""
    schemas = openapi(test_client)["components"]["schemas"]

    def resolved(prop: dict[str, Any]) -> dict[str, Any]:
        ref = prop.get("$ref", "")
        return schemas[ref.rsplit("/", 1)[-1]] if ref else prop

    for name, schema in schemas.items():
        if name in {"Problem", "ImportProblem"}:
            continue  # RFC 9457's status is the HTTP status, an integer
        status = schema.get("properties", {}).get("status")
        if status is not None:
            assert {"enum", "const"} & set(resolved(status)), name
    for name in ("Order", "ManifestOrder"):
        ship_to = resolved(schemas[name]["properties"]["ship_to"])
        assert {"name", "line1", "city", "postal_code", "country"} <= set(ship_to["required"])


def test_batch_confirmations_refuse_task_ids_beyond_int64_with_a_pointer(api: ApiClient) -> None:
    too_big = 2**63
    for path, item in [
        ("/pick-tasks:confirm", {"task": too_big, "location": "A-01", "sku": "SKU-1",
                                 "quantity": 1}),
        ("/putaway-tasks:confirm", {"task": too_big}),
    ]:  # fmt: skip
        response = api.post(path, json={"confirmations": [item]})
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "/confirmations/0/task"


def test_an_unknown_warehouse_in_a_path_or_a_report_s_query_is_404(api: ApiClient) -> None:
    # Was a 422 on the replenishment level, with a field (/warehouse) the body does not have.
    level = {"sku": "SKU-1", "min": 1, "max": 2}
    for answer in (
        api.put("/warehouses/NOPE/locations/P-01/replenishment", json=level),
        api.get("/warehouses/NOPE/locations"),
        # The reports answer a query naming an unknown warehouse alike (manifests: 422).
        api.get("/manifests", params={"warehouse": "NOPE", "date": "2026-12-01"}),
        api.get("/reports/stock-summary", params={"warehouse": "NOPE"}),
        api.get("/reports/kpis", params={"warehouse": "NOPE"}),
    ):
        assert answer.status_code == 404, answer.text
        assert answer.json()["type"].endswith("/not-found")


def test_a_manifest_date_past_the_calendar_s_arithmetic_is_422_not_500(
    api: ApiClient,
) -> None:
    # 9999-12-31 was a 500: the day after it overflows Python's dates.
    assert api.post("/warehouses", json=WAREHOUSE).status_code == 201
    for day in ("9999-12-31", "0001-01-01"):
        answer = api.get("/manifests", params={"warehouse": "SP1", "date": day})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "date"
    assert api.get("/manifests", params={"warehouse": "SP1", "date": "2026-12-01"}).is_success


def test_a_whole_body_check_points_at_the_member_to_fix(api: ApiClient) -> None:
    # Was field "/", which as a JSON Pointer names a member called "".
    cases = [
        (api.put("/warehouses/SP1/locations/P-01/replenishment",
                 json={"sku": "SKU-1", "min": 9, "max": 2}), "/min"),
        (api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"],
                                         "skus": ["SKU-1"]}), "/locations"),
        (api.post("/pick-tasks/1/confirm", json={"location": "P-01", "quantity": 1}), "/sku"),
        (api.post("/pick-tasks:confirm", json={"confirmations": [
            {"task": 1, "location": "P-01", "sku": "SKU-1", "quantity": 1},
            {"task": 2, "location": "P-01", "quantity": 1}]}), "/confirmations/1/sku"),
    ]  # fmt: skip
    for answer, field in cases:
        assert answer.status_code == 422, answer.text
        assert [error["field"] for error in answer.json()["errors"]] == [field], answer.text
