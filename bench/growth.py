"""Item 4 of the benchmark issue, growth with data: the hot paths at 1×, 10× and 50× history.

Run: ``.venv/bin/python -m bench.growth`` (``BENCH_QUICK=1``: scales 1, 2, 5 and short
runs); ``bench.run.main()`` calls it at the end unless ``BENCH_GROWTH=0``. It writes the
``growth`` key of bench/results.json (the rest is kept) and re-renders RESULTS.md.

One fresh database and one ``wms-server serve`` (the env of bench/run.py) hold the
world of bench/world.py. What grows is what grows with time in a warehouse: the ledger
(``scale`` × 200,000 rows, ~10 million at 50×), closed (shipped) orders with their lines
and their audit rows. Master data (locations, SKUs, balances) stays as at 1×: a busier
or older warehouse does not have more shelves or products. The history is spread over
the 12 months before this one, inside the 13 months archival keeps
(``wms.ops.archive.DEFAULT_RETENTION_MONTHS``): a warehouse that runs archival never
holds more months than that, so a bigger ledger is a busier one, not more partitions.

History ledger rows come in pairs at one balance key (a receipt of q, a pick of q, the
same month), so ``on_hand = opening + sum(ledger)`` keeps holding; it is checked after
every load. Shipped orders keep no allocation rows (dispatch deletes them), so none are
added.

At each scale, through the real server over HTTP: stock lookup and allocation in a
closed loop (``BENCH_CONNECTIONS`` × ``BENCH_PROCESSES`` as run.py) and one request at a
time (the latency without queueing), and the stock report one at a time. At the first
and the last scale the captured SQL of a lookup and of the stock report is run under
``EXPLAIN (ANALYZE, BUFFERS)``: whether a large table is scanned sequentially, and
whether the buffers a query touches grow with the data (a measure the shared machine's
noise does not move).

Env: ``BENCH_GROWTH_SCALES`` (``1,10,50``), ``BENCH_GROWTH_SECONDS`` per closed loop
(10), ``BENCH_GROWTH_SERIAL`` allocations one at a time (400),
``BENCH_GROWTH_SERIAL_LOOKUPS`` lookups one at a time (4,000), ``BENCH_GROWTH_REPORTS``
stock reports (10), ``BENCH_GROWTH_ORDERS`` closed orders per 1× (20,000).
"""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from psycopg import sql

from bench import ceilings, flows
from bench.harness import (
    POOL_MAX,
    BenchDatabase,
    admin_token,
    bench_server,
    fresh_database,
    log_warnings_only,
    print_table,
)
from bench.load import Outcome, Request, closed_loop
from bench.run import CONNECTIONS, HERE, PROCESSES, summary
from bench.world import SKUS, WAREHOUSE, World, ledger_mismatches, load_world
from wms.ops.archive import DEFAULT_RETENTION_MONTHS
from wms.store.roles import OWNER, SCHEMA

QUICK = os.environ.get("BENCH_QUICK") == "1"
_SCALES = os.environ.get("BENCH_GROWTH_SCALES", "1,2,5" if QUICK else "1,10,50")
SCALES = tuple(int(s) for s in _SCALES.split(","))
SECONDS = float(os.environ.get("BENCH_GROWTH_SECONDS", "3" if QUICK else "10"))
SERIAL = int(os.environ.get("BENCH_GROWTH_SERIAL", "50" if QUICK else "400"))
# 400 lookups one at a time last half a second: one stall of the shared host (a
# neighbour's burst, a checkpoint) then holds the 20 slowest, the p95 (1× 1.5 ms, 10×
# 3.9 ms, 50× 3.2 ms in one run, on identical plans and buffers). 4,000 last ~5 s.
SERIAL_LOOKUPS = int(os.environ.get("BENCH_GROWTH_SERIAL_LOOKUPS", "200" if QUICK else "4000"))
REPORTS = int(os.environ.get("BENCH_GROWTH_REPORTS", "3" if QUICK else "10"))
ORDERS_PER_SCALE = int(os.environ.get("BENCH_GROWTH_ORDERS", "20000"))
HISTORY_MONTHS = DEFAULT_RETENTION_MONTHS - 1
BALANCES = SKUS * 10  # the world's balances: one month of ledger at 1×
TARGET = 1.5  # latency at the largest scale within 1.5 × latency at 1×
FIRST_ALLOCATION_RPS = 250.0  # orders prepared for the first allocation run, per second
# The measures as results.json names them, and their titles.
MEASURES = {
    "lookup": "(a) stock lookup, closed loop",
    "lookup_serial": "(a) stock lookup, one at a time",
    "allocation": "(c) allocation, closed loop",
    "allocation_serial": "(c) allocation, one at a time",
    "stock_report": "stock report, one at a time",
}
LARGE_TABLE_ROWS = 10_000  # a sequential scan of a table this big is worth naming
GROWING = ("inventory_movements", "orders", "order_lines", "audit_log")  # with history


