"""KPIs: hourly throughput in the warehouse's local time, dock-to-stock, cycle times."""

from __future__ import annotations

import psycopg

from tests.conftest import ApiClient, TenantKeys
from tests.integration.stock_world import build_world
from tests.integration.test_orders import order_body


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
        (wave,) = conn.execute(
            "INSERT INTO wms.waves (tenant_id, warehouse_id, pick_method, status, created_by) "
            "SELECT tenant_id, id, 'discrete', 'released', 'test' FROM wms.warehouses "
            "WHERE tenant_id = %s RETURNING id",
            (tenant.tenant_id,),
        ).fetchone()  # type: ignore[misc]
        # Three full picks and one short, by two pickers in two hours.
        for n, (status, picker, at) in enumerate(
            [("confirmed", "ana", "10:05"), ("confirmed", "ana", "10:40"),
             ("short", "bo", "10:50"), ("confirmed", "bo", "11:10")],
            start=1,
        ):  # fmt: skip
            conn.execute(
                "INSERT INTO wms.pick_tasks (tenant_id, wave_id, warehouse_id, location_id, "
                "product_id, quantity, sequence, status, picked_quantity, picker, picked_at) "
                "SELECT l.tenant_id, %s, l.warehouse_id, l.id, p.id, 2, %s, %s, "
                "CASE WHEN %s = 'short' THEN 1 ELSE 2 END, %s, %s "
                "FROM wms.locations l, wms.products p WHERE l.tenant_id = %s AND l.code = 'A-01' "
                "AND p.tenant_id = l.tenant_id AND p.sku = 'SKU-1'",
                (wave, n, status, status, picker, f"2026-11-20T{at}:00Z", tenant.tenant_id),
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
