"""``make bench``: every flow under load, its ceiling, large documents; RESULTS.md and charts.

Run: ``.venv/bin/python -m bench.run`` (``BENCH_QUICK=1`` for a short try).
Durations: ``BENCH_SECONDS`` (closed loop per flow), ``BENCH_OPEN_SECONDS`` (the run at
70% of the maximum), ``BENCH_WARM_SECONDS`` (the same load before each, not measured),
``BENCH_PGBENCH_SECONDS``; ``BENCH_CONNECTIONS`` in flight (also
pgbench's clients), ``BENCH_PROCESSES`` load-generator processes; ``BENCH_LINES`` of
the large documents. At the end, the growth run (bench/growth.py, its own database; 383 s
in the run of 2026-11-30, shorter with ``BENCH_QUICK=1``) unless ``BENCH_GROWTH=0``, which
keeps the growth results of an earlier run in results.json.

The server runs as production runs its pods: ``BENCH_SERVER_PROCESSES`` (default 2, the
Helm chart's ``api.autoscaling.minReplicas``) ``wms-server serve`` processes of one
uvicorn worker each, each with its pool of ``WMS_DB_POOL_MAX`` = 20; the load-generator
processes share them evenly (a Service's balancing); only the rate limits are raised.
The ``/noop`` and ``/select1`` ceilings run in as many processes. Set-up, large
documents and the growth run use the first server alone.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import ceilings, flows, large_documents
from bench.harness import (
    POOL_MAX,
    RAISED_LIMITS,
    SHARED_BUFFERS,
    admin_token,
    bench_server,
    fresh_database,
    log_warnings_only,
    more_bench_servers,
    percentile,
)
from bench.load import Outcome, Request, closed_loop, open_loop
from bench.world import ledger_mismatches, load_world
from wms.config import Settings

QUICK = os.environ.get("BENCH_QUICK") == "1"
SECONDS = float(os.environ.get("BENCH_SECONDS", "4" if QUICK else "20"))
OPEN_SECONDS = float(os.environ.get("BENCH_OPEN_SECONDS", "3" if QUICK else "15"))
PGBENCH_SECONDS = float(os.environ.get("BENCH_PGBENCH_SECONDS", "4" if QUICK else "15"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
PROCESSES = int(os.environ.get("BENCH_PROCESSES", "2"))
# A Python process serves on one core: production runs at least two pods
# (deploy/helm/wms/values.yaml, api.autoscaling.minReplicas), so does the benchmark.
SERVER_PROCESSES = int(os.environ.get("BENCH_SERVER_PROCESSES", "2"))
LINES = int(os.environ.get("BENCH_LINES", "5000"))
# Work prepared for a closed-loop run: the most we expect per second on this machine, by
# flow. With one figure for all (250/s), the lookup ran out of work after 5.7 s of its
# 20, intake after 15.9 and the mixed day after 12.8 (run of 2026-12-07 02:31); a run
# that still ends early is named in RESULTS.md.
EXPECTED_RPS = {"lookup": 3_000, "intake": 700, "mixed": 650}
EXPECTED_WRITE_RPS = 250
# Before each measured run, the same load for this long, not measured. The set-up of a
# flow ends with a database-wide ANALYZE (flows.prepare), after which every pooled
# session plans its statements again at their next use: the open loop's first second
# measured a p95 of 36-143 ms in eleven runs of dispatch and allocation whose median
# second was 10-20 ms (bench/FINDINGS.md, 2026-12-07 morning).
WARM_SECONDS = float(os.environ.get("BENCH_WARM_SECONDS", "1" if QUICK else "2"))
CAPTURED = 24  # requests whose transactions become the pgbench scripts
# Captured intakes' orders get ids from here: no quantity or line number equals one, so a
# literal id in their SQL is rewritten without touching anything else; the order
# history taken before has smaller ids and is left alone.
CAPTURED_ORDER_IDS_FROM = 1_000_000
HERE = Path(__file__).parent


SLOW_MS = 50.0


def summary(outcome: Outcome) -> dict[str, float]:
    """Throughput, percentiles in ms, errors, count, and how the run's seconds went."""
    latencies = outcome.latencies()
    # The p95 of each second (by start): a few slow seconds (a checkpoint, autovacuum, a
    # colleague's build) read differently from a run that was slow throughout.
    by_second: dict[int, list[float]] = {}
    for started, latency, _ in outcome.samples:
        by_second.setdefault(int(started), []).append(latency)
    per_second = [percentile(values, 95) * 1000 for values in by_second.values()]
    return {
        "rps": outcome.throughput,
        "p50": percentile(latencies, 50) * 1000,
        "p95": percentile(latencies, 95) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "errors": outcome.errors,
        "requests": len(latencies),
        "seconds": outcome.seconds,
        "slow_seconds": sum(1 for p95 in per_second if p95 >= SLOW_MS),
        "counted_seconds": len(per_second),
        "median_second_p95": statistics.median(per_second) if per_second else float("nan"),
    }


