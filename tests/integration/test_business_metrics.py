"""Business and database metrics count committed work once, labelled by tenant and warehouse.

Other tests share this process's registry, so every check is a delta of one labelled
series read with ``REGISTRY.get_sample_value``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import psycopg
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.conftest import ApiClient, TenantKeys
from tests.integration.stock_world import StockWorld, build_world
from tests.integration.test_fulfilment import scan, tasks_of
from tests.integration.test_orders import order_body, set_received, stock
from wms.api.auth import Principal
from wms.api.commands import Answer, run_command
from wms.api.routes.orders import NewOrder, to_command
from wms.api.schemas import ResponseModel
from wms.app import create_app
from wms.config import Settings
from wms.domain.errors import ConflictError
from wms.domain.roles import Role
from wms.events.intake import OrderIntake
from wms.services.unit_of_work import UnitOfWork
from wms.store.database import create_pool

ORDER_COMMAND = "POST /api/v1/orders"
BUSINESS = {
    "wms_orders_received", "wms_orders_shipped", "wms_order_lines_picked", "wms_short_picks",
    "wms_dock_to_stock_seconds", "wms_order_cycle_time_seconds", "wms_count_lines",
}  # fmt: skip


class Metrics:
    """Deltas of labelled series since this object was made."""

    def __init__(self, tenant: str, warehouse: str = "SP1") -> None:
        self.place = {"tenant": tenant, "warehouse": warehouse}
        self.start = self.snapshot()

    def snapshot(self) -> dict[str, float]:
        """Every business series of this tenant and warehouse, named without ``wms_``."""
        names = [
            "orders_received_total",
            "orders_shipped_total",
            "order_lines_picked_total",
            "short_picks_total",
            "dock_to_stock_seconds_count",
            "dock_to_stock_seconds_sum",
            "order_cycle_time_seconds_count",
            "order_cycle_time_seconds_sum",
        ]
        values = {name: value(f"wms_{name}", self.place) for name in names}
        for result in ("match", "variance"):
            values[f"count_lines_{result}"] = value(
                "wms_count_lines_total", {**self.place, "result": result}
            )
        return values

    def delta(self) -> dict[str, float]:
        now = self.snapshot()
        return {name: now[name] - self.start[name] for name in now}


def value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def counts(metrics: Metrics, **expected: float) -> None:
    """The counters named moved by exactly ``expected``; every other one stayed."""
    delta = metrics.delta()
    wanted = {name: 0.0 for name in delta if not name.endswith("_sum")} | expected
    assert {name: delta[name] for name in wanted} == wanted


@pytest.fixture
def world(api: ApiClient, tenant: TenantKeys, database_url: str) -> StockWorld:
    return build_world(api, tenant, database_url)


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return cast(dict[str, Any], response.json())


def test_a_full_order_flow_counts_each_business_metric_once(
    api: ApiClient, world: StockWorld, tenant: TenantKeys, database_url: str
) -> None:
    stock(api, "A-01", 4)
    stock(api, "A-02", 5)
    set_received(database_url, "A-01", datetime(2026, 1, 1, tzinfo=UTC))  # FIFO takes it first
    metrics = Metrics(tenant.code)
    for number in ("M-1", "M-2"):
        ok(api.post("/orders", json=order_body(number)), 201)
        assert ok(api.post(f"/orders/{number}/allocate"))["status"] == "allocated"
    counts(metrics, orders_received_total=2)

    wave = ok(api.post("/waves", json={"warehouse": "SP1", "orders": ["M-1", "M-2"],
                                       "pick_method": "batch"}), 201)  # fmt: skip
    ok(api.post(f"/waves/{wave['id']}/release"))
    (task,) = tasks_of(api, wave["id"])
    assert (task["location"], task["quantity"]) == ("A-01", 4)
    # 3 of 4 found: a short pick; the missing unit is re-allocated at A-02 as a new task.
    short = ok(api.post(f"/pick-tasks/{task['id']}/confirm", json=scan(task, 3)))
    assert short["shortage"] == 1
    (new,) = short["new_tasks"]
    ok(api.post(f"/pick-tasks/{new['id']}/confirm", json=scan(new)))
    counts(metrics, orders_received_total=2, order_lines_picked_total=2, short_picks_total=1)

    for number in ("M-1", "M-2"):
        contents = [{"sku": "SKU-1", "quantity": 2}]
        ok(api.post(f"/orders/{number}/packages",
                    json={"packages": [{"carton": "BOX", "weight_kg": 1, "contents": contents}]}),
           201)  # fmt: skip
    shipment = ok(api.post("/shipments", json={"orders": ["M-1", "M-2"], "carrier": "CORREIOS",
                                               "tracking_number": "BR1"}), 201)  # fmt: skip
    ok(api.post(f"/shipments/{shipment['id']}/dispatch"))
    counts(
        metrics,
        orders_received_total=2,
        order_lines_picked_total=2,
        short_picks_total=1,
        orders_shipped_total=2,
        order_cycle_time_seconds_count=2,
    )
    with psycopg.connect(database_url) as conn:
        (cycle,) = conn.execute(
            "SELECT sum(extract(epoch FROM shipped_at - created_at))::float8 FROM wms.orders "
            "WHERE tenant_id = %s",
            (tenant.tenant_id,),
        ).fetchone()  # type: ignore[misc]
    # The same cycle time as the KPI report's, from the same two stamps.
    assert metrics.delta()["order_cycle_time_seconds_sum"] == pytest.approx(cycle, abs=1e-3)

    # Refused commands count nothing: a second dispatch (409), a confirmed task (409).
    assert api.post(f"/shipments/{shipment['id']}/dispatch").status_code == 409
    assert api.post(f"/pick-tasks/{new['id']}/confirm", json=scan(new)).status_code == 409
    counts(
        metrics,
        orders_received_total=2,
        order_lines_picked_total=2,
        short_picks_total=1,
        orders_shipped_total=2,
        order_cycle_time_seconds_count=2,
    )


def test_replays_same_content_intake_and_refused_orders_do_not_count(
    api: ApiClient, world: StockWorld, tenant: TenantKeys
) -> None:
    metrics = Metrics(tenant.code)
    key = {"Idempotency-Key": "order-r-1"}
    ok(api.post("/orders", json=order_body("R-1"), headers=key), 201)
    replay = api.post("/orders", json=order_body("R-1"), headers=key)
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (201, "true")
    ok(api.post("/orders", json=order_body("R-1")), 200)  # same number and content: a no-op
    other = order_body("R-1", {"line": 1, "sku": "SKU-1", "quantity": 9})
    assert api.post("/orders", json=other).status_code == 409  # different content
    unknown = order_body("R-2", {"line": 1, "sku": "NOPE", "quantity": 1})
    assert api.post("/orders", json=unknown).status_code == 422
    assert api.post("/orders", json=order_body("R-3", warehouse="NOPE")).status_code == 422
    counts(metrics, orders_received_total=1)


def test_labels_carry_each_tenants_own_codes(
    api: ApiClient, world: StockWorld, tenant: TenantKeys, make_tenant: Any, database_url: str
) -> None:
    other = make_tenant()
    other_api = api.as_key(other.keys[Role.ADMIN])
    ok(other_api.post("/warehouses", json={"code": "RJ1", "name": "Rio", "timezone": "UTC"}), 201)
    ok(other_api.post("/products", json={"sku": "SKU-1", "description": "W"}), 201)
    ours, theirs = Metrics(tenant.code), Metrics(other.code, "RJ1")
    ok(api.post("/orders", json=order_body("L-1")), 201)
    ok(other_api.post("/orders", json=order_body("L-1", warehouse="RJ1")), 201)
    ok(other_api.post("/orders", json=order_body("L-2", warehouse="RJ1")), 201)
    counts(ours, orders_received_total=1)
    counts(theirs, orders_received_total=2)
    business = [m for m in REGISTRY.collect() if m.name in BUSINESS]
    assert {m.name for m in business} == BUSINESS
    for family in business:  # codes only: no order number, SKU or person
        for sample in family.samples:
            assert set(sample.labels) - {"le", "result"} == {"tenant", "warehouse"}


def test_putaway_observes_the_dock_to_stock_time_it_stored(
    api: ApiClient, world: StockWorld, tenant: TenantKeys, database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO wms.locations (tenant_id, warehouse_id, code, type) "
            "SELECT tenant_id, id, 'DOCK-1', 'dock' FROM wms.warehouses WHERE tenant_id = %s",
            (tenant.tenant_id,),
        )
    asn = ok(api.post("/asns", json={
        "reference": "PO-1", "warehouse": "SP1", "supplier": "ACME",
        "expected_at": "2026-11-20T12:00:00Z", "lines": [{"sku": "SKU-1", "quantity": 5}],
    }), 201)  # fmt: skip
    receipt = {"location": "DOCK-1", "sku": "SKU-1", "quantity": 5, "condition": "good"}
    ok(api.post(f"/asns/{asn['id']}/receipts", json=receipt), 201)
    metrics = Metrics(tenant.code)
    task = api.get("/putaway-tasks", params={"status": "open"}).json()["items"][0]
    key = {"Idempotency-Key": "putaway-1"}
    done = ok(api.post(f"/putaway-tasks/{task['id']}/confirm", json={}, headers=key))
    again = api.post(f"/putaway-tasks/{task['id']}/confirm", json={}, headers=key)
    assert again.headers["idempotent-replayed"] == "true"
    assert api.post(f"/putaway-tasks/{task['id']}/confirm", json={}).status_code == 409
    counts(metrics, dock_to_stock_seconds_count=1)
    observed = metrics.delta()["dock_to_stock_seconds_sum"]
    assert observed == pytest.approx(done["dock_to_stock_seconds"])
    assert observed >= 0


def test_count_lines_count_at_approval_by_result(
    api: ApiClient, world: StockWorld, tenant: TenantKeys
) -> None:
    stock(api, "A-01", 10)
    stock(api, "A-02", 5)
    metrics = Metrics(tenant.code)
    count = ok(api.post("/cycle-counts", json={"warehouse": "SP1",
                                               "locations": ["A-01", "A-02"]}), 201)  # fmt: skip
    path = f"/cycle-counts/{count['id']}"
    results = [{"location": "A-01", "sku": "SKU-1", "counted": 10},
               {"location": "A-02", "sku": "SKU-1", "counted": 4}]  # fmt: skip
    ok(api.post(f"{path}/results", json={"results": results}))
    assert api.post(f"{path}/approve").status_code == 409  # A-02 awaits its recount
    ok(api.post(f"{path}/results", json={"results": results[1:]}))
    counts(metrics)  # counted, not yet approved
    ok(api.post(f"{path}/approve"))
    assert api.post(f"{path}/approve").status_code == 409
    counts(metrics, count_lines_match=1, count_lines_variance=1)


@contextmanager
def share_lock_on_outbox(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Hold a SHARE lock on the outbox: a command's final insert waits for it."""
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE wms.outbox IN SHARE MODE")
        yield blocker
        blocker.rollback()


