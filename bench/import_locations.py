"""Time ``POST /warehouses/{wh}/locations:import`` with 10,000 locations, JSON and CSV.

Run: ``.venv/bin/python -m bench.import_locations [--rows N] [--repeat K]``

Starts its own embedded PostgreSQL in a temporary folder, migrates it, creates a tenant
and an admin key, and drives the app in-process through HTTP (FastAPI's TestClient).
The ceiling is a raw ``COPY`` of the same rows into a scratch copy of ``locations`` on
the same database in the same run (no HTTP, no validation, no upsert). Each case runs
``--repeat`` times into fresh warehouses; the table shows the best run. Last, a file
with one bad row shows the rejection naming its line.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from functools import partial
from typing import Any

import psycopg

from bench.harness import (
    InProcessClient,
    admin_token,
    fresh_database,
    in_process_client,
    log_warnings_only,
    print_best_runs,
    timed,
)

COLUMNS = "code,type,zone,pick_sequence,capacity_units,capacity_volume_l,capacity_weight_kg,active"
ZONES = ("A", "B", "C", "D")
TYPES = ("storage", "storage", "storage", "pick", "dock")
CEILING = "raw COPY (ceiling)"


def generate(rows: int) -> list[dict[str, Any]]:
    """``rows`` locations: aisle-bay-level codes, every field filled."""
    return [
        {
            "code": f"{ZONES[n % 4]}-{n // 400:02}-{n // 20 % 20:02}-{n % 20:02}",
            "type": TYPES[n % len(TYPES)],
            "zone": ZONES[n % 4],
            "pick_sequence": n,
            "capacity_units": 100 + n % 900,
            "capacity_volume_l": round(0.5 + (n % 1000) / 8, 3),
            "capacity_weight_kg": 250.0,
            "active": n % 50 != 0,
        }
        for n in range(rows)
    ]


def to_csv(locations: list[dict[str, Any]]) -> bytes:
    """The rows as CSV with the import's header."""
    names = COLUMNS.split(",")
    lines = [COLUMNS] + [
        ",".join("true" if r[c] is True else "false" if r[c] is False else str(r[c]) for c in names)
        for r in locations
    ]
    return ("\n".join(lines) + "\n").encode()


def new_warehouse(app: InProcessClient) -> str:
    """A warehouse with zones A-D; its code."""
    code = f"W{uuid.uuid4().hex[:8].upper()}"
    body = {"code": code, "name": code, "timezone": "America/Sao_Paulo"}
    app.call("POST", "/warehouses", json=body)
    for zone in ZONES:
        app.call("POST", f"/warehouses/{code}/zones", json={"code": zone})
    return code


def ceiling(url: str, locations: list[dict[str, Any]]) -> float:
    """Seconds for a raw COPY of the rows into a scratch copy of ``locations`` (with indexes)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.bench_locations")
        conn.execute("CREATE TABLE public.bench_locations (LIKE wms.locations INCLUDING ALL)")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            copy_sql = (
                "COPY public.bench_locations (tenant_id, warehouse_id, code, type, zone_id, "
                "pick_sequence, capacity_units, capacity_volume_l, capacity_weight_kg, active) "
                "FROM STDIN"
            )
            with cursor.copy(copy_sql) as copy:
                for n, r in enumerate(locations):
                    copy.write_row(
                        (
                            1,
                            1,
                            r["code"],
                            r["type"],
                            n % 4 + 1,
                            r["pick_sequence"],
                            r["capacity_units"],
                            r["capacity_volume_l"],
                            r["capacity_weight_kg"],
                            r["active"],
                        )
                    )
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE public.bench_locations")
    return elapsed


def run(rows: int, repeat: int) -> None:
    """Start PostgreSQL, run every case, print the table and the rejection demo."""
    log_warnings_only()
    with fresh_database() as database:
        token = admin_token(database)
        locations = generate(rows)
        json_body = json.dumps({"locations": locations}).encode()
        csv_body = to_csv(locations)
        with in_process_client(database, token, statement_timeout_ms=60_000) as app:
            results = measure(
                app,
                database.url,
                locations=locations,
                json_body=json_body,
                csv_body=csv_body,
                repeat=repeat,
            )
            print_best_runs(rows, results, CEILING)
            demonstrate_rejection(app, locations)


def measure(
    app: InProcessClient,
    url: str,
    *,
    locations: list[dict[str, Any]],
    json_body: bytes,
    csv_body: bytes,
    repeat: int,
) -> dict[str, list[float]]:
    """Seconds of each case, ``repeat`` times."""
    json_type = {"Content-Type": "application/json"}
    csv_type = {"Content-Type": "text/csv"}
    results: dict[str, list[float]] = {}
    for _ in range(repeat):
        results.setdefault(CEILING, []).append(ceiling(url, locations))
        for label, body, headers in (
            ("HTTP import, JSON, create", json_body, json_type),
            ("HTTP import, CSV, create", csv_body, csv_type),
        ):
            wh = new_warehouse(app)
            path = f"/warehouses/{wh}/locations:import"
            seconds, answer = timed(partial(app.call, "POST", path, content=body, headers=headers))
            assert answer == {"created": len(locations), "updated": 0}, answer
            results.setdefault(label, []).append(seconds)
            if label.endswith("CSV, create"):
                seconds, answer = timed(
                    partial(app.call, "POST", path, content=csv_body, headers=csv_type)
                )
                assert answer == {"created": 0, "updated": len(locations)}, answer
                results.setdefault("HTTP import, CSV, update all", []).append(seconds)
    return results


def demonstrate_rejection(app: InProcessClient, locations: list[dict[str, Any]]) -> None:
    """Import a file whose 5,000th data row has a bad type; show the 422 naming its line."""
    wh = new_warehouse(app)
    bad = [dict(r) for r in locations]
    # data row 4,999 = physical line 5,000 (header = line 1); in a shorter file, its last row
    bad[min(4998, len(bad) - 1)]["type"] = "roof"
    response = app.request(
        "POST",
        f"/warehouses/{wh}/locations:import",
        content=to_csv(bad),
        headers={"Content-Type": "text/csv"},
    )
    problem = response.json()
    listed = app.call("GET", f"/warehouses/{wh}/locations", params={"limit": 500})
    print(f"\nrejected file: HTTP {response.status_code} {problem['type'].rsplit('/', 1)[-1]}")
    print(f"  detail: {problem['detail']}")
    print(f"  row_errors: {problem['row_errors']}")
    print(f"  locations in that warehouse afterwards: {len(listed['items'])} (its staging only)")


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    run(arguments.rows, arguments.repeat)


if __name__ == "__main__":
    main()
