"""Large documents on the loaded warehouse: a 5,000-line order and a 5,000-line ASN.

The order is created, then timed step by step: allocated (while small one-line orders
arrive at a fixed rate, whose p95 is reported), waved and released, picked in batch
confirmations (500 a request, the API's limit), packed (1,000 lines a carton) and
shipped. The ASN is created, received in one multi-line receipt, and put away in batch
confirmations (``POST /putaway-tasks:confirm``, 500 tasks a request, the API's limit).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import psycopg

from bench.flows import SHIP_TO, intakes
from bench.harness import percentile
from bench.load import Outcome, open_loop
from bench.world import WAREHOUSE, check, location, sku


def _timed(steps: dict[str, float], name: str, action: Any) -> Any:
    started = time.perf_counter()
    result = action()
    steps[name] = time.perf_counter() - started
    return result


def large_order(
    client: httpx.Client, url: str, base_url: str, token: str, lines: int, *, small_rate: float
) -> dict[str, Any]:
    """Seconds per step of a ``lines``-line order, and small-order p95 during its allocation."""
    number = "BIG-1"
    body = {
        "number": number,
        "warehouse": WAREHOUSE,
        "carrier": "CORREIOS",
        "ship_to": SHIP_TO,
        "lines": [{"line": n + 1, "sku": sku(n), "quantity": 2} for n in range(lines)],
    }
    steps: dict[str, float] = {}
    _timed(steps, "create", lambda: check(client.post("/orders", json=body)))
    # Small orders at a fixed rate around the allocation.
    small: list[Outcome] = []
    small_requests = intakes(int(small_rate * 60), "SMALL", seed=9)
    thread = threading.Thread(
        target=lambda: small.append(
            open_loop(base_url, token, small_requests, processes=1, rate=small_rate, seconds=12)
        )
    )
    thread.start()
    time.sleep(3)  # the spawned worker is up and sending
    alloc_start = time.time()
    allocated = _timed(steps, "allocate", lambda: check(client.post(f"/orders/{number}/allocate")))
    alloc_end = time.time()
    thread.join()
    during = [lat for wall, lat, _ in small[0].samples if alloc_start <= wall <= alloc_end]
    alone = [lat for wall, lat, _ in small[0].samples if wall < alloc_start or wall > alloc_end]

    def wave() -> int:
        created = check(
            client.post(
                "/waves",
                json={"warehouse": WAREHOUSE, "orders": [number], "pick_method": "discrete"},
            )
        ).json()
        check(client.post(f"/waves/{created['id']}/release"))
        return int(created["id"])

    wave_id = _timed(steps, "wave + release", wave)

    def pick() -> None:
        with psycopg.connect(url) as conn:
            tasks = conn.execute(
                "SELECT t.id, l.code, p.sku, t.quantity FROM wms.pick_tasks t JOIN wms.locations "
                "l ON l.tenant_id = t.tenant_id AND l.id = t.location_id JOIN wms.products p ON "
                "p.tenant_id = t.tenant_id AND p.id = t.product_id WHERE t.wave_id = %s "
                "AND t.status = 'open' ORDER BY t.sequence, t.id",
                (wave_id,),
            ).fetchall()
        for start in range(0, len(tasks), 500):
            batch = [
                {"task": t[0], "location": t[1], "sku": t[2], "lot": None, "quantity": t[3]}
                for t in tasks[start : start + 500]
            ]
            check(client.post("/pick-tasks:confirm", json={"confirmations": batch}))

    _timed(steps, "pick (batch confirm)", pick)
    contents = [{"sku": sku(n), "lot": None, "quantity": 2} for n in range(lines)]
    packages = [
        {"carton": "BOX-L", "weight_kg": 10.0, "contents": contents[i : i + 1000]}
        for i in range(0, lines, 1000)
    ]
    _timed(
        steps,
        "pack",
        lambda: check(client.post(f"/orders/{number}/packages", json={"packages": packages})),
    )

    def ship() -> None:
        shipment = check(
            client.post(
                "/shipments",
                json={"orders": [number], "carrier": "CORREIOS", "tracking_number": "BIG-TR-1"},
            )
        ).json()
        check(client.post(f"/shipments/{shipment['id']}/dispatch"))

    _timed(steps, "ship + dispatch", ship)
    order = check(client.get(f"/orders/{number}")).json()
    return {
        "lines": lines,
        "steps": steps,
        "allocation_to_dispatch": sum(v for k, v in steps.items() if k != "create"),
        "status": order["status"],
        "allocated_status": allocated.json()["status"],
        "small_p95_alone_ms": percentile(alone, 95) * 1000,
        "small_p95_during_ms": percentile(during, 95) * 1000,
        "small_during_count": len(during),
        "small_errors": small[0].errors,
    }


def large_asn(
    client: httpx.Client, url: str, base_url: str, token: str, lines: int
) -> dict[str, Any]:
    """Seconds to create, receive (one multi-line receipt) and put away a ``lines``-line ASN."""
    steps: dict[str, float] = {}
    body = {
        "reference": "PO-BIG",
        "warehouse": WAREHOUSE,
        "supplier": "ACME",
        "lines": [{"sku": sku(n), "quantity": 10} for n in range(lines)],
    }
    asn = _timed(steps, "create", lambda: check(client.post("/asns", json=body)).json())
    receipt = {
        "lines": [
            {
                "location": "DOCK-1",
                "sku": sku(n),
                "quantity": 10,
                "lot": None,
                "expiry": None,
                "condition": "good",
            }
            for n in range(lines)
        ]
    }
    _timed(
        steps, "receive", lambda: check(client.post(f"/asns/{asn['id']}/receipts", json=receipt))
    )

    def putaway() -> int:
        with psycopg.connect(url) as conn:
            tasks = conn.execute(
                "SELECT id FROM wms.putaway_tasks WHERE asn_id = %s AND status = 'open' "
                "ORDER BY id",
                (asn["id"],),
            ).fetchall()
        confirmations = [
            {"task": t, "location": location(n % 5000)} for n, (t,) in enumerate(tasks)
        ]
        for start in range(0, len(confirmations), 500):
            batch = confirmations[start : start + 500]
            check(client.post("/putaway-tasks:confirm", json={"confirmations": batch}))
        return len(confirmations)

    confirmed = _timed(steps, "put away (batch confirm)", putaway)
    return {
        "lines": lines,
        "steps": steps,
        "putaway_tasks": confirmed,
        "receive_to_putaway": sum(v for k, v in steps.items() if k != "create"),
    }