# -- loading ---------------------------------------------------------------------------


def _months_ago(conn: psycopg.Connection, months: int) -> datetime.date:
    """The first day of the month ``months`` before this one, by the database's clock."""
    row = conn.execute(
        "SELECT (date_trunc('month', now()) - make_interval(months => %s))::date", (months,)
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def history_partitions(url: str) -> int:
    """Create the ledger's monthly partitions of the history months, as the owner."""
    created = 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(OWNER)))
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(SCHEMA)))
        for months in range(HISTORY_MONTHS, 0, -1):
            start = _months_ago(conn, months)
            end = _months_ago(conn, months - 1)
            name = f"inventory_movements_y{start:%Y}m{start:%m}"
            exists = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
            if exists and exists[0] is None:
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} PARTITION OF inventory_movements "
                        "FOR VALUES FROM ({}) TO ({})"
                    ).format(sql.Identifier(name), sql.Literal(start), sql.Literal(end))
                )
                created += 1
    return created


def numbered_tables(conn: psycopg.Connection, tenant_id: int) -> None:
    """Temporary tables numbering the balances and products 0..n-1, for the generators."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS growth_balances AS SELECT row_number() OVER "
        "(ORDER BY id) - 1 AS n, tenant_id, warehouse_id, location_id, product_id, lot_code, "
        "status FROM wms.inventory_balances WHERE tenant_id = %s",
        (tenant_id,),
    )
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS growth_products AS SELECT row_number() OVER "
        "(ORDER BY id) - 1 AS n, id FROM wms.products WHERE tenant_id = %s",
        (tenant_id,),
    )
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS growth_balances_n ON growth_balances (n)")
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS growth_products_n ON growth_products (n)")
    conn.execute("ANALYZE growth_balances, growth_products")


# Pair k lands on balance k % B in month (k // B + k % B) % 12 + 1 ago: each round of B
# pairs covers every balance once and every month evenly. The receipt comes at a spot of
# the first 26 days of the month, the pick 1 to 48 hours later (same partition).
# Rows go in month then key order, so each partition's key index grows in order.
_LEDGER_PAIRS = """
INSERT INTO wms.inventory_movements (tenant_id, occurred_at, warehouse_id, location_id,
    product_id, lot_code, status, quantity, kind, reference_type, reference_id, actor)
SELECT b.tenant_id,
       g.at + CASE WHEN s.sign = 1 THEN interval '0' ELSE (g.k %% 48 + 1) * interval '1 hour' END,
       b.warehouse_id, b.location_id, b.product_id, b.lot_code, b.status,
       s.sign * (g.k %% 5 + 1),
       CASE WHEN s.sign = 1 THEN 'receipt' ELSE 'pick' END,
       CASE WHEN s.sign = 1 THEN 'asn' ELSE 'order' END,
       CASE WHEN s.sign = 1 THEN 'ASN-H-' ELSE 'H-' END || lpad((g.k %% %(orders)s)::text, 8, '0'),
       'bench-history'
FROM (SELECT k, k %% %(b)s AS n, m,
             date_trunc('month', now()) - m * interval '1 month'
             + (k * 7919 %% (26 * 86400)) * interval '1 second' AS at
      FROM generate_series(%(first)s::bigint, %(last)s::bigint) k
      CROSS JOIN LATERAL (SELECT (k / %(b)s + k %% %(b)s) %% %(months)s + 1 AS m) month) g
