"""Hot queries stay on indexes (issue #14, item 4).

A warehouse big enough that the planner prefers an index when one fits (20,000
balances, 60,000 ledger rows), analysed; then EXPLAIN, as the runtime role with the
tenant bound (row-level security adds its predicate, as in production), of the queries
behind stock lookup and the stock report; the generic plans of the list queries
exactly as the store builds them; the plan of allocation's candidate lock as the
store runs it; and the plan of every statement of a warehouse day of commands, which
run on generic plans (store/tenancy.py). A sequential scan of a large table fails.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from tests.conftest import ApiClient, TenantKeys
from wms.store import failover, inventory, locations, orders
from wms.store.database import create_pool, session_configurer
from wms.store.tenancy import planned_for_values, tenant_transaction

LARGE_TABLES = {"inventory_balances", "inventory_movements", "products", "barcodes",
                "locations", "orders", "order_lines"}  # fmt: skip

HOT_QUERIES = {
    "lookup: barcode owner": (
        "SELECT p.id, p.sku FROM barcodes b JOIN products p ON p.tenant_id = b.tenant_id "
        "AND p.id = b.product_id WHERE b.barcode = '7890000000777'"
    ),
    "lookup: balances of a product": (
        "SELECT b.id, l.code, b.on_hand, b.allocated FROM inventory_balances b "
        "JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id "
        "JOIN products p ON p.tenant_id = b.tenant_id AND p.id = b.product_id "
        "WHERE p.sku = 'Q-00777' AND b.on_hand > 0 ORDER BY b.id LIMIT 51"
    ),
    "ledger: movements of a product": (
        "SELECT m.id FROM inventory_movements m WHERE m.product_id = {product} "
        "ORDER BY m.id LIMIT 51"
    ),
}


def seq_scans(plan: dict[str, Any]) -> list[str]:
    """Relations read by a sequential scan anywhere in ``plan``."""
    found = [plan["Relation Name"]] if plan.get("Node Type") == "Seq Scan" else []
    for child in plan.get("Plans", []):
        found += seq_scans(child)
    return found


@pytest.fixture
def loaded(database_url: str, tenant: TenantKeys) -> dict[str, int]:
    """Warehouse, 2,000 locations and SKUs, 10 balances each, 3 ledger rows a balance."""
    with psycopg.connect(database_url) as conn:
        t = tenant.tenant_id
        (warehouse,) = conn.execute(
            "INSERT INTO wms.warehouses (tenant_id, code, name, timezone, "
            "outbound_staging_location) "
            "VALUES (%s, 'QP', 'QP', 'UTC', 'STAGE') RETURNING id",
            (t,),
        ).fetchone()  # type: ignore[misc]
        conn.execute(
            "INSERT INTO wms.locations (tenant_id, warehouse_id, code, type, pick_sequence) "
            "SELECT %s, %s, 'L-' || n, 'storage', n FROM generate_series(0, 1999) n",
            (t, warehouse),
        )
        conn.execute(
            "INSERT INTO wms.products (tenant_id, sku, description) "
            "SELECT %s, 'Q-' || lpad(n::text, 5, '0'), 'x' FROM generate_series(0, 1999) n",
            (t,),
        )
        conn.execute(
            "INSERT INTO wms.barcodes (tenant_id, barcode, product_id) "
            "SELECT tenant_id, '789' || lpad(substr(sku, 3), 10, '0'), id FROM wms.products "
            "WHERE tenant_id = %s",
            (t,),
        )
        conn.execute(
            "INSERT INTO wms.inventory_balances (tenant_id, warehouse_id, location_id, "
            "product_id, status, on_hand) SELECT p.tenant_id, %s, l.id, p.id, 'available', 100 "
            "FROM wms.products p CROSS JOIN generate_series(0, 9) k JOIN wms.locations l "
            "ON l.tenant_id = p.tenant_id AND l.warehouse_id = %s "
            "AND l.pick_sequence = (p.id * 7 + k * 200) %% 2000 WHERE p.tenant_id = %s",
            (warehouse, warehouse, t),
        )
        conn.execute(
            "INSERT INTO wms.inventory_movements (tenant_id, warehouse_id, location_id, "
            "product_id, status, quantity, kind, actor) SELECT b.tenant_id, b.warehouse_id, "
            "b.location_id, b.product_id, b.status, 1, 'receipt', 'test' "
            "FROM wms.inventory_balances b CROSS JOIN generate_series(1, 3) WHERE b.tenant_id = %s",
            (t,),
        )
        conn.execute("ANALYZE")
        product, product2 = (r[0] for r in conn.execute(
            "SELECT id FROM wms.products WHERE tenant_id = %s ORDER BY id LIMIT 2", (t,)
        ).fetchall())  # fmt: skip
    return {"warehouse": warehouse, "product": product, "product2": product2}


@pytest.mark.parametrize("name", list(HOT_QUERIES))
def test_a_hot_query_never_scans_a_large_table(
    name: str, loaded: dict[str, int], database_url: str, tenant: TenantKeys
) -> None:
    query = HOT_QUERIES[name].format(**loaded)
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute(
            "SELECT set_config('role', 'wms_app', true), set_config('app.tenant_id', %s, true), "
            "set_config('search_path', 'wms, public', true)",
            (str(tenant.tenant_id),),
        )
        (plan,) = conn.execute(f"EXPLAIN (FORMAT JSON) {query}").fetchone()  # type: ignore[misc]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    scanned = [r for r in seq_scans(plan[0]["Plan"]) if r in LARGE_TABLES]
    assert scanned == [], f"{name}: sequential scan of {scanned}"


# The list queries as the store builds them, with the filters a scanner, a stock page and
# a ledger page give. psycopg prepares a statement after a few runs; PostgreSQL may then
# keep one generic plan for it, so that is the plan checked (``force_generic_plan``).
StoreQuery = Callable[[AsyncConnection, dict[str, int]], Awaitable[object]]
STORE_QUERIES: dict[str, StoreQuery] = {
    "stock lookup by barcode": lambda c, _: inventory.balances(
        c, warehouse="QP", barcode="7890000000777", limit=51
    ),
    "stock of a product": lambda c, _: inventory.balances(
        c, warehouse="QP", sku="Q-00777", limit=51
    ),
    "stock of a location": lambda c, _: inventory.balances(c, location="L-7", limit=51),
    "ledger of a product": lambda c, _: inventory.movements(
        c,
        warehouse=None,
        location=None,
        sku="Q-00777",
        lot=None,
        kind=None,
        reference=None,
        after_id=None,
        limit=51,
    ),
    "location walk, first page": lambda c, loaded: locations.list_locations(
        c, loaded["warehouse"], type_=None, zone=None, active=None, after=None, limit=51
    ),
    "location walk, a later page": lambda c, loaded: locations.list_locations(
        c,
        loaded["warehouse"],
        type_="storage",
        zone=None,
        active=True,
        after=locations.WalkPosition(0, 1000, 0),
        limit=51,
    ),
}


async def explain_to(conn: AsyncConnection, explained: list[dict[str, Any]]) -> None:
    """Have auto_explain send every plan of this session to it (superuser): each entry is
    auto_explain's JSON (``Query Text``, ``Plan``), nested statements included."""

    def collect(diag: psycopg.errors.Diagnostic) -> None:
        text = diag.message_primary or ""
        if "plan:" in text:
            explained.append(json.loads(text.split("plan:", 1)[1]))

    conn.add_notice_handler(collect)
    for setting in (
        "LOAD 'auto_explain'",
        "SET auto_explain.log_min_duration = 0",
        "SET auto_explain.log_format = json",
        "SET auto_explain.log_nested_statements = on",
        "SET client_min_messages = log",
    ):
        await conn.execute(setting, prepare=False)


