"""What Kafka refuses for good is parked, not retried forever; retention keeps the unsent."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.e2e.worker_helpers import as_worker, prune, relay_once, write_events
from tests.integration.kafka_fixtures import Broker
from tests.integration.test_cli_admin import run
from tests.integration.test_events_interleaving import settled_feed
from wms.config import Settings
from wms.events import metrics, outbox_sql

TOO_LARGE = "x" * 1_200_000  # over the producer's message.max.bytes (1,000,000)


def outbox_state(database_url: str, event_id: uuid.UUID) -> tuple[bool, str | None] | None:
    """(published?, parked reason) of one event; None once it is gone."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT published_at IS NOT NULL, parked_reason FROM wms.outbox WHERE event_id = %s",
            (event_id,),
        ).fetchone()
    return (bool(row[0]), row[1]) if row else None


def backlog(database_url: str) -> outbox_sql.Backlog:
    return as_worker(database_url, outbox_sql.backlog)


def test_an_event_kafka_refuses_for_good_is_parked_and_its_key_goes_on(
    database_url: str,
    tenant: TenantKeys,
    kafka_broker: Broker,
    cli_env: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before, large, after = write_events(
        database_url,
        tenant.tenant_id,
        [("A", {"seq": 0}), ("A", {"seq": 1, "blob": TOO_LARGE}), ("A", {"seq": 2})],
    )
    parked_before = metrics.PARKED.labels(kind="MSG_SIZE_TOO_LARGE")._value.get()

    # Before V14 this pass raised (KafkaException out of produce) at every restart.
    assert relay_once(database_url, kafka_broker) == 3
    records = kafka_broker.read("wms.events", at_least=2)
    assert [r["value"]["data"]["seq"] for r in records] == [0, 2]
    assert outbox_state(database_url, before) == (True, None)
    assert outbox_state(database_url, after) == (True, None)
    published, reason = outbox_state(database_url, large) or (None, None)
    assert published is False
    assert reason is not None
    assert reason.startswith("MSG_SIZE_TOO_LARGE: ")
    assert backlog(database_url) == outbox_sql.Backlog(0, 0.0, 1)
    assert metrics.PARKED.labels(kind="MSG_SIZE_TOO_LARGE")._value.get() == parked_before + 1
    assert relay_once(database_url, kafka_broker) == 0  # not sent again

    capsys.readouterr()  # the relay's log lines
    assert run(["events", "parked"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 2
    assert listing[1].startswith(f"{tenant.code}\t{large}\twms.test.sequenced\ttest/A\t")
    assert listing[1].endswith(reason)

    assert run(["events", "requeue"]) == 2
    assert "--all" in capsys.readouterr().err
    assert run(["events", "requeue", str(uuid.uuid4())]) == 0
    assert capsys.readouterr().out == "requeued 0 event(s)\n"
    assert run(["events", "requeue", str(large)]) == 0
    assert capsys.readouterr().out == "requeued 1 event(s)\n"
    assert backlog(database_url).waiting == 1
    # Still too large: refused and parked again, nothing else held up.
    assert relay_once(database_url, kafka_broker) == 1
    assert outbox_state(database_url, large) == (False, reason)


def test_retention_keeps_what_kafka_has_not_acknowledged_while_a_relay_runs(
    database_url: str, tenant: TenantKeys
) -> None:
    sent, unsent = write_events(
        database_url, tenant.tenant_id, [("B", {"seq": 0}), ("B", {"seq": 1})], age_days=30
    )
    (recent,) = write_events(database_url, tenant.tenant_id, [("B", {"seq": 2})])
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE wms.outbox SET published_at = now() WHERE event_id = %s", (sent,))

    assert prune(database_url, published_only=True) == 1
    assert outbox_state(database_url, sent) is None
    assert outbox_state(database_url, unsent) == (False, None)
    # Without a relay the feed is the only reader: age alone decides.
    assert prune(database_url, published_only=False) == 1
    assert outbox_state(database_url, unsent) is None
    assert outbox_state(database_url, recent) == (False, None)


def test_a_reader_without_a_cursor_starts_after_what_retention_removed(
    api: ApiClient, database_url: str, tenant: TenantKeys
) -> None:
    kept, sent = write_events(
        database_url, tenant.tenant_id, [("C", {"seq": 0}), ("C", {"seq": 1})], age_days=30
    )
    write_events(database_url, tenant.tenant_id, [("C", {"seq": 2})])
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE wms.outbox SET published_at = now() WHERE event_id = %s", (sent,))
    assert prune(database_url, published_only=True) == 1  # seq 1; seq 0 waits for Kafka
    assert outbox_state(database_url, kept) == (False, None)

    first = settled_feed(api, {"limit": 1}, 1)
    assert [item["data"]["seq"] for item in first["items"]] == [2]
    again = api.get("/events", params={"cursor": first["next_cursor"]})
    assert again.status_code == 200, again.text  # before: seq 0 first, then 410 forever
    assert again.json()["items"] == []