def lock_waiters(database_url: str) -> set[datetime]:
    """Start times of the transactions of this database waiting for a lock."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT xact_start FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        ).fetchall()
    return {row[0] for row in rows}


def wait_for(condition: Any, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError("timed out")


def test_a_command_retried_after_a_lock_timeout_counts_once(
    settings: Settings, tenant: TenantKeys, database_url: str
) -> None:
    """The first attempt queues its observation, then times out on the outbox's lock."""
    impatient = settings.model_copy(update={"lock_timeout_ms": 1000})
    with TestClient(create_app(impatient), raise_server_exceptions=False) as client:
        api = ApiClient(client, tenant.keys[Role.ADMIN])
        build_world(api, tenant, database_url)
        metrics = Metrics(tenant.code)
        transactions = value("wms_db_transaction_duration_seconds_count", {"kind": "command"})
        commands = value("wms_command_duration_seconds_count", {"command": ORDER_COMMAND})
        answers: list[httpx.Response] = []
        with share_lock_on_outbox(database_url):
            sender = threading.Thread(
                target=lambda: answers.append(api.post("/orders", json=order_body("X-1")))
            )
            sender.start()
            (first,) = wait_for(lambda: lock_waiters(database_url))
            # The first attempt gave up on the lock and a second one is waiting now.
            wait_for(lambda: lock_waiters(database_url) - {first})
        sender.join(30)
        assert answers[0].status_code == 201, answers[0].text
    counts(metrics, orders_received_total=1)
    tried = value("wms_db_transaction_duration_seconds_count", {"kind": "command"}) - transactions
    assert tried >= 2
    assert value("wms_command_duration_seconds_count", {"command": ORDER_COMMAND}) == commands + 1