JOIN growth_balances b ON b.n = g.n
CROSS JOIN (VALUES (1), (-1)) AS s(sign)
ORDER BY g.m, b.location_id, b.product_id, s.sign DESC
"""


def add_history_ledger(conn: psycopg.Connection, first_pair: int, pairs: int, orders: int) -> None:
    """Pairs ``first_pair`` … ``first_pair + pairs - 1`` (two rows each), a round a statement."""
    end = first_pair + pairs
    for start in range(first_pair, end, BALANCES):
        conn.execute(
            _LEDGER_PAIRS,
            {
                "first": start,
                "last": min(start + BALANCES, end) - 1,
                "b": BALANCES,
                "months": HISTORY_MONTHS,
                "orders": max(orders, 1),
            },
        )


# Closed order k: created in month k % 12 + 1 ago, allocated an hour later, shipped a
# day later; two lines of 1-3 units, all picked and shipped; three audit rows.
_ORDERS = """
WITH o AS (
    INSERT INTO wms.orders (tenant_id, number, warehouse_id, customer, carrier, priority,
        ship_to, status, content_hash, line_count, created_at, updated_at, allocated_at,
        shipped_at)
    SELECT %(tenant)s, 'H-' || lpad(k::text, 8, '0'), %(wh)s, 'customer ' || k %% 5000,
           'CORREIOS', 5, %(ship_to)s::jsonb, 'shipped',
           sha256(convert_to('H-' || k, 'UTF8')), 2, t.at, t.at + interval '2 days',
           t.at + interval '1 hour', t.at + interval '1 day'
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) k
    CROSS JOIN LATERAL (SELECT date_trunc('month', now()) - (k %% %(months)s + 1)
        * interval '1 month' + (k * 7919 %% (26 * 86400)) * interval '1 second' AS at) t
    RETURNING id, number
)
INSERT INTO wms.order_lines (tenant_id, order_id, line_no, product_id, quantity, picked,
    shipped)
SELECT %(tenant)s, o.id, l, p.id, q.q, q.q, q.q
FROM o CROSS JOIN generate_series(1, 2) l
CROSS JOIN LATERAL (SELECT (o.id + l) %% 3 + 1 AS q) q
JOIN growth_products p ON p.n = (o.id * 7 + l * 7919) %% %(skus)s
"""

_AUDIT = """
INSERT INTO wms.audit_log (tenant_id, occurred_at, actor, entity, entity_id, action, before,
    after)
SELECT %(tenant)s, o.created_at + a.after_created, 'bench-history', 'order', o.number,
       a.action, a.before, jsonb_build_object('number', o.number) || a.after
FROM wms.orders o
CROSS JOIN (VALUES
    (interval '0', 'received', NULL::jsonb, '{"lines": 2, "warehouse": "SP1"}'::jsonb),
    (interval '1 hour', 'allocated', NULL, '{"status": "allocated", "reserved": 4, "short": 0}'),
    (interval '1 day', 'shipped', '{"status": "packed"}', '{"status": "shipped"}')
) AS a(after_created, action, before, after)
WHERE o.tenant_id = %(tenant)s AND o.number >= %(from_number)s AND o.number <= %(to_number)s
ORDER BY o.id, a.after_created
"""


def add_closed_orders(conn: psycopg.Connection, world: World, first: int, count: int) -> None:
    """Shipped orders ``H-first`` … with their lines and audit rows."""
    if count <= 0:
        return
    last = first + count - 1
    conn.execute(
        _ORDERS,
        {
            "tenant": world.tenant_id,
            "wh": world.warehouse_id,
            "ship_to": json.dumps(flows.SHIP_TO),
            "first": first,
            "last": last,
            "months": HISTORY_MONTHS,
            "skus": SKUS,
        },
    )
    conn.execute(
        _AUDIT,
        {"tenant": world.tenant_id, "from_number": f"H-{first:08}", "to_number": f"H-{last:08}"},
    )


@dataclass
class Step:
    """One load: from one scale to the next, what it added and how long each part took."""

    scale: int
    ledger_seconds: float = 0.0
    orders_seconds: float = 0.0
    vacuum_seconds: float = 0.0
    check_seconds: float = 0.0
    mismatches: int = -1


def grow(url: str, world: World, old: int, new: int) -> Step:
    """Add the history from scale ``old`` (0 = none yet) to ``new``; VACUUM ANALYZE; check."""
    step = Step(new)
    old_pairs = max(old - 1, 0) * BALANCES // 2  # the world holds the 1× ledger itself
    new_pairs = (new - 1) * BALANCES // 2
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET synchronous_commit = off")
        numbered_tables(conn, world.tenant_id)
        started = time.perf_counter()
        add_history_ledger(conn, old_pairs, new_pairs - old_pairs, new * ORDERS_PER_SCALE)
        step.ledger_seconds = time.perf_counter() - started
        started = time.perf_counter()
        old_orders = old * ORDERS_PER_SCALE
        add_closed_orders(conn, world, old_orders, new * ORDERS_PER_SCALE - old_orders)
        step.orders_seconds = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")  # the load's write-back is not the measurement's
        step.vacuum_seconds = time.perf_counter() - started
    started = time.perf_counter()
    step.mismatches = ledger_mismatches(url)
    step.check_seconds = time.perf_counter() - started
    return step


def row_counts(url: str) -> dict[str, int]:
    """Exact rows of the tables that grow, the balances, and the database's size in bytes."""
    counts: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        for table in ("inventory_movements", "orders", "order_lines", "audit_log"):
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(SCHEMA, table))
            ).fetchone()
            counts[table] = int(row[0]) if row else 0
        row = conn.execute("SELECT count(*) FROM wms.inventory_balances").fetchone()
        counts["inventory_balances"] = int(row[0]) if row else 0
        row = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'wms.inventory_movements'::regclass"
        ).fetchone()
        counts["ledger_partitions"] = int(row[0]) if row else 0
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        counts["database_bytes"] = int(row[0]) if row else 0
    return counts