def measure(
    base_url: list[str], token: str, name: str, supply: Callable[[int], list[Request]]
) -> dict[str, Any]:
    """Closed loop at ``CONNECTIONS``, then open loop at 70% of what it reached, each
    after ``WARM_SECONDS`` of the same load."""

    def closed(work: list[Request], seconds: float) -> Outcome:
        return closed_loop(
            base_url, token, work, processes=PROCESSES, connections=CONNECTIONS, seconds=seconds
        )

    expected = EXPECTED_RPS.get(name, EXPECTED_WRITE_RPS)
    print(f"[bench] {name}: closed loop {SECONDS:.0f} s", flush=True)
    warm_max, peak = after_warm_up(
        closed,
        supply(int(expected * (WARM_SECONDS + SECONDS) * 1.5)),
        warm=int(expected * WARM_SECONDS * 1.5),
        seconds=SECONDS,
    )
    result: dict[str, Any] = {"max": summary(peak)}
    rate = 0.7 * peak.throughput

    def steady(work: list[Request], seconds: float) -> Outcome:
        return open_loop(base_url, token, work, processes=PROCESSES, rate=rate, seconds=seconds)

    print(f"[bench] {name}: {peak.throughput:.0f}/s; open loop at {rate:.0f}/s", flush=True)
    warm_at70, at70 = after_warm_up(
        steady,
        supply(int(rate * (WARM_SECONDS + OPEN_SECONDS) * 1.05) + 1),
        warm=int(rate * WARM_SECONDS),
        seconds=OPEN_SECONDS,
    )
    result["at70"] = {**summary(at70), "rate": rate}
    result["error_statuses"] = {
        "max": error_statuses(peak),
        "at70": error_statuses(at70),
        "warm-up before max": error_statuses(warm_max),
        "warm-up before at70": error_statuses(warm_at70),
    }
    return result


def after_warm_up(
    run: Callable[[list[Request], float], Outcome],
    work: list[Request],
    *,
    warm: int,
    seconds: float,
) -> tuple[Outcome, Outcome]:
    """``run`` the first ``warm`` requests for ``WARM_SECONDS`` (what it did not send is
    dropped), then the rest for ``seconds``: the warm-up's outcome and the measured one."""
    warm_up = Outcome()
    if WARM_SECONDS > 0:
        warm_up = run(work[:warm], WARM_SECONDS)
        work = work[warm:]
    return warm_up, run(work, seconds)


def error_statuses(outcome: Outcome) -> dict[str, int]:
    """How many answers of each non-2xx status (``0``: the connection failed)."""
    counts: dict[str, int] = {}
    for _, _, status in outcome.samples:
        if not 200 <= status < 300:
            counts[str(status)] = counts.get(str(status), 0) + 1
    return counts