class Empty(ResponseModel):
    """An empty answer."""


def test_observations_apply_after_commit_and_never_for_a_failed_attempt(
    test_client: TestClient, tenant: TenantKeys, database_url: str
) -> None:
    """run_command with a service failing once retryably, then once for good."""
    attempts: list[str] = []
    applied: list[tuple[str, int]] = []

    def record(attempt: str) -> None:
        with psycopg.connect(database_url) as conn:  # another session sees the commit
            (rows,) = conn.execute(
                "SELECT count(*) FROM wms.audit_log WHERE entity_id = %s", (attempt,)
            ).fetchone()  # type: ignore[misc]
        applied.append((attempt, rows))

    async def service(uow: UnitOfWork) -> None:
        attempt = f"attempt-{len(attempts) + 1}"
        attempts.append(attempt)
        uow.audit("probe", attempt, "tried")
        uow.observe(record, attempt)
        if attempt == "attempt-1":
            raise psycopg.errors.SerializationFailure("forced")
        if attempt == "attempt-3":
            raise ConflictError("refused")

    async def probe(request: Request) -> Response:
        principal = Principal(tenant.tenant_id, tenant.code, Role.ADMIN, "test:probe")
        return await run_command(request, principal, service, lambda _: Answer(200, Empty()))

    cast(FastAPI, test_client.app).add_api_route("/probe", probe, methods=["POST"])
    commands = value("wms_command_duration_seconds_count", {"command": "POST /probe"})
    assert test_client.post("/probe").status_code == 200
    assert attempts == ["attempt-1", "attempt-2"]
    assert applied == [("attempt-2", 1)]  # once, after the commit, not for the retried one
    assert test_client.post("/probe").status_code == 409
    assert applied == [("attempt-2", 1)]
    assert value("wms_command_duration_seconds_count", {"command": "POST /probe"}) == commands + 2


