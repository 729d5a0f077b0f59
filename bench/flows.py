"""The flows under load, and the work each one consumes, prepared outside the measurement.

Each stock-moving flow consumes what the one before produced: intake creates orders,
allocation allocates them, picking confirms the tasks of released waves, dispatch
dispatches shipments of picked, packed orders. ``ensure_*`` tops a supply up (through
the API, unmeasured) when the measured runs left too little.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable

import httpx
import psycopg

from bench.load import Request, closed_loop
from bench.world import SKUS, WAREHOUSE, barcode, check, sku

API = "/api/v1"
SHIP_TO = {
    "name": "Ana",
    "line1": "Rua A 1",
    "city": "São Paulo",
    "postal_code": "01000-000",
    "country": "BR",
}
LINES_PER_ORDER = 2
_numbers = itertools.count(1)


def _json(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def lookups(count: int, seed: int = 1) -> list[Request]:
    """Stock lookups by a random product's barcode, as a scanner asks."""
    rng = random.Random(seed)
    return [
        (
            "GET",
            f"{API}/inventory?warehouse={WAREHOUSE}&barcode={barcode(rng.randrange(SKUS))}",
            None,
        )
        for _ in range(count)
    ]


def intakes(count: int, prefix: str, seed: int = 2) -> list[Request]:
    """New orders of ``LINES_PER_ORDER`` lines, unique numbers ``prefix-n``."""
    rng = random.Random(seed)
    requests: list[Request] = []
    for _ in range(count):
        skus = rng.sample(range(SKUS), LINES_PER_ORDER)
        body = {
            "number": f"{prefix}-{next(_numbers)}",
            "warehouse": WAREHOUSE,
            "carrier": "CORREIOS",
            "ship_to": SHIP_TO,
            "lines": [
                {"line": i + 1, "sku": sku(n), "quantity": rng.randint(1, 3)}
                for i, n in enumerate(skus)
            ],
        }
        requests.append(("POST", f"{API}/orders", _json(body)))
    return requests


# Orders taken before order intake is measured: a warehouse has open orders, and the
# plans the server caches for the orders tables are then made for tables with rows.
ORDER_HISTORY = 2_000


def order_history(url: str, base_url: str, token: str, count: int = ORDER_HISTORY) -> int:
    """Take ``count`` orders as set-up (then analysed): intake is not measured on empty tables.

    Measured on empty tables, order intake ran on plans made for them: the foreign-key
    check of each order line on its order and the read of an order by number walked the
    tenant's every order through ``orders_created_idx`` (2,000 buffers a check after 2,000
    orders, growing with each order taken) until autovacuum analysed the table, which at
    its one-minute pace a 20-second run never sees (bench/FINDINGS.md).
    """
    return prepare(url, base_url, token, intakes(count, "HIST"))


