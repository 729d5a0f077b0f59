"""KPIs: hourly throughput in the warehouse's local time, dock-to-stock, cycle times."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
from fastapi.testclient import TestClient

from tests.conftest import ApiClient, TenantKeys, until_sessions_wait_for_locks
from tests.integration.stock_world import build_world
from tests.integration.test_orders import order_body
from wms.app import create_app
from wms.config import Settings

# A finished pick task of SKU-1 at A-01 (of 2 units; a short one picked 1).
_INSERT_PICK = (
    "INSERT INTO wms.pick_tasks (tenant_id, wave_id, warehouse_id, location_id, "
    "product_id, quantity, sequence, status, picked_quantity, picker, picked_at) "
    "SELECT l.tenant_id, %s, l.warehouse_id, l.id, p.id, 2, %s, %s, "
    "CASE WHEN %s = 'short' THEN 1 ELSE 2 END, %s, %s "
    "FROM wms.locations l, wms.products p WHERE l.tenant_id = %s AND l.code = 'A-01' "
    "AND p.tenant_id = l.tenant_id AND p.sku = 'SKU-1'"
)


def _new_wave(conn: psycopg.Connection, tenant_id: int) -> int:
    """A released wave in the tenant's warehouse, for pick tasks inserted directly."""
    row = conn.execute(
        "INSERT INTO wms.waves (tenant_id, warehouse_id, pick_method, status, created_by) "
        "SELECT tenant_id, id, 'discrete', 'released', 'test' FROM wms.warehouses "
        "WHERE tenant_id = %s RETURNING id",
        (tenant_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _insert_pick(
    conn: psycopg.Connection,
    wave: int,
    sequence: int,
    *,
    at: str,
    tenant_id: int,
    picker: str = "ana",
    status: str = "confirmed",
) -> None:
    """A finished pick task of ``wave``, picked by ``picker`` at ``at``."""
    conn.execute(_INSERT_PICK, (wave, sequence, status, status, picker, at, tenant_id))


def test_kpis_count_per_local_hour_and_measure_dock_to_stock(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    build_world(api, tenant, database_url)
    api.patch("/warehouses/SP1", json={"timezone": "America/Sao_Paulo"})
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO wms.locations (tenant_id, warehouse_id, code, type) "
            "SELECT tenant_id, id, 'DOCK-1', 'dock' FROM wms.warehouses WHERE tenant_id = %s",
            (tenant.tenant_id,),
        )
    for number in ("K-1", "K-2", "K-3"):
        assert api.post("/orders", json=order_body(number)).status_code == 201
    with psycopg.connect(database_url) as conn:
        # 12:10Z and 12:50Z are 09:xx in São Paulo (UTC-3); 14:05Z is 11:05 there.
        for number, at in (("K-1", "12:10"), ("K-2", "12:50"), ("K-3", "14:05")):
            conn.execute(
                "UPDATE wms.orders SET created_at = %s WHERE number = %s",
                (f"2026-11-20T{at}:00Z", number),
            )
    asn = api.post(
        "/asns",
        json={"reference": "PO-1", "warehouse": "SP1", "supplier": "ACME",
              "expected_at": "2026-11-20T12:00:00Z", "lines": [{"sku": "SKU-1", "quantity": 5}]},
    )  # fmt: skip
    assert asn.status_code == 201, asn.text
    receipt = api.post(
        f"/asns/{asn.json()['id']}/receipts",
        json={"location": "DOCK-1", "sku": "SKU-1", "quantity": 5, "condition": "good"},
    )
    assert receipt.status_code == 201, receipt.text
    task = api.get("/putaway-tasks", params={"status": "open"}).json()["items"][0]
    assert api.post(f"/putaway-tasks/{task['id']}/confirm", json={}).status_code == 200

    kpis = api.get(
        "/reports/kpis",
        params={"warehouse": "SP1", "from": "2026-11-20T00:00:00-03:00",
                "to": "2026-11-21T00:00:00-03:00"},
    )  # fmt: skip
    assert kpis.status_code == 200, kpis.text
    body = kpis.json()
    assert body["timezone"] == "America/Sao_Paulo"
    assert body["orders_received_per_hour"] == [
        {"hour": "2026-11-20T09:00:00-03:00", "count": 2},  # local hour, with its offset
        {"hour": "2026-11-20T11:00:00-03:00", "count": 1},
    ]
    today = api.get("/reports/kpis", params={"warehouse": "SP1"}).json()
    assert sum(h["count"] for h in today["lines_put_away_per_hour"]) == 1
    assert today["dock_to_stock_seconds"]["count"] == 1
    assert today["dock_to_stock_seconds"]["mean"] >= 0
    assert today["order_cycle_time_seconds"]["count"] == 0


def test_kpi_windows_are_checked(api: ApiClient, tenant: TenantKeys, database_url: str) -> None:
    build_world(api, tenant, database_url)
    naive = api.get("/reports/kpis", params={"warehouse": "SP1", "from": "2026-11-20T00:00:00"})
    assert naive.status_code == 422
    backwards = api.get(
        "/reports/kpis",
        params={"warehouse": "SP1", "from": "2026-11-21T00:00:00Z", "to": "2026-11-20T00:00:00Z"},
    )
    assert backwards.status_code == 422
    too_long = api.get(
        "/reports/kpis",
        params={"warehouse": "SP1", "from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
    )
    assert too_long.status_code == 422
    assert api.get("/reports/kpis", params={"warehouse": "NOPE"}).status_code == 404


def test_pick_accuracy_and_lines_per_picker_hour(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    build_world(api, tenant, database_url)
    with psycopg.connect(database_url) as conn:
        wave = _new_wave(conn, tenant.tenant_id)
        # Three full picks and one short, by two pickers in two hours.
        for n, (status, picker, at) in enumerate(
            [("confirmed", "ana", "10:05"), ("confirmed", "ana", "10:40"),
             ("short", "bo", "10:50"), ("confirmed", "bo", "11:10")],
            start=1,
        ):  # fmt: skip
            at_z = f"2026-11-20T{at}:00Z"
            _insert_pick(
                conn, wave, n, at=at_z, tenant_id=tenant.tenant_id, picker=picker, status=status
            )
    body = api.get(
        "/reports/kpis",
        params={"warehouse": "SP1", "from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"},
    ).json()
    assert body["pick_accuracy_pct"] == {"count": 4, "mean": 75.0}
    assert body["picking_efficiency"] == {
        "lines": 4,
        "picker_hours": 3,
        "lines_per_picker_hour": 1.33,
    }
    assert sum(h["count"] for h in body["lines_picked_per_hour"]) == 4


def test_kpis_keep_the_two_local_hours_of_a_dst_fall_back_apart(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Used to merge New York's 01:00 EDT and 01:00 EST (2026-11-01) into one "-04:00" bucket.
    build_world(api, tenant, database_url)
    assert api.patch("/warehouses/SP1", json={"timezone": "America/New_York"}).status_code == 200
    for number in ("D-1", "D-2"):
        assert api.post("/orders", json=order_body(number)).status_code == 201
    with psycopg.connect(database_url) as conn:
        for number, at in (("D-1", "2026-11-01T05:30:00Z"), ("D-2", "2026-11-01T06:30:00Z")):
            conn.execute("UPDATE wms.orders SET created_at = %s WHERE number = %s", (at, number))
    body = api.get(
        "/reports/kpis",
        params={"warehouse": "SP1", "from": "2026-11-01T00:00:00-04:00",
                "to": "2026-11-02T00:00:00-05:00"},
    ).json()  # fmt: skip
    assert body["orders_received_per_hour"] == [
        {"hour": "2026-11-01T01:00:00-04:00", "count": 1},
        {"hour": "2026-11-01T01:00:00-05:00", "count": 1},
    ]


def test_kpis_with_only_a_very_early_to_are_422_not_500(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Used to be a 500: the default ``from`` (to - 24 h) overflowed Python's datetime.
    build_world(api, tenant, database_url)
    answer = api.get("/reports/kpis", params={"warehouse": "SP1", "to": "0001-01-01T00:00:00Z"})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["errors"][0]["field"] == "to"


def test_picker_hours_are_the_warehouse_s_local_hours_like_the_hourly_series(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    # Used to count UTC hours: 10:10 and 10:50 in Kolkata (04:40Z, 05:20Z) were 2 picker-hours.
    build_world(api, tenant, database_url)
    assert api.patch("/warehouses/SP1", json={"timezone": "Asia/Kolkata"}).status_code == 200
    with psycopg.connect(database_url) as conn:
        wave = _new_wave(conn, tenant.tenant_id)
        for n, at in enumerate(("2026-11-20T04:40:00Z", "2026-11-20T05:20:00Z"), start=1):
            _insert_pick(conn, wave, n, at=at, tenant_id=tenant.tenant_id)
    body = api.get(
        "/reports/kpis",
        params={"warehouse": "SP1", "from": "2026-11-20T00:00:00+05:30",
                "to": "2026-11-21T00:00:00+05:30"},
    ).json()  # fmt: skip
    assert body["lines_picked_per_hour"] == [{"hour": "2026-11-20T10:00:00+05:30", "count": 2}]
    assert body["picking_efficiency"] == {
        "lines": 2,
        "picker_hours": 1,
        "lines_per_picker_hour": 2.0,
    }


def test_one_kpi_report_reads_one_snapshot(
    api: ApiClient, tenant: TenantKeys, database_url: str, settings: Settings
) -> None:
    # Used to read each statement in its own snapshot (READ COMMITTED): a pick committed while
    # the report ran was in picking_efficiency but not in lines_picked_per_hour.
    build_world(api, tenant, database_url)
    with psycopg.connect(database_url) as conn:
        wave = _new_wave(conn, tenant.tenant_id)
        _insert_pick(conn, wave, 1, at="2026-11-20T10:05:00Z", tenant_id=tenant.tenant_id)
    patient = settings.model_copy(update={"lock_timeout_ms": 20_000})
    params = {"warehouse": "SP1", "from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"}
    with (
        TestClient(create_app(patient)) as client,
        psycopg.connect(database_url) as blocker,
        ThreadPoolExecutor(1) as pool,
    ):
        # The report reads lines_picked, then waits on putaway_tasks while the pick commits.
        blocker.execute("LOCK TABLE wms.putaway_tasks IN ACCESS EXCLUSIVE MODE")
        _insert_pick(blocker, wave, 2, at="2026-11-20T10:06:00Z", tenant_id=tenant.tenant_id)
        report = pool.submit(ApiClient(client, api.token).get, "/reports/kpis", params=params)
        until_sessions_wait_for_locks(database_url, 1, "the report's lines_put_away read")
        blocker.commit()
        answer = report.result(timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert sum(h["count"] for h in body["lines_picked_per_hour"]) == 1
    assert body["picking_efficiency"]["lines"] == 1
    assert body["pick_accuracy_pct"]["count"] == 1
