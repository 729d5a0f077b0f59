"""No unit is ever allocated twice, with real parallel transactions.

GreaterWMS allocates 100 units against 40 when 20 clients release at once; these tests
send 100 concurrent orders against 40 units spread over locations and lots, ten times,
and multi-line orders racing over the same balances in opposite orders while moves and
cancellations run.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.integration.stock_world import build_world
from tests.integration.test_orders import allocations_match_balances, order_body
from tests.integration.test_stock_invariants import check_invariants
from wms.app import UNLIMITED_RPS
from wms.config import Settings

LOCATIONS = ["A-01", "A-02", "P-01", "C-02", "C-03"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The rate limits out of the way: a thousand requests of one key in seconds are the
    point here (at the default 100/s and a burst of 200, a fast run got 429s)."""
    unlimited = {
        "rate_limit_rps": UNLIMITED_RPS,
        "rate_limit_burst": UNLIMITED_RPS,
        "tenant_rate_limit_rps": UNLIMITED_RPS,
        "tenant_rate_limit_burst": UNLIMITED_RPS,
    }
    return settings.model_copy(update=unlimited)


def add_location(database_url: str, tenant: TenantKeys, code: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO wms.locations (tenant_id, warehouse_id, code, type) "
            "SELECT tenant_id, id, %s, 'storage' FROM wms.warehouses WHERE tenant_id = %s",
            (code, tenant.tenant_id),
        )


def new_lot_product(database_url: str, tenant: TenantKeys) -> str:
    sku = f"R-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO wms.products (tenant_id, sku, description, lot_tracked) "
            "VALUES (%s, %s, 'racey', true)",
            (tenant.tenant_id, sku),
        )
    return sku


def in_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_hundred_concurrent_orders_against_forty_units_allocate_exactly_forty_ten_times(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    build_world(api, tenant, database_url)
    add_location(database_url, tenant, "C-02")
    add_location(database_url, tenant, "C-03")
    api.patch("/settings", json={"allocate_on_create": True})
    rates = []
    for round_no in range(10):
        sku = new_lot_product(database_url, tenant)
        for index, location in enumerate(LOCATIONS):  # 8 units in each of 5 places, 5 lots
            response = api.post(
                "/inventory/adjustments",
                json={"warehouse": "SP1", "location": location, "sku": sku, "quantity": 8,
                      "lot": f"L{index}", "reason": "initial_load"},
            )  # fmt: skip
            assert response.status_code == 201, response.text
        started = time.perf_counter()
        answers = in_parallel(
            [
                lambda n=n, r=round_no, s=sku: api.post(
                    "/orders", json=order_body(f"R{r}-{n}", {"sku": s, "quantity": 1})
                )
                for n in range(100)
            ]
        )
        rates.append(100 / (time.perf_counter() - started))
        codes = sorted({a.status_code for a in answers})
        assert codes == [201], codes
        statuses = [a.json()["status"] for a in answers]
        assert statuses.count("allocated") == 40, round_no
        assert statuses.count("backordered") == 60
        items = api.get("/inventory", params={"sku": sku}).json()["items"]
        assert sum(i["allocated"] for i in items) == 40
        assert all(i["available"] == 0 for i in items)
    allocations_match_balances(database_url)
    check_invariants(database_url)
    print(f"\norders with allocation per second: {min(rates):.0f} to {max(rates):.0f}")


def test_overlapping_multi_line_orders_moves_and_cancellations_keep_invariants(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    build_world(api, tenant, database_url)
    for sku in ("SKU-1", "SKU-2"):
        if sku == "SKU-2":
            with psycopg.connect(database_url) as conn:
                conn.execute(
                    "INSERT INTO wms.products (tenant_id, sku, description) VALUES (%s, %s, 'b')",
                    (tenant.tenant_id, sku),
                )
        for location in ("A-01", "A-02", "P-01"):
            api.post(
                "/inventory/adjustments",
                json={"warehouse": "SP1", "location": location, "sku": sku, "quantity": 30,
                      "reason": "initial_load"},
            )  # fmt: skip
    rng = random.Random(7)
    for n in range(20):
        first, second = ("SKU-1", "SKU-2") if n % 2 else ("SKU-2", "SKU-1")
        api.post(
            "/orders",
            json=order_body(
                f"M-{n}",
                {"line": 1, "sku": first, "quantity": rng.randint(1, 12)},
                {"line": 2, "sku": second, "quantity": rng.randint(1, 12)},
            ),
        )
    calls: list[Callable[[], Any]] = []
    calls += [lambda n=n: api.post(f"/orders/M-{n}/allocate") for n in range(20)]
    calls += [lambda n=n: api.post(f"/orders/M-{n}/cancel") for n in range(0, 20, 4)]
    for _ in range(15):
        a, b = rng.sample(["A-01", "A-02", "P-01"], 2)
        sku = rng.choice(["SKU-1", "SKU-2"])
        calls.append(
            lambda a=a, b=b, sku=sku: api.post(
                "/inventory/moves",
                json={"warehouse": "SP1", "sku": sku, "from_location": a, "to_location": b,
                      "quantity": rng.randint(1, 10)},
            )
        )  # fmt: skip
    rng.shuffle(calls)
    answers = in_parallel(calls)
    codes = sorted({a.status_code for a in answers})
    assert set(codes) <= {200, 201, 409}, [a.text for a in answers if a.status_code >= 500]
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["type"].rsplit("/", 1)[1] in {
                "insufficient-stock", "invalid-state", "concurrent-update",
            }, answer.text  # fmt: skip
    allocations_match_balances(database_url)
    check_invariants(database_url)
    items = api.get("/inventory", params={"limit": 500}).json()["items"]
    for sku in ("SKU-1", "SKU-2"):
        assert sum(i["on_hand"] for i in items if i["sku"] == sku) == 90
