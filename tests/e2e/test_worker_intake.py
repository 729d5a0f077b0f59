"""Order intake from ``wms.orders.inbound`` through a worker process and a real broker."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.e2e.conftest import Launch
from tests.e2e.test_worker_relay import order
from tests.e2e.worker_helpers import metric, start_worker, wait_until
from tests.integration.kafka_fixtures import Broker

pytestmark = pytest.mark.slow


def request(tenant: str, data: object) -> bytes:
    """A ``wms.order.create.requested`` CloudEvent."""
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/erp/test",
            "type": "wms.order.create.requested",
            "tenant": tenant,
            "datacontenttype": "application/json",
            "data": data,
        }
    ).encode()


def orders_can_be_taken(api: ApiClient) -> None:
    """The warehouse and product that ``order()`` names."""
    assert api.post("/warehouses", json={"code": "SP1", "name": "S", "timezone": "UTC"}).is_success
    assert api.post("/products", json={"sku": "SKU-1", "description": "W"}).is_success


def test_a_thousand_inbound_orders_with_duplicates_conflicts_and_invalid_ones(
    launch: Launch,
    *,
    tmp_path: Path,
    database_url: str,
    api: ApiClient,
    tenant: TenantKeys,
    kafka_broker: Broker,
) -> None:
    orders_can_be_taken(api)
    rng = random.Random(8)
    valid = [f"IN-{i:04d}" for i in range(920)]
    records = [(n.encode(), request(tenant.code, order(n))) for n in valid]
    # Repeats come after their original on the same key (= partition), as a producer sends.
    repeats = [(n.encode(), request(tenant.code, order(n))) for n in rng.sample(valid, 50)]
    conflicts = [
        (n.encode(), request(tenant.code, order(n, quantity=7))) for n in rng.sample(valid, 10)
    ]
    bad_schema = [
        (f"BAD-{i}".encode(), request(tenant.code, {"number": f"BAD-{i}"})) for i in range(7)
    ]
    no_tenant = [
        (f"NT-{i}".encode(), request("no-such-tenant", order(f"NT-{i}"))) for i in range(7)
    ]
    no_sku = [
        (f"NS-{i}".encode(), request(tenant.code, order(f"NS-{i}", sku="NOPE"))) for i in range(6)
    ]
    tail = repeats + conflicts + bad_schema + no_tenant + no_sku
    rng.shuffle(tail)
    assert len(records) + len(tail) == 1000
    kafka_broker.produce("wms.orders.inbound", records + tail)

    worker = start_worker(launch, tmp_path, database_url, kafka_broker.url)
    wait_until(
        lambda: kafka_broker.committed("wms.orders.inbound", "wms-order-intake") == 1000,
        90,
        worker,
    )
    with psycopg.connect(database_url) as conn:
        numbers = {
            row[0]
            for row in conn.execute(
                "SELECT number FROM wms.orders WHERE tenant_id = %s", (tenant.tenant_id,)
            )
        }
    assert numbers == set(valid)
    dead = kafka_broker.read("wms.orders.inbound.dlq", at_least=30)
    reasons = Counter(r["headers"]["dlq_reason"] for r in dead)
    assert reasons == {
        "conflict": 10,
        "invalid": 7,
        "unknown-tenant": 7,
        "unknown-reference": 6,
    }
    assert all(r["headers"]["dlq_detail"] for r in dead)
    outcomes = metric(worker, "wms_order_intake_total")
    assert outcomes == 1000
    assert worker.stop() == 0


def test_a_worker_asked_to_stop_behind_a_backlog_stops(
    launch: Launch, *, tmp_path: Path, database_url: str, tenant: TenantKeys, kafka_broker: Broker
) -> None:
    # A partition's queue (500 messages) full when SIGTERM came: the task returned, the
    # poller waited forever to put the next message in, and the process never exited.
    event = {"specversion": "1.0", "id": "x", "source": "/erp/test", "type": "wms.other",
             "tenant": tenant.code, "data": {}}  # fmt: skip
    unwanted = json.dumps(event).encode()
    kafka_broker.produce("wms.orders.inbound", [(b"ONE-KEY", unwanted)] * 3000)
    worker = start_worker(launch, tmp_path, database_url, kafka_broker.url)
    wait_until(lambda: (metric(worker, "wms_order_intake_total") or 0) >= 20, 60, worker)
    assert worker.stop(timeout=30) == 0
    assert kafka_broker.committed("wms.orders.inbound", "wms-order-intake") < 3000
