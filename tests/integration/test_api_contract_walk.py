"""API.md against every route of the app: bodies, Idempotency-Key in the contract, times."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.conftest import ApiClient

FILL = {"wh": "SP1", "code": "SP1", "id": "1", "number": "SO-1", "sku": "SKU-1", "receipt_id": "1"}
WRITES = {"POST", "PUT", "PATCH"}


def _walk(routes: Any) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found += _walk(inner.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, template) of every /api/v1 route of the app."""
    out = set()
    for route in _walk(client.app.routes):  # type: ignore[attr-defined]
        if route.path_format.startswith("/api/v1"):
            out |= {(m, route.path_format) for m in route.methods}
    return sorted(out, key=lambda x: (x[1], x[0]))


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: FILL[m.group(1)], template)


def order(number: str, quantity: int = 2) -> dict[str, Any]:
    return {
        "number": number, "warehouse": "SP1", "carrier": "CORREIOS", "priority": 5,
        "ship_by": "2030-12-01T18:00:00Z",
        "ship_to": {"name": "Ana", "line1": "Rua A 1", "city": "Sao Paulo",
                    "postal_code": "01000-000", "country": "BR"},
        "lines": [{"sku": "SKU-1", "quantity": quantity}],
    }  # fmt: skip


def small_world(api: ApiClient) -> dict[str, Any]:
    """SP1 with zone A, DOCK-1, A-01, A-02, P-01; SKU-1 (50 at A-01), SKU-2; an open ASN."""

    def ok(resp: httpx.Response, status: int = 201) -> Any:
        assert resp.status_code == status, resp.text
        return resp.json()

    ok(api.post("/warehouses", json={"code": "SP1", "name": "Main", "timezone": "UTC"}))
    ok(api.post("/warehouses", json={"code": "SP2", "name": "Other", "timezone": "UTC"}))
    ok(api.post("/warehouses/SP1/zones", json={"code": "A", "name": "Zone A"}))
    for code, kind, seq in [
        ("DOCK-1", "dock", 1),
        ("A-01", "storage", 10),
        ("A-02", "storage", 20),
        ("P-01", "pick", 5),
    ]:
        ok(
            api.post(
                "/warehouses/SP1/locations",
                json={"code": code, "type": kind, "zone": "A", "pick_sequence": seq},
            )
        )
    ok(api.post("/products", json={"sku": "SKU-1", "description": "Widget"}))
    ok(api.post("/products", json={"sku": "SKU-2", "description": "Other"}))
    ok(
        api.post(
            "/inventory/adjustments",
            json={
                "warehouse": "SP1",
                "location": "A-01",
                "sku": "SKU-1",
                "quantity": 50,
                "reason": "found",
            },
        )
    )
    asn = ok(
        api.post(
            "/asns",
            json={
                "reference": "PO-1",
                "warehouse": "SP1",
                "supplier": "ACME",
                "expected_at": "2030-12-01T12:00:00Z",
                "lines": [{"sku": "SKU-1", "quantity": 30}],
            },
        )
    )
    ok(api.post("/orders", json=order("SO-1")))
    count = ok(api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-02"]}))
    return {"asn": asn["id"], "count": count["id"]}


def _state(api: ApiClient, asn: int) -> tuple[str, str]:
    return (api.get("/orders/SO-1").json()["status"], api.get(f"/asns/{asn}").json()["status"])


def test_malformed_json_is_400_on_every_write_route_and_changes_nothing(api: ApiClient) -> None:
    """API.md: malformed JSON -> 400; bad input changes nothing. Walks every write route.

    The actions without a body model (allocate, cancel, close, approve, release,
    dispatch) never read the body: they ran and answered 200 (or 404/409)."""
    w = small_world(api)
    fill = {**FILL, "id": str(w["asn"])}
    before = _state(api, w["asn"])
    wrong = []
    for method, template in api_routes(api.client):
        if method not in WRITES:
            continue
        path = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: fill[m.group(1)], template)
        resp = api.request(
            method, path, content=b'{"oops": ', headers={"Content-Type": "application/json"}
        )
        if resp.status_code != 400 or not resp.headers["content-type"].startswith(
            "application/problem+json"
        ):
            wrong.append(f"{method} {template} -> {resp.status_code}")
    assert wrong == [], "malformed JSON not refused with 400 by: " + "; ".join(wrong)
    assert _state(api, w["asn"]) == before


def test_unknown_fields_sent_to_a_state_action_are_refused_not_ignored(api: ApiClient) -> None:
    """Every request model forbids unknown fields; the body-less actions ignored them and
    ran."""
    w = small_world(api)
    resp = api.post(f"/asns/{w['asn']}/close", json={"reason": "done", "force": True})
    status = api.get(f"/asns/{w['asn']}").json()["status"]
    assert (resp.status_code, status) == (422, "open"), (resp.status_code, status, resp.text[:200])


def test_openapi_documents_the_idempotency_key_of_every_write(test_client: TestClient) -> None:
    """API.md: every write accepts Idempotency-Key; the OpenAPI document 'must describe
    every endpoint'. No operation listed the header (nor Idempotent-Replayed)."""
    document = test_client.get("/openapi.json").json()
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method.upper() not in WRITES:
                continue
            headers = {
                p["name"].lower()
                for p in operation.get("parameters", [])
                if p.get("in") == "header"
            }
            if "idempotency-key" not in headers:
                missing.append(f"{method.upper()} {path}")
    assert missing == [], f"{len(missing)} write operations without Idempotency-Key: {missing[:5]}"


def test_a_unix_number_is_not_an_rfc3339_time_and_is_refused(api: ApiClient) -> None:
    """API.md: times are RFC 3339 with an offset. pydantic's lax datetime took
    "1700000000" as a Unix time: every time field stored an instant nobody wrote."""
    small_world(api)
    epoch = "1700000000"
    answers = {
        "POST /orders ship_by": api.post("/orders", json={**order("SO-7"), "ship_by": epoch}),
        "POST /asns expected_at": api.post("/asns", json={
            "reference": "PO-9", "warehouse": "SP1", "supplier": "x", "expected_at": epoch,
            "lines": [{"sku": "SKU-1", "quantity": 1}]}),
        "POST /waves filter.ship_by_before": api.post(
            "/waves", json={"warehouse": "SP1", "filter": {"ship_by_before": epoch}}),
        "GET /reports/kpis from": api.get(
            "/reports/kpis", params={"warehouse": "SP1", "from": epoch}),
    }  # fmt: skip
    fields = {"POST /orders ship_by": "/ship_by", "POST /asns expected_at": "/expected_at",
              "POST /waves filter.ship_by_before": "/filter/ship_by_before",
              "GET /reports/kpis from": "from"}  # fmt: skip
    accepted = {}  # what was not refused on its own field
    for name, resp in answers.items():
        errors = resp.json().get("errors") or [] if resp.status_code == 422 else []
        refused = {e["field"] for e in errors}
        if fields[name] not in refused:
            body = resp.json()
            accepted[name] = (
                resp.status_code,
                body.get("ship_by") or body.get("expected_at") or body.get("detail"),
            )
    assert accepted == {}, f"Unix numbers taken as times: {accepted}"


def test_an_action_taking_no_body_accepts_none_or_an_empty_object(api: ApiClient) -> None:
    w = small_world(api)
    assert api.post(f"/asns/{w['asn']}/close", json={}).status_code == 200
    assert api.post("/orders/SO-1/allocate").status_code == 200
    extra = api.post("/orders/SO-1/cancel", json=[1])
    assert (extra.status_code, extra.json()["errors"][0]["field"]) == (422, "/")