def capture_ceiling(
    database: Any,
    client: httpx.Client,
    requests: list[Request],
    rewrite: Callable[[list[list[str]]], list[list[str]]] | None = None,
) -> dict[str, Any]:
    """pgbench of the transactions ``requests`` execute (sent one by one, logged), committed
    (the ceiling) and ending in ROLLBACK (``rollback``)."""

    def send() -> None:
        for method, path, body in requests:
            client.request(
                method,
                path.removeprefix(flows.API),
                content=body,
                headers={"content-type": "application/json"},
            )

    transactions = ceilings.capture(database, send)
    if not transactions:
        raise RuntimeError("no transaction captured")
    if rewrite is not None:
        transactions = rewrite(transactions)
    result: dict[str, Any] = ceilings.replay(
        database, transactions, clients=CONNECTIONS, seconds=PGBENCH_SECONDS
    )
    result["statements"] = float(sum(len(t) for t in transactions) / len(transactions))
    # What the ROLLBACK replay of earlier runs measured: shows what the commit costs.
    result["rollback"] = ceilings.replay(
        database, transactions, clients=CONNECTIONS, seconds=PGBENCH_SECONDS, commit=False
    )
    return result


def fresh_orders(url: str, transactions: list[list[str]]) -> list[list[str]]:
    """Make captured intakes replayable: drop the orders, find their new id by number.

    A replayed intake inserts its order again (a new id from the identity) and then its
    lines, which name the captured id as a literal; that literal becomes a lookup by
    order number, and the captured orders are deleted so their numbers are free again.
    """
    with psycopg.connect(url) as conn:
        numbers: dict[int, str] = dict(
            conn.execute(
                "SELECT id, number FROM wms.orders WHERE id >= %s", (CAPTURED_ORDER_IDS_FROM,)
            ).fetchall()
        )
        ids = list(numbers)
        conn.execute("DELETE FROM wms.order_lines WHERE order_id = ANY(%s)", (ids,))
        conn.execute("DELETE FROM wms.orders WHERE id = ANY(%s)", (ids,))
    rewritten = []
    for statements in transactions:
        out = []
        for statement in statements:
            sql = statement
            if "INTO orders" not in sql:
                for order_id in ids:
                    found = f"(SELECT id FROM orders WHERE number = '{numbers[order_id]}')"
                    sql = re.sub(rf"'{order_id}'(?!\d)", found, sql)
            out.append(sql)
        rewritten.append(out)
    return rewritten


def unallocate(url: str, numbers: list[str], transactions: list[list[str]]) -> list[list[str]]:
    """Put the captured orders back to ``received`` so their allocation can be replayed."""
    with psycopg.connect(url) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM wms.orders WHERE number = ANY(%s)", (numbers,)
            ).fetchall()
        ]
        conn.execute(
            "UPDATE wms.inventory_balances b SET allocated = b.allocated - a.q FROM (SELECT "
            "tenant_id, balance_id, sum(quantity) AS q FROM wms.allocations WHERE order_id = "
            "ANY(%s) GROUP BY 1, 2) a WHERE b.tenant_id = a.tenant_id AND b.id = a.balance_id",
            (ids,),
        )
        conn.execute("DELETE FROM wms.allocations WHERE order_id = ANY(%s)", (ids,))
        conn.execute("UPDATE wms.order_lines SET allocated = 0 WHERE order_id = ANY(%s)", (ids,))
        conn.execute(
            "UPDATE wms.orders SET status = 'received', allocated_at = NULL WHERE id = ANY(%s)",
            (ids,),
        )
    return transactions


def run_growth() -> dict[str, Any] | None:
    """bench/growth.py's results; with ``BENCH_GROWTH=0``, the last run's (or None)."""
    if os.environ.get("BENCH_GROWTH", "1") != "0":
        from bench import growth  # noqa: PLC0415 - growth imports this module

        return growth.run()
    path = HERE / "results.json"
    if not path.exists():
        return None
    earlier: dict[str, Any] | None = json.loads(path.read_text()).get("growth")
    if earlier is not None:
        print(f"[bench] BENCH_GROWTH=0: keeping the growth run of {earlier['started']}")
    return earlier


