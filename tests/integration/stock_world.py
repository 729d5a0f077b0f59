"""A small warehouse with locations and products, made for stock tests.

Master data goes straight into the tables (as the test database's superuser) so the
stock tests do not depend on the master-data endpoints they are not about.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from tests.conftest import ApiClient, TenantKeys

LOCATIONS = [
    # code, type, pick_sequence, capacity_units, active
    ("A-01", "storage", 10, None, True),
    ("A-02", "storage", 20, None, True),
    ("B-01", "storage", 30, 10, True),
    ("C-01", "storage", 40, None, False),
    ("P-01", "pick", 5, None, True),
]


@dataclass(frozen=True)
class StockWorld:
    """Codes of what ``build_world`` made."""

    warehouse: str = "SP1"
    plain_sku: str = "SKU-1"  # not lot-tracked, CASE of 12
    lot_sku: str = "LOT-1"  # lot- and expiry-tracked


def build_world(api: ApiClient, tenant: TenantKeys, database_url: str) -> StockWorld:
    """Create warehouse SP1 (through the API), its locations and two products."""
    world = StockWorld()
    created = api.post(
        "/warehouses", json={"code": world.warehouse, "name": "Main", "timezone": "UTC"}
    )
    assert created.status_code == 201, created.text
    with psycopg.connect(database_url) as conn:
        (warehouse_id,) = conn.execute(
            "SELECT id FROM wms.warehouses WHERE tenant_id = %s AND code = %s",
            (tenant.tenant_id, world.warehouse),
        ).fetchone()  # type: ignore[misc]
        for code, kind, sequence, capacity, active in LOCATIONS:
            conn.execute(
                "INSERT INTO wms.locations (tenant_id, warehouse_id, code, type, pick_sequence, "
                "capacity_units, active) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (tenant.tenant_id, warehouse_id, code, kind, sequence, capacity, active),
            )
        (plain_id,) = conn.execute(
            "INSERT INTO wms.products (tenant_id, sku, description) VALUES (%s, %s, 'Widget') "
            "RETURNING id",
            (tenant.tenant_id, world.plain_sku),
        ).fetchone()  # type: ignore[misc]
        conn.execute(
            "INSERT INTO wms.product_uoms (tenant_id, product_id, code, factor) "
            "VALUES (%s, %s, 'CASE', 12)",
            (tenant.tenant_id, plain_id),
        )
        conn.execute(
            "INSERT INTO wms.products (tenant_id, sku, description, lot_tracked, "
            "expiry_tracked) VALUES (%s, %s, 'Yoghurt', true, true)",
            (tenant.tenant_id, world.lot_sku),
        )
    return world
