"""A 5,000-line order, created and allocated in one request, while small orders go on.

Run: ``.venv/bin/python -m bench.large_order [--lines 5000] [--workers 4] [--seconds 8]``

Starts an embedded PostgreSQL and one ``wms-server serve`` process (one uvicorn worker,
pool of 20, as production runs a pod), loads 5,000 SKUs with stock in two locations
each, sets allocate-on-create, and then:

1. small one-line orders from ``--workers`` client threads for ``--seconds`` (baseline);
2. the same small-order load while one client posts the large order (which allocates
   in the same request);
3. the ceiling: the same writes done directly in SQL in one transaction (insert the
   order lines, reserve one balance per line), no HTTP, no validation, no planning.

Odoo users report 20+ minutes to validate a 5,000-line transfer (odoo/odoo#32525).
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from typing import Any

import httpx
import psycopg

from bench.harness import (
    BenchDatabase,
    admin_token,
    fresh_database,
    percentile,
    print_table,
    running_server,
    timed,
)

SHIP_TO = {"name": "Ana", "line1": "Rua A 1", "city": "São Paulo", "postal_code": "01000-000",
           "country": "BR"}  # fmt: skip


def load_master_data(client: httpx.Client, database: BenchDatabase, skus: int) -> None:
    """Warehouse, 400 locations, ``skus`` products (+ 200 for small orders), stock in SQL."""
    client.post("/warehouses", json={"code": "SP1", "name": "SP1", "timezone": "UTC"})
    locations = [{"code": f"S-{n:04}", "type": "storage", "pick_sequence": n} for n in range(400)]
    check(client.post("/warehouses/SP1/locations:import", json={"locations": locations}))
    products = [{"sku": f"B-{n:05}", "description": f"Bulk {n}"} for n in range(skus)]
    products += [{"sku": f"S-{n:04}", "description": f"Small {n}"} for n in range(200)]
    check(client.post("/products:import", json={"products": products}))
    check(client.patch("/settings", json={"allocate_on_create": True}))
    with psycopg.connect(database.url) as conn:
        # Two balances per SKU, 50 units each: set-up, not measured.
        conn.execute(
            "INSERT INTO wms.inventory_balances (tenant_id, warehouse_id, location_id, "
            "product_id, lot_code, status, on_hand) SELECT p.tenant_id, l.warehouse_id, l.id, "
            "p.id, '', 'available', 50 FROM wms.products p CROSS JOIN LATERAL (SELECT * FROM "
            "wms.locations l WHERE l.tenant_id = p.tenant_id AND l.type = 'storage' "
            "AND l.code LIKE 'S-%' ORDER BY (l.id + p.id * 7) % 400, l.id LIMIT 2) l"
        )
        conn.execute(
            "INSERT INTO wms.inventory_movements (tenant_id, warehouse_id, location_id, "
            "product_id, lot_code, status, quantity, kind, reason, actor) SELECT tenant_id, "
            "warehouse_id, location_id, product_id, lot_code, status, on_hand, 'adjustment', "
            "'initial_load', 'bench' FROM wms.inventory_balances"
        )


def check(response: httpx.Response) -> httpx.Response:
    """Fail loudly on an unexpected answer."""
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return response


def small_orders(base_url: str, token: str, stop: threading.Event, latencies: list[float]) -> None:
    """Post one-line orders until ``stop``; record each latency."""
    with httpx.Client(base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                      timeout=120) as client:  # fmt: skip
        n = 0
        while not stop.is_set():
            n += 1
            body = {"number": f"SM-{uuid.uuid4().hex[:12]}", "warehouse": "SP1",
                    "carrier": "X", "ship_to": SHIP_TO,
                    "lines": [{"sku": f"S-{n % 200:04}", "quantity": 1}]}  # fmt: skip
            seconds, response = timed(lambda b=body: client.post("/orders", json=b))
            check(response)
            latencies.append(seconds)


def with_small_load(
    base_url: str, token: str, workers: int, action: Any, seconds: float
) -> tuple[list[float], Any]:
    """Run ``workers`` small-order clients around ``action`` (or for ``seconds``)."""
    stop = threading.Event()
    latencies: list[float] = []
    threads = [
        threading.Thread(target=small_orders, args=(base_url, token, stop, latencies))
        for _ in range(workers)
    ]
    for thread in threads:
        thread.start()
    result = action() if action else time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return latencies, result


def ceiling(database: BenchDatabase, lines: int) -> float:
    """Seconds to write the large order's rows and reserve its stock directly in SQL."""
    with psycopg.connect(database.url) as conn:
        started = time.perf_counter()
        with conn.transaction():
            order_id = conn.execute(
                "INSERT INTO wms.orders (tenant_id, number, warehouse_id, carrier, ship_to, "
                "content_hash, line_count) SELECT tenant_id, 'CEIL', id, 'X', '{}', '\\x00', %s "
                "FROM wms.warehouses WHERE code = 'SP1' RETURNING id",
                (lines,),
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO wms.order_lines (tenant_id, order_id, line_no, product_id, quantity) "
                "SELECT tenant_id, %s, row_number() OVER (ORDER BY id), id, 3 FROM wms.products "
                "WHERE sku LIKE 'B-%%' ORDER BY id LIMIT %s",
                (order_id, lines),
            )
            conn.execute(
                "UPDATE wms.inventory_balances b SET allocated = allocated + 3 FROM ("
                "SELECT DISTINCT ON (product_id) id FROM wms.inventory_balances ORDER BY "
                "product_id, id) f WHERE b.id = f.id AND b.product_id IN (SELECT product_id "
                "FROM wms.order_lines WHERE order_id = %s)",
                (order_id,),
            )
            conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            elapsed = time.perf_counter() - started
            raise psycopg.Rollback  # leave the database as the measured run left it
        return elapsed


def main() -> None:
    """Load, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    with fresh_database() as database:
        token = admin_token(database)
        with running_server(database) as server:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.base_url + "/api/v1", headers=headers,
                              timeout=600) as client:  # fmt: skip
                load_master_data(client, database, args.lines)
                big = {"number": "BIG-1", "warehouse": "SP1", "carrier": "X", "ship_to": SHIP_TO,
                       "lines": [{"line": n + 1, "sku": f"B-{n:05}", "quantity": 3}
                                 for n in range(args.lines)]}  # fmt: skip
                baseline, _ = with_small_load(
                    server.base_url, token, args.workers, None, args.seconds
                )
                during, (big_seconds, response) = with_small_load(
                    server.base_url, token, args.workers,
                    lambda: timed(lambda: check(client.post("/orders", json=big))),
                    0,
                )  # fmt: skip
        order = response.json()
        allocated = sum(line["allocated"] for line in order["lines"])
        floor = ceiling(database, args.lines)
    print(f"\nlarge order: {args.lines} lines, status {order['status']}, "
          f"{allocated} units allocated, one request")  # fmt: skip
    print_table(
        ["case", "requests", "seconds", "p50 ms", "p95 ms", "p99 ms", "x ceiling"],
        [
            ["small orders, alone", len(baseline), args.seconds,
             percentile(baseline, 50) * 1000, percentile(baseline, 95) * 1000,
             percentile(baseline, 99) * 1000, "-"],
            ["small orders, during large", len(during), big_seconds,
             percentile(during, 50) * 1000, percentile(during, 95) * 1000,
             percentile(during, 99) * 1000, "-"],
            [f"large order ({args.lines} lines)", 1, big_seconds, "-", "-", "-",
             big_seconds / floor],
            ["ceiling: same writes in raw SQL", 1, floor, "-", "-", "-", 1.0],
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
