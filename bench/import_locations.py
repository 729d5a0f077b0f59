"""Time ``POST /warehouses/{wh}/locations:import`` with 10,000 locations, JSON and CSV.

Run: ``.venv/bin/python bench/import_locations.py [--rows N] [--repeat K]``

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
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import structlog
from fastapi.testclient import TestClient

from wms.app import create_app
from wms.config import Settings
from wms.domain.roles import Role
from wms.ops.secrets import api_key_pepper
from wms.services import tenants
from wms.store.embedded import EmbeddedPostgres
from wms.store.migrations import Migrator
from wms.store.tenants import admin_connection

COLUMNS = "code,type,zone,pick_sequence,capacity_units,capacity_volume_l,capacity_weight_kg,active"
ZONES = ("A", "B", "C", "D")
TYPES = ("storage", "storage", "storage", "pick", "dock")


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


class Bench:
    """The app in-process on a fresh database, with an admin key."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; fails loudly on an unexpected status."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def new_warehouse(self) -> str:
        """A warehouse with zones A-D; its code."""
        code = f"W{uuid.uuid4().hex[:8].upper()}"
        body = {"code": code, "name": code, "timezone": "America/Sao_Paulo"}
        self.call("POST", "/warehouses", json=body)
        for zone in ZONES:
            self.call("POST", f"/warehouses/{code}/zones", json={"code": zone})
        return code


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds ``action`` took, and what it returned."""
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


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
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="wms-bench-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg")
        url = server.start()
        try:
            Migrator(url).migrate()
            settings = Settings(
                database_url=url,
                metrics_port=0,
                data_dir=Path(tmp) / "data",
                environment="test",
                statement_timeout_ms=60_000,
            )
            with admin_connection(url) as conn:
                tenants.create_tenant(conn, "bench", "Benchmark")
                token = tenants.create_api_key(
                    conn, api_key_pepper(settings), tenant_code="bench", role=Role.ADMIN
                )
            locations = generate(rows)
            json_body = json.dumps({"locations": locations}).encode()
            csv_body = to_csv(locations)
            with TestClient(create_app(settings)) as client:
                bench = Bench(client, token)
                results = measure(
                    bench,
                    url,
                    locations=locations,
                    json_body=json_body,
                    csv_body=csv_body,
                    repeat=repeat,
                )
                report(rows, results)
                demonstrate_rejection(bench, locations)
        finally:
            server.stop()


def measure(
    bench: Bench,
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
        results.setdefault("raw COPY (ceiling)", []).append(ceiling(url, locations))
        for label, body, headers in (
            ("HTTP import, JSON, create", json_body, json_type),
            ("HTTP import, CSV, create", csv_body, csv_type),
        ):
            wh = bench.new_warehouse()
            path = f"/warehouses/{wh}/locations:import"
            seconds, answer = timed(
                partial(bench.call, "POST", path, content=body, headers=headers)
            )
            assert answer == {"created": len(locations), "updated": 0}, answer
            results.setdefault(label, []).append(seconds)
            if label.endswith("CSV, create"):
                seconds, answer = timed(
                    partial(bench.call, "POST", path, content=csv_body, headers=csv_type)
                )
                assert answer == {"created": 0, "updated": len(locations)}, answer
                results.setdefault("HTTP import, CSV, update all", []).append(seconds)
    return results


def report(rows: int, results: dict[str, list[float]]) -> None:
    """Print one line per case: best seconds, rows/s and the ratio to the ceiling."""
    floor = min(results["raw COPY (ceiling)"])
    print(
        f"\n{'case':<30} {'rows':>7} {'best s':>8} {'median s':>9} {'rows/s':>9} {'× ceiling':>10}"
    )
    for label, runs in results.items():
        best = min(runs)
        print(
            f"{label:<30} {rows:>7} {best:>8.3f} {statistics.median(runs):>9.3f} "
            f"{rows / best:>9.0f} {best / floor:>10.1f}"
        )


def demonstrate_rejection(bench: Bench, locations: list[dict[str, Any]]) -> None:
    """Import a file whose 5,000th data row has a bad type; show the 422 naming its line."""
    wh = bench.new_warehouse()
    bad = [dict(r) for r in locations]
    bad[4998]["type"] = "roof"  # data row 4,999 = physical line 5,000 (header = line 1)
    response = bench.client.post(
        f"/api/v1/warehouses/{wh}/locations:import",
        content=to_csv(bad),
        headers={**bench.headers, "Content-Type": "text/csv"},
    )
    problem = response.json()
    listed = bench.call("GET", f"/warehouses/{wh}/locations", params={"limit": 500})
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