async def executed_plans(
    url: str, tenant_id: int, run: StoreQuery, loaded: dict[str, int], *, generic: bool = True
) -> list[dict[str, Any]]:
    """The plans of what ``run`` executes (generic ones, or custom ones made for its
    parameters), from auto_explain sent to this client."""
    explained: list[dict[str, Any]] = []
    async with await AsyncConnection.connect(url, prepare_threshold=0) as conn:
        await explain_to(conn, explained)
        for setting in (
            f"SET plan_cache_mode = force_{'generic' if generic else 'custom'}_plan",
            "SET search_path = wms, public",
        ):
            await conn.execute(setting, prepare=False)
        await conn.execute(
            "SELECT set_config('role', 'wms_app', true), set_config('app.tenant_id', %s, true)",
            (str(tenant_id),),
        )
        await run(conn, loaded)
    return [entry["Plan"] for entry in explained]


@pytest.mark.parametrize("name", list(STORE_QUERIES))
def test_a_list_query_keeps_an_indexed_generic_plan(
    name: str, loaded: dict[str, int], database_url: str, tenant: TenantKeys
) -> None:
    plans = asyncio.run(executed_plans(database_url, tenant.tenant_id, STORE_QUERIES[name], loaded))
    assert plans, "auto_explain reported no plan"
    scanned = [r for plan in plans for r in seq_scans(plan) if r in LARGE_TABLES]
    assert scanned == [], f"{name}: sequential scan of {scanned}"