def test_reads_are_timed_as_read_transactions(api: ApiClient) -> None:
    before = value("wms_db_transaction_duration_seconds_count", {"kind": "read"})
    ok(api.get("/warehouses"))
    assert value("wms_db_transaction_duration_seconds_count", {"kind": "read"}) == before + 1


def test_kafka_intake_counts_a_created_order_once_and_a_duplicate_never(
    api: ApiClient, world: StockWorld, tenant: TenantKeys, settings: Settings
) -> None:
    metrics = Metrics(tenant.code)

    async def take_in() -> list[bool]:
        assert settings.database_url is not None
        pool = create_pool(settings.database_url, min_size=1, max_size=2,
                           statement_timeout_ms=5000, lock_timeout_ms=2000)  # fmt: skip
        await pool.open()
        try:
            intake = OrderIntake(
                consumer=None, producer=None, pool=pool,  # type: ignore[arg-type]
                admin_url=settings.database_url, region="local", stop=asyncio.Event(), group="g",
            )  # fmt: skip
            command = to_command(NewOrder.model_validate(order_body("K-1")))
            event: dict[str, object] = {"tenant": tenant.code, "id": "evt-1"}
            return [await intake._create(event, tenant.tenant_id, command) for _ in range(2)]
        finally:
            await pool.close()

    assert asyncio.run(take_in()) == [True, False]
    counts(metrics, orders_received_total=1)