def versions() -> dict[str, str]:
    """Python, PostgreSQL, pgbench and the libraries that matter."""
    import fastapi  # noqa: PLC0415
    import psycopg  # noqa: PLC0415
    import uvicorn  # noqa: PLC0415

    pgbench = subprocess.run(
        [ceilings.pgbench_path(), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "python": platform.python_version(),
        "fastapi": fastapi.__version__,
        "uvicorn": uvicorn.__version__,
        "psycopg": psycopg.__version__,
        "pgbench": pgbench,
        "cpus": str(os.cpu_count()),
        "machine": f"{platform.system()} {platform.machine()}",
        "kernel": platform.release(),
    }


def main() -> None:  # noqa: PLR0915 - one linear script of phases reads best
    """Run everything, write bench/results.json, RESULTS.md and the charts."""
    log_warnings_only()
    began = time.time()
    out: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": QUICK,
        "seconds": SECONDS,
        "open_seconds": OPEN_SECONDS,
        "warm_seconds": WARM_SECONDS,
        "pgbench_seconds": PGBENCH_SECONDS,
        "connections": CONNECTIONS,
        "processes": PROCESSES,
        "server_processes": SERVER_PROCESSES,
        "pool_max": POOL_MAX,
        # Production's default unless set for the run: the servers inherit the environment.
        "max_in_flight": int(
            os.environ.get("WMS_MAX_IN_FLIGHT", Settings.model_fields["max_in_flight"].default)
        ),
        "shared_buffers": SHARED_BUFFERS,
        "versions": versions(),
        "flows": {},
        "ceilings": {},
    }
    with fresh_database() as database:
        token = admin_token(database)
        print(f"[bench] rate limiting raised for the run: {RAISED_LIMITS}", flush=True)
        with (
            bench_server(database, token) as (server, client),
            more_bench_servers(database, SERVER_PROCESSES - 1) as others,
        ):
            base = server.base_url
            servers = [base, *(other.base_url for other in others)]
            print(
                f"[bench] {len(servers)} wms-server processes (1 uvicorn worker, pool "
                f"{POOL_MAX} each); loading",
                flush=True,
            )
            started = time.perf_counter()
            world = load_world(client, database.url)
            out["load_seconds"] = time.perf_counter() - started
            out["world"] = {
                "locations": world.locations,
                "skus": world.skus,
                "balances": world.skus * 10,
                "ledger_rows": world.skus * 10,
            }
            out["ledger_mismatches_after_load"] = ledger_mismatches(database.url)

            with ceilings.noop_server(database, POOL_MAX, SERVER_PROCESSES) as noop:
                for route in ("noop", "select1"):
                    print(f"[bench] ceiling /{route}", flush=True)
                    requests: list[Request] = [("GET", f"/{route}", None)] * 200_000
                    out["ceilings"][route] = summary(
                        closed_loop(
                            noop,
                            token,
                            requests,
                            processes=PROCESSES,
                            connections=CONNECTIONS,
                            seconds=SECONDS,
                        )
                    )
            print("[bench] ceiling: reference allocation transaction (pgbench)", flush=True)
            out["ceilings"]["reference_allocation"] = ceilings.reference_allocation(
                database, world.tenant_id, clients=CONNECTIONS, seconds=PGBENCH_SECONDS
            )
            # What a replay ending in ROLLBACK leaves out of a transaction this small.
            out["ceilings"]["reference_allocation_rollback"] = ceilings.reference_allocation(
                database,
                world.tenant_id,
                clients=CONNECTIONS,
                seconds=PGBENCH_SECONDS,
                end="ROLLBACK",
            )

            out["flows"]["lookup"] = measure(servers, token, "lookup", flows.lookups)
            out["flows"]["lookup"]["ceiling"] = "select1"

            url = database.url
            stock_flows = flows.supplies(client, url, base, token, "IN")
            del stock_flows["lookup"]
            print(f"[bench] intake: {flows.ORDER_HISTORY} orders taken first (set-up)", flush=True)
            flows.order_history(url, base, token)
            for name, supply in stock_flows.items():
                print(f"[bench] {name}: capturing its SQL for pgbench", flush=True)
                rewrite: Callable[[list[list[str]]], list[list[str]]] | None = None
                if name == "pick":
                    captured = flows.confirmations(
                        client, url, base, token, CAPTURED, replayable=True
                    )
                else:
                    captured = supply(CAPTURED)
                if name == "allocation":
                    numbers = [path.split("/")[-2] for _, path, _ in captured]
                    rewrite = lambda t, n=numbers: unallocate(url, n, t)  # noqa: E731
                if name == "intake":
                    rewrite = lambda t: fresh_orders(url, t)  # noqa: E731
                    with psycopg.connect(url) as conn:
                        # Order ids no quantity or line number can equal, for the rewrite.
                        conn.execute(
                            "ALTER TABLE wms.orders ALTER COLUMN id RESTART WITH "
                            f"{CAPTURED_ORDER_IDS_FROM}"
                        )
                try:
                    out["ceilings"][f"{name}_sql"] = capture_ceiling(
                        database, client, captured, rewrite
                    )
                except RuntimeError as exc:
                    # A replay that conflicts with the state the capture left (see notes).
                    print(f"[bench] {name}: no pgbench ceiling: {str(exc)[:1500]}", flush=True)
                    unmeasured = {"tps": float("nan"), "latency_ms": float("nan"), "failed": 0.0}
                    out["ceilings"][f"{name}_sql"] = {
                        **unmeasured,
                        "statements": 0.0,
                        "rollback": unmeasured,
                    }
                out["flows"][name] = measure(servers, token, name, supply)
                out["flows"][name]["ceiling"] = f"{name}_sql"

            def mixed(count: int) -> list[Request]:
                shares = {k: int(count * w / 100) + 1 for k, w in flows.MIX.items()}
                # Downstream first: topping up dispatches confirms open tasks and topping
                # up picks allocates received orders, which would turn requests already
                # drawn for those tasks and orders into 409s (375 of them in one run).
                dispatch = stock_flows["dispatch"](shares["dispatch"])
                pick = stock_flows["pick"](shares["pick"])
                allocation = stock_flows["allocation"](shares["allocation"])
                return flows.mixed(
                    {
                        "lookup": flows.lookups(shares["lookup"], seed=5),
                        "intake": flows.intakes(shares["intake"], "MX"),
                        "allocation": allocation,
                        "pick": pick,
                        "dispatch": dispatch,
                    },
                    count,
                )

            out["flows"]["mixed"] = measure(servers, token, "mixed", mixed)

            print(f"[bench] large documents: {LINES}-line order", flush=True)
            out["large_order"] = large_documents.large_order(
                client, url, base, token, LINES, small_rate=20.0
            )
            print(f"[bench] large documents: {LINES}-line ASN", flush=True)
            try:
                out["large_asn"] = large_documents.large_asn(client, url, base, token, LINES)
            except (RuntimeError, httpx.HTTPError) as exc:
                out.setdefault("notes", []).append(f"- the large ASN failed: {exc!s:.300}")
        out["ledger_mismatches_at_end"] = ledger_mismatches(database.url)
    growth_results = run_growth()
    if growth_results is not None:
        out["growth"] = growth_results
    out["total_seconds"] = time.time() - began
    (HERE / "results.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    from bench import report  # noqa: PLC0415 - matplotlib loads only for the report

    report.write(out)
    print(f"[bench] done in {out['total_seconds']:.0f} s: bench/RESULTS.md", flush=True)


if __name__ == "__main__":
    main()