def test_allocation_s_candidate_lock_runs_on_indexes_as_postgresql_plans_it(
    loaded: dict[str, int], database_url: str, tenant: TenantKeys
) -> None:
    # The statement allocation runs (store/orders.py lock_candidates), not a copy of it.
    # PostgreSQL plans it for its parameters at every call (pg_stat_statements under the
    # bench: plans = calls), so the custom plan is the one checked. Its generic plan
    # would hash a scan of all locations (bench/FINDINGS.md): if PostgreSQL ever keeps
    # one, this is the test to revisit.
    async def lock(conn: AsyncConnection, ids: dict[str, int]) -> object:
        return await orders.lock_candidates(
            conn, ids["warehouse"], [ids["product"], ids["product2"]], excluded_location="STAGE"
        )

    plans = asyncio.run(executed_plans(database_url, tenant.tenant_id, lock, loaded, generic=False))
    assert plans, "auto_explain reported no plan"
    scanned = [r for plan in plans for r in seq_scans(plan) if r in LARGE_TABLES]
    assert scanned == [], f"candidate lock: sequential scan of {scanned}"


# Orders a warehouse has taken before (a month's worth, shipped), so that the orders
# tables are large, as in production, when the commands' plans are made.
ORDER_HISTORY = 3_000


@pytest.fixture
def notices_of_the_app(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Plans of every statement the app's sessions run, from auto_explain (superuser).

    Requested before the app starts: its pool's sessions are configured as they open.
    """
    plans: list[dict[str, Any]] = []

    def configurer(statement_timeout_ms: int, lock_timeout_ms: int) -> Any:
        configure = session_configurer(statement_timeout_ms, lock_timeout_ms)

        async def explained(conn: AsyncConnection) -> None:
            await configure(conn)
            await explain_to(conn, plans)

        return explained

    monkeypatch.setattr(failover, "session_configurer", configurer)
    return plans


def whole_warehouse_read(query: str) -> bool:
    """A putaway suggestion's read of every location's load (store/putaway.py): it weighs
    all storage locations of the warehouse, so it reads all their balances by design,
    whatever the plan. Its confirmation's read, of a few locations, is checked."""
    return "WITH stored AS" in query and "ANY(" not in query


def _warehouse_day(api: ApiClient) -> None:
    """Orders taken, allocated, waved, picked, packed, shipped; an ASN received, put away."""
    orders = {"DAY-1": ("Q-00011", "Q-00012"), "DAY-2": ("Q-00012", "Q-00013")}
    for number, skus in orders.items():
        body = {"number": number, "warehouse": "QP", "carrier": "CORREIOS",
                "ship_to": {"name": "Ana", "line1": "Rua A 1", "city": "São Paulo",
                            "postal_code": "01000-000", "country": "BR"},
                "lines": [{"line": i + 1, "sku": s, "quantity": 3}
                          for i, s in enumerate(skus)]}  # fmt: skip
        assert api.post("/orders", json=body).status_code == 201
        assert api.post(f"/orders/{number}/allocate").json()["status"] == "allocated"
    wave = api.post("/waves", json={"warehouse": "QP", "orders": list(orders),
                                    "pick_method": "batch"}).json()  # fmt: skip
    assert api.post(f"/waves/{wave['id']}/release").status_code == 200
    tasks = api.get("/pick-tasks", params={"wave": wave["id"], "limit": 500}).json()["items"]
    scans = [{"task": t["id"], "location": t["location"], "sku": t["sku"], "lot": t["lot"],
              "quantity": t["quantity"]} for t in tasks]  # fmt: skip
    confirmed = api.post("/pick-tasks:confirm", json={"confirmations": scans[:-1]})
    assert confirmed.status_code == 200, confirmed.text
    last = {k: v for k, v in scans[-1].items() if k != "task"}
    assert api.post(f"/pick-tasks/{scans[-1]['task']}/confirm", json=last).status_code == 200
    for number, skus in orders.items():
        contents = [{"sku": s, "quantity": 3} for s in skus]
        packed = api.post(f"/orders/{number}/packages", json={
            "packages": [{"carton": "BOX-M", "weight_kg": 1.0, "contents": contents}]})  # fmt: skip
        assert packed.status_code == 201, packed.text
    shipment = api.post("/shipments", json={"orders": list(orders), "carrier": "CORREIOS",
                                            "tracking_number": "BR1"})  # fmt: skip
    assert shipment.status_code == 201, shipment.text
    assert api.post(f"/shipments/{shipment.json()['id']}/dispatch").status_code == 200
    asn = api.post("/asns", json={"reference": "PO-1", "warehouse": "QP", "supplier": "ACME",
                                  "lines": [{"sku": "Q-00020", "quantity": 10}]})  # fmt: skip
    assert asn.status_code == 201, asn.text
    receipt = api.post(f"/asns/{asn.json()['id']}/receipts", json={
        "location": "DOCK", "sku": "Q-00020", "quantity": 10, "lot": None,
        "expiry": None})  # fmt: skip
    assert receipt.status_code == 201, receipt.text
    (task,) = receipt.json()["putaway_tasks"]
    put = api.post(f"/putaway-tasks/{task['id']}/confirm", json={"location": "L-5"})
    assert put.status_code == 200, put.text


def test_a_warehouse_day_of_commands_keeps_indexed_generic_plans(
    notices_of_the_app: list[dict[str, Any]],
    loaded: dict[str, int],
    database_url: str,
    tenant: TenantKeys,
    api: ApiClient,
) -> None:
    # Commands run on generic plans (store/tenancy.py COMMAND_PLANS): one plan per
    # statement, made once for any values, so it must be good for all of them.
    with psycopg.connect(database_url) as conn:
        t, warehouse = tenant.tenant_id, loaded["warehouse"]
        conn.execute(
            "INSERT INTO wms.locations (tenant_id, warehouse_id, code, type, pick_sequence) "
            "VALUES (%s, %s, 'STAGE', 'staging', 0), (%s, %s, 'DOCK', 'dock', 0)",
            (t, warehouse, t, warehouse),
        )
        conn.execute(
            "INSERT INTO wms.orders (tenant_id, number, warehouse_id, carrier, ship_to, "
            "content_hash, line_count, status) SELECT %s, 'OLD-' || n, %s, 'CORREIOS', '{}', "
            "'\\x00', 2, 'shipped' FROM generate_series(1, %s) n",
            (t, warehouse, ORDER_HISTORY),
        )
        conn.execute(
            "INSERT INTO wms.order_lines (tenant_id, order_id, line_no, product_id, quantity, "
            "picked, shipped) SELECT o.tenant_id, o.id, k, %s, 1, 1, 1 FROM wms.orders o "
            "CROSS JOIN generate_series(1, 2) k WHERE o.tenant_id = %s",
            (loaded["product"], t),
        )
        conn.execute("ANALYZE")
    _warehouse_day(api)
    statements = [p for p in notices_of_the_app if "Plan" in p]
    assert len(statements) > 100, "auto_explain reported too few plans"
    scanned = {
        r: p["Query Text"][:120]
        for p in statements
        if not whole_warehouse_read(p["Query Text"])
        for r in seq_scans(p["Plan"])
        if r in LARGE_TABLES
    }
    assert scanned == {}, f"sequential scans of large tables: {scanned}"


def test_commands_plan_once_reads_leave_it_to_postgresql(
    database_url: str, tenant: TenantKeys
) -> None:
    async def modes() -> list[str]:
        seen = []
        pool = create_pool(database_url, min_size=1, max_size=1, statement_timeout_ms=5000,
                           lock_timeout_ms=2000)  # fmt: skip
        async with pool:
            for read_only in (False, True):
                async with tenant_transaction(
                    pool, tenant.tenant_id, statement_timeout_ms=5000, lock_timeout_ms=2000,
                    read_only=read_only,
                ) as conn:  # fmt: skip
                    seen.append(await _plan_mode(conn))
                    if not read_only:
                        async with planned_for_values(conn):
                            cursor = await conn.execute("SHOW plan_cache_mode")
                        seen.append(str((await cursor.fetchone() or ("",))[0]))
                        seen.append(await _plan_mode(conn))
        return seen

    assert asyncio.run(modes()) == [
        "force_generic_plan", "force_custom_plan", "force_generic_plan", "auto",
    ]  # fmt: skip


async def _plan_mode(conn: AsyncConnection) -> str:
    cursor = await conn.execute("SHOW plan_cache_mode")
    row = await cursor.fetchone()
    return str(row[0]) if row else ""


ASN_LINES = 2_000


def test_a_receipt_line_s_foreign_key_check_reads_its_asn_line_alone(
    api: ApiClient, database_url: str, tenant: TenantKeys
) -> None:
    # asn_lines analysed while empty, as in a new database or a bench world: before
    # V13 the check of receipt_lines -> asn_lines then took the (asn, product, lot)
    # index and read every line of the ASN for each receipt line (~2,000,000 fetches
    # here; 1.7-2.6 s of a 5,000-line receipt).
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE wms.asn_lines")
    assert api.post("/warehouses", json={"code": "W", "name": "W", "timezone": "UTC"}).is_success
    dock = {"code": "DOCK", "type": "dock"}
    assert api.post("/warehouses/W/locations", json=dock).is_success
    products = [{"sku": f"K-{n:05}", "description": "k"} for n in range(ASN_LINES)]
    assert api.post("/products:import", json={"products": products}).is_success
    lines = [{"sku": f"K-{n:05}", "quantity": 1} for n in range(ASN_LINES)]
    body = {"reference": "PO-1", "warehouse": "W", "supplier": "S", "lines": lines}
    asn = api.post("/asns", json=body).json()["id"]
    with psycopg.connect(database_url) as conn:
        (receipt,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO wms.receipts (tenant_id, asn_id, received_by) VALUES (%s, %s, 'test') "
            "RETURNING id",
            (tenant.tenant_id, asn),
        ).fetchone()
        before = asn_line_fetches(conn)
        conn.execute(
            "INSERT INTO wms.receipt_lines (tenant_id, receipt_id, line_no, asn_id, "
            "asn_line_no, product_id, lot_code, quantity, uom_quantity, scanned, condition, "
            "location_id, received_by) SELECT n.tenant_id, %s, n.line_no, n.asn_id, n.line_no, "
            "n.product_id, n.lot_code, 1, 1, 'k', 'good', l.id, 'test' FROM wms.asn_lines n "
            "JOIN wms.locations l ON l.tenant_id = n.tenant_id AND l.code = 'DOCK' "
            "WHERE n.tenant_id = %s AND n.asn_id = %s",
            (receipt, tenant.tenant_id, asn),
        )
        fetched = asn_line_fetches(conn) - before
        conn.rollback()
    # Each check fetches its one line (plus the lines the INSERT itself reads).
    assert fetched <= 3 * ASN_LINES, fetched


def asn_line_fetches(conn: psycopg.Connection) -> int:
    """Rows of asn_lines fetched through an index by this transaction so far."""
    row = conn.execute(
        "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relid = 'wms.asn_lines'::regclass"
    ).fetchone()
    return int(row[0]) if row else 0
