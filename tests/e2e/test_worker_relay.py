"""``wms-server worker`` relaying the outbox to a real broker: crashes, twins, outages."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.e2e.conftest import Launch
from tests.e2e.worker_helpers import (
    counts,
    dedup_in_key_order,
    metric,
    seed_events,
    start_worker,
    wait_until,
)
from tests.integration.kafka_fixtures import Broker

pytestmark = pytest.mark.slow


def assert_each_key_in_order(records: list[dict[str, object]], keys: int, per_key: int) -> None:
    applied = dedup_in_key_order(records)  # type: ignore[arg-type]
    assert len(applied) == keys
    for key, seqs in applied.items():
        assert seqs == list(range(per_key)), f"{key} applied out of order or with gaps"


def test_a_worker_killed_mid_batch_and_restarted_delivers_every_event_in_key_order(
    launch: Launch, tmp_path: Path, database_url: str, tenant: TenantKeys, kafka_broker: Broker
) -> None:
    seed_events(database_url, tenant.tenant_id, keys=20, per_key=200, per_tx=40)
    worker = start_worker(
        launch, tmp_path, database_url, kafka_broker.url, WMS_RELAY_BATCH_SIZE="40"
    )
    wait_until(lambda: counts(database_url)[0] >= 400, 60, worker)
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait()
    published, total = counts(database_url)
    assert 0 < published < total, "the kill must land mid-stream"
    seed_events(database_url, tenant.tenant_id, keys=20, per_key=50, per_tx=40, start=200)
    restarted = start_worker(launch, tmp_path, database_url, kafka_broker.url)
    wait_until(lambda: counts(database_url)[0] == counts(database_url)[1], 90, restarted)
    records = kafka_broker.read("wms.events", at_least=5000)
    assert len({r["value"]["id"] for r in records}) == 5000  # every event at least once
    assert_each_key_in_order(records, keys=20, per_key=250)
    assert restarted.stop() == 0


def test_two_workers_share_the_shards_and_keep_each_key_in_order(
    launch: Launch, tmp_path: Path, database_url: str, tenant: TenantKeys, kafka_broker: Broker
) -> None:
    first = start_worker(launch, tmp_path, database_url, kafka_broker.url)
    second = start_worker(launch, tmp_path, database_url, kafka_broker.url)
    for start in range(0, 100, 10):  # commits keep coming while both relay
        seed_events(database_url, tenant.tenant_id, keys=30, per_key=10, per_tx=25, start=start)
        time.sleep(0.2)
    wait_until(lambda: counts(database_url)[0] == 3000, 60, first)
    wait_until(
        lambda: (
            metric(first, "wms_outbox_shards_held") == 8
            and metric(second, "wms_outbox_shards_held") == 8
        ),
        30,
        second,
    )
    records = kafka_broker.read("wms.events", at_least=3000)
    assert_each_key_in_order(records, keys=30, per_key=100)
    assert first.stop() == 0
    assert second.stop() == 0


def test_a_broker_frozen_for_ten_seconds_loses_nothing_and_the_backlog_drains(
    launch: Launch,
    *,
    tmp_path: Path,
    database_url: str,
    api: ApiClient,
    kafka_broker: Broker,
) -> None:
    assert api.post("/warehouses", json={"code": "SP1", "name": "S", "timezone": "UTC"}).is_success
    assert api.post("/products", json={"sku": "SKU-1", "description": "W"}).is_success
    worker = start_worker(launch, tmp_path, database_url, kafka_broker.url)
    numbers: list[str] = []
    peak = {"backlog": 0.0, "age": 0.0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak["backlog"] = max(peak["backlog"], metric(worker, "wms_outbox_backlog") or 0)
            peak["age"] = max(
                peak["age"], metric(worker, "wms_outbox_oldest_unpublished_age_seconds") or 0
            )
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    frozen = False
    try:
        while time.monotonic() - started < 14:
            elapsed = time.monotonic() - started
            if not frozen and elapsed > 2:
                kafka_broker.freeze()
                frozen = True
                frozen_at = time.monotonic()
            if frozen and time.monotonic() - frozen_at >= 10:
                kafka_broker.thaw()
            number = f"SO-{len(numbers):05d}"
            response = api.post("/orders", json=order(number))
            assert response.status_code == 201, response.text
            numbers.append(number)
            time.sleep(0.05)
        kafka_broker.thaw()
        wait_until(lambda: counts(database_url)[0] == counts(database_url)[1], 60, worker)
        wait_until(lambda: metric(worker, "wms_outbox_backlog") == 0, 10, worker)
    finally:
        kafka_broker.thaw()
        stop.set()
        watcher.join()
    assert peak["backlog"] >= 20, "the backlog rose while the broker was frozen"
    assert peak["age"] >= 5
    records = kafka_broker.read("wms.events", at_least=len(numbers))
    received = {
        r["value"]["data"]["number"] for r in records if r["value"]["type"] == "wms.order.received"
    }
    assert received == set(numbers)
    assert (metric(worker, "wms_outbox_published_total") or 0) >= len(numbers)
    assert worker.stop() == 0


def order(number: str, *, quantity: int = 1, sku: str = "SKU-1") -> dict[str, object]:
    """A ``POST /orders`` body."""
    return {
        "number": number,
        "warehouse": "SP1",
        "carrier": "CORREIOS",
        "ship_to": {
            "name": "Ana",
            "line1": "Rua A 1",
            "city": "São Paulo",
            "postal_code": "01000-000",
            "country": "BR",
        },
        "lines": [{"sku": sku, "quantity": quantity}],
    }
