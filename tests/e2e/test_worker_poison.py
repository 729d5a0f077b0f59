"""A worker meeting what can never succeed sets it aside and keeps going (no poison stalls)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.e2e.conftest import WMS_SERVER, Launch, server_env
from tests.e2e.test_worker_intake import orders_can_be_taken, request
from tests.e2e.test_worker_relay import assert_each_key_in_order, order
from tests.e2e.worker_helpers import (
    metric,
    seed_events,
    start_worker,
    wait_until,
    write_events,
)
from tests.integration.kafka_fixtures import Broker
from tests.integration.test_outbox_parking import TOO_LARGE, outbox_state

pytestmark = pytest.mark.slow

# Refusals the schema and the services cannot foresee, made by the database itself: a
# constraint (IntegrityError), and a trigger raising a chosen SQLSTATE for one number.
REFUSE_POISON = (
    "ALTER TABLE wms.orders ADD CONSTRAINT test_refuses_poison CHECK (number <> 'POISON')"
)


def refuse_badvalue(sqlstate: str) -> str:
    """A trigger refusing order BADVALUE with ``sqlstate``."""
    return f"""
    CREATE FUNCTION wms.test_refuse_value() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.number = 'BADVALUE' THEN
            RAISE EXCEPTION 'value refused for the test' USING ERRCODE = '{sqlstate}';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER test_refuse_value BEFORE INSERT ON wms.orders
        FOR EACH ROW EXECUTE FUNCTION wms.test_refuse_value();
    """


def unreadable(tenant: TenantKeys) -> list[tuple[bytes, bytes]]:
    """Messages no order can come of, that the intake once let stop the worker: data
    nested past the JSON parser's depth, a tenant holding NUL, and an invalid order so
    close to Kafka's size limit that its dead letter (the value plus dlq_* headers) is
    larger than the limit."""
    deep = request(tenant.code, {"lines": "HOLE"}).replace(
        b'"HOLE"', b"[" * 100_000 + b"]" * 100_000
    )
    huge = order("HUGE")
    huge["customer"] = ""  # longer than the 200 characters allowed, below
    huge["customer"] = "x" * (999_900 - len(request(tenant.code, huge)))
    return [
        (b"DEEP", deep),
        (b"NUL", request(tenant.code + "\x00", order("NUL"))),
        (b"HUGE", request(tenant.code, huge)),
    ]


def test_the_worker_parks_what_kafka_refuses_dead_letters_what_postgres_refuses_and_goes_on(
    launch: Launch,
    *,
    tmp_path: Path,
    database_url: str,
    api: ApiClient,
    tenant: TenantKeys,
    kafka_broker: Broker,
) -> None:
    seed_events(database_url, tenant.tenant_id, keys=3, per_key=2, per_tx=3)
    # Too large for the producer, and past the retention: it must be neither retried
    # forever nor pruned while it never reached Kafka.
    (large,) = write_events(
        database_url, tenant.tenant_id, [("agg1", {"blob": TOO_LARGE})], age_days=30
    )
    (expired,) = write_events(database_url, tenant.tenant_id, [("old", {"seq": 0})], age_days=30)
    seed_events(database_url, tenant.tenant_id, keys=3, per_key=2, per_tx=3, start=2)

    orders_can_be_taken(api)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(REFUSE_POISON)
        conn.execute(refuse_badvalue("22023"))  # invalid_parameter_value: a DataError
    numbers = ["POISON", "BADVALUE", "GOOD"]
    kafka_broker.produce(
        "wms.orders.inbound",
        [(n.encode(), request(tenant.code, order(n))) for n in numbers] + unreadable(tenant),
    )

    worker = start_worker(
        launch, tmp_path, database_url, kafka_broker.url, WMS_EVENT_PRUNE_INTERVAL_SECONDS="1"
    )
    wait_until(
        lambda: (
            metric(worker, "wms_outbox_parked_events") == 1
            and metric(worker, "wms_outbox_backlog") == 0
            and outbox_state(database_url, expired) is None  # published, then pruned
            and kafka_broker.committed("wms.orders.inbound", "wms-order-intake") == 6
        ),
        60,
        worker,
    )
    assert worker.process.poll() is None, "the worker must still run"
    published, reason = outbox_state(database_url, large) or (None, None)
    assert published is False
    assert reason is not None
    assert reason.startswith("MSG_SIZE_TOO_LARGE")
    records = [
        r
        for r in kafka_broker.read("wms.events", at_least=13)
        if r["value"]["type"] == "wms.test.sequenced" and r["key"].split("/")[-1] != "old"
    ]
    assert_each_key_in_order(records, keys=3, per_key=4)  # agg1's later events went on

    dead = kafka_broker.read("wms.orders.inbound.dlq", at_least=5)
    assert Counter(r["key"] for r in dead) == {
        "POISON": 1, "BADVALUE": 1, "DEEP": 1, "NUL": 1, "HUGE": 1}  # fmt: skip
    by_key = {r["key"]: r["headers"] for r in dead}
    assert by_key["POISON"]["dlq_reason"] == "conflict"
    assert "test_refuses_poison" in by_key["POISON"]["dlq_detail"]
    assert by_key["BADVALUE"]["dlq_reason"] == "invalid"
    assert "value refused for the test" in by_key["BADVALUE"]["dlq_detail"]
    # Each of these stopped the worker, and again at every restart (the same message first).
    assert by_key["DEEP"]["dlq_reason"] == "malformed"
    assert by_key["NUL"]["dlq_reason"] == "unknown-tenant"
    assert by_key["HUGE"]["dlq_reason"] == "invalid"
    assert "too large" in by_key["HUGE"]["dlq_value_dropped"]
    assert {r["key"]: r["value"] is None for r in dead}["HUGE"]
    with psycopg.connect(database_url) as conn:
        created = conn.execute(
            "SELECT number FROM wms.orders WHERE tenant_id = %s", (tenant.tenant_id,)
        ).fetchall()
    assert created == [("GOOD",)]
    assert worker.stop() == 0


def test_a_database_error_that_is_ours_stops_the_worker_loudly_and_loses_no_message(
    launch: Launch,
    *,
    tmp_path: Path,
    database_url: str,
    api: ApiClient,
    tenant: TenantKeys,
    kafka_broker: Broker,
) -> None:
    orders_can_be_taken(api)
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Not the message's fault (a privilege, as a broken deployment would have it):
        # dead-lettering it would throw away a good order, so the worker must stop.
        conn.execute(refuse_badvalue("42501"))  # insufficient_privilege
    kafka_broker.produce(
        "wms.orders.inbound", [(b"BADVALUE", request(tenant.code, order("BADVALUE")))]
    )
    worker = launch(
        server_env(tmp_path, DATABASE_URL=database_url, KAFKA_BROKERS=kafka_broker.url),
        command=[WMS_SERVER, "worker"],
    )
    assert worker.process.wait(timeout=60) == 1  # non-zero: the orchestrator restarts it
    assert "the order intake stopped" in worker.log()
    assert kafka_broker.committed("wms.orders.inbound", "wms-order-intake") == 0  # read again
    assert kafka_broker.read("wms.orders.inbound.dlq", at_least=0, timeout=3) == []
