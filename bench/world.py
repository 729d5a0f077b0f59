"""A realistic warehouse, loaded fast: 5,000 locations, 20,000 SKUs, 200,000 balances.

The warehouse itself goes through the API (it creates its staging location); the bulk
goes in with COPY and ``generate_series`` as the database's superuser, as
tests/integration/stock_world.py does. The ledger holds a month of movements whose sums
are the balances (one receipt per balance at 1x; ``scale`` multiplies the ledger), so
the invariant ``on_hand = opening + sum(ledger)`` holds from the start.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import psycopg

WAREHOUSE = "SP1"
LOCATIONS = 5_000
SKUS = 20_000
BALANCES_PER_SKU = 10  # 200,000 balances
ON_HAND = 1_000_000  # deep stock: the allocation flow never runs a balance dry


@dataclass(frozen=True)
class World:
    """Identifiers the flows need."""

    tenant_id: int
    warehouse_id: int
    skus: int
    locations: int


def sku(n: int) -> str:
    """The n-th SKU's code."""
    return f"SKU-{n:05}"


def barcode(n: int) -> str:
    """The n-th SKU's barcode."""
    return f"789{n:010}"


def location(n: int) -> str:
    """The n-th storage location's code."""
    return f"A-{n // 100:02}-{n % 100:02}"


def check(response: httpx.Response) -> httpx.Response:
    """Fail loudly on an unexpected answer."""
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return response


def load_world(client: httpx.Client, url: str, tenant: str = "bench", scale: int = 1) -> World:
    """Create the warehouse through ``client``, then bulk-load everything else into ``url``."""
    check(client.post("/warehouses", json={"code": WAREHOUSE, "name": "SP1", "timezone": "UTC"}))
    with psycopg.connect(url) as conn:
        (tenant_id,) = conn.execute(
            "SELECT id FROM wms.tenants WHERE code = %s", (tenant,)
        ).fetchone()  # type: ignore[misc]
        (warehouse_id,) = conn.execute(
            "SELECT id FROM wms.warehouses WHERE tenant_id = %s AND code = %s",
            (tenant_id, WAREHOUSE),
        ).fetchone()  # type: ignore[misc]
        with conn.cursor().copy(
            "COPY wms.locations (tenant_id, warehouse_id, code, type, pick_sequence) FROM STDIN"
        ) as copy:
            for n in range(LOCATIONS):
                copy.write_row((tenant_id, warehouse_id, location(n), "storage", n))
            for n in range(20):
                copy.write_row((tenant_id, warehouse_id, f"DOCK-{n}", "dock", 0))
        with conn.cursor().copy(
            "COPY wms.products (tenant_id, sku, description, velocity_class) FROM STDIN"
        ) as copy:
            for n in range(SKUS):
                copy.write_row((tenant_id, sku(n), f"Product {n}", "ABC"[n % 3]))
        conn.execute(
            "INSERT INTO wms.barcodes (tenant_id, barcode, product_id) "
            "SELECT tenant_id, '789' || lpad(substr(sku, 5), 10, '0'), id "
            "FROM wms.products WHERE tenant_id = %s",
            (tenant_id,),
        )
        # Ten balances per SKU in ten distinct locations, received over the last month.
        conn.execute(
            "INSERT INTO wms.inventory_balances (tenant_id, warehouse_id, location_id, "
            "product_id, status, on_hand, first_received_at) "
            "SELECT p.tenant_id, %(wh)s, l.id, p.id, 'available', %(on_hand)s, "
            "now() - (k * interval '3 days') - (p.id %% 997) * interval '1 minute' "
            "FROM wms.products p CROSS JOIN generate_series(0, %(per)s - 1) k "
            "JOIN wms.locations l ON l.tenant_id = p.tenant_id AND l.warehouse_id = %(wh)s "
            "AND l.code = 'A-' || lpad(((p.id * 7 + k * 500) %% %(locs)s / 100)::text, 2, '0') "
            "|| '-' || lpad(((p.id * 7 + k * 500) %% 100)::text, 2, '0') "
            "WHERE p.tenant_id = %(tenant)s",
            {
                "wh": warehouse_id,
                "on_hand": ON_HAND,
                "per": BALANCES_PER_SKU,
                "locs": LOCATIONS,
                "tenant": tenant_id,
            },
        )
        add_ledger(conn, tenant_id, scale)
    # As after any bulk load: vacuumed and analysed now, not by autovacuum in the middle of
    # the first measurement (it took the lookup's open loop to 97 ms a second in one run).
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    check(client.patch("/settings", json={"allocate_on_create": False}))
    return World(tenant_id, warehouse_id, SKUS, LOCATIONS)


def add_ledger(conn: psycopg.Connection, tenant_id: int, scale: int) -> None:
    """A month of ledger: per balance, ``scale`` rows that sum to its on_hand.

    The first row receives everything; further rows are pick/put-back pairs (-1, +1)
    so the sums stay equal to the balances, spread over the last 30 days.
    """
    conn.execute(
        "INSERT INTO wms.inventory_movements (tenant_id, occurred_at, warehouse_id, "
        "location_id, product_id, lot_code, status, quantity, kind, reason, actor) "
        "SELECT b.tenant_id, now() - interval '30 days' + (b.id %% 720) * interval '1 hour', "
        "b.warehouse_id, b.location_id, b.product_id, b.lot_code, b.status, "
        "b.on_hand + CASE WHEN %(scale)s %% 2 = 0 THEN 1 ELSE 0 END, 'receipt', 'bench', 'bench' "
        "FROM wms.inventory_balances b WHERE b.tenant_id = %(tenant)s",
        {"tenant": tenant_id, "scale": scale},
    )
    if scale > 1:
        conn.execute(
            "INSERT INTO wms.inventory_movements (tenant_id, occurred_at, warehouse_id, "
            "location_id, product_id, lot_code, status, quantity, kind, reason, actor) "
            "SELECT b.tenant_id, now() - interval '29 days' + ((b.id * 31 + s) %% 41760) "
            "* interval '1 minute', b.warehouse_id, b.location_id, b.product_id, b.lot_code, "
            "b.status, CASE WHEN s %% 2 = 1 THEN -1 ELSE 1 END, "
            "CASE WHEN s %% 2 = 1 THEN 'pick' ELSE 'return' END, 'bench', 'bench' "
            "FROM wms.inventory_balances b CROSS JOIN generate_series(1, %(rows)s - 1) s "
            "WHERE b.tenant_id = %(tenant)s",
            {"tenant": tenant_id, "rows": scale},
        )


def ledger_mismatches(url: str) -> int:
    """Balance keys whose on_hand differs from opening + ledger sum (0 when sound)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM wms.inventory_balances b "
            "LEFT JOIN wms.inventory_openings o USING (tenant_id, warehouse_id, location_id, "
            "product_id, lot_code, status) "
            "LEFT JOIN (SELECT tenant_id, warehouse_id, location_id, product_id, lot_code, "
            "status, sum(quantity) AS total FROM wms.inventory_movements GROUP BY 1, 2, 3, 4, "
            "5, 6) m USING (tenant_id, warehouse_id, location_id, product_id, lot_code, status) "
            "WHERE b.on_hand <> coalesce(o.quantity, 0) + coalesce(m.total, 0)"
        ).fetchone()
    return int(row[0]) if row else -1
