"""Time ``POST /products:import`` with 10,000 products, JSON and CSV, create and update.

Run: ``.venv/bin/python -m bench.import_products [--rows N] [--repeat K]``

Starts its own embedded PostgreSQL in a temporary folder, migrates it, and drives the
app in-process through HTTP (FastAPI's TestClient) with the default settings (so the
default 5 s ``statement_timeout`` applies). Every product has two barcodes and one unit
(a case of 12) with a barcode: 10,000 rows write 10,000 products, 10,000 units and
30,000 barcodes. The ceiling is a raw ``COPY`` of the same rows into scratch copies of
the three tables (with their indexes) in the same run: no HTTP, no validation, no
upsert. Creations run in a fresh tenant each time; the table shows best and median.
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
    BenchDatabase,
    InProcessClient,
    admin_token,
    fresh_database,
    in_process_client,
    log_warnings_only,
    print_best_runs,
    timed,
)
from wms.api.routes.products import _csv_rows, _json_rows

CSV_COLUMNS = ("sku", "description", "category", "velocity_class", "weight_kg", "barcodes")
JSON_TYPE = {"Content-Type": "application/json"}
CSV_TYPE = {"Content-Type": "text/csv"}
CEILING = "raw COPY (ceiling)"


def generate(rows: int) -> list[dict[str, Any]]:
    """``rows`` products, each with two barcodes and a case of 12 with its own barcode."""
    return [
        {
            "sku": f"SKU-{n:06d}",
            "description": f"Product number {n}",
            "category": f"cat-{n % 40}",
            "velocity_class": "ABC"[n % 3],
            "weight_kg": round(0.1 + (n % 500) / 100, 3),
            "barcodes": [f"789{n:010d}", f"ALT{n:07d}"],
            "uoms": [{"code": "CASE", "factor": 12, "barcodes": [f"1789{n:010d}"]}],
        }
        for n in range(rows)
    ]


def to_csv(products: list[dict[str, Any]]) -> bytes:
    """The rows as CSV (units as the JSON ``uoms`` column)."""
    lines = [",".join((*CSV_COLUMNS, "uoms"))]
    for p in products:
        cells = [str(p[c]) for c in CSV_COLUMNS[:-1]] + ["|".join(p["barcodes"])]
        uoms = json.dumps(p["uoms"]).replace('"', '""')
        lines.append(",".join([*cells, f'"{uoms}"']))
    return ("\n".join(lines) + "\n").encode()


def new_tenant(database: BenchDatabase) -> dict[str, str]:
    """Headers of an admin of a fresh tenant."""
    return {"Authorization": f"Bearer {admin_token(database, f'b{uuid.uuid4().hex[:10]}')}"}


def import_(
    app: InProcessClient, auth: dict[str, str], body: bytes, content_type: dict[str, str]
) -> Any:
    """One import as ``auth``; fails loudly on an unexpected status."""
    return app.call("POST", "/products:import", content=body, headers={**auth, **content_type})


def ceiling(url: str, products: list[dict[str, Any]]) -> float:
    """Seconds for a raw COPY of the rows into scratch copies of the three tables."""
    tables = ("products", "product_uoms", "barcodes")
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS public.bench_{table}")
            conn.execute(f"CREATE TABLE public.bench_{table} (LIKE wms.{table} INCLUDING ALL)")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(
                "COPY public.bench_products (tenant_id, sku, description, category, "
                "velocity_class, weight_kg) FROM STDIN"
            ) as copy:
                for p in products:
                    copy.write_row(
                        (
                            1,
                            p["sku"],
                            p["description"],
                            p["category"],
                            p["velocity_class"],
                            p["weight_kg"],
                        )
                    )
            # The scratch products got ids 1..N in file order (GENERATED ... INCLUDING ALL).
            with cursor.copy(
                "COPY public.bench_product_uoms (tenant_id, product_id, code, factor) FROM STDIN"
            ) as copy:
                for n, p in enumerate(products, start=1):
                    for uom in p["uoms"]:
                        copy.write_row((1, n, uom["code"], uom["factor"]))
            with cursor.copy(
                "COPY public.bench_barcodes (tenant_id, barcode, product_id, uom_code) FROM STDIN"
            ) as copy:
                for n, p in enumerate(products, start=1):
                    for code in p["barcodes"]:
                        copy.write_row((1, code, n, None))
                    for uom in p["uoms"]:
                        for code in uom["barcodes"]:
                            copy.write_row((1, code, n, uom["code"]))
        elapsed = time.perf_counter() - started
        for table in tables:
            conn.execute(f"DROP TABLE public.bench_{table}")
    return elapsed


def measure(
    app: InProcessClient, database: BenchDatabase, products: list[dict[str, Any]], repeat: int
) -> dict[str, list[float]]:
    """Seconds of each case, ``repeat`` times."""
    rows = len(products)
    renamed = [{**p, "description": p["description"] + " v2"} for p in products]
    rebarcoded = [{**p, "barcodes": [f"NEW{n:07d}"]} for n, p in enumerate(renamed)]
    bodies = {
        "create": json.dumps({"products": products}).encode(),
        "rename": json.dumps({"products": renamed}).encode(),
        "rebarcode": json.dumps({"products": rebarcoded}).encode(),
    }
    csv_body = to_csv(products)
    results: dict[str, list[float]] = {}
    cases = (
        ("HTTP import, JSON, create", "create", (rows, 0, 0)),
        ("HTTP import, JSON, update all", "rename", (0, rows, 0)),
        ("HTTP import, JSON, unchanged", "rename", (0, 0, rows)),
        ("HTTP import, JSON, new barcodes", "rebarcode", (0, rows, 0)),
    )
    for _ in range(repeat):
        results.setdefault(CEILING, []).append(ceiling(database.url, products))
        seconds = timed(partial(_json_rows, bodies["create"]))[0]
        results.setdefault("parse+validate JSON (no DB)", []).append(seconds)
        seconds = timed(partial(_csv_rows, csv_body))[0]
        results.setdefault("parse+validate CSV (no DB)", []).append(seconds)
        auth = new_tenant(database)
        for label, body, (created, updated, unchanged) in cases:
            seconds, answer = timed(partial(import_, app, auth, bodies[body], JSON_TYPE))
            expected = {"created": created, "updated": updated, "unchanged": unchanged}
            assert answer == expected, answer
            results.setdefault(label, []).append(seconds)
        seconds, answer = timed(partial(import_, app, new_tenant(database), csv_body, CSV_TYPE))
        assert answer == {"created": rows, "updated": 0, "unchanged": 0}, answer
        results.setdefault("HTTP import, CSV, create", []).append(seconds)
    return results


def demonstrate_rejection(
    app: InProcessClient, database: BenchDatabase, products: list[dict[str, Any]]
) -> None:
    """Import a CSV whose 5,000th line repeats a barcode; show the 422 naming its line."""
    auth = new_tenant(database)
    bad = [dict(p) for p in products]
    # data row 4,999 = line 5,000; in a shorter file, its last row
    bad[min(4998, len(bad) - 1)]["barcodes"] = [products[0]["barcodes"][0]]
    response = app.request(
        "POST", "/products:import", content=to_csv(bad), headers={**auth, **CSV_TYPE}
    )
    problem = response.json()
    listed = app.call("GET", "/products", headers=auth)
    print(f"\nrejected file: HTTP {response.status_code} {problem['type'].rsplit('/', 1)[-1]}")
    print(f"  detail: {problem['detail']}")
    print(f"  row_errors: {problem['row_errors']}")
    print(f"  products of that tenant afterwards: {len(listed['items'])}")


def run(rows: int, repeat: int) -> None:
    """Start PostgreSQL, run every case, print the table and the rejection demo."""
    log_warnings_only()
    with fresh_database() as database:
        products = generate(rows)
        # No settings overrides: the default statement_timeout applies.
        with in_process_client(database, admin_token(database)) as app:
            print_best_runs(rows, measure(app, database, products, repeat), CEILING)
            demonstrate_rejection(app, database, products)


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    run(arguments.rows, arguments.repeat)


if __name__ == "__main__":
    main()