# -- measuring -------------------------------------------------------------------------


def serial(base_url: str, token: str, requests: list[Request]) -> dict[str, float]:
    """``requests`` one at a time on one keep-alive connection (no queueing)."""
    outcome = closed_loop(base_url, token, requests, processes=1, connections=1, seconds=3600)
    return summary(outcome)


def closed(base_url: str, token: str, requests: list[Request]) -> Outcome:
    """The closed loop of bench/run.py for ``SECONDS``."""
    return closed_loop(
        base_url, token, requests, processes=PROCESSES, connections=CONNECTIONS, seconds=SECONDS
    )


def measure_scale(
    url: str, base_url: str, token: str, allocation_rps: float
) -> dict[str, dict[str, float]]:
    """Every measure at the data now loaded; each run's work is prepared outside it."""
    report: list[Request] = [
        ("GET", f"{flows.API}/reports/stock-summary?warehouse={WAREHOUSE}", None)
    ]
    serial(base_url, token, report)  # warm-up: reads every balance once
    result: dict[str, dict[str, float]] = {}
    print("[growth]   lookups", flush=True)
    result["lookup_serial"] = serial(base_url, token, flows.lookups(SERIAL_LOOKUPS, seed=11))
    result["lookup"] = summary(closed(base_url, token, flows.lookups(int(1000 * SECONDS))))
    print("[growth]   allocations (preparing orders through the API first)", flush=True)
    supply = flows.allocations(url, base_url, token, SERIAL + int(allocation_rps * SECONDS * 1.5))
    result["allocation_serial"] = serial(base_url, token, supply[:SERIAL])
    result["allocation"] = summary(closed(base_url, token, supply[SERIAL:]))
    print(f"[growth]   stock report × {REPORTS}", flush=True)
    result["stock_report"] = serial(base_url, token, report * REPORTS)
    return result


# -- plans -----------------------------------------------------------------------------


def capture_reads(
    database: BenchDatabase, base_url: str, token: str, paths: dict[str, str]
) -> dict[str, list[str]]:
    """The SQL each GET of ``paths`` (name → path) runs, read from PostgreSQL's statement log."""
    log = database.data_dir / "pgdata" / "postgres.log"
    captured: dict[str, list[str]] = {}
    with (
        psycopg.connect(database.url, autocommit=True) as conn,
        httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as http,
    ):
        conn.execute("ALTER SYSTEM SET log_statement = 'all'")
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)  # every backend applies the reload at its next command
        try:
            for name, path in paths.items():
                start = log.stat().st_size
                http.get(path, timeout=120).raise_for_status()
                time.sleep(0.3)  # the backend writes the log a moment later
                with log.open("r", errors="replace") as handle:
                    handle.seek(start)
                    entries = ceilings._log_entries(handle.read())  # ceilings' log parser
                transactions = ceilings._transactions(entries)
                captured[name] = [s for t in transactions for s in t]
        finally:
            conn.execute("ALTER SYSTEM RESET log_statement")
            conn.execute("SELECT pg_reload_conf()")
    return captured


