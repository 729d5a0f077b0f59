"""Warehouses, their time zones and carrier cut-offs, and the tenant settings: bad input is
a 422 pointing at the field, and changes nothing."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.conftest import ApiClient
from tests.event_check import outbox_of

WAREHOUSE = {"code": "SP1", "name": "SP", "timezone": "UTC"}
CUTOFFS = "/warehouses/SP1/carrier-cutoffs"


def must(response: Any, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, field: str) -> None:
    """``response`` is a 422 whose first error points at ``field``."""
    assert response.status_code == 422, f"{response.status_code} {response.text[:200]}"
    assert response.json()["errors"][0]["field"] == field, response.text


def test_a_time_zone_naming_a_tzdata_folder_is_422_not_500(api: ApiClient) -> None:
    # Was a 500: ZoneInfo("America") opens a folder and raises IsADirectoryError.
    refused(api.post("/warehouses", json={**WAREHOUSE, "timezone": "America"}), "/timezone")
    assert must(api.get("/warehouses"), 200)["items"] == []
    must(api.post("/warehouses", json=WAREHOUSE))
    refused(api.patch("/warehouses/SP1", json={"timezone": "Etc"}), "/timezone")
    assert must(api.get("/warehouses/SP1"), 200)["timezone"] == "UTC"


# Files zoneinfo loads that a PostgreSQL built with its own tzdata (the embedded one)
# does not know; one using the system's tzdata may know some of them.
SYSTEM_ZONE_FILES = ("right/UTC", "posix/UTC", "localtime", "posixrules")


def test_a_time_zone_postgresql_does_not_know_is_refused(api: ApiClient, database_url: str) -> None:
    # Was stored (zoneinfo loads these files); GET /reports/kpis then answered 500 for good.
    with psycopg.connect(database_url) as conn:
        known = {row[0] for row in conn.execute(
            "SELECT name FROM pg_timezone_names WHERE name = ANY(%s)",
            (list(SYSTEM_ZONE_FILES),))}  # fmt: skip
    unknown = [name for name in SYSTEM_ZONE_FILES if name not in known]
    for name in unknown:
        refused(api.post("/warehouses", json={**WAREHOUSE, "timezone": name}), "/timezone")
    assert must(api.get("/warehouses"), 200)["items"] == []
    must(api.post("/warehouses", json=WAREHOUSE))
    for name in unknown:
        refused(api.patch("/warehouses/SP1", json={"timezone": name}), "/timezone")
    for name in [*sorted(known), "America/Sao_Paulo"]:  # what PostgreSQL knows it can use
        must(api.patch("/warehouses/SP1", json={"timezone": name}), 200)
        must(api.get("/reports/kpis", params={"warehouse": "SP1"}), 200)
    assert must(api.get("/warehouses/SP1"), 200)["timezone"] == "America/Sao_Paulo"


def test_carrier_cutoffs_naming_a_carrier_twice_are_a_validation_error(api: ApiClient) -> None:
    # Was a 409 naming the primary-key constraint, though nothing in the state conflicted.
    must(api.post("/warehouses", json=WAREHOUSE))
    twice = [{"carrier": "CORREIOS", "time": "17:30"}, {"carrier": "CORREIOS", "time": "18:00"}]
    refused(api.put(CUTOFFS, json={"cutoffs": twice}), "/cutoffs/1/carrier")
    assert must(api.get("/warehouses/SP1"), 200)["carrier_cutoffs"] == []


def test_a_carrier_cutoff_with_seconds_is_refused(api: ApiClient) -> None:
    # Was stored with its seconds but read back (and published) as HH:MM: 17:30:45 → 17:30.
    must(api.post("/warehouses", json=WAREHOUSE))
    kept = [{"carrier": "CORREIOS", "time": "17:00"}]
    must(api.put(CUTOFFS, json={"cutoffs": kept}), 200)
    seconds = [{"carrier": "CORREIOS", "time": "17:30:45"}]
    refused(api.put(CUTOFFS, json={"cutoffs": seconds}), "/cutoffs/0/time")
    assert must(api.get("/warehouses/SP1"), 200)["carrier_cutoffs"] == kept


def test_null_for_a_setting_or_a_warehouse_field_is_refused_not_ignored(
    api: ApiClient, database_url: str
) -> None:
    # Was a 200 that changed nothing, yet wrote an audit row and a *.updated event.
    must(api.post("/warehouses", json=WAREHOUSE))
    settings = must(api.get("/settings"), 200)
    for field in (
        "allocation_strategy",
        "backorder_policy",
        "allocate_on_create",
        "over_receipt_tolerance_pct",
        "recount_tolerance_pct",
    ):
        refused(api.patch("/settings", json={field: None}), f"/{field}")
    for field in ("name", "timezone", "active"):
        refused(api.patch("/warehouses/SP1", json={field: None}), f"/{field}")
    assert must(api.get("/settings"), 200) == settings
    assert outbox_of(database_url, "wms.settings.updated") == []
    assert outbox_of(database_url, "wms.warehouse.updated") == []