def prepare(url: str, base_url: str, token: str, requests: list[Request]) -> int:
    """Send ``requests`` at full speed (set-up, not measured); fail on any error; analyse.

    The set-up can take a table from empty to thousands of rows (orders, their lines,
    allocations) just before it is measured. Without fresh statistics the plans the
    server caches may have been made for the empty table: in one run the order's lines
    and allocations were read by scanning the whole table (1,300 buffers a read instead
    of 12 and 44; PostgreSQL's time per allocation 3.1 ms instead of 1.4 ms), in the
    next, after autovacuum had analysed in time, not. Analysing here, as after any bulk
    load, keeps that chance out of the measurement.
    """
    if not requests:
        return 0
    outcome = closed_loop(base_url, token, requests, processes=1, connections=8, seconds=3600)
    if outcome.errors:
        bad = [s for _, _, s in outcome.samples if not 200 <= s < 300]
        raise RuntimeError(f"preparation: {outcome.errors} errors, statuses {sorted(set(bad))}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return len(outcome.samples)


def _rows(url: str, query: str, *params: object) -> list[tuple]:  # type: ignore[type-arg]
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def received_orders(url: str) -> list[str]:
    """Numbers of orders waiting for allocation."""
    return [
        r[0]
        for r in _rows(url, "SELECT number FROM wms.orders WHERE status = 'received' ORDER BY id")
    ]


def allocations(url: str, base_url: str, token: str, count: int) -> list[Request]:
    """Allocation requests for ``count`` received orders (creating orders when short)."""
    numbers = received_orders(url)
    if len(numbers) < count:
        prepare(url, base_url, token, intakes(count - len(numbers), "PREP"))
        numbers = received_orders(url)
    return [("POST", f"{API}/orders/{n}/allocate", None) for n in numbers[:count]]


# A replayed pick takes its quantity off its source balance's allocation again, so what
# the captured picks leave there must cover each replay (replays of one balance wait for
# each other: one at a time). Two captured picks of one balance each passing a per-task
# test (allocated >= 2 × quantity) could together leave 0, and the replay failed on
# allocated >= 0: the tasks are chosen per balance (``_replayable``).
_SOURCE_BALANCE = (
    "(SELECT b.id FROM wms.inventory_balances b WHERE b.tenant_id = t.tenant_id "
    "AND b.warehouse_id = t.warehouse_id AND b.location_id = t.location_id "
    "AND b.product_id = t.product_id AND b.lot_code = t.lot_code AND b.status = 'available'), "
    "(SELECT b.allocated FROM wms.inventory_balances b WHERE b.tenant_id = t.tenant_id "
    "AND b.warehouse_id = t.warehouse_id AND b.location_id = t.location_id "
    "AND b.product_id = t.product_id AND b.lot_code = t.lot_code AND b.status = 'available')"
)


def open_tasks(url: str, *, replayable: bool = False) -> list[tuple]:  # type: ignore[type-arg]
    """Open pick tasks of released waves: (id, location, sku, quantity); ``replayable``:
    only tasks whose captured confirmations leave every source balance enough allocation
    for a replay of any of them."""
    rows = _rows(
        url,
        f"SELECT t.id, l.code, p.sku, t.quantity, {_SOURCE_BALANCE} FROM wms.pick_tasks t "
        "JOIN wms.locations l ON l.tenant_id = t.tenant_id AND l.id = t.location_id "
        "JOIN wms.products p ON p.tenant_id = t.tenant_id AND p.id = t.product_id "
        "WHERE t.status = 'open' ORDER BY t.id",
    )
    return _replayable(rows) if replayable else [row[:4] for row in rows]


def _replayable(rows: list[tuple]) -> list[tuple]:  # type: ignore[type-arg]
    """The tasks (in order) such that, per source balance, the allocation left after all
    chosen picks still covers the largest of them."""
    taken: dict[int, int] = {}
    largest: dict[int, int] = {}
    chosen = []
    for task_id, location, code, quantity, balance, allocated in rows:
        if balance is None:
            continue
        used, top = taken.get(balance, 0) + quantity, max(largest.get(balance, 0), quantity)
        if allocated - used >= top:
            taken[balance], largest[balance] = used, top
            chosen.append((task_id, location, code, quantity))
    return chosen


def wave_allocated(client: httpx.Client, url: str) -> int:
    """Put every allocated order that is in no wave into released discrete waves."""
    numbers = [
        r[0]
        for r in _rows(
            url,
            "SELECT o.number FROM wms.orders o WHERE o.status = 'allocated' AND NOT EXISTS "
            "(SELECT 1 FROM wms.wave_orders w WHERE w.tenant_id = o.tenant_id "
            "AND w.order_id = o.id) ORDER BY o.id",
        )
    ]
    for start in range(0, len(numbers), 500):
        wave = check(
            client.post(
                "/waves",
                json={
                    "warehouse": WAREHOUSE,
                    "pick_method": "discrete",
                    "orders": numbers[start : start + 500],
                },
            )
        ).json()
        check(client.post(f"/waves/{wave['id']}/release"))
    return len(numbers)


def confirmations(
    client: httpx.Client,
    url: str,
    base_url: str,
    token: str,
    count: int,
    *,
    replayable: bool = False,
) -> list[Request]:
    """Pick confirmations of ``count`` open tasks (allocating and waving more when short);
    ``replayable``: tasks whose confirmation pgbench can replay (``open_tasks``)."""
    tasks = open_tasks(url, replayable=replayable)
    if len(tasks) < count:
        wave_allocated(client, url)
        tasks = open_tasks(url, replayable=replayable)
    if len(tasks) < count:
        prepare(
            url,
            base_url,
            token,
            allocations(url, base_url, token, (count - len(tasks)) // LINES_PER_ORDER + 1),
        )
        wave_allocated(client, url)
        tasks = open_tasks(url, replayable=replayable)
    return [
        (
            "POST",
            f"{API}/pick-tasks/{t[0]}/confirm",
            _json({"location": t[1], "sku": t[2], "lot": None, "quantity": t[3]}),
        )
        for t in tasks[:count]
    ]


def open_shipments(url: str) -> list[int]:
    """Ids of shipments not yet dispatched."""
    return [
        r[0]
        for r in _rows(url, "SELECT id FROM wms.shipments WHERE status = 'created' ORDER BY id")
    ]


def ship_picked(url: str, base_url: str, token: str) -> None:
    """Pack every picked order in one carton, then give each its own shipment."""
    picked = _rows(
        url,
        "SELECT o.number, p.sku, sum(l.quantity) FROM wms.orders o JOIN wms.order_lines l "
        "ON l.tenant_id = o.tenant_id AND l.order_id = o.id JOIN wms.products p "
        "ON p.tenant_id = l.tenant_id AND p.id = l.product_id WHERE o.status = 'picked' "
        "GROUP BY o.id, o.number, p.sku ORDER BY o.id",
    )
    contents: dict[str, list[dict[str, object]]] = {}
    for number, code, quantity in picked:
        contents.setdefault(number, []).append(
            {"sku": code, "lot": None, "quantity": int(quantity)}
        )
    prepare(
        url,
        base_url,
        token,
        [
            (
                "POST",
                f"{API}/orders/{n}/packages",
                _json({"packages": [{"carton": "BOX-M", "weight_kg": 1.2, "contents": c}]}),
            )
            for n, c in contents.items()
        ],
    )
    prepare(
        url,
        base_url,
        token,
        [
            (
                "POST",
                f"{API}/shipments",
                _json({"orders": [n], "carrier": "CORREIOS", "tracking_number": f"TR-{n}"}),
            )
            for n in contents
        ],
    )


def dispatches(
    client: httpx.Client, url: str, base_url: str, token: str, count: int
) -> list[Request]:
    """Dispatch requests for ``count`` shipments (picking and packing more when short)."""
    ids = open_shipments(url)
    if len(ids) < count:
        ship_picked(url, base_url, token)
        ids = open_shipments(url)
    if len(ids) < count:
        prepare(
            url,
            base_url,
            token,
            confirmations(client, url, base_url, token, (count - len(ids)) * LINES_PER_ORDER),
        )
        ship_picked(url, base_url, token)
        ids = open_shipments(url)
    return [("POST", f"{API}/shipments/{i}/dispatch", None) for i in ids[:count]]


MIX = {"lookup": 60, "intake": 15, "allocation": 10, "pick": 10, "dispatch": 5}


def supplies(
    client: httpx.Client, url: str, base_url: str, token: str, intake_prefix: str
) -> dict[str, Callable[[int], list[Request]]]:
    """Each flow's work for ``n`` requests, set up through ``base_url`` (lookups need none)."""
    return {
        "lookup": lookups,
        "intake": lambda n: intakes(n, intake_prefix),
        "allocation": lambda n: allocations(url, base_url, token, n),
        "pick": lambda n: confirmations(client, url, base_url, token, n),
        "dispatch": lambda n: dispatches(client, url, base_url, token, n),
    }


def mixed(supplies: dict[str, list[Request]], count: int, seed: int = 3) -> list[Request]:
    """A day's mix (``MIX`` weights) drawn from the supplies, until one runs out."""
    rng = random.Random(seed)
    iterators = {kind: iter(requests) for kind, requests in supplies.items()}
    kinds, weights = list(MIX), list(MIX.values())
    requests: list[Request] = []
    for kind in rng.choices(kinds, weights, k=count):
        request = next(iterators[kind], None)
        if request is None:
            break
        requests.append(request)
    return requests