def _nodes(plan: dict[str, Any], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    yield depth, plan
    for child in plan.get("Plans", []):
        yield from _nodes(child, depth + 1)


def _node_line(depth: int, node: dict[str, Any]) -> str:
    where = f" on {node['Relation Name']}" if "Relation Name" in node else ""
    index = f" using {node['Index Name']}" if "Index Name" in node else ""
    rows = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
    return (
        f"{'  ' * depth}{node['Node Type']}{where}{index} (rows {rows:,.0f}, "
        f"{node.get('Actual Total Time', 0):.1f} ms, buffers hit "
        f"{node.get('Shared Hit Blocks', 0)} read {node.get('Shared Read Blocks', 0)})"
    )


def _seq_scans(plan: dict[str, Any], sizes: dict[str, int]) -> list[str]:
    """Sequential scans in ``plan`` of tables of ``LARGE_TABLE_ROWS`` rows or more."""
    found = []
    for _, node in _nodes(plan):
        table = str(node.get("Relation Name", ""))
        if "Seq Scan" in node["Node Type"] and sizes.get(table, 0) >= LARGE_TABLE_ROWS:
            grows = " (grows with history)" if table.startswith(GROWING) else ""
            found.append(f"{table}, {sizes[table]:,} rows{grows}: {_node_line(0, node)}")
    return found


def explain(url: str, statements: list[str]) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) the captured SELECTs as the app runs them (its role, RLS).

    The transaction's binding (``SELECT set_config(...)``: role, tenant) runs first, as
    the server's does; then each other SELECT is explained, in a transaction rolled back.
    """
    result: dict[str, Any] = {"milliseconds": 0.0, "buffers": 0, "seq_scans": [], "plan": []}
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET search_path = {}, public").format(sql.Identifier(SCHEMA)))
        sizes: dict[str, int] = dict(
            conn.execute(
                "SELECT c.relname, c.reltuples::bigint FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s",
                (SCHEMA,),
            ).fetchall()
        )
        for statement in dict.fromkeys(s.strip() for s in statements):
            if not statement.upper().startswith("SELECT"):
                continue  # BEGIN, COMMIT
            if statement.startswith("SELECT set_config"):
                conn.execute(statement.encode())
                continue
            row = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement.encode())
            document = row.fetchone()[0][0]  # type: ignore[index]
            result["milliseconds"] += document["Execution Time"] + document["Planning Time"]
            top = document["Plan"]
            result["buffers"] += top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
            shown = " ".join(statement.split())[:160]
            result["plan"].append(f"{shown}  -- {document['Execution Time']:.1f} ms")
            result["plan"] += ["  " + _node_line(d + 1, n) for d, n in _nodes(document["Plan"])]
            result["seq_scans"] += _seq_scans(document["Plan"], sizes)
        conn.rollback()
    return result


def plans(
    database: BenchDatabase, base_url: str, token: str, *, show: bool
) -> dict[str, dict[str, Any]]:
    """The plans of one stock lookup and one stock report, as the server runs them."""
    paths = {
        "lookup": flows.lookups(1, seed=99)[0][1],
        "stock_report": f"{flows.API}/reports/stock-summary?warehouse={WAREHOUSE}",
    }
    captured = capture_reads(database, base_url, token, paths)
    found = {name: explain(database.url, statements) for name, statements in captured.items()}
    for name, result in found.items():
        if show:
            print(f"[growth] EXPLAIN (ANALYZE, BUFFERS) of the {name} SQL:")
            print("\n".join("   " + line for line in result["plan"]))
        scans = "; ".join(result["seq_scans"]) or "none"
        print(
            f"[growth]   {name}: {result['milliseconds']:.1f} ms, {result['buffers']} buffers; "
            f"sequential scans of large tables: {scans}"
        )
    return found


# -- the run ---------------------------------------------------------------------------


def ratios(scales: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per measure: p50 and p95 at the largest scale over at the smallest."""
    first, last = scales[0]["measures"], scales[-1]["measures"]
    return {
        name: {q: last[name][q] / first[name][q] for q in ("p50", "p95")}
        for name in MEASURES
        if name in first and name in last
    }


def print_results(result: dict[str, Any]) -> None:
    """The table per scale, and the ratios against the target."""
    rows = []
    for entry in result["scales"]:
        m = entry["measures"]
        rows.append(
            [f"{entry['scale']}×", f"{entry['counts']['inventory_movements']:,}",
             f"{m['lookup']['rps']:.0f}", f"{m['lookup']['p50']:.1f}", f"{m['lookup']['p95']:.1f}",
             f"{m['lookup_serial']['p50']:.1f}", f"{m['lookup_serial']['p95']:.1f}",
             f"{m['allocation']['rps']:.0f}", f"{m['allocation']['p50']:.1f}",
             f"{m['allocation']['p95']:.1f}", f"{m['allocation_serial']['p50']:.1f}",
             f"{m['allocation_serial']['p95']:.1f}", f"{m['stock_report']['p50']:.0f}",
             f"{m['stock_report']['p95']:.0f}"]
        )  # fmt: skip
    print()
    print("latencies in ms; closed loop = throughput/s, p50, p95; 1 conn = one at a time")
    print_table(
        ["scale", "ledger rows", "lookup/s", "p50", "p95", "1-conn p50", "p95", "alloc/s",
         "p50", "p95", "1-conn p50", "p95", "report p50", "p95"],
        rows,
    )  # fmt: skip
    last = result["scales"][-1]["scale"]
    first = result["scales"][0]["scale"]
    print()
    print_table(
        ["measure", f"p50 {last}×/{first}×", f"p95 {last}×/{first}×", f"≤ {TARGET}×"],
        [
            [MEASURES[name], f"{r['p50']:.2f}", f"{r['p95']:.2f}",
             "met" if max(r.values()) <= TARGET else "NOT MET"]
            for name, r in result["ratios"].items()
        ],
    )  # fmt: skip


def _print_step(step: Step, counts: dict[str, int]) -> None:
    print(
        f"[growth] {step.scale}×: ledger pairs {step.ledger_seconds:.0f} s, closed orders "
        f"{step.orders_seconds:.0f} s, VACUUM ANALYZE + CHECKPOINT {step.vacuum_seconds:.0f} s, "
        f"invariant check {step.check_seconds:.0f} s ({step.mismatches} mismatches); rows: "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items()),
        flush=True,
    )


def grow_and_measure(
    database: BenchDatabase, base_url: str, token: str, world: World
) -> list[dict[str, Any]]:
    """Per scale: grow the history, measure; the plans at the first and the last scale."""
    entries: list[dict[str, Any]] = []
    allocation_rps, previous = FIRST_ALLOCATION_RPS, 0
    for scale in SCALES:
        step = grow(database.url, world, previous, scale)
        previous = scale
        counts = row_counts(database.url)
        _print_step(step, counts)
        print(f"[growth] {scale}×: measuring", flush=True)
        measures = measure_scale(database.url, base_url, token, allocation_rps)
        allocation_rps = max(measures["allocation"]["rps"], 50.0)
        entry = {**vars(step), "counts": counts, "measures": measures}
        if scale in (SCALES[0], SCALES[-1]):
            print(f"[growth] {scale}×: plans", flush=True)
            entry["plans"] = plans(database, base_url, token, show=scale == SCALES[-1])
        entries.append(entry)
    return entries


def run() -> dict[str, Any]:
    """Load, grow and measure at every scale; return the ``growth`` results."""
    log_warnings_only()
    began = time.perf_counter()
    result: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": QUICK, "seconds": SECONDS, "serial": SERIAL, "serial_lookups": SERIAL_LOOKUPS,
        "reports": REPORTS,
        "connections": CONNECTIONS, "processes": PROCESSES, "pool_max": POOL_MAX,
        "history_months": HISTORY_MONTHS, "orders_per_scale": ORDERS_PER_SCALE,
    }  # fmt: skip
    with fresh_database() as database:
        token = admin_token(database)
        with bench_server(database, token) as (server, client):
            print(f"[growth] scales {SCALES}; loading the world", flush=True)
            started = time.perf_counter()
            world = load_world(client, database.url)
            result["world_seconds"] = time.perf_counter() - started
            result["partitions_created"] = history_partitions(database.url)
            result["scales"] = grow_and_measure(database, server.base_url, token, world)
    result["ratios"] = ratios(result["scales"])
    result["total_seconds"] = time.perf_counter() - began
    print_results(result)
    return result


def main() -> None:
    """Run alone: merge ``growth`` into bench/results.json, re-render RESULTS.md."""
    growth = run()
    path = HERE / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["growth"] = growth
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    from bench import report  # noqa: PLC0415 - matplotlib loads only for the report

    report.write(results)
    print(f"[growth] done in {growth['total_seconds']:.0f} s: bench/RESULTS.md", flush=True)


if __name__ == "__main__":
    main()
